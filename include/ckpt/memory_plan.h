// The static memory plan: every storage lifetime of a schedule, and every step's workspace, gets an
// offset in ONE arena that is allocated once before the schedule runs. It is the last stage of a
// pipeline that reads top to bottom: replay the schedule (the same storage rules as the simulator,
// docs/memory-model.md), collect lifetimes, place them with lifetime-aware best fit (as XLA's and
// TVM's buffer assignment do), report the arena against the simulated peak.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/schedule.h"
#include "ckpt/training_graph.h"

namespace ckpt {

// How plan_memory places lifetimes.
struct MemoryPlanOptions {
  // Every lifetime starts at a multiple of this and is rounded up to it. 256 bytes is what
  // cudaMalloc guarantees and what cuBLAS and vectorised kernels want; a power of two, >= 1.
  std::int64_t alignment_bytes = 256;
};

// One contiguous range of the arena, occupied from step `start_step` (the compute step that
// allocates it) up to but not including `end_step` (the free step that releases it, the compute
// step after the one that kills it, or the schedule's length if nothing frees it).
struct Lifetime {
  enum class Kind : std::uint8_t {
    kStorage,    // a storage root's bytes: the values sharing it (views, in-place versions)
    kWorkspace,  // a compute step's scratch, live during that step only
  };
  Kind kind = Kind::kStorage;
  ValueId root = kNoId;  // kStorage: the storage root (a recomputed value gets a new lifetime)
  std::size_t start_step = 0;
  std::size_t end_step = 0;
  std::int64_t bytes = 0;          // what the memory model charges
  std::int64_t aligned_bytes = 0;  // bytes rounded up to the alignment: what the arena reserves
  std::int64_t offset_bytes = 0;   // from the arena's base; a multiple of the alignment
  // Whether the two are live at a common step (then they may not share bytes).
  bool overlaps_in_time(const Lifetime& other) const {
    return start_step < other.end_step && other.start_step < end_step;
  }
};

// Offsets of every lifetime in one arena, and how the arena compares with the simulated peak.
struct MemoryPlan {
  // The alignment every offset is a multiple of.
  std::int64_t alignment_bytes = 0;
  // Bytes to allocate for the arena: the highest end of any lifetime.
  std::int64_t arena_bytes = 0;
  // The simulator's peak for the same schedule (charged bytes, workspace included).
  std::int64_t peak_bytes = 0;
  // The same peak with every lifetime rounded up to the alignment: a lower bound for arena_bytes.
  std::int64_t aligned_peak_bytes = 0;
  std::string placement;  // which placement order won ("size", "start", ...)
  // Sorted by start step, then kind, then root: deterministic.
  std::vector<Lifetime> lifetimes;
  // Per step: index into `lifetimes` of its workspace, or -1 when it has none.
  std::vector<std::int32_t> workspace_of_step;
  // arena_bytes / peak_bytes - 1: what fragmentation and alignment cost over the memory model.
  double fragmentation() const {
    return peak_bytes > 0 ? static_cast<double>(arena_bytes) / static_cast<double>(peak_bytes) - 1
                          : 0;
  }
};

// Plans the arena for a schedule. Throws ckpt::Error (kValidation) when the schedule is not valid
// for the graph (the simulator's message), or (kUsage) for an alignment that is not a power of two.
MemoryPlan plan_memory(const TrainingGraph& graph, const Schedule& schedule,
                       const MemoryPlanOptions& options = {});

// Charged bytes of the lifetimes live during step `step` (unaligned): equals what the memory
// model charges there for a compute step. Used by tests and the executor's accounting.
std::int64_t live_bytes_at(const MemoryPlan& plan, std::size_t step);

}  // namespace ckpt
