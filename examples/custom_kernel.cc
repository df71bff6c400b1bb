// Example (b): a framework author's own op kind run by the executor. "softsign" (y = x / (1 + |x|))
// gets a forward and a backward kernel registered on the CPU backend; a five-layer network using it
// between built-in linear layers is planned at the tightest budget the optimal planner can meet,
// and one training step of that plan is compared with plain backpropagation (store-all): the loss
// and every parameter gradient must be bitwise equal, since recomputation replays the same
// deterministic kernels.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "ckpt/cpu_backend.h"
#include "ckpt/executor.h"
#include "ckpt/graph.h"
#include "ckpt/planner.h"
#include "ckpt/training_graph.h"

namespace {

constexpr std::int64_t kBatch = 16;
constexpr std::int64_t kWidth = 64;
constexpr std::int64_t kClasses = 8;
constexpr int kLayers = 5;

// Forward: y = x / (1 + |x|). Backward: dx = dy / (1 + |x|)^2, reading the saved input.
void register_softsign(ckpt::Backend& backend) {
  auto forward = [](const ckpt::KernelContext& ctx) {
    const auto* x = static_cast<const float*>(ctx.inputs[0]);
    auto* y = static_cast<float*>(ctx.outputs[0]);
    const std::int64_t n = ckpt::element_count(ctx.input_value(0).shape);
    for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] / (1 + std::fabs(x[i]));
  };
  auto backward = [](const ckpt::KernelContext& ctx) {
    const auto* x = static_cast<const float*>(ctx.inputs[0]);
    const float* dy = ctx.grad_outputs[0];
    float* dx = ctx.grad_inputs[0];
    if (dx == nullptr) return;  // the input needs no gradient
    const std::int64_t n = ckpt::element_count(ctx.input_value(0).shape);
    for (std::int64_t i = 0; i < n; ++i) {
      const float d = 1 + std::fabs(x[i]);
      const float g = dy[i] / (d * d);
      dx[i] = ctx.accumulate[0] ? dx[i] + g : g;
    }
  };
  backend.kernels().add("softsign", ckpt::OpKernels{.forward = forward, .backward = backward});
}

ckpt::ValueId add_tensor(ckpt::GraphBuilder& b, std::string name, ckpt::ValueKind kind,
                         std::vector<std::int64_t> shape, std::string dtype = "float32") {
  const std::int64_t bytes = ckpt::element_count(shape) * ckpt::dtype_bytes(dtype);
  return b.add_value({.name = std::move(name),
                      .bytes = bytes,
                      .kind = kind,
                      .shape = std::move(shape),
                      .dtype = std::move(dtype)});
}

ckpt::ValueId add_op(ckpt::GraphBuilder& b, std::string name, std::string kind,
                     std::vector<ckpt::ValueId> inputs, ckpt::ValueId output,
                     std::vector<ckpt::ValueId> saved, std::int64_t saved_other_bytes = 0) {
  b.add_op({.name = std::move(name),
            .kind = std::move(kind),
            .inputs = std::move(inputs),
            .outputs = {output},
            .fwd_time_us = 10,
            .bwd_time_us = 20,
            .saved = std::move(saved),
            .saved_other_bytes = saved_other_bytes});
  return output;
}

// x -> [linear -> softsign] x kLayers -> linear -> cross_entropy(targets).
ckpt::Graph build_network() {
  using ckpt::ValueKind;
  ckpt::GraphBuilder b("softsign-mlp");
  ckpt::ValueId h = add_tensor(b, "x", ValueKind::kInput, {kBatch, kWidth});
  for (int layer = 0; layer < kLayers; ++layer) {
    const std::string id = std::to_string(layer);
    const ckpt::ValueId w = add_tensor(b, "w" + id, ValueKind::kParam, {kWidth, kWidth});
    const ckpt::ValueId z = add_tensor(b, "z" + id, ValueKind::kActivation, {kBatch, kWidth});
    add_op(b, "fc" + id, "linear", {h, w}, z, /*saved=*/{h});
    const ckpt::ValueId a = add_tensor(b, "a" + id, ValueKind::kActivation, {kBatch, kWidth});
    h = add_op(b, "softsign" + id, "softsign", {z}, a, /*saved=*/{z});
  }
  const ckpt::ValueId w = add_tensor(b, "w_out", ValueKind::kParam, {kClasses, kWidth});
  const ckpt::ValueId logits = add_tensor(b, "logits", ValueKind::kActivation, {kBatch, kClasses});
  add_op(b, "fc_out", "linear", {h, w}, logits, /*saved=*/{h});
  const ckpt::ValueId targets = add_tensor(b, "targets", ValueKind::kInput, {kBatch}, "int32");
  const ckpt::ValueId loss = add_tensor(b, "loss", ValueKind::kActivation, {1});
  // cross_entropy keeps each row's logsumexp (4 bytes per row) for its backward.
  add_op(b, "loss", "cross_entropy", {logits, targets}, loss, /*saved=*/{logits},
         /*saved_other_bytes=*/kBatch * 4);
  return std::move(b).build();
}

// Deterministic inputs, targets and weights in [-0.5, 0.5).
void fill_state(const ckpt::Graph& graph, ckpt::ResidentState& state) {
  std::uint32_t lcg = 12345;
  auto next = [&lcg] { return (lcg = lcg * 1664525u + 1013904223u) >> 8; };
  for (ckpt::ValueId id = 0; id < graph.num_values(); ++id) {
    const ckpt::Value& value = graph.value(id);
    if (value.kind == ckpt::ValueKind::kActivation) continue;
    const std::int64_t n = ckpt::element_count(value.shape);
    if (value.dtype == "int32") {
      std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
      for (auto& v : ids) v = static_cast<std::int32_t>(next() % kClasses);
      state.upload(id, ids.data(), value.bytes);
      continue;
    }
    std::vector<float> data(static_cast<std::size_t>(n));
    for (auto& v : data) v = static_cast<float>(next() % 1000) / 1000.0f - 0.5f;
    state.upload(id, data.data(), value.bytes);
  }
}

struct StepResult {
  float loss = 0;
  std::vector<std::vector<float>> gradients;  // per parameter, in value id order
  std::int64_t arena_bytes = 0;
};

StepResult run(const ckpt::Graph& graph, const ckpt::TrainingGraph& training,
               const ckpt::Schedule& schedule, ckpt::Backend& backend, ckpt::ResidentState& state) {
  ckpt::Executor executor(graph, training, schedule, backend, state);
  StepResult result{.loss = executor.run_step().loss, .arena_bytes = executor.arena_bytes()};
  for (ckpt::ValueId id = 0; id < graph.num_values(); ++id) {
    if (graph.value(id).kind == ckpt::ValueKind::kParam)
      result.gradients.push_back(state.download_gradient(id));
  }
  return result;
}

bool bitwise_equal(const StepResult& a, const StepResult& b) {
  if (std::memcmp(&a.loss, &b.loss, sizeof a.loss) != 0) return false;
  if (a.gradients.size() != b.gradients.size()) return false;
  for (std::size_t i = 0; i < a.gradients.size(); ++i) {
    if (a.gradients[i].size() != b.gradients[i].size()) return false;
    if (std::memcmp(a.gradients[i].data(), b.gradients[i].data(),
                    a.gradients[i].size() * sizeof(float)) != 0)
      return false;
  }
  return true;
}

int run_example() {
  const std::unique_ptr<ckpt::Backend> backend = ckpt::make_cpu_backend();
  register_softsign(*backend);
  // The planner must count the scratch the kernels ask for (none here, but linear may).
  const ckpt::Graph graph = ckpt::with_kernel_workspaces(build_network(), backend->kernels());
  const ckpt::TrainingGraph training = ckpt::derive_training_graph(graph);

  const ckpt::Plan store_all = ckpt::plan(training, {.strategy = ckpt::Strategy::kStoreAll});
  // A zero budget is infeasible; the result names the least budget the optimal plan can meet.
  const std::int64_t tight = ckpt::plan(training, {.budget_bytes = 0}).min_feasible_bytes;
  const ckpt::Plan tight_plan = ckpt::plan(training, {.budget_bytes = tight});
  int recomputes = 0;
  for (const ckpt::Step& step : tight_plan.schedule.steps)
    recomputes += step.is_compute() && step.phase == ckpt::Phase::kRecompute;

  ckpt::ResidentState state(graph, *backend);
  fill_state(graph, state);
  const StepResult reference = run(graph, training, store_all.schedule, *backend, state);
  const StepResult planned = run(graph, training, tight_plan.schedule, *backend, state);

  std::cout << "store-all: peak " << store_all.peak_bytes << " bytes, arena "
            << reference.arena_bytes << " bytes, loss " << reference.loss << "\n"
            << "optimal at " << tight << " bytes: peak " << tight_plan.peak_bytes
            << " bytes, arena " << planned.arena_bytes << " bytes, " << recomputes
            << " recomputed ops, overhead " << tight_plan.overhead() * 100 << "%, loss "
            << planned.loss << "\n";
  if (!tight_plan.feasible || !bitwise_equal(reference, planned)) {
    std::cout << "MISMATCH: the plan's loss or gradients differ from store-all\n";
    return 1;
  }
  std::cout << "gradients match: loss and " << reference.gradients.size()
            << " parameter gradients are bitwise equal\n";
  return 0;
}

}  // namespace

int main() {
  try {
    return run_example();
  } catch (const std::exception& error) {
    std::cerr << "custom_kernel: " << error.what() << "\n";
    return 1;
  }
}
