// The CPU backend: 256-byte aligned host allocations counted by the Backend layer, plain copies,
// and the CPU kernels (lib/cpu_kernels.cc). Everything runs synchronously on the calling thread,
// timed by that thread's CPU time.
#include "ckpt/cpu_backend.h"

#include <fmt/format.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "ckpt/error.h"

namespace ckpt {

namespace {

constexpr std::size_t kAlignmentBytes = 256;

class CpuBackend final : public Backend {
 public:
  CpuBackend() { register_cpu_kernels(kernels()); }

  std::string name() const override { return "cpu"; }
  std::string device_description() const override {
    return "CPU reference backend (fp32, single-threaded, deterministic)";
  }

  void copy_from_host(void* device, const void* host, std::int64_t bytes) override {
    std::memcpy(device, host, static_cast<std::size_t>(bytes));
  }
  void copy_to_host(void* host, const void* device, std::int64_t bytes) override {
    std::memcpy(host, device, static_cast<std::size_t>(bytes));
  }
  void copy_on_device(void* to, const void* from, std::int64_t bytes) override {
    if (to != from) std::memmove(to, from, static_cast<std::size_t>(bytes));
  }
  void fill_zero(void* device, std::int64_t bytes) override {
    std::memset(device, 0, static_cast<std::size_t>(bytes));
  }
  void sgd_update(float* param, const float* gradient, std::int64_t count,
                  float learning_rate) override {
    for (std::int64_t i = 0; i < count; ++i) param[i] -= learning_rate * gradient[i];
  }
  void synchronize() override {}
  double now_us() const override {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
  }

 protected:
  void* device_allocate(std::int64_t bytes, std::string_view what) override {
    const auto size =
        (static_cast<std::size_t>(bytes) + kAlignmentBytes - 1) / kAlignmentBytes * kAlignmentBytes;
    void* pointer = std::aligned_alloc(kAlignmentBytes, size);
    if (pointer == nullptr) {
      throw DeviceError(
          DeviceError::Reason::kOutOfMemory,
          fmt::format("cpu backend: out of memory allocating {} bytes for {}", bytes, what));
    }
    return pointer;
  }
  void device_release(void* pointer) override { std::free(pointer); }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace ckpt
