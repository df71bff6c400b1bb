// Schedules as data: the store-all reference schedule and the free-after-last-use pass that
// emitters share.
#include "ckpt/schedule.h"

#include <algorithm>

namespace ckpt {

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::kForward: return "forward";
    case Phase::kRecompute: return "recompute";
    case Phase::kBackward: return "backward";
  }
  return "?";
}

void insert_frees_after_last_use(const TrainingGraph& graph, Schedule& schedule) {
  // Walk backwards remembering, per value, whether a later step still reads it before it is
  // produced again. A value read or produced at step i with no such later read dies at step i.
  const auto& steps = schedule.steps;
  std::vector<char> read_later(static_cast<std::size_t>(graph.num_values()), 0);
  std::vector<char> freed_later(static_cast<std::size_t>(graph.num_values()), 0);
  std::vector<std::vector<ValueId>> frees_after(steps.size());
  for (std::size_t i = steps.size(); i-- > 0;) {
    const Step& step = steps[i];
    if (!step.is_compute()) {
      freed_later[static_cast<std::size_t>(step.value)] = 1;
      read_later[static_cast<std::size_t>(step.value)] = 0;
      continue;
    }
    const Node& node = graph.node(step.node);
    auto dies_here = [&](ValueId v) {
      const auto index = static_cast<std::size_t>(v);
      if (graph.is_resident(v) || read_later[index] || freed_later[index]) return;
      if (std::find(node.kills.begin(), node.kills.end(), v) != node.kills.end()) return;
      frees_after[i].push_back(v);
      freed_later[index] = 1;
    };
    // Produced here: the previous life of each output ends before this step.
    for (ValueId out : node.outputs) dies_here(out);
    for (ValueId out : node.outputs) {
      read_later[static_cast<std::size_t>(out)] = 0;
      freed_later[static_cast<std::size_t>(out)] = 0;
    }
    for (ValueId in : node.inputs) dies_here(in);
    for (ValueId acc : node.accumulates) dies_here(acc);
    for (ValueId in : node.inputs) read_later[static_cast<std::size_t>(in)] = 1;
    for (ValueId acc : node.accumulates) read_later[static_cast<std::size_t>(acc)] = 1;
  }
  std::vector<Step> merged;
  merged.reserve(steps.size() * 2);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    merged.push_back(steps[i]);
    std::sort(frees_after[i].begin(), frees_after[i].end());
    for (ValueId v : frees_after[i]) merged.push_back(Step::free(v));
  }
  schedule.steps = std::move(merged);
}

Schedule store_all_schedule(const TrainingGraph& graph) {
  Schedule schedule;
  schedule.steps.reserve(static_cast<std::size_t>(graph.num_nodes()));
  for (NodeId n = 0; n < graph.num_nodes(); ++n) {
    const bool forward = graph.node(n).phase == NodePhase::kForward;
    schedule.steps.push_back(Step::compute(n, forward ? Phase::kForward : Phase::kBackward));
  }
  insert_frees_after_last_use(graph, schedule);
  return schedule;
}

}  // namespace ckpt
