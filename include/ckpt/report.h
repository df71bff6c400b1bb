// Reports on a plan, as ckpt-plan prints them: a human-readable table, one JSON object, the
// schedule file, the per-block explanation and the budget sweep. Every number comes from the plan
// and from the simulator's independent replay of its schedule; output is deterministic (ids are
// indices, lists in id or step order), apart from the plan's own wall time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ckpt/planner.h"
#include "ckpt/schedule.h"
#include "ckpt/simulator.h"
#include "ckpt/training_graph.h"

namespace ckpt {

// A plan together with what the simulator measured of it.
struct PlanReport {
  Plan plan;
  SimulationResult simulation;            // simulate(graph, plan.schedule)
  std::int64_t store_all_peak_bytes = 0;  // simulated peak of store_all_schedule(graph)
  // Per step of plan.schedule: charged bytes held after the step (workspace released).
  std::vector<std::int64_t> live_bytes_after;
};

// compute / baseline - 1 (0.25: a quarter more compute than store-all). Rounding noise within
// 1e-9 of 0, from summing node times in another order, reads as exactly 0.
double overhead_fraction(double compute_time_us, double baseline_time_us);

// Simulates `plan.schedule` and records the bytes held after every step. A schedule the
// simulator rejects still gives a report (simulation.valid == false; live bytes up to the error).
PlanReport make_report(const TrainingGraph& graph, Plan plan, std::int64_t store_all_peak_bytes);

// What a plan does with one value of the forward pass.
enum class ValueFate : std::uint8_t {
  kResident,    // input, param or param gradient: always in memory, not budgeted
  kKept,        // computed once and held from the forward until the backward reads it
  kCheckpoint,  // kept, and the start of a recompute segment (a block boundary the plan keeps)
  kRecomputed,  // dropped during the forward and computed again for the backward
  kFreedEarly,  // dropped during the forward and never needed again (no recompute)
  kBackward,    // produced by a backward node (gradients); not part of the forward view
};
// "kept", "checkpoint", "recomputed", ... as reports and the DOT legend print them.
std::string_view to_string(ValueFate fate);

// The fate of every value of `graph` under `plan` (indexed by value id), read from the schedule:
// a value whose producer runs as kRecompute is recomputed; one freed before the first backward
// step is freed early; one a recompute step reads (or its block's output marked checkpointed) is
// a checkpoint; any other forward value is kept.
std::vector<ValueFate> classify_values(const TrainingGraph& graph, const Plan& plan);

// How often each node (indexed by node id) runs as a recompute step in `schedule`.
std::vector<int> recompute_counts(const TrainingGraph& graph, const Schedule& schedule);

// One row of --sweep: the optimal plan at `budget_bytes`.
struct SweepPoint {
  std::int64_t budget_bytes = 0;
  std::int64_t peak_bytes = 0;
  double compute_time_us = 0;
  double overhead = 0;  // compute_time_us / baseline - 1
};

// Samples a Pareto frontier (ascending peak, descending compute) at `samples` budgets spread
// evenly from its first peak (the minimum feasible budget) to its last (store-all), each mapped to
// the least-compute point that fits. With at most `samples` points, every point is returned with
// its own peak as the budget. `samples` must be at least 2.
std::vector<SweepPoint> sample_frontier(const std::vector<FrontierPoint>& frontier,
                                        double baseline_time_us, int samples);

// What render_table and render_json include beyond the summary.
struct ReportOptions {
  bool steps = true;     // table: list every step of the schedule
  bool explain = false;  // table: append the per-block explanation
  // Set for --sweep: the table prints it instead of the steps, the JSON under "sweep".
  std::optional<std::vector<SweepPoint>> sweep;
};

// The summary (graph, budget, peak and its step, store-all peak, resident bytes, compute time,
// overhead, plan time, exactness), then the steps and/or the sweep and explanation.
std::string render_table(const TrainingGraph& graph, const PlanReport& report,
                         const ReportOptions& options);

// One JSON object (docs/cli.md lists every key). Step ids: for a joint graph read from a file
// (graph.derived() == false) "op" is the node's id in that file (Node::source_id); for a derived
// graph it is the training-graph node id. "free" is always the training-graph value id.
std::string render_json(const TrainingGraph& graph, const PlanReport& report,
                        const ReportOptions& options);

// The --schedule file: a "ckpt-schedule/1" object with the graph, strategy, budget, peak and the
// same step list as render_json.
std::string render_schedule_json(const TrainingGraph& graph, const PlanReport& report);

// Block by block: its nodes, output, what is kept, how often it is recomputed, and why.
std::string render_explanation(const TrainingGraph& graph, const Plan& plan);

// The sweep alone as a table (columns budget, peak, overhead).
std::string render_sweep_table(const std::vector<SweepPoint>& sweep);

}  // namespace ckpt
