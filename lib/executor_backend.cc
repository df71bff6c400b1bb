// The backend-independent half of every backend: allocation goes through here, so the bytes held,
// their peak and the number of allocations are counted the same way on every device.
#include "ckpt/executor_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace ckpt {

void* Backend::allocate(std::int64_t bytes, std::string_view what) {
  if (bytes <= 0) return nullptr;
  void* pointer = device_allocate(bytes, what);  // throws ckpt::Error when it does not fit
  sizes_[pointer] = bytes;
  stats_.allocated_bytes += bytes;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  ++stats_.allocations;
  return pointer;
}

double Backend::now_us() const {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Backend::release(void* pointer) {
  if (pointer == nullptr) return;
  const auto it = sizes_.find(pointer);
  if (it == sizes_.end()) {
    std::fprintf(stderr, "ckpt: Backend::release of a pointer it did not allocate\n");
    std::abort();
  }
  stats_.allocated_bytes -= it->second;
  sizes_.erase(it);
  device_release(pointer);
}

}  // namespace ckpt
