// ckpt-run, top to bottom: parse the options (sizes default per device), build the model, open the
// device, measure every op's forward and backward time there and put them in the graph, plan at
// the budget, then train with store-all and with the plan from the same initial state, measuring
// peak memory and step time, and compare every parameter gradient bitwise. Every failure becomes a
// message on `err` and an exit code (ckpt/executor_cli.h).
#include "ckpt/executor_cli.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "ckpt/budget.h"
#include "ckpt/error.h"
#include "ckpt/executor.h"
#include "ckpt/models.h"
#include "ckpt/planner.h"
#include "ckpt/simulator.h"

namespace ckpt {

namespace {

struct RunOptions {
  std::string model = "gpt2";
  std::string device = "cuda";
  std::string budget = "50%";
  std::string strategy = "optimal";
  std::string format = "table";
  int steps = 3;
  int repetitions = 3;
  std::uint64_t seed = 42;
  float learning_rate = 1e-4f;
  // Sizes: unset ones take the device's defaults (a GPU-sized or a CPU-sized model).
  std::optional<std::int64_t> layers, d_model, heads, seq, batch, vocab, positions, input_features,
      classes;
  std::optional<std::vector<std::int64_t>> hidden;
  std::optional<double> dropout;
};

constexpr const char* kFooter =
    "Exit status: 0 ok, 1 bad option, 2 budget infeasible, 3 internal error, 4 no such device "
    "(no GPU, or built without CUDA), 5 out of device memory, 6 gradients differ from "
    "store-all. See docs/executor.md.";

std::optional<int> parse_arguments(int argc, const char* const* argv, RunOptions& o,
                                   std::ostream& out, std::ostream& err) {
  CLI::App app(
      "Measures a model's ops on a device, plans gradient checkpointing at a budget, trains with "
      "store-all and with the plan, and reports predicted vs measured peak memory and step time.",
      "ckpt-run");
  app.footer(kFooter);
  app.get_formatter()->column_width(30);
  app.add_option("--model,-m", o.model, "mlp or gpt2 (default gpt2)")->type_name("NAME");
  app.add_option("--device,-d", o.device,
                 "cuda (default; GPT-2 small, batch 8 x 512, fp32) or cpu (the reference backend "
                 "with shrunk default sizes)")
      ->type_name("NAME");
  app.add_option("--budget,-b", o.budget,
                 "Memory budget, as ckpt-plan takes it: bytes, KB/MB/GB, KiB/MiB/GiB, or N% of "
                 "the store-all peak (default 50%)")
      ->type_name("SIZE");
  app.add_option("--strategy,-s", o.strategy, "Planner strategy (default optimal)")
      ->type_name("NAME");
  app.add_option("--steps", o.steps, "Training steps per run (default 3)")->type_name("N");
  app.add_option("--repetitions", o.repetitions,
                 "Store-all steps timed per op when measuring op times (default 3)")
      ->type_name("N");
  app.add_option("--format,-f", o.format, "table (default) or json")->type_name("FORMAT");
  app.add_option("--seed", o.seed, "Seed of the initial state and of dropout (default 42)");
  app.add_option("--lr", o.learning_rate, "SGD learning rate between steps (default 1e-4)");
  auto size = [&](const char* name, std::optional<std::int64_t>& slot, const char* help) {
    app.add_option_function<std::int64_t>(
           name, [&slot](std::int64_t v) { slot = v; }, help)
        ->type_name("N")
        ->group("Model sizes");
  };
  size("--layers", o.layers, "gpt2: transformer blocks (cuda 12, cpu 4)");
  size("--d-model", o.d_model, "gpt2: width (cuda 768, cpu 128)");
  size("--heads", o.heads, "gpt2: attention heads (cuda 12, cpu 4)");
  size("--seq", o.seq, "gpt2: tokens per sequence (cuda 512, cpu 64)");
  size("--batch", o.batch, "sequences (gpt2: cuda 8, cpu 4) or rows (mlp: cuda 4096, cpu 64)");
  size("--vocab", o.vocab, "gpt2: vocabulary (cuda 50257, cpu 512)");
  size("--positions", o.positions, "gpt2: position-table rows (cuda 1024, cpu = seq)");
  size("--input-features", o.input_features, "mlp: input width (cuda 1024, cpu 256)");
  size("--classes", o.classes, "mlp: classes (cuda 1000, cpu 10)");
  app.add_option_function<std::vector<std::int64_t>>(
         "--hidden", [&o](const std::vector<std::int64_t>& v) { o.hidden = v; },
         "mlp: hidden widths, comma-separated (cuda 8 x 4096, cpu 8 x 512)")
      ->delimiter(',')
      ->type_name("N,N,...")
      ->group("Model sizes");
  app.add_option_function<double>(
         "--dropout", [&o](double v) { o.dropout = v; }, "dropout probability (gpt2 0.1, mlp 0)")
      ->type_name("P")
      ->group("Model sizes");
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? kRunOk : kRunInputError;
  }
  return std::nullopt;
}

struct BuiltModel {
  Graph graph;
  nlohmann::ordered_json config;
  std::string description;
};

BuiltModel build_model(const RunOptions& o) {
  const bool gpu = o.device != "cpu";
  BuiltModel built;
  if (o.model == "gpt2") {
    Gpt2Options g;
    g.layers = o.layers.value_or(gpu ? 12 : 4);
    g.d_model = o.d_model.value_or(gpu ? 768 : 128);
    g.heads = o.heads.value_or(gpu ? 12 : 4);
    g.seq = o.seq.value_or(gpu ? 512 : 64);
    g.batch = o.batch.value_or(gpu ? 8 : 4);
    g.vocab = o.vocab.value_or(gpu ? 50257 : 512);
    g.positions = o.positions.value_or(gpu ? std::max<std::int64_t>(1024, g.seq) : g.seq);
    g.dropout = o.dropout.value_or(0.1);
    built.graph = build_gpt2(g);
    built.config = {{"layers", g.layers},       {"d_model", g.d_model},
                    {"heads", g.heads},         {"seq", g.seq},
                    {"batch", g.batch},         {"vocab", g.vocab},
                    {"positions", g.positions}, {"dropout", g.dropout}};
    built.description = fmt::format(
        "gpt2 (layers {}, d_model {}, heads {}, batch {} x {} tokens, "
        "vocab {}, dropout {})",
        g.layers, g.d_model, g.heads, g.batch, g.seq, g.vocab, g.dropout);
    return built;
  }
  if (o.model == "mlp") {
    MlpOptions m;
    m.batch = o.batch.value_or(gpu ? 4096 : 64);
    m.input_features = o.input_features.value_or(gpu ? 1024 : 256);
    m.hidden_features = o.hidden.value_or(gpu ? std::vector<std::int64_t>(8, 4096)
                                              : std::vector<std::int64_t>(8, 512));
    m.classes = o.classes.value_or(gpu ? 1000 : 10);
    m.dropout = o.dropout.value_or(0.0);
    built.graph = build_mlp(m);
    built.config = {{"batch", m.batch},
                    {"input_features", m.input_features},
                    {"hidden", m.hidden_features},
                    {"classes", m.classes},
                    {"dropout", m.dropout},
                    {"in_place_relu", m.in_place_relu}};
    built.description =
        fmt::format("mlp (batch {}, {} -> {} -> {}, dropout {})", m.batch, m.input_features,
                    fmt::join(m.hidden_features, " -> "), m.classes, m.dropout);
    return built;
  }
  throw Error(ErrorKind::kUsage, fmt::format("--model \"{}\": expected mlp or gpt2", o.model));
}

// One training run of a schedule, measured.
struct RunMeasurement {
  std::int64_t predicted_peak_bytes = 0;
  std::int64_t arena_bytes = 0;
  std::int64_t measured_peak_bytes = 0;
  std::string measured_by;
  double fragmentation = 0;
  double step_ms = 0;  // median over the steps
  std::vector<double> step_ms_each;
  std::vector<float> losses;
  std::vector<std::vector<float>> gradients;  // of the last step, per trained parameter
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty()      ? 0
         : v.size() % 2 ? v[v.size() / 2]
                        : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

RunMeasurement run_training(const Graph& graph, const TrainingGraph& training,
                            const Schedule& schedule, Backend& backend, ResidentState& state,
                            const RunOptions& o) {
  initialize_model_state(graph, state, o.seed);
  backend.synchronize();
  const std::optional<std::int64_t> used_before = backend.device_used_bytes();
  const std::int64_t allocated_before = backend.memory_stats().allocated_bytes;
  backend.reset_peak();
  RunMeasurement m;
  std::int64_t used_max = used_before.value_or(0);
  auto sample = [&] {
    if (const auto used = backend.device_used_bytes()) used_max = std::max(used_max, *used);
  };
  {
    ExecutorOptions options;
    options.seed = o.seed;
    Executor executor(graph, training, schedule, backend, state, options);
    sample();
    for (int s = 0; s < o.steps; ++s) {
      const StepStats stats = executor.run_step();
      sample();
      m.step_ms_each.push_back(stats.step_ms);
      m.losses.push_back(stats.loss);
      if (s + 1 < o.steps && o.learning_rate > 0) state.sgd_step(o.learning_rate);
    }
    m.predicted_peak_bytes = executor.predicted_peak_bytes();
    m.arena_bytes = executor.arena_bytes();
    m.fragmentation = executor.memory_plan().fragmentation();
  }
  // The run's own memory: what it needed beyond the resident state, plus the backend's fixed
  // buffers (the cuBLAS workspace), which every run needs.
  if (used_before) {
    m.measured_peak_bytes = used_max - *used_before + backend.fixed_bytes();
    m.measured_by = "device (cudaMemGetInfo) + fixed workspace";
  } else {
    m.measured_peak_bytes =
        backend.memory_stats().peak_allocated_bytes - allocated_before + backend.fixed_bytes();
    m.measured_by = "counting allocator";
  }
  m.step_ms = median(m.step_ms_each);
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    if (state.gradient(v) != nullptr) m.gradients.push_back(state.download_gradient(v));
  }
  return m;
}

bool bitwise_equal(const std::vector<std::vector<float>>& a,
                   const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size() ||
        std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0) {
      return false;
    }
  }
  return true;
}

nlohmann::ordered_json run_json(const RunMeasurement& m) {
  return {{"predicted_peak_bytes", m.predicted_peak_bytes},
          {"arena_bytes", m.arena_bytes},
          {"measured_peak_bytes", m.measured_peak_bytes},
          {"step_ms", m.step_ms},
          {"step_ms_each", m.step_ms_each},
          {"losses", m.losses}};
}

int run(const RunOptions& o, std::ostream& out, std::ostream& err,
        const std::vector<DeviceFactory>& devices) {
  const std::optional<Strategy> strategy = strategy_from_string(o.strategy);
  if (!strategy) {
    err << fmt::format("ckpt-run: --strategy \"{}\" is not a strategy\n", o.strategy);
    return kRunInputError;
  }
  if (o.format != "table" && o.format != "json") {
    err << fmt::format("ckpt-run: --format \"{}\": expected table or json\n", o.format);
    return kRunInputError;
  }
  if (o.steps < 1 || o.repetitions < 1) {
    err << "ckpt-run: --steps and --repetitions must be at least 1\n";
    return kRunInputError;
  }
  const BudgetSpec budget_spec = parse_budget(o.budget);
  const BuiltModel model = build_model(o);
  const auto factory = std::find_if(devices.begin(), devices.end(),
                                    [&](const DeviceFactory& d) { return d.name == o.device; });
  if (factory == devices.end()) {
    err << fmt::format("ckpt-run: no device \"{}\" in this build ({}); {}\n", o.device,
                       o.device == "cuda" ? "it was built without CUDA: configure with "
                                            "-DCKPT_CUDA=ON where nvcc is installed"
                                          : "devices are cpu and cuda",
                       o.device == "cuda" ? "--device cpu runs the CPU reference backend" : "");
    return o.device == "cuda" ? kRunNoDevice : kRunInputError;
  }
  const std::unique_ptr<Backend> backend = factory->make();

  // Workspace and measured times go into the graph before anything is planned.
  const Graph with_workspace = with_kernel_workspaces(model.graph, backend->kernels());
  Graph graph;
  {
    ResidentState state(with_workspace, *backend);
    initialize_model_state(with_workspace, state, o.seed);
    graph = with_op_times(with_workspace,
                          measure_op_times(with_workspace, *backend, state, o.repetitions));
  }
  const TrainingGraph training = derive_training_graph(graph);
  const Schedule store_all = store_all_schedule(training);
  const SimulationResult store_all_sim = simulate(training, store_all);
  PlanOptions plan_options;
  plan_options.strategy = *strategy;
  plan_options.budget_bytes = resolve_budget(budget_spec, store_all_sim.peak_bytes);
  const Plan plan = ckpt::plan(training, plan_options);
  if (!plan.feasible) {
    err << fmt::format(
        "ckpt-run: budget {} ({}) is below the least {} can meet on this model: "
        "{} ({})\n",
        budget_spec.text, format_bytes(plan_options.budget_bytes), o.strategy,
        format_bytes(plan.min_feasible_bytes), plan.min_feasible_bytes);
    return kRunInfeasible;
  }
  if (const SimulationResult check = simulate(training, plan.schedule); !check.valid) {
    err << "ckpt-run: internal error: the plan fails the simulator: " << check.error << "\n";
    return kRunInternal;
  }

  ResidentState state(graph, *backend);
  const RunMeasurement reference = run_training(graph, training, store_all, *backend, state, o);
  const RunMeasurement planned = run_training(graph, training, plan.schedule, *backend, state, o);
  const bool grads_match = bitwise_equal(reference.gradients, planned.gradients);
  const double overhead = reference.step_ms > 0 ? planned.step_ms / reference.step_ms - 1 : 0;

  if (o.format == "json") {
    nlohmann::ordered_json j = {
        {"device", backend->name()},
        {"device_description", backend->device_description()},
        {"model", o.model},
        {"model_config", model.config},
        {"strategy", o.strategy},
        {"budget", budget_spec.text},
        {"budget_bytes", plan_options.budget_bytes},
        {"store_all_peak_bytes", store_all_sim.peak_bytes},
        {"predicted_peak_bytes", planned.predicted_peak_bytes},
        {"arena_bytes", planned.arena_bytes},
        {"arena_fragmentation", planned.fragmentation},
        {"fixed_workspace_bytes", backend->fixed_bytes()},
        {"measured_peak_bytes", planned.measured_peak_bytes},
        {"measured_by", planned.measured_by},
        {"resident_bytes", state.bytes()},
        {"step_ms", planned.step_ms},
        {"store_all_step_ms", reference.step_ms},
        {"overhead", overhead},
        {"predicted_overhead", plan.overhead()},
        {"grads_match_store_all", grads_match},
        {"steps", o.steps},
        {"store_all", run_json(reference)},
        {"plan", run_json(planned)},
    };
    out << j.dump(2) << "\n";
  } else {
    out << fmt::format("ckpt-run: {} on {} ({})\n", model.description, backend->name(),
                       backend->device_description());
    out << fmt::format("budget {} = {}; strategy {}; {} training steps\n", budget_spec.text,
                       format_bytes(plan_options.budget_bytes), o.strategy, o.steps);
    out << fmt::format("{:<10} {:>16} {:>16} {:>16} {:>12}\n", "run", "predicted peak", "arena",
                       "measured peak", "step ms");
    for (const auto& [name, m] :
         {std::pair<const char*, const RunMeasurement&>{"store-all", reference},
          std::pair<const char*, const RunMeasurement&>{"plan", planned}}) {
      out << fmt::format("{:<10} {:>16} {:>16} {:>16} {:>12.3f}\n", name,
                         format_bytes(m.predicted_peak_bytes), format_bytes(m.arena_bytes),
                         format_bytes(m.measured_peak_bytes), m.step_ms);
    }
    out << fmt::format("measured peak: {}, including {} of fixed workspace\n", planned.measured_by,
                       format_bytes(backend->fixed_bytes()));
    out << fmt::format("overhead: measured {:.1f}%, predicted {:.1f}%\n", 100 * overhead,
                       100 * plan.overhead());
    out << fmt::format("gradients bitwise equal to store-all: {}\n", grads_match ? "yes" : "NO");
  }
  return grads_match ? kRunOk : kRunGradientMismatch;
}

}  // namespace

int run_executor_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                     const std::vector<DeviceFactory>& devices) {
  RunOptions options;
  if (const std::optional<int> code = parse_arguments(argc, argv, options, out, err)) return *code;
  try {
    return run(options, out, err, devices);
  } catch (const DeviceError& e) {
    err << "ckpt-run: " << e.what() << "\n";
    switch (e.reason()) {
      case DeviceError::Reason::kNoDevice:
        return kRunNoDevice;
      case DeviceError::Reason::kOutOfMemory:
        return kRunOutOfMemory;
      case DeviceError::Reason::kFailure:
        return kRunInternal;
    }
    return kRunInternal;
  } catch (const Error& e) {
    err << "ckpt-run: " << e.what() << "\n";
    return kRunInputError;
  }
}

}  // namespace ckpt
