// The data behind every report: a plan with the simulator's replay of its schedule (and the bytes
// held after each step, measured by the shared MemoryTracker), what the schedule does with each
// value, and the budget sweep sampled from the optimal Pareto frontier.
#include "ckpt/report.h"

#include <cmath>
#include <utility>

#include "memory_tracker.h"

namespace ckpt {

namespace {

// GCC and Clang's 128-bit integer; __extension__ keeps -Wpedantic quiet about it.
__extension__ typedef __int128 Int128;

// Bytes held after each step, replayed with the same tracker the simulator uses. Stops at the
// first step the tracker refuses (the simulator reports why).
std::vector<std::int64_t> live_bytes_per_step(const TrainingGraph& graph,
                                              const Schedule& schedule) {
  std::vector<std::int64_t> live;
  live.reserve(schedule.steps.size());
  MemoryTracker tracker(graph);
  for (const Step& step : schedule.steps) {
    if (step.is_compute()) {
      if (step.node < 0 || step.node >= graph.num_nodes()) break;
      if (!tracker.check_compute(step.node).empty()) break;
      tracker.compute(step.node);
    } else {
      if (step.value < 0 || step.value >= graph.num_values()) break;
      if (!tracker.check_free(step.value).empty()) break;
      tracker.free(step.value);
    }
    live.push_back(tracker.live_bytes());
  }
  return live;
}

// Index of the first backward compute step: frees before it happen during the forward pass.
std::size_t first_backward_step(const Schedule& schedule) {
  for (std::size_t i = 0; i < schedule.steps.size(); ++i) {
    const Step& step = schedule.steps[i];
    if (step.is_compute() && step.phase == Phase::kBackward) return i;
  }
  return schedule.steps.size();
}

SweepPoint to_sweep_point(const FrontierPoint& point, std::int64_t budget_bytes,
                          double baseline_time_us) {
  SweepPoint row;
  row.budget_bytes = budget_bytes;
  row.peak_bytes = point.peak_bytes;
  row.compute_time_us = point.compute_time_us;
  row.overhead = overhead_fraction(point.compute_time_us, baseline_time_us);
  return row;
}

}  // namespace

double overhead_fraction(double compute_time_us, double baseline_time_us) {
  if (baseline_time_us <= 0) return 0;
  const double overhead = compute_time_us / baseline_time_us - 1;
  return std::fabs(overhead) < 1e-9 ? 0.0 : overhead;
}

PlanReport make_report(const TrainingGraph& graph, Plan plan, std::int64_t store_all_peak_bytes) {
  PlanReport report;
  report.simulation = simulate(graph, plan.schedule);
  report.live_bytes_after = live_bytes_per_step(graph, plan.schedule);
  report.store_all_peak_bytes = store_all_peak_bytes;
  report.plan = std::move(plan);
  return report;
}

std::vector<SweepPoint> sample_frontier(const std::vector<FrontierPoint>& frontier,
                                        double baseline_time_us, int samples) {
  std::vector<SweepPoint> sweep;
  if (frontier.empty() || samples < 2) return sweep;
  if (frontier.size() <= static_cast<std::size_t>(samples)) {
    for (const FrontierPoint& point : frontier) {
      sweep.push_back(to_sweep_point(point, point.peak_bytes, baseline_time_us));
    }
    return sweep;
  }
  const std::int64_t low = frontier.front().peak_bytes;
  const std::int64_t high = frontier.back().peak_bytes;
  std::size_t fit = 0;  // the last frontier point whose peak fits the current budget
  for (int i = 0; i < samples; ++i) {
    // Evenly spaced, floored, in 128 bits so (high - low) * i cannot overflow; the last is `high`.
    const auto budget =
        static_cast<std::int64_t>(low + static_cast<Int128>(high - low) * i / (samples - 1));
    while (fit + 1 < frontier.size() && frontier[fit + 1].peak_bytes <= budget) ++fit;
    sweep.push_back(to_sweep_point(frontier[fit], budget, baseline_time_us));
  }
  return sweep;
}

std::vector<int> recompute_counts(const TrainingGraph& graph, const Schedule& schedule) {
  std::vector<int> counts(static_cast<std::size_t>(graph.num_nodes()), 0);
  for (const Step& step : schedule.steps) {
    if (step.is_compute() && step.phase == Phase::kRecompute) {
      ++counts[static_cast<std::size_t>(step.node)];
    }
  }
  return counts;
}

std::string_view to_string(ValueFate fate) {
  switch (fate) {
    case ValueFate::kResident:
      return "resident";
    case ValueFate::kKept:
      return "kept";
    case ValueFate::kCheckpoint:
      return "checkpoint";
    case ValueFate::kRecomputed:
      return "recomputed";
    case ValueFate::kFreedEarly:
      return "freed early";
    case ValueFate::kBackward:
      return "backward";
  }
  return "?";
}

std::vector<ValueFate> classify_values(const TrainingGraph& graph, const Plan& plan) {
  const Schedule& schedule = plan.schedule;
  const auto num_values = static_cast<std::size_t>(graph.num_values());
  const std::vector<int> recomputes = recompute_counts(graph, schedule);
  const std::size_t backward_start = first_backward_step(schedule);
  std::vector<char> freed_in_forward(num_values, 0);
  std::vector<char> read_by_recompute(num_values, 0);
  for (std::size_t i = 0; i < schedule.steps.size(); ++i) {
    const Step& step = schedule.steps[i];
    if (!step.is_compute()) {
      if (i < backward_start) freed_in_forward[static_cast<std::size_t>(step.value)] = 1;
      continue;
    }
    if (step.phase != Phase::kRecompute) continue;
    for (ValueId v : graph.node(step.node).inputs)
      read_by_recompute[static_cast<std::size_t>(v)] = 1;
  }
  std::vector<char> checkpointed(num_values, 0);
  for (const BlockSummary& block : plan.blocks) {
    if (block.checkpointed && block.output >= 0 && block.output < graph.num_values()) {
      checkpointed[static_cast<std::size_t>(block.output)] = 1;
    }
  }

  std::vector<ValueFate> fates(num_values, ValueFate::kKept);
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const auto index = static_cast<std::size_t>(v);
    const NodeId producer = graph.value(v).producer;
    if (graph.is_resident(v)) {
      fates[index] = ValueFate::kResident;
    } else if (producer != kNoId && graph.node(producer).phase == NodePhase::kBackward) {
      fates[index] = ValueFate::kBackward;
    } else if (producer != kNoId && recomputes[static_cast<std::size_t>(producer)] > 0) {
      fates[index] = ValueFate::kRecomputed;
    } else if (freed_in_forward[index]) {
      fates[index] = ValueFate::kFreedEarly;
    } else if (checkpointed[index] || read_by_recompute[index]) {
      fates[index] = ValueFate::kCheckpoint;
    }
  }
  return fates;
}

}  // namespace ckpt
