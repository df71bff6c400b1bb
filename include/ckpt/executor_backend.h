// What the executor needs from a device: memory (allocated through a counting layer shared by
// every backend), copies, a stream to synchronise, and a kernel registry in which framework authors
// register a forward and a backward kernel per op kind. Kernels get a KernelContext: device
// pointers into the arena and the resident buffers, shapes and attributes through the op, the
// gradient flags, saved state, workspace, and for random ops the seed their forward drew.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ckpt/error.h"
#include "ckpt/graph.h"
#include "ckpt/schedule.h"

namespace ckpt {

// A device the user asked for cannot serve the run: there is none, or the run does not fit in its
// memory, or the device reported a failure. A ckpt::Error (kind kUsage: the remedy is a different
// device, model size or budget) whose reason tools map to distinct exit codes.
class DeviceError : public Error {
 public:
  // Why the device cannot serve the run (tools map each to an exit code).
  enum class Reason : std::uint8_t { kNoDevice, kOutOfMemory, kFailure };
  DeviceError(Reason reason, const std::string& message)
      : Error(ErrorKind::kUsage, message), reason_(reason) {}
  // Why the device failed.
  Reason reason() const { return reason_; }

 private:
  Reason reason_;
};

// Everything one kernel call sees. Pointers are device pointers (host pointers on the CPU
// backend). Vectors follow the op's inputs and outputs, in order.
struct KernelContext {
  // The forward graph and op the call is for.
  const Graph* graph = nullptr;
  const Op* op = nullptr;  // kind, attributes; shapes through graph->value(op->inputs[i])
  OpId op_id = kNoId;
  Phase phase = Phase::kForward;  // kForward, kRecompute or kBackward

  // Forward: every input. Backward: the inputs the op saved and every resident one (params,
  // graph inputs); nullptr for an input that is not kept for the backward.
  std::vector<const void*> inputs;
  // Forward: where to write each output. Backward: the outputs the op saved; nullptr otherwise.
  std::vector<void*> outputs;

  // Backward only. Gradient of each output; nullptr when the output has none (it does not reach
  // the loss), except the output `loss_output`, the loss itself, whose gradient is 1.
  std::vector<const float*> grad_outputs;
  int loss_output = -1;
  // Gradient of each input; nullptr when the input needs none. accumulate[i]: add into it (it
  // holds other contributions, or it is a parameter gradient) rather than overwrite every element.
  // An input listed twice gets one gradient buffer: the first listing carries the flag, later ones
  // accumulate, so a kernel handles input gradients in input order. A gradient may be the same
  // buffer as an output's gradient (a view's backward passes it through).
  std::vector<float*> grad_inputs;
  std::vector<char> accumulate;

  // State the forward keeps for the backward (Op::saved_other_bytes: a dropout mask, layernorm
  // statistics): written by the forward (and each recompute), read by the backward.
  void* saved_state = nullptr;
  std::int64_t saved_state_bytes = 0;
  // Scratch for this call only (Op::fwd_workspace_bytes / bwd_workspace_bytes).
  void* workspace = nullptr;
  std::int64_t workspace_bytes = 0;
  // Random ops: drawn once per training step at the op's forward; every recompute and the
  // backward get the same seed, so a recomputed dropout mask is bitwise the one first drawn.
  std::uint64_t seed = 0;

  const Value& input_value(std::size_t i) const { return graph->value(op->inputs.at(i)); }
  const Value& output_value(std::size_t i) const { return graph->value(op->outputs.at(i)); }
  // An attribute of the op, or `fallback` when the op does not set it.
  double attribute(const std::string& name, double fallback) const {
    const auto it = op->attributes.find(name);
    return it == op->attributes.end() ? fallback : it->second;
  }
};

// A forward or backward kernel: reads and writes through the context's pointers only.
using Kernel = std::function<void(const KernelContext&)>;
// Scratch bytes a kernel needs for an op (its shapes and attributes decide).
using WorkspaceQuery = std::function<std::int64_t(const Graph&, const Op&)>;

// The kernels of one op kind, as registered with KernelRegistry::add.
struct OpKernels {
  Kernel forward;
  Kernel backward;                          // may be empty for ops that are never differentiated
  WorkspaceQuery forward_workspace_bytes;   // empty: none
  WorkspaceQuery backward_workspace_bytes;  // empty: none
};

// Kernels by op kind. Deterministic: kinds are kept sorted.
class KernelRegistry {
 public:
  // Registers (or replaces) the kernels of `kind`.
  void add(std::string kind, OpKernels kernels) { kernels_[std::move(kind)] = std::move(kernels); }
  // The kernels of `kind`, or nullptr when none are registered.
  const OpKernels* find(std::string_view kind) const {
    const auto it = kernels_.find(std::string(kind));
    return it == kernels_.end() ? nullptr : &it->second;
  }
  // Every registered kind, sorted.
  std::vector<std::string> kinds() const {
    std::vector<std::string> names;
    for (const auto& entry : kernels_) names.push_back(entry.first);
    return names;
  }

 private:
  std::map<std::string, OpKernels> kernels_;
};

// Device memory as the backend-independent layer counts it.
struct MemoryStats {
  std::int64_t allocated_bytes = 0;       // held now through Backend::allocate
  std::int64_t peak_allocated_bytes = 0;  // the most held at once
  std::int64_t allocations = 0;           // calls to allocate so far
};

// A device. Subclasses implement the device_* hooks and register kernels; allocation goes
// through allocate()/release(), which count every byte, so peaks are measured the same way on
// every backend. Every method may throw DeviceError (out of memory, no device, a device failure).
class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual std::string name() const = 0;                // "cpu", "cuda"
  virtual std::string device_description() const = 0;  // "NVIDIA H100 80GB HBM3 (sm_90)"
  // The kernels this device runs, by op kind; framework authors add theirs here.
  const KernelRegistry& kernels() const { return kernels_; }
  KernelRegistry& kernels() { return kernels_; }

  // Allocates `bytes` of device memory; `what` names it in an out-of-memory message.
  void* allocate(std::int64_t bytes, std::string_view what);
  // Frees memory from allocate(); nullptr is ignored.
  void release(void* pointer);
  // Bytes held and the peak, counted by this layer.
  const MemoryStats& memory_stats() const { return stats_; }
  // Starts a new peak measurement from what is allocated now.
  void reset_peak() { stats_.peak_allocated_bytes = stats_.allocated_bytes; }
  // Device memory in use by this process as the device itself reports it (cudaMemGetInfo), or
  // nullopt where there is no such measure (the CPU backend).
  virtual std::optional<std::int64_t> device_used_bytes() const { return std::nullopt; }
  // Bytes the backend holds for its whole life outside any plan (the cuBLAS workspace); counted
  // in memory_stats() too.
  virtual std::int64_t fixed_bytes() const { return 0; }

  // Copies host to device, device to host, and within the device.
  virtual void copy_from_host(void* device, const void* host, std::int64_t bytes) = 0;
  virtual void copy_to_host(void* host, const void* device, std::int64_t bytes) = 0;
  virtual void copy_on_device(void* to, const void* from, std::int64_t bytes) = 0;
  // Sets `bytes` bytes of device memory to zero.
  virtual void fill_zero(void* device, std::int64_t bytes) = 0;
  // param -= learning_rate * gradient, elementwise (the SGD step between training steps).
  virtual void sgd_update(float* param, const float* gradient, std::int64_t count,
                          float learning_rate) = 0;
  // Waits for everything queued so far (timing and host reads).
  virtual void synchronize() = 0;
  // The clock steps and ops are timed with, in microseconds: wall time by default (a GPU's work is
  // timed from the host after synchronising); the CPU backend counts its thread's CPU time, so the
  // load of other processes on a shared machine does not count as the model's time.
  virtual double now_us() const;

 protected:
  Backend() = default;
  // The device's own allocator and release, called only through allocate() and release().
  virtual void* device_allocate(std::int64_t bytes, std::string_view what) = 0;
  virtual void device_release(void* pointer) = 0;

 private:
  KernelRegistry kernels_;
  MemoryStats stats_;
  std::map<const void*, std::int64_t> sizes_;  // looked up by address only, never iterated
};

}  // namespace ckpt
