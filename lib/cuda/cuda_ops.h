// The CUDA backend's op kernels (lib/cuda/cuda_ops.cc) and the error checks shared with the
// backend: CUDA and cuBLAS failures become ckpt::DeviceError with the op or call that failed.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string_view>

#include "ckpt/executor_backend.h"

namespace ckpt::cuda {

// The stream and cuBLAS handle every kernel runs on.
struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
};

// Throws DeviceError (kOutOfMemory for cudaErrorMemoryAllocation, else kFailure) naming `what`.
void check(cudaError_t status, std::string_view what);
void check(cublasStatus_t status, std::string_view what);

// Registers the CUDA kernels of every built-in op kind, bound to `context` (which must outlive
// the registry's use).
void register_kernels(KernelRegistry& registry, const Context& context);

}  // namespace ckpt::cuda
