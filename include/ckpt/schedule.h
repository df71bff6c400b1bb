// A schedule: the exact sequence of computations and frees that one training step performs.
// Planners produce it, the simulator checks it, the executor runs it. Plain data.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "ckpt/training_graph.h"

namespace ckpt {

// Why a node is computed at this step. A forward node's first computation is kForward, any later
// one kRecompute; backward nodes run exactly once, as kBackward.
enum class Phase : std::uint8_t { kForward, kRecompute, kBackward };
// "forward", "recompute" or "backward", as reports print them.
std::string_view to_string(Phase phase);

// One step: compute a node (in a phase) or free a value's storage.
struct Step {
  enum class Kind : std::uint8_t { kCompute, kFree };
  Kind kind = Kind::kCompute;
  NodeId node = kNoId;    // for kCompute
  ValueId value = kNoId;  // for kFree
  Phase phase = Phase::kForward;

  // Factories for the two kinds of step.
  static Step compute(NodeId node, Phase phase) { return {Kind::kCompute, node, kNoId, phase}; }
  static Step free(ValueId value) { return {Kind::kFree, kNoId, value, Phase::kForward}; }
  bool is_compute() const { return kind == Kind::kCompute; }
  bool operator==(const Step&) const = default;
};

// The steps of one training step, in order.
struct Schedule {
  std::vector<Step> steps;
};

// Plain backpropagation: every forward node in order, every backward node in order, each value
// freed right after its last use. The reference every overhead is measured against.
Schedule store_all_schedule(const TrainingGraph& graph);

// Inserts after each compute step a free for every charged value it reads or writes that no later
// step reads before the value is computed again (and that no later step frees already), in
// ascending value id. Emitters produce compute steps and let this place the frees.
void insert_frees_after_last_use(const TrainingGraph& graph, Schedule& schedule);

}  // namespace ckpt
