// Tests of the plan reports on the hand-made "tiny" plan (tests/report_test_util.h): the bytes
// held after every step, the table (golden file), the JSON object and schedule file (keys and
// values), the explanation and the budget sweep.
#include "ckpt/report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ckpt/plot.h"
#include "report_test_util.h"

namespace ckpt {
namespace {

using testing::make_tiny_plan;
using testing::TinyPlan;
using Json = nlohmann::json;

constexpr std::int64_t kTinyStoreAllPeak = 7000;  // see report_test_util.h

TEST(ReportTest, StoreAllPeakOfTinyIsWhatTheFixtureSays) {
  const TinyPlan tiny = make_tiny_plan();
  const SimulationResult store_all = simulate(tiny.graph, store_all_schedule(tiny.graph));
  ASSERT_TRUE(store_all.valid) << store_all.error;
  EXPECT_EQ(store_all.peak_bytes, kTinyStoreAllPeak);
  EXPECT_EQ(tiny.plan.peak_bytes, 6000);
}

TEST(ReportTest, RecordsTheBytesHeldAfterEveryStep) {
  TinyPlan tiny = make_tiny_plan();
  const PlanReport report = make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak);
  ASSERT_TRUE(report.simulation.valid) << report.simulation.error;
  // fc, relu, scale, free b, loss, free loss, loss.backward (peak during: a + c + c.grad + 3000
  // workspace = 6000), free c, relu again, free a, scale.backward, free c.grad, relu.backward,
  // free b, free b.grad, fc.backward, free a.grad.
  const std::vector<std::int64_t> expected = {1000, 3000, 4000, 2000, 2004, 2000, 3000, 2000, 4000,
                                              3000, 5000, 4000, 5000, 3000, 1000, 1000, 0};
  EXPECT_EQ(report.live_bytes_after, expected);
  EXPECT_EQ(report.simulation.peak_bytes, 6000);
  EXPECT_EQ(report.simulation.peak_step, 6u);
  EXPECT_EQ(report.store_all_peak_bytes, kTinyStoreAllPeak);
}

TEST(ReportTest, InvalidScheduleStillGivesAReport) {
  TinyPlan tiny = make_tiny_plan();
  tiny.plan.schedule.steps.erase(tiny.plan.schedule.steps.begin());  // relu without its input
  const PlanReport report = make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak);
  EXPECT_FALSE(report.simulation.valid);
  EXPECT_TRUE(report.live_bytes_after.empty());
  EXPECT_NE(render_table(tiny.graph, report, {}).find("step"), std::string::npos);
}

TEST(ReportTest, TableMatchesGolden) {
  const TinyPlan tiny = make_tiny_plan();
  const PlanReport report = make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak);
  ReportOptions options;
  options.explain = true;
  testing::expect_matches_golden(render_table(tiny.graph, report, options), "tiny_table.txt");
}

TEST(ReportTest, TableSaysWhenThePlanIsInfeasibleOrApproximate) {
  TinyPlan tiny = make_tiny_plan();
  tiny.plan.budget_bytes = 5000;  // below the 6000 B this schedule needs
  tiny.plan.feasible = false;
  tiny.plan.exact = false;
  tiny.plan.note = "block 2 searched approximately";
  const std::string table =
      render_table(tiny.graph, make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak), {});
  EXPECT_NE(table.find("no: the optimal strategy needs at least 5.86 KiB (6000 bytes)"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("approximate"), std::string::npos) << table;
  EXPECT_NE(table.find("block 2 searched approximately"), std::string::npos) << table;
}

TEST(ReportTest, TableWithSweepShowsTheSweepInsteadOfTheSteps) {
  const TinyPlan tiny = make_tiny_plan();
  ReportOptions options;
  options.sweep = std::vector<SweepPoint>{{6000, 6000, 58, 2.0 / 56}, {7000, 7000, 56, 0}};
  const std::string table =
      render_table(tiny.graph, make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak), options);
  EXPECT_EQ(table.find("steps ("), std::string::npos) << table;
  EXPECT_NE(table.find("sweep: the optimal frontier at 2 budgets"), std::string::npos) << table;
  EXPECT_NE(table.find("    5.86 KiB      5.86 KiB      +3.57%"), std::string::npos) << table;
  EXPECT_NE(table.find("    6.84 KiB      6.84 KiB      +0.00%"), std::string::npos) << table;
}

TEST(ReportTest, JsonHasEveryKeyWithExactValues) {
  const TinyPlan tiny = make_tiny_plan();
  const PlanReport report = make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak);
  const Json json = Json::parse(render_json(tiny.graph, report, {}));
  EXPECT_EQ(json["graph"], "tiny");
  EXPECT_EQ(json["strategy"], "optimal");
  EXPECT_EQ(json["budget_bytes"], 6000);
  EXPECT_EQ(json["peak_bytes"], 6000);
  EXPECT_EQ(json["peak_step"], 6);
  EXPECT_EQ(json["store_all_peak_bytes"], kTinyStoreAllPeak);
  EXPECT_EQ(json["min_feasible_bytes"], 6000);
  EXPECT_EQ(json["resident_bytes"], 900);  // x + w + w.grad
  EXPECT_EQ(json["compute_cost"], 58.0);
  EXPECT_EQ(json["baseline_cost"], 56.0);
  EXPECT_EQ(json["recompute_cost"], 2.0);
  EXPECT_DOUBLE_EQ(json["overhead"].get<double>(), 58.0 / 56.0 - 1);
  EXPECT_EQ(json["feasible"], true);
  EXPECT_EQ(json["exact"], true);
  EXPECT_EQ(json["plan_ms"], 0.25);
  EXPECT_EQ(json["derived"], false);
  EXPECT_EQ(json["ids"], "file");
  EXPECT_FALSE(json.contains("sweep"));
}

TEST(ReportTest, JsonScheduleUsesFileIdsForAJointGraph) {
  const TinyPlan tiny = make_tiny_plan();
  const Json json = Json::parse(
      render_json(tiny.graph, make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak), {}));
  const Json& schedule = json["schedule"];
  ASSERT_EQ(schedule.size(), 17u);
  // Node ids in the file are 10 + the training-graph node id; values keep their ids.
  EXPECT_EQ(schedule[0], Json::parse(R"({"op": 10, "name": "fc", "phase": "forward"})"));
  EXPECT_EQ(schedule[3], Json::parse(R"({"free": 4})"));
  EXPECT_EQ(schedule[6],
            Json::parse(R"({"op": 14, "name": "loss.backward", "phase": "backward"})"));
  EXPECT_EQ(schedule[8], Json::parse(R"({"op": 11, "name": "relu", "phase": "recompute"})"));
  ASSERT_EQ(json["blocks"].size(), 3u);
  EXPECT_EQ(json["blocks"][1]["ops"], Json::parse("[11, 12]"));
  EXPECT_EQ(json["blocks"][0]["checkpointed"], true);
  EXPECT_EQ(json["blocks"][1]["recomputations"], 1);
}

TEST(ReportTest, JsonScheduleUsesTrainingGraphIdsForADerivedGraph) {
  TinyPlan tiny = make_tiny_plan();
  const TrainingGraph derived(tiny.graph.name(), tiny.graph.values(), tiny.graph.nodes(),
                              /*derived=*/true);
  const Json json =
      Json::parse(render_json(derived, make_report(derived, tiny.plan, kTinyStoreAllPeak), {}));
  EXPECT_EQ(json["ids"], "training_graph");
  EXPECT_EQ(json["schedule"][0]["op"], 0);
  EXPECT_EQ(json["schedule"][6]["op"], 4);
  EXPECT_EQ(json["schedule"][8]["op"], 1);
}

TEST(ReportTest, JsonKeysComeInAFixedOrder) {
  const TinyPlan tiny = make_tiny_plan();
  const std::string text =
      render_json(tiny.graph, make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak), {});
  std::size_t last = 0;
  for (const char* key :
       {"\"graph\"", "\"strategy\"", "\"budget_bytes\"", "\"feasible\"", "\"peak_bytes\"",
        "\"store_all_peak_bytes\"", "\"compute_cost\"", "\"baseline_cost\"", "\"overhead\"",
        "\"plan_ms\"", "\"schedule\"", "\"blocks\""}) {
    const std::size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos) << key;
    EXPECT_GT(at, last) << key << " out of order";
    last = at;
  }
  // One step per line keeps large schedules readable and diffable.
  EXPECT_NE(text.find("\n    {\"op\":10,\"name\":\"fc\",\"phase\":\"forward\"},\n"),
            std::string::npos)
      << text;
}

TEST(ReportTest, InfeasibleJsonCarriesTheMinimum) {
  TinyPlan tiny = make_tiny_plan();
  tiny.plan.budget_bytes = 5000;
  tiny.plan.feasible = false;
  const Json json = Json::parse(
      render_json(tiny.graph, make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak), {}));
  EXPECT_EQ(json["feasible"], false);
  EXPECT_EQ(json["budget_bytes"], 5000);
  EXPECT_EQ(json["min_feasible_bytes"], 6000);
}

TEST(ReportTest, JsonSweepRows) {
  const TinyPlan tiny = make_tiny_plan();
  ReportOptions options;
  options.sweep = std::vector<SweepPoint>{{6000, 6000, 58, 2.0 / 56}, {7000, 7000, 56, 0}};
  const Json json = Json::parse(
      render_json(tiny.graph, make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak), options));
  ASSERT_EQ(json["sweep"].size(), 2u);
  EXPECT_EQ(json["sweep"][0]["budget_bytes"], 6000);
  EXPECT_EQ(json["sweep"][0]["peak_bytes"], 6000);
  EXPECT_EQ(json["sweep"][0]["compute_cost"], 58.0);
  EXPECT_DOUBLE_EQ(json["sweep"][0]["overhead"].get<double>(), 2.0 / 56);
  EXPECT_EQ(json["sweep"][1]["overhead"], 0.0);
}

TEST(ReportTest, ScheduleFileHasTheSameSteps) {
  const TinyPlan tiny = make_tiny_plan();
  const PlanReport report = make_report(tiny.graph, tiny.plan, kTinyStoreAllPeak);
  const Json file = Json::parse(render_schedule_json(tiny.graph, report));
  const Json json = Json::parse(render_json(tiny.graph, report, {}));
  EXPECT_EQ(file["format"], "ckpt-schedule/1");
  EXPECT_EQ(file["graph"], "tiny");
  EXPECT_EQ(file["strategy"], "optimal");
  EXPECT_EQ(file["budget_bytes"], 6000);
  EXPECT_EQ(file["peak_bytes"], 6000);
  EXPECT_EQ(file["schedule"], json["schedule"]);
}

TEST(ReportTest, ExplanationWithoutBlocksSaysSo) {
  TinyPlan tiny = make_tiny_plan();
  tiny.plan.blocks.clear();
  tiny.plan.strategy = Strategy::kStoreAll;
  EXPECT_EQ(render_explanation(tiny.graph, tiny.plan),
            "explanation: the store-all strategy reports no blocks for this plan\n");
}

// A frontier from 100 B (compute 20) to 500 B (compute 10); baseline 10.
std::vector<FrontierPoint> five_point_frontier() {
  return {{100, 20}, {150, 16}, {300, 13}, {420, 11}, {500, 10}};
}

TEST(SweepTest, FewPointsAreAllReturned) {
  const std::vector<SweepPoint> sweep = sample_frontier(five_point_frontier(), 10, 16);
  ASSERT_EQ(sweep.size(), 5u);
  EXPECT_EQ(sweep[1].budget_bytes, 150);
  EXPECT_EQ(sweep[1].peak_bytes, 150);
  EXPECT_DOUBLE_EQ(sweep[1].overhead, 0.6);
  EXPECT_DOUBLE_EQ(sweep[4].overhead, 0);
}

TEST(SweepTest, ManyPointsAreSampledAtEvenBudgets) {
  // Budgets 100, 233, 366, 500 (floored): the best points that fit are 100, 150, 300, 500.
  const std::vector<SweepPoint> sweep = sample_frontier(five_point_frontier(), 10, 4);
  ASSERT_EQ(sweep.size(), 4u);
  EXPECT_EQ(sweep[0].budget_bytes, 100);
  EXPECT_EQ(sweep[1].budget_bytes, 233);
  EXPECT_EQ(sweep[2].budget_bytes, 366);
  EXPECT_EQ(sweep[3].budget_bytes, 500);
  EXPECT_EQ(sweep[0].peak_bytes, 100);
  EXPECT_EQ(sweep[1].peak_bytes, 150);
  EXPECT_EQ(sweep[2].peak_bytes, 300);
  EXPECT_EQ(sweep[3].peak_bytes, 500);
  EXPECT_DOUBLE_EQ(sweep[2].compute_time_us, 13);
}

TEST(SweepTest, EmptyFrontierGivesNoRows) { EXPECT_TRUE(sample_frontier({}, 10, 16).empty()); }

int count(const std::string& text, const std::string& needle) {
  int found = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++found;
  }
  return found;
}

PlotData two_series_plot() {
  PlotData data;
  data.title = "tiny <test> & co";
  data.series.push_back({.name = "optimal (frontier)",
                         .points = {{5000, 0.25}, {6000, 2.0 / 56}, {7000, 0}},
                         .step_line = true});
  data.series.push_back(
      {.name = "chen-sqrt", .points = {{6500, 0.1}, {7000, 0}}, .step_line = false});
  data.series.push_back({.name = "uniform", .points = {}, .step_line = false});
  return data;
}

TEST(PlotTest, DrawsAxesFrontierBaselinesAndLegend) {
  const std::string svg = render_plot_svg(two_series_plot());
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u) << svg;
  EXPECT_NE(svg.find("</svg>\n"), std::string::npos);
  EXPECT_NE(svg.find("peak memory (KiB)"), std::string::npos);
  EXPECT_NE(svg.find("recompute overhead (%)"), std::string::npos);
  EXPECT_NE(svg.find("tiny &lt;test&gt; &amp; co"), std::string::npos) << "title escaped";
  // The frontier is one step path (H then V per point); a baseline is one marker per point, plus
  // one in the legend (chen-sqrt: red squares).
  EXPECT_EQ(count(svg, R"(fill="none" stroke="#1f77b4" stroke-width="2"/>)"), 1);
  EXPECT_EQ(count(svg, R"(fill="none" stroke="#d62728")"), 2 + 1);
  EXPECT_NE(svg.find(" H "), std::string::npos);
  EXPECT_NE(svg.find(" V "), std::string::npos);
  EXPECT_NE(svg.find(">optimal (frontier)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">chen-sqrt</text>"), std::string::npos);
  EXPECT_NE(svg.find(">uniform (no feasible budget)</text>"), std::string::npos);
  // Overhead ticks run from 0 to at least the largest overhead (25%).
  EXPECT_NE(svg.find(">0</text>"), std::string::npos);
  EXPECT_NE(svg.find(">25</text>"), std::string::npos);
}

TEST(PlotTest, IsDeterministicAndSurvivesEmptyData) {
  EXPECT_EQ(render_plot_svg(two_series_plot()), render_plot_svg(two_series_plot()));
  const std::string empty = render_plot_svg(PlotData{});
  EXPECT_NE(empty.find("</svg>"), std::string::npos);
  EXPECT_EQ(empty.find("nan"), std::string::npos);
  EXPECT_EQ(empty.find("inf"), std::string::npos);
}

}  // namespace
}  // namespace ckpt
