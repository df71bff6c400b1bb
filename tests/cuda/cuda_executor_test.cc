// GPU tests of the CUDA backend. Without a CUDA device every test that needs one skips with the
// reason; the no-device error itself is tested there instead. With a device: every parameter
// gradient under recompute schedules and the planner's strategies is bitwise the store-all run's,
// results agree with the CPU reference backend, dropout masks are the CPU's bit for bit, the
// measured peak (cudaMemGetInfo) stays within 1% of the predicted peak plus the cuBLAS workspace,
// and running out of memory is a clear error.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "ckpt/cpu_backend.h"
#include "ckpt/cuda_backend.h"
#include "ckpt/executor.h"
#include "ckpt/models.h"
#include "ckpt/planner.h"
#include "ckpt/simulator.h"
#include "executor_test_util.h"

namespace ckpt {
namespace {

using testing::keep_every;
using testing::recompute_schedule;

bool have_gpu(std::string* why) { return cuda_device_count(why) > 0; }

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!have_gpu(&why)) {
      GTEST_SKIP() << "no CUDA device (" << why << "): the CUDA backend's tests need a GPU; run "
                   << "scripts/gpu-test on a machine with one";
    }
  }
};

Gpt2Options small_gpt2() {
  Gpt2Options o;
  o.layers = 2;
  o.d_model = 64;
  o.heads = 4;
  o.seq = 32;
  o.batch = 2;
  o.vocab = 97;
  o.positions = 32;
  o.dropout = 0.1;
  return o;
}

MlpOptions small_mlp() {
  MlpOptions o;
  o.batch = 16;
  o.input_features = 32;
  o.hidden_features = {64, 48, 64};
  o.classes = 7;
  o.dropout = 0.2;
  return o;
}

struct Result {
  std::vector<float> losses;
  std::vector<std::vector<float>> gradients;  // per trained parameter, in value order
  std::int64_t predicted_peak_bytes = 0;
  std::int64_t arena_bytes = 0;
  std::int64_t measured_peak_bytes = 0;  // cudaMemGetInfo: the run's growth + the fixed workspace
};

// `graph` must carry the backend's workspaces (with_kernel_workspaces).
Result run(Backend& backend, const Graph& graph, const Schedule& schedule, int steps = 1) {
  const TrainingGraph training = derive_training_graph(graph);
  ResidentState state(graph, backend);
  initialize_model_state(graph, state, 42);
  backend.synchronize();
  const std::int64_t used_before = backend.device_used_bytes().value_or(0);
  std::int64_t used_max = used_before;
  Result result;
  {
    Executor executor(graph, training, schedule, backend, state);
    const std::int64_t allocations = backend.memory_stats().allocations;
    for (int s = 0; s < steps; ++s) {
      result.losses.push_back(executor.run_step().loss);
      used_max = std::max(used_max, backend.device_used_bytes().value_or(0));
      if (s + 1 < steps) state.sgd_step(0.1f);
    }
    EXPECT_EQ(backend.memory_stats().allocations, allocations) << "allocated during a step";
    result.predicted_peak_bytes = executor.predicted_peak_bytes();
    result.arena_bytes = executor.arena_bytes();
  }
  result.measured_peak_bytes = used_max - used_before + backend.fixed_bytes();
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    if (state.gradient(v) != nullptr) result.gradients.push_back(state.download_gradient(v));
  }
  return result;
}

void expect_bitwise(const Result& expected, const Result& got, const std::string& what) {
  ASSERT_EQ(expected.gradients.size(), got.gradients.size());
  for (std::size_t s = 0; s < expected.losses.size(); ++s) {
    EXPECT_EQ(std::memcmp(&expected.losses[s], &got.losses[s], sizeof(float)), 0)
        << what << ": loss of step " << s;
  }
  for (std::size_t i = 0; i < expected.gradients.size(); ++i) {
    EXPECT_EQ(std::memcmp(expected.gradients[i].data(), got.gradients[i].data(),
                          expected.gradients[i].size() * sizeof(float)),
              0)
        << what << ": gradient of trained parameter #" << i << " differs from store-all's";
  }
}

TEST(CudaNoDeviceTest, MissingDeviceIsAClearError) {
  std::string why;
  if (have_gpu(&why)) GTEST_SKIP() << "a CUDA device is present: nothing to test here";
  try {
    make_cuda_backend();
    FAIL() << "expected a DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_EQ(e.reason(), DeviceError::Reason::kNoDevice);
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--device cpu"), std::string::npos) << e.what();
  }
}

TEST_F(CudaTest, RecomputeAndPlannerSchedulesGiveBitwiseTheStoreAllGradients) {
  auto backend = make_cuda_backend();
  for (const Graph& forward : {build_gpt2(small_gpt2()), build_mlp(small_mlp())}) {
    const Graph graph = with_kernel_workspaces(forward, backend->kernels());
    const TrainingGraph training = derive_training_graph(graph);
    const Result reference = run(*backend, graph, store_all_schedule(training), 2);
    std::vector<std::pair<std::string, Schedule>> schedules = {
        {"keep every 2nd", recompute_schedule(training, keep_every(training, 2), false)},
        {"keep every 3rd, forget", recompute_schedule(training, keep_every(training, 3), true)},
        {"keep none, forget", recompute_schedule(training, keep_every(training, 0), true)},
    };
    const std::int64_t peak = simulate(training, store_all_schedule(training)).peak_bytes;
    for (Strategy strategy : all_strategies()) {
      for (int percent : {60, 40, 25}) {
        PlanOptions options;
        options.strategy = strategy;
        options.budget_bytes = peak * percent / 100;
        const Plan p = plan(training, options);
        schedules.emplace_back(fmt::format("{} at {}%", to_string(strategy), percent), p.schedule);
      }
    }
    for (const auto& [name, schedule] : schedules) {
      expect_bitwise(reference, run(*backend, graph, schedule, 2), forward.name() + ", " + name);
    }
  }
}

TEST_F(CudaTest, ResultsAgreeWithTheCpuBackend) {
  auto gpu = make_cuda_backend();
  auto cpu = make_cpu_backend();
  for (const Graph& forward : {build_gpt2(small_gpt2()), build_mlp(small_mlp())}) {
    // Both backends run the graph with the GPU's workspaces (the CPU kernels need none).
    const Graph graph = with_kernel_workspaces(forward, gpu->kernels());
    const Schedule schedule = store_all_schedule(derive_training_graph(graph));
    const Result on_gpu = run(*gpu, graph, schedule);
    const Result on_cpu = run(*cpu, graph, schedule);
    EXPECT_NEAR(on_gpu.losses[0], on_cpu.losses[0], 1e-4 * std::abs(on_cpu.losses[0]));
    for (std::size_t i = 0; i < on_cpu.gradients.size(); ++i) {
      float scale = 1e-6f;
      for (float g : on_cpu.gradients[i]) scale = std::max(scale, std::abs(g));
      for (std::size_t e = 0; e < on_cpu.gradients[i].size(); ++e) {
        ASSERT_NEAR(on_gpu.gradients[i][e], on_cpu.gradients[i][e], 2e-3 * scale)
            << forward.name() << ": parameter #" << i << " element " << e;
      }
    }
  }
}

TEST_F(CudaTest, DropoutMasksAreTheCpuBackendsBitForBit) {
  auto gpu = make_cuda_backend();
  auto cpu = make_cpu_backend();
  const Graph graph = with_kernel_workspaces(build_gpt2(small_gpt2()), gpu->kernels());
  const TrainingGraph training = derive_training_graph(graph);
  const Schedule schedule = recompute_schedule(training, keep_every(training, 0), true);
  std::map<std::string, std::vector<std::vector<std::uint8_t>>> masks;  // backend/op -> draws
  for (Backend* backend : {gpu.get(), cpu.get()}) {
    ResidentState state(graph, *backend);
    initialize_model_state(graph, state, 42);
    Executor executor(graph, training, schedule, *backend, state);
    executor.set_observer([&](std::size_t, const KernelContext& ctx) {
      if (ctx.op->kind != "dropout" || ctx.phase == Phase::kBackward) return;
      std::vector<std::uint8_t> host(static_cast<std::size_t>(ctx.saved_state_bytes));
      backend->copy_to_host(host.data(), ctx.saved_state, ctx.saved_state_bytes);
      masks[backend->name() + "/" + ctx.op->name].push_back(std::move(host));
    });
    executor.run_step();
  }
  int compared = 0;
  for (const auto& [key, draws] : masks) {
    if (key.rfind("cuda/", 0) != 0) continue;
    const auto& cpu_draws = masks.at("cpu/" + key.substr(5));
    for (const auto& draw : draws) EXPECT_EQ(draw, cpu_draws.front()) << key;
    compared += static_cast<int>(draws.size());
  }
  EXPECT_GT(compared, 0);
}

// GPT-2 small at batch 8 x 512, fp32: store-all and the optimal plan at 40% of its peak.
TEST_F(CudaTest, MeasuredPeakIsThePredictedPeakPlusTheWorkspaceWithinOnePercent) {
  auto backend = make_cuda_backend();
  const Graph graph = with_kernel_workspaces(build_gpt2(Gpt2Options{}), backend->kernels());
  const TrainingGraph training = derive_training_graph(graph);
  const Schedule store_all = store_all_schedule(training);
  PlanOptions options;
  options.budget_bytes = simulate(training, store_all).peak_bytes * 40 / 100;
  const Plan p = plan(training, options);
  ASSERT_TRUE(p.feasible);
  // A warm-up run first: CUDA loads kernels lazily (CUDA_MODULE_LOADING=LAZY), and their code
  // would otherwise count against the first measured run.
  run(*backend, graph, store_all);
  const Result reference = run(*backend, graph, store_all);
  const Result planned = run(*backend, graph, p.schedule);
  for (const Result* r : {&reference, &planned}) {
    const double allowed = static_cast<double>(r->predicted_peak_bytes + backend->fixed_bytes());
    std::printf("[ peak ] predicted %lld + workspace %lld, arena %lld, measured %lld bytes\n",
                static_cast<long long>(r->predicted_peak_bytes),
                static_cast<long long>(backend->fixed_bytes()),
                static_cast<long long>(r->arena_bytes),
                static_cast<long long>(r->measured_peak_bytes));
    EXPECT_LE(static_cast<double>(r->measured_peak_bytes), allowed * 1.01);
    EXPECT_GE(r->measured_peak_bytes, r->arena_bytes);  // the device saw the arena
  }
  expect_bitwise(reference, planned, "GPT-2 small, optimal at 40%");
}

TEST_F(CudaTest, OutOfMemoryIsAClearError) {
  auto backend = make_cuda_backend();
  try {
    backend->allocate(std::int64_t{1} << 50, "a petabyte");
    FAIL() << "expected a DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_EQ(e.reason(), DeviceError::Reason::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("a petabyte"), std::string::npos) << e.what();
  }
  // The backend still works afterwards.
  void* p = backend->allocate(1024, "a kilobyte");
  backend->fill_zero(p, 1024);
  backend->synchronize();
  backend->release(p);
}

}  // namespace
}  // namespace ckpt
