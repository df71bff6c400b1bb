// The simulator: replays a schedule with the shared MemoryTracker and checks every rule a plan
// must keep, reporting the first step that breaks one.
#include "ckpt/simulator.h"

#include <fmt/format.h>

#include "memory_tracker.h"

namespace ckpt {

double SimulationResult::overhead() const {
  if (baseline_time_us <= 0) return 0;
  return compute_time_us / baseline_time_us - 1.0;
}

namespace {

std::string describe_step(const TrainingGraph& graph, const Step& step) {
  if (!step.is_compute()) {
    if (step.value < 0 || step.value >= graph.num_values()) return "free";
    return fmt::format("free \"{}\"", graph.value(step.value).name);
  }
  if (step.node < 0 || step.node >= graph.num_nodes()) return "compute";
  return fmt::format("{} \"{}\"", to_string(step.phase), graph.node(step.node).name);
}

}  // namespace

SimulationResult simulate(const TrainingGraph& graph, const Schedule& schedule) {
  SimulationResult result;
  result.resident_bytes = graph.resident_bytes();
  result.baseline_time_us = graph.baseline_time_us();
  MemoryTracker tracker(graph);
  std::vector<int> times_computed(static_cast<std::size_t>(graph.num_nodes()), 0);

  auto fail = [&](std::size_t index, const std::string& why) {
    result.valid = false;
    result.error_step = index;
    result.error = fmt::format("step {} ({}): {}", index,
                               describe_step(graph, schedule.steps[index]), why);
    return result;
  };

  for (std::size_t i = 0; i < schedule.steps.size(); ++i) {
    const Step& step = schedule.steps[i];
    if (!step.is_compute()) {
      if (step.value < 0 || step.value >= graph.num_values()) {
        return fail(i, fmt::format("unknown value id {}", step.value));
      }
      if (std::string why = tracker.check_free(step.value); !why.empty()) return fail(i, why);
      tracker.free(step.value);
      continue;
    }
    if (step.node < 0 || step.node >= graph.num_nodes()) {
      return fail(i, fmt::format("unknown node id {}", step.node));
    }
    const Node& node = graph.node(step.node);
    int& count = times_computed[static_cast<std::size_t>(step.node)];
    if (node.phase == NodePhase::kBackward) {
      if (step.phase != Phase::kBackward) return fail(i, "a backward node must run as backward");
      if (count > 0) return fail(i, "backward nodes run exactly once");
    } else {
      const Phase expected = count == 0 ? Phase::kForward : Phase::kRecompute;
      if (step.phase != expected) {
        return fail(i, fmt::format("this computation of a forward node is its {}; expected "
                                   "phase {}",
                                   count == 0 ? "first" : "a repeat", to_string(expected)));
      }
      if (count > 0 && node.side_effecting) {
        return fail(i, "side-effecting node computed twice (its effect would happen again)");
      }
    }
    if (std::string why = tracker.check_compute(step.node); !why.empty()) return fail(i, why);
    const std::int64_t step_bytes = tracker.compute(step.node);
    ++count;
    result.compute_time_us += node.time_us;
    if (step.phase == Phase::kRecompute) result.recompute_time_us += node.time_us;
    if (step_bytes > result.peak_bytes) {
      result.peak_bytes = step_bytes;
      result.peak_step = i;
    }
  }
  for (NodeId n = 0; n < graph.num_nodes(); ++n) {
    if (times_computed[static_cast<std::size_t>(n)] > 0) continue;
    result.valid = false;
    result.error_step = schedule.steps.size();
    const bool backward = graph.node(n).phase == NodePhase::kBackward;
    result.error = fmt::format("end of schedule: {} node \"{}\" was never computed{}",
                               to_string(graph.node(n).phase), graph.node(n).name,
                               backward ? " (a needed gradient is missing)" : "");
    return result;
  }
  result.valid = true;
  return result;
}

}  // namespace ckpt
