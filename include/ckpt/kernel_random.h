// Counter-based random bits, identical on the host and on a CUDA device: a dropout decision is a
// pure function of (seed, element index), so a recompute replays the forward's mask bitwise and
// the CPU and CUDA backends draw the same masks. Included by CUDA sources: no std headers beyond
// <cstdint>.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define CKPT_HOST_DEVICE __host__ __device__
#else
#define CKPT_HOST_DEVICE
#endif

namespace ckpt {

// SplitMix64's finaliser: a bijective mix with full avalanche.
CKPT_HOST_DEVICE inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The seed a random op draws for one training step.
CKPT_HOST_DEVICE inline std::uint64_t op_seed(std::uint64_t base_seed, std::int64_t step_index,
                                              std::int32_t op_id) {
  return mix64(mix64(base_seed ^ static_cast<std::uint64_t>(step_index)) +
               static_cast<std::uint64_t>(op_id));
}

// Dropout's drop threshold for probability p, on a 24-bit scale (computed once on the host so
// both backends compare the same integers).
inline std::uint32_t dropout_threshold(double p) {
  if (p <= 0) return 0;
  if (p >= 1) return 1u << 24;
  return static_cast<std::uint32_t>(p * static_cast<double>(1u << 24));
}

// Whether element `index` is kept (24 random bits at or above the threshold).
CKPT_HOST_DEVICE inline bool dropout_keep(std::uint64_t seed, std::uint64_t index,
                                          std::uint32_t threshold) {
  return static_cast<std::uint32_t>(mix64(seed ^ mix64(index)) >> 40) >= threshold;
}

}  // namespace ckpt
