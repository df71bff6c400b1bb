// MemoryTracker: the one implementation of the memory model. The simulator replays whole
// schedules with it; planners use it to measure the peak of the pieces they assemble; the static
// memory planner cross-checks its arena against it. Internal to the library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/training_graph.h"

namespace ckpt {

class MemoryTracker {
 public:
  explicit MemoryTracker(const TrainingGraph& graph);

  // Marks a value live without a step computing it: the precondition of a partial schedule.
  void assume_live(ValueId value);
  bool is_live(ValueId value) const;  // resident values are always live
  // Charged bytes of the storages held now.
  std::int64_t live_bytes() const { return live_bytes_; }

  // Empty when `node` can run now; otherwise why not, naming the value.
  std::string check_compute(NodeId node) const;
  // Runs `node` (check_compute must have passed) and returns the bytes live while it runs:
  // everything held, its new outputs and its workspace.
  std::int64_t compute(NodeId node);

  std::string check_free(ValueId value) const;
  void free(ValueId value);

 private:
  void hold(ValueId value);
  void release(ValueId value);

  const TrainingGraph& graph_;
  std::vector<char> live_;           // per value
  std::vector<int> holders_;         // per storage root: live values sharing it
  std::vector<int> held_version_;    // per storage root: version of the live values
  std::int64_t live_bytes_ = 0;
};

}  // namespace ckpt
