// The machine-readable reports of ckpt-plan: one JSON object per run and the --schedule file. Keys
// keep a fixed order (nlohmann::ordered_json), every byte count is exact, and lists of records
// print one record per line so that large schedules stay diffable.
#include "ckpt/report.h"
// Implements render_json and render_schedule_json.

#include <nlohmann/json.hpp>
#include <string>

namespace ckpt {

namespace {

using Json = nlohmann::ordered_json;

// The id a step or block names a node by: its id in the input file for a joint graph read from a
// file (when the reader recorded one), else its training-graph id.
std::int64_t reported_node_id(const TrainingGraph& graph, NodeId node) {
  if (graph.derived()) return node;
  const std::int32_t source = graph.node(node).source_id;
  return source == kNoId ? node : source;
}

std::string_view id_space(const TrainingGraph& graph) {
  return graph.derived() ? "training_graph" : "file";
}

Json schedule_json(const TrainingGraph& graph, const Schedule& schedule) {
  Json steps = Json::array();
  for (const Step& step : schedule.steps) {
    if (step.is_compute()) {
      steps.push_back({{"op", reported_node_id(graph, step.node)},
                       {"name", graph.node(step.node).name},
                       {"phase", to_string(step.phase)}});
    } else {
      steps.push_back({{"free", step.value}});
    }
  }
  return steps;
}

Json blocks_json(const TrainingGraph& graph, const Plan& plan) {
  Json blocks = Json::array();
  for (const BlockSummary& block : plan.blocks) {
    Json nodes = Json::array();
    for (NodeId n : block.forward_nodes) nodes.push_back(reported_node_id(graph, n));
    blocks.push_back({{"ops", nodes},
                      {"output", block.output},
                      {"kept", block.kept},
                      {"checkpointed", block.checkpointed},
                      {"recomputations", block.recomputations},
                      {"explanation", block.explanation}});
  }
  return blocks;
}

Json sweep_json(const std::vector<SweepPoint>& sweep) {
  Json rows = Json::array();
  for (const SweepPoint& row : sweep) {
    rows.push_back({{"budget_bytes", row.budget_bytes},
                    {"peak_bytes", row.peak_bytes},
                    {"compute_cost", row.compute_time_us},
                    {"overhead", row.overhead}});
  }
  return rows;
}

// Like dump(2), except that an array of objects prints one compact object per line.
std::string dump_rows(const Json& object) {
  std::string out = "{\n";
  std::size_t index = 0;
  for (const auto& [key, value] : object.items()) {
    out += "  " + Json(key).dump() + ": ";
    const bool rows = value.is_array() && !value.empty() && value.front().is_object();
    if (!rows) {
      out += value.dump();
    } else {
      out += "[\n";
      for (std::size_t i = 0; i < value.size(); ++i) {
        out += "    " + value[i].dump() + (i + 1 < value.size() ? ",\n" : "\n");
      }
      out += "  ]";
    }
    out += ++index < object.size() ? ",\n" : "\n";
  }
  out += "}\n";
  return out;
}

}  // namespace

std::string render_json(const TrainingGraph& graph, const PlanReport& report,
                        const ReportOptions& options) {
  const Plan& plan = report.plan;
  const SimulationResult& sim = report.simulation;
  Json object;
  object["graph"] = graph.name();
  object["derived"] = graph.derived();
  object["ids"] = id_space(graph);
  object["forward_nodes"] = graph.num_forward_nodes();
  object["nodes"] = graph.num_nodes();
  object["values"] = graph.num_values();
  object["strategy"] = to_string(plan.strategy);
  object["budget_bytes"] = plan.budget_bytes;
  object["feasible"] = plan.feasible;
  object["min_feasible_bytes"] = plan.min_feasible_bytes;
  object["peak_bytes"] = sim.peak_bytes;
  object["peak_step"] = sim.peak_step;
  object["store_all_peak_bytes"] = report.store_all_peak_bytes;
  object["resident_bytes"] = sim.resident_bytes;
  object["compute_cost"] = plan.compute_time_us;
  object["baseline_cost"] = plan.baseline_time_us;
  object["recompute_cost"] = sim.recompute_time_us;
  object["overhead"] = overhead_fraction(plan.compute_time_us, plan.baseline_time_us);
  object["plan_ms"] = plan.plan_ms;
  object["exact"] = plan.exact;
  object["note"] = plan.note;
  object["schedule"] = schedule_json(graph, plan.schedule);
  object["blocks"] = blocks_json(graph, plan);
  if (options.sweep) object["sweep"] = sweep_json(*options.sweep);
  return dump_rows(object);
}

std::string render_schedule_json(const TrainingGraph& graph, const PlanReport& report) {
  Json object;
  object["format"] = "ckpt-schedule/1";
  object["graph"] = graph.name();
  object["ids"] = id_space(graph);
  object["strategy"] = to_string(report.plan.strategy);
  object["budget_bytes"] = report.plan.budget_bytes;
  object["peak_bytes"] = report.simulation.peak_bytes;
  object["compute_cost"] = report.plan.compute_time_us;
  object["schedule"] = schedule_json(graph, report.plan.schedule);
  return dump_rows(object);
}

}  // namespace ckpt
