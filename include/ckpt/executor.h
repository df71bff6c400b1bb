// The executor: runs a schedule step by step on a Backend. Activations, gradients, saved state and
// workspace live in ONE arena laid out by the static memory plan (ckpt/memory_plan.h) and
// allocated once when the executor is built; nothing is allocated while a schedule runs. Inputs,
// parameters and parameter gradients are resident (ResidentState), outside the arena, shared by
// the executors of one graph so that store-all and a plan can run on the same state.
// Backend-independent: the schedule walk, seeds, arena and accounting are the same on every device.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ckpt/executor_backend.h"
#include "ckpt/graph.h"
#include "ckpt/memory_plan.h"
#include "ckpt/schedule.h"
#include "ckpt/training_graph.h"

namespace ckpt {

// Bytes per element of a Value::dtype the built-in kernels know ("float32", "int32"; an empty
// dtype is float32). Throws ckpt::Error (kValidation) for any other.
std::int64_t dtype_bytes(const std::string& dtype);
// Number of elements of a shape (1 for a scalar).
std::int64_t element_count(const std::vector<std::int64_t>& shape);

// The device buffers of a graph's inputs, parameters and parameter gradients, allocated once.
class ResidentState {
 public:
  ResidentState(const Graph& graph, Backend& backend);
  ~ResidentState();
  ResidentState(const ResidentState&) = delete;
  ResidentState& operator=(const ResidentState&) = delete;

  // The forward graph whose resident values this holds.
  const Graph& graph() const { return graph_; }
  // Device pointer of an input or parameter (or a view of one).
  void* value(ValueId id) const;
  // Device pointer of a trained parameter's gradient; nullptr for other values.
  float* gradient(ValueId param) const;
  // Copies `bytes` bytes from `host` into an input's or parameter's buffer.
  void upload(ValueId id, const void* host, std::int64_t bytes);
  // A host copy of an input's or parameter's buffer.
  std::vector<std::uint8_t> download(ValueId id) const;
  // A host copy of a trained parameter's gradient, as the last step left it.
  std::vector<float> download_gradient(ValueId param) const;
  // Sets every parameter gradient to zero (run_step does it before each step).
  void zero_gradients();
  // SGD on every trained parameter: p -= learning_rate * grad.
  void sgd_step(float learning_rate);
  // Device bytes held for inputs, parameters and their gradients.
  std::int64_t bytes() const { return bytes_; }
  // The loss as the last training step left it (a resident 4-byte slot the executor copies to).
  float* loss_slot() const { return loss_slot_; }

 private:
  const Graph& graph_;
  Backend& backend_;
  std::vector<void*> values_;      // per forward value: its buffer, or nullptr for activations
  std::vector<float*> gradients_;  // per forward value: its gradient for trained params
  float* loss_slot_ = nullptr;
  std::int64_t bytes_ = 0;
};

// How an Executor lays out its arena, seeds random ops and times steps.
struct ExecutorOptions {
  MemoryPlanOptions memory;  // the arena's alignment
  // Seeds of random ops derive from this, the training-step index and the op id (so every
  // schedule of one graph draws the same masks).
  std::uint64_t seed = 0x5eed5eed5eedULL;
  // Synchronise around every compute step and record its time (slower; for profiling).
  bool time_nodes = false;
};

// What one training step measured.
struct StepStats {
  // From the first kernel queued to the device being idle again, on the backend's clock
  // (Backend::now_us: wall time on CUDA, this thread's CPU time on the CPU backend).
  double step_ms = 0;
  float loss = 0;
  // Per training-graph node, microseconds summed over its computations this step (time_nodes).
  std::vector<double> node_time_us;
};

// Called after each compute step (tests read a dropout mask as it is drawn); step is the index
// into the schedule. Slows the run; empty by default.
using StepObserver = std::function<void(std::size_t step, const KernelContext& context)>;

// Runs one schedule of one graph, step after step, with every buffer in a preallocated arena.
class Executor {
 public:
  // `training` must be derive_training_graph(forward); `schedule` a valid schedule of it. Checks
  // that every op kind has kernels on `backend`, that shapes and dtypes match the values' bytes
  // and that the graph declares the workspace the kernels need; plans the arena and allocates it.
  // Throws ckpt::Error (kValidation) for a graph or schedule it cannot run, or the backend's
  // DeviceError when the arena does not fit on the device. Keeps references to the graphs, the
  // backend and the resident state, which must outlive it.
  Executor(const Graph& forward, const TrainingGraph& training, Schedule schedule, Backend& backend,
           ResidentState& resident, const ExecutorOptions& options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Where every storage lifetime and workspace sits in the arena.
  const MemoryPlan& memory_plan() const { return memory_plan_; }
  // The schedule this executor runs.
  const Schedule& schedule() const { return schedule_; }
  // The simulator's peak for the schedule: what the arena must hold at its fullest.
  std::int64_t predicted_peak_bytes() const { return memory_plan_.peak_bytes; }
  // Bytes of the arena actually allocated (the peak plus placement gaps and alignment).
  std::int64_t arena_bytes() const { return memory_plan_.arena_bytes; }

  // One training step: zeroes the parameter gradients, runs the schedule, leaves the gradients
  // (accumulated over every backward node) in the resident state. Steps are numbered from 0; the
  // number picks the dropout seeds.
  StepStats run_step();
  // Number of the next step run_step runs (picks the dropout seeds).
  void set_step_index(std::int64_t index) { step_index_ = index; }
  // Calls `observer` after every compute step of later run_step calls.
  void set_observer(StepObserver observer) { observer_ = std::move(observer); }
  // The seed the op drew at its forward in the last step (0 for ops that are not random).
  std::uint64_t seed_of(OpId op) const { return seeds_.at(static_cast<std::size_t>(op)); }

 private:
  struct PreparedStep;
  void prepare();

  const Graph& forward_;
  const TrainingGraph& training_;
  Schedule schedule_;
  Backend& backend_;
  ResidentState& resident_;
  ExecutorOptions options_;
  MemoryPlan memory_plan_;
  std::uint8_t* arena_ = nullptr;
  std::vector<PreparedStep> prepared_;  // one per schedule step, every pointer resolved
  std::vector<std::uint64_t> seeds_;    // per forward op
  std::int64_t step_index_ = 0;
  StepObserver observer_;
};

// Returns `graph` with every op's fwd/bwd_workspace_bytes set to what `kernels` need (the
// planner must count the workspace the device will use). Throws ckpt::Error (kValidation)
// naming the op for a kind with no kernels.
Graph with_kernel_workspaces(const Graph& graph, const KernelRegistry& kernels);

// Per op: measured forward and backward microseconds.
struct OpTimes {
  std::vector<double> fwd_time_us;
  std::vector<double> bwd_time_us;
};

// Returns `graph` with the op times set. Views (ops whose only output aliases an input and that
// are not in place) keep a zero backward time: it is what makes their backward pass the gradient
// through (docs/memory-model.md), and their kernel does no work.
Graph with_op_times(const Graph& graph, const OpTimes& times);

// Measures every op's forward and backward time on `backend`: `repetitions` store-all steps with
// a synchronisation around each node, after one warm-up step; the median per op.
OpTimes measure_op_times(const Graph& graph, Backend& backend, ResidentState& resident,
                         int repetitions);

}  // namespace ckpt
