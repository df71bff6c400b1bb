// The executor, top to bottom: check the graph against the backend's kernels, plan the arena and
// allocate it once, resolve every step's pointers ahead of time (so the run itself allocates
// nothing, not even host memory), then walk the schedule calling kernels. Also the resident state
// and the graph rewrites that carry kernel workspaces and measured times into a graph.
#include "ckpt/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "ckpt/error.h"
#include "ckpt/kernel_random.h"
#include "ckpt/simulator.h"

namespace ckpt {

std::int64_t dtype_bytes(const std::string& dtype) {
  if (dtype.empty() || dtype == "float32" || dtype == "int32") return 4;
  throw Error(ErrorKind::kValidation,
              fmt::format("dtype \"{}\": the executor's kernels take float32 and int32", dtype));
}

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t count = 1;
  for (std::int64_t extent : shape) count *= extent;
  return count;
}

namespace {

void check_invariant(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "ckpt: executor invariant broken: %s\n", what);
  std::abort();
}

// Values need shapes and dtypes whose size is their bytes (a view: at most its storage's bytes).
void check_values(const Graph& graph) {
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const Value& value = graph.value(v);
    if (value.shape.empty()) {
      throw Error(ErrorKind::kValidation,
                  fmt::format("value \"{}\" has no shape: the executor needs every value's shape "
                              "and dtype",
                              value.name));
    }
    const std::int64_t bytes = element_count(value.shape) * dtype_bytes(value.dtype);
    const std::int64_t storage = graph.value(graph.storage_root(v)).bytes;
    const bool fits = value.alias_of == kNoId ? bytes == value.bytes : bytes <= storage;
    if (!fits) {
      throw Error(ErrorKind::kValidation,
                  fmt::format("value \"{}\": its shape and dtype make {} bytes but it {} {} bytes",
                              value.name, bytes, value.alias_of == kNoId ? "has" : "views",
                              value.alias_of == kNoId ? value.bytes : storage));
    }
  }
}

std::string registered_kinds(const KernelRegistry& registry) {
  return fmt::format("{}", fmt::join(registry.kinds(), ", "));
}

std::int64_t query(const WorkspaceQuery& workspace, const Graph& graph, const Op& op) {
  return workspace ? workspace(graph, op) : 0;
}

// Every op has kernels on the backend, and the graph declares the workspace they use.
void check_kernels(const Graph& graph, const TrainingGraph& training, const Backend& backend) {
  std::vector<char> has_backward(static_cast<std::size_t>(graph.num_ops()), 0);
  for (NodeId n = training.num_forward_nodes(); n < training.num_nodes(); ++n) {
    has_backward[static_cast<std::size_t>(training.node(n).source_id)] = 1;
  }
  for (OpId o = 0; o < graph.num_ops(); ++o) {
    const Op& op = graph.op(o);
    const OpKernels* kernels = backend.kernels().find(op.kind);
    if (kernels == nullptr || !kernels->forward) {
      throw Error(
          ErrorKind::kValidation,
          fmt::format("op \"{}\": no kernel for kind \"{}\" on the {} backend (it has: {})",
                      op.name, op.kind, backend.name(), registered_kinds(backend.kernels())));
    }
    if (has_backward[static_cast<std::size_t>(o)] && !kernels->backward) {
      throw Error(ErrorKind::kValidation,
                  fmt::format("op \"{}\": kind \"{}\" has no backward kernel on the {} backend",
                              op.name, op.kind, backend.name()));
    }
    const std::int64_t fwd = query(kernels->forward_workspace_bytes, graph, op);
    const std::int64_t bwd = query(kernels->backward_workspace_bytes, graph, op);
    if (fwd > op.fwd_workspace_bytes || bwd > op.bwd_workspace_bytes) {
      throw Error(ErrorKind::kValidation,
                  fmt::format("op \"{}\": its {} kernels need {} / {} bytes of forward / backward "
                              "workspace but the graph declares {} / {}; plan the graph returned "
                              "by with_kernel_workspaces()",
                              op.name, backend.name(), fwd, bwd, op.fwd_workspace_bytes,
                              op.bwd_workspace_bytes));
    }
  }
}

// Rebuilds a graph through GraphBuilder with each op passed through `edit` (ids are kept).
template <typename Edit>
Graph rebuild(const Graph& graph, Edit edit) {
  GraphBuilder builder(graph.name());
  for (const Value& value : graph.values()) builder.add_value(value);
  for (OpId o = 0; o < graph.num_ops(); ++o) {
    Op op = graph.op(o);
    edit(o, op);
    builder.add_op(std::move(op));
  }
  builder.set_loss(graph.loss());
  return std::move(builder).build();
}

double median(std::vector<double> samples) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const std::size_t mid = samples.size() / 2;
  return samples.size() % 2 == 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2;
}

bool is_view(const Op& op, const Graph& graph) {
  if (op.in_place || op.outputs.size() != 1) return false;
  const ValueId target = graph.value(op.outputs.front()).alias_of;
  return target != kNoId &&
         std::find(op.inputs.begin(), op.inputs.end(), target) != op.inputs.end();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ResidentState

ResidentState::ResidentState(const Graph& graph, Backend& backend)
    : graph_(graph), backend_(backend) {
  const auto count = static_cast<std::size_t>(graph.num_values());
  values_.assign(count, nullptr);
  gradients_.assign(count, nullptr);
  try {
    for (ValueId v = 0; v < graph.num_values(); ++v) {
      const Value& value = graph.value(v);
      if (value.kind == ValueKind::kActivation || value.alias_of != kNoId) continue;
      values_[static_cast<std::size_t>(v)] = backend.allocate(value.bytes, value.name);
      backend.fill_zero(values_[static_cast<std::size_t>(v)], value.bytes);
      bytes_ += value.bytes;
      if (value.kind != ValueKind::kParam || !value.requires_grad) continue;
      auto* gradient = static_cast<float*>(backend.allocate(value.bytes, value.name + ".grad"));
      gradients_[static_cast<std::size_t>(v)] = gradient;
      bytes_ += value.bytes;
    }
    loss_slot_ = static_cast<float*>(backend.allocate(sizeof(float), "loss"));
    bytes_ += static_cast<std::int64_t>(sizeof(float));
    zero_gradients();
  } catch (...) {
    for (void* p : values_) backend.release(p);
    for (float* p : gradients_) backend.release(p);
    throw;
  }
}

ResidentState::~ResidentState() {
  for (void* p : values_) backend_.release(p);
  for (float* p : gradients_) backend_.release(p);
  backend_.release(loss_slot_);
}

void* ResidentState::value(ValueId id) const {
  return values_.at(static_cast<std::size_t>(graph_.storage_root(id)));
}

float* ResidentState::gradient(ValueId param) const {
  return gradients_.at(static_cast<std::size_t>(param));
}

void ResidentState::upload(ValueId id, const void* host, std::int64_t bytes) {
  void* device = value(id);
  if (device == nullptr || bytes > graph_.value(graph_.storage_root(id)).bytes) {
    throw Error(ErrorKind::kUsage, fmt::format("upload: \"{}\" is not a resident value of {} "
                                               "bytes or more",
                                               graph_.value(id).name, bytes));
  }
  backend_.copy_from_host(device, host, bytes);
}

std::vector<std::uint8_t> ResidentState::download(ValueId id) const {
  const ValueId root = graph_.storage_root(id);
  std::vector<std::uint8_t> host(static_cast<std::size_t>(graph_.value(root).bytes));
  backend_.copy_to_host(host.data(), value(id), graph_.value(root).bytes);
  return host;
}

std::vector<float> ResidentState::download_gradient(ValueId param) const {
  const float* device = gradient(param);
  if (device == nullptr) return {};
  std::vector<float> host(static_cast<std::size_t>(graph_.value(param).bytes) / sizeof(float));
  backend_.copy_to_host(host.data(), device, graph_.value(param).bytes);
  return host;
}

void ResidentState::zero_gradients() {
  for (ValueId v = 0; v < graph_.num_values(); ++v) {
    if (float* g = gradients_[static_cast<std::size_t>(v)]) {
      backend_.fill_zero(g, graph_.value(v).bytes);
    }
  }
}

void ResidentState::sgd_step(float learning_rate) {
  for (ValueId v = 0; v < graph_.num_values(); ++v) {
    if (float* g = gradients_[static_cast<std::size_t>(v)]) {
      backend_.sgd_update(static_cast<float*>(values_[static_cast<std::size_t>(v)]), g,
                          graph_.value(v).bytes / static_cast<std::int64_t>(sizeof(float)),
                          learning_rate);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Executor

struct Executor::PreparedStep {
  bool compute = false;
  NodeId node = kNoId;
  const Kernel* kernel = nullptr;
  bool random = false;
  KernelContext context;
  const void* loss_source = nullptr;  // set when this step computes the loss
};

Executor::Executor(const Graph& forward, const TrainingGraph& training, Schedule schedule,
                   Backend& backend, ResidentState& resident, const ExecutorOptions& options)
    : forward_(forward),
      training_(training),
      schedule_(std::move(schedule)),
      backend_(backend),
      resident_(resident),
      options_(options) {
  if (!training.derived() || training.num_forward_nodes() != forward.num_ops()) {
    throw Error(ErrorKind::kValidation,
                fmt::format("executor: \"{}\" is not derive_training_graph() of the forward graph "
                            "(the executor maps nodes back to ops)",
                            training.name()));
  }
  if (&resident.graph() != &forward) {
    throw Error(ErrorKind::kUsage, "executor: the resident state belongs to another graph");
  }
  check_values(forward);
  check_kernels(forward, training, backend);
  memory_plan_ = plan_memory(training, schedule_, options.memory);  // validates the schedule
  arena_ = static_cast<std::uint8_t*>(backend.allocate(memory_plan_.arena_bytes, "arena"));
  seeds_.assign(static_cast<std::size_t>(forward.num_ops()), 0);
  prepare();
}

Executor::~Executor() { backend_.release(arena_); }

void Executor::prepare() {
  const auto num_values = static_cast<std::size_t>(training_.num_values());
  // Forward value -> its gradient; forward op -> its saved state.
  std::vector<ValueId> grad_of(static_cast<std::size_t>(forward_.num_values()), kNoId);
  std::vector<ValueId> saved_state_of(static_cast<std::size_t>(forward_.num_ops()), kNoId);
  for (ValueId v = 0; v < training_.num_values(); ++v) {
    const TValue& value = training_.value(v);
    if (value.kind == TValueKind::kGradient || value.kind == TValueKind::kParamGradient) {
      grad_of[static_cast<std::size_t>(value.source_value)] = v;
    } else if (value.kind == TValueKind::kSavedState) {
      saved_state_of[static_cast<std::size_t>(value.producer)] = v;
    }
  }
  std::vector<std::int64_t> root_offset(num_values, -1);
  auto address = [&](ValueId v) -> void* {
    const ValueId root = training_.storage_root(v);
    const TValue& storage = training_.value(root);
    if (storage.kind == TValueKind::kParamGradient) return resident_.gradient(storage.source_value);
    if (training_.is_resident(v)) return resident_.value(root);
    const std::int64_t offset = root_offset[static_cast<std::size_t>(root)];
    check_invariant(offset >= 0, "a value is used outside its storage's lifetime");
    return arena_ + offset;
  };

  const auto& lifetimes = memory_plan_.lifetimes;
  std::size_t next_lifetime = 0;
  prepared_.resize(schedule_.steps.size());
  for (std::size_t i = 0; i < schedule_.steps.size(); ++i) {
    const Step& step = schedule_.steps[i];
    PreparedStep& prepared = prepared_[i];
    if (!step.is_compute()) continue;
    for (; next_lifetime < lifetimes.size() && lifetimes[next_lifetime].start_step == i;
         ++next_lifetime) {
      const Lifetime& lifetime = lifetimes[next_lifetime];
      if (lifetime.kind == Lifetime::Kind::kStorage) {
        root_offset[static_cast<std::size_t>(lifetime.root)] = lifetime.offset_bytes;
      }
    }
    const Node& node = training_.node(step.node);
    const Op& op = forward_.op(node.source_id);
    const OpKernels& kernels = *backend_.kernels().find(op.kind);
    prepared.compute = true;
    prepared.node = step.node;
    prepared.random = op.random;
    KernelContext& ctx = prepared.context;
    ctx.graph = &forward_;
    ctx.op = &op;
    ctx.op_id = node.source_id;
    ctx.phase = step.phase;
    if (const std::int32_t ws = memory_plan_.workspace_of_step[i]; ws >= 0) {
      ctx.workspace = arena_ + lifetimes[static_cast<std::size_t>(ws)].offset_bytes;
      ctx.workspace_bytes = node.workspace_bytes;
    }
    const ValueId saved_state = saved_state_of[static_cast<std::size_t>(node.source_id)];
    auto reads = [&](ValueId v) {
      return std::find(node.inputs.begin(), node.inputs.end(), v) != node.inputs.end();
    };

    if (node.phase == NodePhase::kForward) {
      prepared.kernel = &kernels.forward;
      for (ValueId in : op.inputs) ctx.inputs.push_back(address(in));
      for (ValueId out : op.outputs) ctx.outputs.push_back(address(out));
      if (saved_state != kNoId) {
        ctx.saved_state = address(saved_state);
        ctx.saved_state_bytes = training_.value(saved_state).bytes;
      }
      for (ValueId out : op.outputs) {
        if (out == forward_.loss()) prepared.loss_source = address(out);
      }
      continue;
    }

    prepared.kernel = &kernels.backward;
    for (ValueId in : op.inputs) {
      ctx.inputs.push_back(training_.is_resident(in) || reads(in) ? address(in) : nullptr);
    }
    for (std::size_t j = 0; j < op.outputs.size(); ++j) {
      const ValueId out = op.outputs[j];
      ctx.outputs.push_back(reads(out) ? address(out) : nullptr);
      const ValueId grad = grad_of[static_cast<std::size_t>(out)];
      ctx.grad_outputs.push_back(grad != kNoId && reads(grad) ? static_cast<float*>(address(grad))
                                                              : nullptr);
      if (out == forward_.loss()) ctx.loss_output = static_cast<int>(j);
    }
    for (std::size_t j = 0; j < op.inputs.size(); ++j) {
      const ValueId grad = grad_of[static_cast<std::size_t>(op.inputs[j])];
      const bool created = grad != kNoId && std::find(node.outputs.begin(), node.outputs.end(),
                                                      grad) != node.outputs.end();
      const bool added =
          grad != kNoId && std::find(node.accumulates.begin(), node.accumulates.end(), grad) !=
                               node.accumulates.end();
      const bool repeated =
          std::find(op.inputs.begin(), op.inputs.begin() + static_cast<std::ptrdiff_t>(j),
                    op.inputs[j]) != op.inputs.begin() + static_cast<std::ptrdiff_t>(j);
      ctx.grad_inputs.push_back(created || added ? static_cast<float*>(address(grad)) : nullptr);
      ctx.accumulate.push_back(added || repeated ? 1 : 0);
    }
    if (saved_state != kNoId && reads(saved_state)) {
      ctx.saved_state = address(saved_state);
      ctx.saved_state_bytes = training_.value(saved_state).bytes;
    }
  }
}

StepStats Executor::run_step() {
  StepStats stats;
  if (options_.time_nodes)
    stats.node_time_us.assign(static_cast<std::size_t>(training_.num_nodes()), 0);
  resident_.zero_gradients();
  backend_.synchronize();
  const double start_us = backend_.now_us();
  for (std::size_t i = 0; i < prepared_.size(); ++i) {
    PreparedStep& step = prepared_[i];
    if (!step.compute) continue;
    KernelContext& ctx = step.context;
    if (step.random) {
      auto& seed = seeds_[static_cast<std::size_t>(ctx.op_id)];
      if (ctx.phase == Phase::kForward) seed = op_seed(options_.seed, step_index_, ctx.op_id);
      ctx.seed = seed;  // a recompute and the backward replay the forward's draw
    }
    double node_start_us = 0;
    if (options_.time_nodes) {
      backend_.synchronize();
      node_start_us = backend_.now_us();
    }
    (*step.kernel)(ctx);
    if (step.loss_source != nullptr) {
      backend_.copy_on_device(resident_.loss_slot(), step.loss_source, sizeof(float));
    }
    if (options_.time_nodes) {
      backend_.synchronize();
      stats.node_time_us[static_cast<std::size_t>(step.node)] += backend_.now_us() - node_start_us;
    }
    if (observer_) observer_(i, ctx);
  }
  backend_.synchronize();
  stats.step_ms = (backend_.now_us() - start_us) / 1000.0;
  backend_.copy_to_host(&stats.loss, resident_.loss_slot(), sizeof(float));
  ++step_index_;
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Graph rewrites and measurement

Graph with_kernel_workspaces(const Graph& graph, const KernelRegistry& kernels) {
  return rebuild(graph, [&](OpId, Op& op) {
    const OpKernels* found = kernels.find(op.kind);
    if (found == nullptr) {
      throw Error(ErrorKind::kValidation,
                  fmt::format("op \"{}\": no kernel for kind \"{}\" (registered: {})", op.name,
                              op.kind, registered_kinds(kernels)));
    }
    op.fwd_workspace_bytes = query(found->forward_workspace_bytes, graph, op);
    op.bwd_workspace_bytes = query(found->backward_workspace_bytes, graph, op);
  });
}

Graph with_op_times(const Graph& graph, const OpTimes& times) {
  return rebuild(graph, [&](OpId o, Op& op) {
    op.fwd_time_us = times.fwd_time_us.at(static_cast<std::size_t>(o));
    op.bwd_time_us = is_view(op, graph) ? 0.0 : times.bwd_time_us.at(static_cast<std::size_t>(o));
  });
}

OpTimes measure_op_times(const Graph& graph, Backend& backend, ResidentState& resident,
                         int repetitions) {
  const TrainingGraph training = derive_training_graph(graph);
  ExecutorOptions options;
  options.time_nodes = true;
  Executor executor(graph, training, store_all_schedule(training), backend, resident, options);
  executor.run_step();  // warm-up: first-touch, cuBLAS heuristics, caches
  std::vector<std::vector<double>> samples(static_cast<std::size_t>(training.num_nodes()));
  for (int r = 0; r < std::max(repetitions, 1); ++r) {
    const StepStats stats = executor.run_step();
    for (std::size_t n = 0; n < samples.size(); ++n) samples[n].push_back(stats.node_time_us[n]);
  }
  OpTimes times;
  times.fwd_time_us.assign(static_cast<std::size_t>(graph.num_ops()), 0);
  times.bwd_time_us.assign(static_cast<std::size_t>(graph.num_ops()), 0);
  for (NodeId n = 0; n < training.num_nodes(); ++n) {
    const Node& node = training.node(n);
    auto& slot = node.phase == NodePhase::kForward ? times.fwd_time_us : times.bwd_time_us;
    slot[static_cast<std::size_t>(node.source_id)] = median(samples[static_cast<std::size_t>(n)]);
  }
  return times;
}

}  // namespace ckpt
