// Memory accounting for schedules: storage-level liveness with views and in-place versions.
#include "memory_tracker.h"

#include <algorithm>
#include <cassert>

#include <fmt/format.h>

namespace ckpt {

MemoryTracker::MemoryTracker(const TrainingGraph& graph)
    : graph_(graph),
      live_(static_cast<std::size_t>(graph.num_values()), 0),
      holders_(static_cast<std::size_t>(graph.num_values()), 0),
      held_version_(static_cast<std::size_t>(graph.num_values()), 0) {}

bool MemoryTracker::is_live(ValueId value) const {
  return graph_.is_resident(value) || live_[static_cast<std::size_t>(value)] != 0;
}

void MemoryTracker::hold(ValueId value) {
  const auto root = static_cast<std::size_t>(graph_.storage_root(value));
  live_[static_cast<std::size_t>(value)] = 1;
  if (holders_[root]++ == 0) live_bytes_ += graph_.storage_bytes(value);
  held_version_[root] = graph_.value(value).version;
}

void MemoryTracker::release(ValueId value) {
  const auto root = static_cast<std::size_t>(graph_.storage_root(value));
  assert(live_[static_cast<std::size_t>(value)] != 0 && holders_[root] > 0);
  live_[static_cast<std::size_t>(value)] = 0;
  if (--holders_[root] == 0) live_bytes_ -= graph_.storage_bytes(value);
}

void MemoryTracker::assume_live(ValueId value) {
  if (is_live(value)) return;
  hold(value);
}

std::string MemoryTracker::check_compute(NodeId node_id) const {
  const Node& node = graph_.node(node_id);
  for (ValueId in : node.inputs) {
    if (!is_live(in)) return fmt::format("input \"{}\" is not live", graph_.value(in).name);
  }
  for (ValueId acc : node.accumulates) {
    if (!is_live(acc)) {
      return fmt::format("accumulated value \"{}\" is not live", graph_.value(acc).name);
    }
  }
  for (ValueId out : node.outputs) {
    if (graph_.is_resident(out)) continue;
    if (live_[static_cast<std::size_t>(out)] != 0) {
      return fmt::format("output \"{}\" is already live", graph_.value(out).name);
    }
    const ValueId root = graph_.storage_root(out);
    const auto r = static_cast<std::size_t>(root);
    if (holders_[r] == 0 || held_version_[r] == graph_.value(out).version) continue;
    // An in-place write may take over the storage from the version it kills.
    const bool takes_over = std::any_of(node.kills.begin(), node.kills.end(), [&](ValueId k) {
      return graph_.storage_root(k) == root;
    });
    if (!takes_over) {
      return fmt::format(
          "output \"{}\" needs the storage of \"{}\", which holds another version of it "
          "(an in-place op overwrote it); free that version first",
          graph_.value(out).name, graph_.value(root).name);
    }
  }
  return {};
}

std::int64_t MemoryTracker::compute(NodeId node_id) {
  const Node& node = graph_.node(node_id);
  for (ValueId out : node.outputs) {
    if (!graph_.is_resident(out)) hold(out);
  }
  const std::int64_t step_bytes = live_bytes_ + node.workspace_bytes;
  for (ValueId killed : node.kills) {
    if (!graph_.is_resident(killed) && live_[static_cast<std::size_t>(killed)] != 0) {
      release(killed);
    }
  }
  return step_bytes;
}

std::string MemoryTracker::check_free(ValueId value) const {
  if (graph_.is_resident(value)) {
    return fmt::format("\"{}\" is resident and cannot be freed", graph_.value(value).name);
  }
  if (live_[static_cast<std::size_t>(value)] == 0) {
    return fmt::format("\"{}\" is not live", graph_.value(value).name);
  }
  return {};
}

void MemoryTracker::free(ValueId value) { release(value); }

}  // namespace ckpt
