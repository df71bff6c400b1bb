// The human-readable reports of ckpt-plan: the summary table, the step list, the budget sweep and
// the per-block explanation. Byte counts are shown in binary units with the exact count beside the
// headline numbers; the JSON report carries every exact value.
#include "ckpt/report.h"
// Implements render_table, render_sweep_table and render_explanation.

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <string>

#include "ckpt/budget.h"

namespace ckpt {

namespace {

constexpr int kKeyWidth = 16;
constexpr std::size_t kMaxNameWidth = 48;

void add_line(std::string& out, std::string_view key, std::string_view value) {
  fmt::format_to(std::back_inserter(out), "{:<{}}{}\n", key, kKeyWidth, value);
}

// "5.86 KiB (6000 bytes)"; below 1 KiB the unit is bytes already ("900 B").
std::string bytes_exact(std::int64_t bytes) {
  if (bytes < 1024 && bytes > -1024) return format_bytes(bytes);
  return fmt::format("{} ({} bytes)", format_bytes(bytes), bytes);
}

std::string percent(double fraction) { return fmt::format("{:+.2f}%", fraction * 100.0); }

std::string describe_graph(const TrainingGraph& graph) {
  const int forward = graph.num_forward_nodes();
  const int backward = graph.num_nodes() - forward;
  if (graph.derived()) {
    return fmt::format(
        "{} (forward graph of {} ops; training graph: {} forward + {} backward "
        "nodes, {} values)",
        graph.name(), forward, forward, backward, graph.num_values());
  }
  return fmt::format("{} (joint graph: {} forward + {} backward nodes, {} values)", graph.name(),
                     forward, backward, graph.num_values());
}

// "backward fc2.backward" for a compute step, "free h1" for a free.
std::string describe_step(const TrainingGraph& graph, const Step& step) {
  if (step.is_compute()) {
    return fmt::format("{} {}", to_string(step.phase), graph.node(step.node).name);
  }
  return fmt::format("free {}", graph.value(step.value).name);
}

std::string step_name(const TrainingGraph& graph, const Step& step) {
  return step.is_compute() ? graph.node(step.node).name : graph.value(step.value).name;
}

std::string_view step_phase(const Step& step) {
  return step.is_compute() ? to_string(step.phase) : std::string_view("free");
}

void add_summary(std::string& out, const TrainingGraph& graph, const PlanReport& report) {
  const Plan& plan = report.plan;
  const SimulationResult& sim = report.simulation;
  add_line(out, "graph", describe_graph(graph));
  add_line(out, "strategy", to_string(plan.strategy));
  add_line(out, "budget", bytes_exact(plan.budget_bytes));
  std::string peak = bytes_exact(sim.peak_bytes);
  if (sim.valid && sim.peak_step < plan.schedule.steps.size()) {
    peak += fmt::format(" at step {} ({})", sim.peak_step,
                        describe_step(graph, plan.schedule.steps[sim.peak_step]));
  }
  add_line(out, "predicted peak", peak);
  add_line(out, "feasible",
           plan.feasible
               ? std::string("yes")
               : fmt::format("no: the {} strategy needs at least {}", to_string(plan.strategy),
                             bytes_exact(plan.min_feasible_bytes)));
  add_line(out, "min feasible", bytes_exact(plan.min_feasible_bytes));
  std::string store_all = bytes_exact(report.store_all_peak_bytes);
  if (report.store_all_peak_bytes > 0) {
    store_all += fmt::format("; the plan's peak is {:.1f}% of it",
                             100.0 * static_cast<double>(sim.peak_bytes) /
                                 static_cast<double>(report.store_all_peak_bytes));
  }
  add_line(out, "store-all peak", store_all);
  add_line(out, "resident",
           fmt::format("{} (inputs, params, param gradients; not budgeted)",
                       bytes_exact(sim.resident_bytes)));
  add_line(out, "compute time",
           fmt::format("{} (store-all {})", format_time_us(plan.compute_time_us),
                       format_time_us(plan.baseline_time_us)));
  add_line(out, "overhead",
           fmt::format("{} ({} recomputed)",
                       percent(overhead_fraction(plan.compute_time_us, plan.baseline_time_us)),
                       format_time_us(sim.recompute_time_us)));
  add_line(out, "plan time", fmt::format("{:.3f} ms", plan.plan_ms));
  add_line(out, "solution", plan.exact ? "exact" : "approximate");
  if (!plan.note.empty()) add_line(out, "note", plan.note);
}

void add_steps(std::string& out, const TrainingGraph& graph, const PlanReport& report) {
  const auto& steps = report.plan.schedule.steps;
  std::size_t name_width = 4;
  for (const Step& step : steps) {
    name_width = std::max(name_width, std::min(kMaxNameWidth, step_name(graph, step).size()));
  }
  const std::size_t index_width = std::max<std::size_t>(4, fmt::formatted_size("{}", steps.size()));
  fmt::format_to(std::back_inserter(out),
                 "\nsteps ({}; live after = charged bytes held after the step)\n", steps.size());
  fmt::format_to(std::back_inserter(out), "  {:>{}}  {:<9}  {:<{}}  {:>12}\n", "step", index_width,
                 "phase", "name", name_width, "live after");
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const std::string live = i < report.live_bytes_after.size()
                                 ? format_bytes(report.live_bytes_after[i])
                                 : std::string("-");
    std::string line =
        fmt::format("  {:>{}}  {:<9}  {:<{}}  {:>12}", i, index_width, step_phase(steps[i]),
                    step_name(graph, steps[i]), name_width, live);
    if (report.simulation.valid && i == report.simulation.peak_step) {
      line +=
          fmt::format("  <- peak: {} during the step", format_bytes(report.simulation.peak_bytes));
    }
    out += line;
    out += '\n';
  }
}

std::string value_names(const TrainingGraph& graph, const std::vector<ValueId>& values) {
  if (values.empty()) return "none";
  std::string names;
  for (ValueId v : values) {
    if (!names.empty()) names += ", ";
    names += graph.value(v).name;
  }
  return names;
}

// "fc, relu" for a short block; "18 nodes: conv1, add_1, ..., relu_9" for a long one.
std::string node_names(const TrainingGraph& graph, const std::vector<NodeId>& nodes) {
  constexpr std::size_t kListed = 4;
  std::string names;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const bool elided = nodes.size() > kListed && i >= kListed - 2 && i + 1 < nodes.size();
    if (elided) {
      if (i == kListed - 2) names += ", ...";
      continue;
    }
    if (!names.empty()) names += ", ";
    names += graph.node(nodes[i]).name;
  }
  if (nodes.size() > kListed) return fmt::format("{} nodes: {}", nodes.size(), names);
  return names;
}

// The same words as the DOT legend.
std::string_view describe_fate(ValueFate fate) {
  switch (fate) {
    case ValueFate::kKept:
      return "kept (stored from the forward for the backward)";
    case ValueFate::kCheckpoint:
      return "checkpoint (kept across a recompute segment)";
    case ValueFate::kRecomputed:
      return "recomputed (dropped, computed again for the backward)";
    case ValueFate::kFreedEarly:
      return "freed early (dropped in the forward, not needed again)";
    case ValueFate::kResident:
      return "resident";
    case ValueFate::kBackward:
      return "computed by the backward";
  }
  return "?";
}

}  // namespace

std::string render_table(const TrainingGraph& graph, const PlanReport& report,
                         const ReportOptions& options) {
  std::string out;
  add_summary(out, graph, report);
  if (options.sweep) {
    out += '\n';
    out += render_sweep_table(*options.sweep);
  } else if (options.steps) {
    add_steps(out, graph, report);
  }
  if (options.explain) {
    out += '\n';
    out += render_explanation(graph, report.plan);
  }
  return out;
}

std::string render_sweep_table(const std::vector<SweepPoint>& sweep) {
  std::string out = fmt::format(
      "sweep: the optimal frontier at {} budgets, from the minimum feasible budget to store-all\n",
      sweep.size());
  fmt::format_to(std::back_inserter(out), "  {:>12}  {:>12}  {:>10}\n", "budget", "peak",
                 "overhead");
  for (const SweepPoint& row : sweep) {
    fmt::format_to(std::back_inserter(out), "  {:>12}  {:>12}  {:>10}\n",
                   format_bytes(row.budget_bytes), format_bytes(row.peak_bytes),
                   percent(row.overhead));
  }
  return out;
}

std::string render_explanation(const TrainingGraph& graph, const Plan& plan) {
  if (plan.blocks.empty()) {
    return fmt::format("explanation: the {} strategy reports no blocks for this plan\n",
                       to_string(plan.strategy));
  }
  const std::vector<ValueFate> fates = classify_values(graph, plan);
  std::string out = fmt::format("explanation ({} blocks, in forward order)\n", plan.blocks.size());
  for (std::size_t i = 0; i < plan.blocks.size(); ++i) {
    const BlockSummary& block = plan.blocks[i];
    fmt::format_to(std::back_inserter(out), "block {}: {}\n", i,
                   node_names(graph, block.forward_nodes));
    if (block.output != kNoId) {
      fmt::format_to(std::back_inserter(out), "  output {}: {}\n", graph.value(block.output).name,
                     describe_fate(fates[static_cast<std::size_t>(block.output)]));
    }
    fmt::format_to(std::back_inserter(out), "  kept for the backward: {}\n",
                   value_names(graph, block.kept));
    fmt::format_to(std::back_inserter(out), "  recomputed: {}\n",
                   block.recomputations == 0   ? std::string("never")
                   : block.recomputations == 1 ? std::string("once")
                                               : fmt::format("{} times", block.recomputations));
    if (!block.explanation.empty()) {
      fmt::format_to(std::back_inserter(out), "  why: {}\n", block.explanation);
    }
  }
  return out;
}

}  // namespace ckpt
