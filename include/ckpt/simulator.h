// The simulator: replays a schedule on a training graph, independent of every planner, and checks
// it. It is the judge of every plan: peak bytes, where the peak is, compute time, overhead.
//
// Memory model (docs/memory-model.md): while a node runs, its inputs, outputs and workspace are
// live together; a value is charged from the step that computes it to the step that frees it;
// values sharing storage (views, in-place results) are charged once; resident values (inputs,
// params, param gradients) are reported apart and not charged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ckpt/schedule.h"
#include "ckpt/training_graph.h"

namespace ckpt {

// What the simulator measured of a schedule, or why it rejected it.
struct SimulationResult {
  bool valid = false;
  // For an invalid schedule: the first offending step (index into steps) and why.
  std::size_t error_step = 0;
  std::string error;

  std::int64_t peak_bytes = 0;   // charged bytes at the worst step (workspace included)
  std::size_t peak_step = 0;     // index of the step where the peak first occurs
  std::int64_t resident_bytes = 0;
  double compute_time_us = 0;    // every compute step's node time
  double baseline_time_us = 0;   // store-all: every node once
  double recompute_time_us = 0;  // compute steps with phase kRecompute
  // compute_time_us / baseline_time_us - 1.
  double overhead() const;
};

// Replays `schedule` on `graph`; an invalid schedule gives valid = false and the bad step.
SimulationResult simulate(const TrainingGraph& graph, const Schedule& schedule);

}  // namespace ckpt
