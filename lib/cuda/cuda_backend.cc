// The CUDA backend: one device, one stream, one cuBLAS handle with a fixed workspace allocated
// once (and counted), deterministic cuBLAS settings, and memory measured both by the counting
// layer and by the device itself (cudaMemGetInfo). No device and out of memory are DeviceErrors
// with messages that say what to do.
#include "ckpt/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "ckpt/budget.h"
#include "cuda_kernels.cuh"
#include "cuda_ops.h"

namespace ckpt {

int cuda_device_count(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    if (why != nullptr) {
      *why = fmt::format("cudaGetDeviceCount failed: {} ({})", cudaGetErrorString(status),
                         cudaGetErrorName(status));
    }
    return 0;
  }
  if (count == 0 && why != nullptr) *why = "cudaGetDeviceCount reports no CUDA device";
  return count;
}

namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options) : device_(options.device) {
    std::string why;
    const int count = cuda_device_count(&why);
    if (count == 0) {
      throw DeviceError(DeviceError::Reason::kNoDevice,
                        fmt::format("no CUDA device: {}; the CPU backend (--device cpu) runs "
                                    "without one",
                                    why));
    }
    if (device_ < 0 || device_ >= count) {
      throw DeviceError(DeviceError::Reason::kNoDevice,
                        fmt::format("CUDA device {} does not exist ({} found)", device_, count));
    }
    try {
      cuda::check(cudaSetDevice(device_), "cudaSetDevice");
      cuda::check(cudaGetDeviceProperties(&properties_, device_), "cudaGetDeviceProperties");
      cuda::check(cudaStreamCreateWithFlags(&context_.stream, cudaStreamNonBlocking),
                  "cudaStreamCreate");
      cuda::check(cublasCreate(&context_.cublas), "cublasCreate");
      cuda::check(cublasSetStream(context_.cublas, context_.stream), "cublasSetStream");
      // Plain fp32 (no TF32 tensor-op math) and no atomics: the same call gives the same bits.
      cuda::check(cublasSetMathMode(context_.cublas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
      cuda::check(cublasSetAtomicsMode(context_.cublas, CUBLAS_ATOMICS_NOT_ALLOWED),
                  "cublasSetAtomicsMode");
      workspace_bytes_ = options.cublas_workspace_bytes;
      workspace_ = allocate(workspace_bytes_, "the cuBLAS workspace");
      cuda::check(cublasSetWorkspace(context_.cublas, workspace_,
                                     static_cast<std::size_t>(workspace_bytes_)),
                  "cublasSetWorkspace");
    } catch (...) {
      teardown();
      throw;
    }
    cuda::register_kernels(kernels(), context_);
  }

  ~CudaBackend() override { teardown(); }

  std::string name() const override { return "cuda"; }
  std::string device_description() const override {
    return fmt::format("{} (sm_{}{}, {})", properties_.name, properties_.major, properties_.minor,
                       format_bytes(static_cast<std::int64_t>(properties_.totalGlobalMem)));
  }

  std::optional<std::int64_t> device_used_bytes() const override {
    std::size_t free = 0;
    std::size_t total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
      cudaGetLastError();
      return std::nullopt;
    }
    return static_cast<std::int64_t>(total - free);
  }
  std::int64_t fixed_bytes() const override { return workspace_bytes_; }

  void copy_from_host(void* device, const void* host, std::int64_t bytes) override {
    cuda::check(cudaMemcpyAsync(device, host, static_cast<std::size_t>(bytes),
                                cudaMemcpyHostToDevice, context_.stream),
                "cudaMemcpy to the device");
    synchronize();
  }
  void copy_to_host(void* host, const void* device, std::int64_t bytes) override {
    cuda::check(cudaMemcpyAsync(host, device, static_cast<std::size_t>(bytes),
                                cudaMemcpyDeviceToHost, context_.stream),
                "cudaMemcpy to the host");
    synchronize();
  }
  void copy_on_device(void* to, const void* from, std::int64_t bytes) override {
    if (to == from) return;
    cuda::check(cudaMemcpyAsync(to, from, static_cast<std::size_t>(bytes), cudaMemcpyDeviceToDevice,
                                context_.stream),
                "cudaMemcpy on the device");
  }
  void fill_zero(void* device, std::int64_t bytes) override {
    cuda::check(cudaMemsetAsync(device, 0, static_cast<std::size_t>(bytes), context_.stream),
                "cudaMemset");
  }
  void sgd_update(float* param, const float* gradient, std::int64_t count,
                  float learning_rate) override {
    cuda::check(cuda::sgd(param, gradient, count, learning_rate, context_.stream), "sgd");
  }
  void synchronize() override {
    cuda::check(cudaStreamSynchronize(context_.stream), "cudaStreamSynchronize");
  }

 protected:
  void* device_allocate(std::int64_t bytes, std::string_view what) override {
    void* pointer = nullptr;
    const cudaError_t status = cudaMalloc(&pointer, static_cast<std::size_t>(bytes));
    if (status == cudaSuccess) return pointer;
    cudaGetLastError();
    if (status != cudaErrorMemoryAllocation) cuda::check(status, "cudaMalloc");
    std::size_t free = 0;
    std::size_t total = 0;
    cudaMemGetInfo(&free, &total);
    throw DeviceError(
        DeviceError::Reason::kOutOfMemory,
        fmt::format("CUDA out of memory allocating {} ({} bytes) for {} on {}: {} free of {}; "
                    "lower the budget, the batch or the sequence length",
                    format_bytes(bytes), bytes, what, properties_.name,
                    format_bytes(static_cast<std::int64_t>(free)),
                    format_bytes(static_cast<std::int64_t>(total))));
  }
  void device_release(void* pointer) override { cudaFree(pointer); }

 private:
  void teardown() {
    if (context_.stream != nullptr) cudaStreamSynchronize(context_.stream);
    if (context_.cublas != nullptr) cublasDestroy(context_.cublas);
    context_.cublas = nullptr;
    release(workspace_);
    workspace_ = nullptr;
    if (context_.stream != nullptr) cudaStreamDestroy(context_.stream);
    context_.stream = nullptr;
  }

  int device_;
  cudaDeviceProp properties_{};
  cuda::Context context_;
  void* workspace_ = nullptr;
  std::int64_t workspace_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace ckpt
