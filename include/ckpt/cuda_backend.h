// The CUDA backend (target ckpt_cuda, built when CKPT_CUDA is ON): every built-in op as CUDA
// kernels plus cuBLAS GEMMs on one stream, deterministic (no atomics in reductions, a fixed cuBLAS
// workspace and configuration), so a recompute gives bitwise the value first computed. The cuBLAS
// workspace is allocated once through the counting layer and reported as fixed_bytes(). Plain C++:
// no CUDA header is needed to use it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ckpt/executor_backend.h"

namespace ckpt {

// How make_cuda_backend sets up the device.
struct CudaBackendOptions {
  // CUDA device index (as cudaSetDevice counts).
  int device = 0;
  // cuBLAS workspace set with cublasSetWorkspace (NVIDIA recommends 32 MiB on Hopper).
  std::int64_t cublas_workspace_bytes = std::int64_t{32} << 20;
};

// Throws DeviceError: kNoDevice when there is no usable CUDA device (the message says why:
// no driver, no GPU, a bad device index), kOutOfMemory when even the workspace does not fit.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options = {});

// Number of usable CUDA devices; 0 (never an exception) when there is no driver or GPU, with the
// reason in `why` when it is not null.
int cuda_device_count(std::string* why = nullptr);

}  // namespace ckpt
