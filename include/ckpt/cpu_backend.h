// The CPU reference backend: every built-in op (ckpt/executor_ops.h) in plain single-threaded C++,
// fp32, with a fixed summation order, so a run is bitwise reproducible and recomputation cannot
// change a result. Host memory stands in for device memory, counted like any backend's.
#pragma once

#include <memory>

#include "ckpt/executor_backend.h"

namespace ckpt {

// A CPU backend with every built-in kernel registered; add your own kinds to its kernels().
std::unique_ptr<Backend> make_cpu_backend();

// Registers the CPU kernels of every built-in op kind into `registry` (make_cpu_backend does).
void register_cpu_kernels(KernelRegistry& registry);

}  // namespace ckpt
