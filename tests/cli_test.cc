// Tests of ckpt-plan: in-process through run_plan_cli on the "tiny" graph written to a temporary
// native file (options, budgets, exit codes, messages, output files), then the real binary
// (CKPT_PLAN_EXE) end to end on every bundled example graph with every strategy.
#include "ckpt/cli.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ckpt/formats.h"
#include "ckpt/planner.h"
#include "ckpt/schedule.h"
#include "ckpt/simulator.h"
#include "report_test_util.h"

namespace ckpt {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("ckpt_cli_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    graph_path_ = (dir_ / "tiny.json").string();
    std::ofstream(graph_path_) << to_native_json(testing::make_tiny_graph());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `ckpt-plan args...` in-process.
  static CliResult run(const std::vector<std::string>& args) {
    std::vector<const char*> argv = {"ckpt-plan"};
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    std::ostringstream out, err;
    CliResult result;
    result.code = run_plan_cli(static_cast<int>(argv.size()), argv.data(), out, err);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // The plan ckpt-plan should print, computed through the library directly.
  Plan expected_plan(Strategy strategy, std::int64_t budget_bytes) const {
    const LoadedGraph loaded = load_graph(graph_path_);
    PlanOptions options;
    options.strategy = strategy;
    options.budget_bytes = budget_bytes;
    return plan(loaded.training, options);
  }

  fs::path dir_;
  std::string graph_path_;
};

// The tiny graph's budgets (report_test_util.h works out every byte):
//   7000 B  store-all: b and c live with c.grad and loss.backward's 3000 B workspace; 56 us.
//   6000 B  drop b, recompute relu from a: 58 us.
//   5000 B  the least: drop a and b, recompute fc and relu from x: 68 us.
constexpr std::int64_t kTinyStoreAllPeak = 7000;
constexpr std::int64_t kTinyMinFeasible = 5000;

TEST_F(CliTest, HelpListsOptionsAndExitCodes) {
  const CliResult r = run({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  for (const char* needle : {"--budget", "--strategy", "--format", "--dot", "--schedule", "--sweep",
                             "--plot", "--exact-blocks", "--verbose", "--explain", "Exit codes"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << " missing from:\n" << r.out;
  }
}

TEST_F(CliTest, MissingGraphIsAUsageError) {
  const CliResult r = run({});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find("GRAPH"), std::string::npos) << r.err;
}

TEST_F(CliTest, UnknownOptionIsAUsageError) {
  const CliResult r = run({graph_path_, "--frobnicate"});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST_F(CliTest, UnknownStrategyListsTheValidOnes) {
  const CliResult r = run({graph_path_, "--strategy", "fastest"});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find("--strategy \"fastest\""), std::string::npos) << r.err;
  for (Strategy s : all_strategies()) {
    EXPECT_NE(r.err.find(std::string(to_string(s))), std::string::npos) << r.err;
  }
}

TEST_F(CliTest, UnknownFormatIsAUsageError) {
  const CliResult r = run({graph_path_, "--format", "yaml"});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find("--format \"yaml\""), std::string::npos) << r.err;
}

TEST_F(CliTest, BadBudgetNamesTheOptionAndShowsExamples) {
  for (const char* budget : {"lots", "-1GiB", "0", "5XB", "99999999999999999999"}) {
    const CliResult r = run({graph_path_, "--budget", budget});
    EXPECT_EQ(r.code, kExitInputError) << budget;
    EXPECT_NE(r.err.find("--budget"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("2.5GiB"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

TEST_F(CliTest, ExactBlocksOutOfRangeIsAUsageError) {
  for (const char* blocks : {"-1", "2049", "many"}) {
    const CliResult r = run({graph_path_, "--exact-blocks", blocks});
    EXPECT_EQ(r.code, kExitInputError) << blocks;
    EXPECT_NE(r.err.find("--exact-blocks"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

// --exact-blocks 0 sends the MLP example's 51-block chain to the two-level DP: the plan says so,
// and is no cheaper than the exact one.
TEST_F(CliTest, ExactBlocksChoosesTheDp) {
  const std::string mlp = (fs::path(CKPT_SOURCE_DIR) / "examples" / "graphs" / "mlp.json").string();
  if (!fs::exists(mlp)) GTEST_SKIP() << "no examples/graphs/mlp.json";
  const CliResult exact = run({mlp, "--budget", "40%", "--format", "json"});
  const CliResult two_level = run(
      {mlp, "--budget", "40%", "--format", "json", "--exact-blocks", "0", "--bounded-work", "0"});
  const CliResult bounded =
      run({mlp, "--budget", "40%", "--format", "json", "--exact-blocks", "0"});
  ASSERT_EQ(exact.code, kExitOk) << exact.err;
  ASSERT_EQ(two_level.code, kExitOk) << two_level.err;
  ASSERT_EQ(bounded.code, kExitOk) << bounded.err;
  const Json a = Json::parse(exact.out);
  const Json b = Json::parse(two_level.out);
  const Json c = Json::parse(bounded.out);
  EXPECT_TRUE(a["exact"].get<bool>());
  EXPECT_FALSE(b["exact"].get<bool>());
  EXPECT_NE(b["note"].get<std::string>().find("two-level"), std::string::npos) << b["note"];
  EXPECT_GE(b["compute_cost"].get<double>(), a["compute_cost"].get<double>() - 1e-6);
  EXPECT_LE(b["peak_bytes"].get<std::int64_t>(), b["budget_bytes"].get<std::int64_t>());
  // The bounded exact DP turns the two-level plan into the exact one.
  EXPECT_TRUE(c["exact"].get<bool>()) << c["note"];
  EXPECT_NE(c["note"].get<std::string>().find("bounded exact DP"), std::string::npos) << c["note"];
  EXPECT_NEAR(c["compute_cost"].get<double>(), a["compute_cost"].get<double>(),
              1e-9 * a["compute_cost"].get<double>());
}

TEST_F(CliTest, BoundedWorkMustBeANonNegativeNumber) {
  for (const char* bad : {"-1", "abc", "1e6x", "nan"}) {
    const CliResult r = run({graph_path_, "--bounded-work", bad});
    EXPECT_EQ(r.code, kExitInputError) << bad;
    EXPECT_NE(r.err.find("--bounded-work"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not a non-negative number"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
  EXPECT_EQ(run({graph_path_, "--bounded-work", "1e8"}).code, kExitOk);
}

TEST_F(CliTest, BoundedMemoryTakesBytesOfAtLeastOneMebibyte) {
  for (const char* bad : {"40%", "12KiB", "lots"}) {
    const CliResult r = run({graph_path_, "--bounded-memory", bad});
    EXPECT_EQ(r.code, kExitInputError) << bad;
    EXPECT_NE(r.err.find("--bounded-memory"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
  EXPECT_EQ(run({graph_path_, "--bounded-memory", "16GiB"}).code, kExitOk);
}

TEST_F(CliTest, SweepNeedsAtLeastTwoBudgets) {
  const CliResult r = run({graph_path_, "--sweep", "1"});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find("--sweep 1"), std::string::npos) << r.err;
}

TEST_F(CliTest, UnreadableFileNamesIt) {
  const std::string missing = path("no_such_graph.json");
  const CliResult r = run({missing});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST_F(CliTest, InvalidJsonNamesTheFile) {
  const std::string broken = path("broken.json");
  std::ofstream(broken) << "{\"format\": \"ckpt-graph/1\", \"values\": [";
  const CliResult r = run({broken});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find(broken), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST_F(CliTest, WrongFormatVersionNamesTheFile) {
  const std::string future = path("future.json");
  std::ofstream(future) << R"({"format": "ckpt-graph/99", "name": "x", "values": [], "ops": []})";
  const CliResult r = run({future});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find(future), std::string::npos) << r.err;
}

TEST_F(CliTest, DefaultBudgetIsTheStoreAllPeak) {
  const CliResult r = run({graph_path_, "--format", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const Json json = Json::parse(r.out);
  EXPECT_EQ(json["budget_bytes"], kTinyStoreAllPeak);
  EXPECT_EQ(json["store_all_peak_bytes"], kTinyStoreAllPeak);
  EXPECT_EQ(json["feasible"], true);
  EXPECT_EQ(json["strategy"], "optimal");
  // With the whole store-all peak to spend, the optimal plan recomputes nothing.
  EXPECT_DOUBLE_EQ(json["overhead"].get<double>(), 0.0);
  EXPECT_EQ(json["ids"], "file");
}

TEST_F(CliTest, PercentBudgetIsAShareOfTheStoreAllPeak) {
  const CliResult r = run({graph_path_, "--format", "json", "--budget", "90%"});
  ASSERT_TRUE(r.code == kExitOk || r.code == kExitInfeasible) << r.err;
  EXPECT_EQ(Json::parse(r.out)["budget_bytes"], 6300);  // 90% of 7000 bytes
}

TEST_F(CliTest, JsonMatchesTheLibraryPlan) {
  // 6000 B: the tiny graph fits by recomputing relu (report_test_util.h).
  const CliResult r = run({graph_path_, "--format", "json", "--budget", "6000"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const Json json = Json::parse(r.out);
  const Plan expected = expected_plan(Strategy::kOptimal, 6000);
  EXPECT_EQ(json["budget_bytes"], 6000);
  EXPECT_EQ(json["peak_bytes"], expected.peak_bytes);
  EXPECT_LE(json["peak_bytes"].get<std::int64_t>(), 6000);
  EXPECT_DOUBLE_EQ(json["compute_cost"].get<double>(), expected.compute_time_us);
  EXPECT_DOUBLE_EQ(json["baseline_cost"].get<double>(), 56.0);
  EXPECT_DOUBLE_EQ(json["overhead"].get<double>(), expected.overhead());
  EXPECT_EQ(json["schedule"].size(), expected.schedule.steps.size());
  for (const char* key :
       {"graph", "strategy", "budget_bytes", "peak_bytes", "store_all_peak_bytes", "compute_cost",
        "baseline_cost", "overhead", "feasible", "plan_ms", "schedule", "min_feasible_bytes"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
}

TEST_F(CliTest, InfeasibleBudgetPrintsTheMinimumAndExits2) {
  // 1000 B: below the 5000 B the least-memory schedule needs.
  const Plan expected = expected_plan(Strategy::kOptimal, 1000);
  ASSERT_FALSE(expected.feasible);
  EXPECT_EQ(expected.min_feasible_bytes, kTinyMinFeasible);
  const std::string dot = path("plan.dot"), schedule = path("plan.json"), svg = path("plan.svg");
  const CliResult r =
      run({graph_path_, "--budget", "1000", "--dot", dot, "--schedule", schedule, "--plot", svg});
  EXPECT_EQ(r.code, kExitInfeasible);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(
      r.err.find(fmt::format("minimum feasible budget: {} bytes", expected.min_feasible_bytes)),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("KiB"), std::string::npos) << "no human units in: " << r.err;
  // Nothing half-written: no output file when planning did not succeed.
  EXPECT_FALSE(fs::exists(dot));
  EXPECT_FALSE(fs::exists(schedule));
  EXPECT_FALSE(fs::exists(svg));
}

TEST_F(CliTest, InfeasibleJsonCarriesTheMinimumAndExits2) {
  // 4999 B: one byte short of the least-memory schedule.
  const CliResult r = run({graph_path_, "--budget", "4999", "--format", "json"});
  EXPECT_EQ(r.code, kExitInfeasible);
  const Json json = Json::parse(r.out);
  EXPECT_EQ(json["feasible"], false);
  EXPECT_EQ(json["budget_bytes"], 4999);
  EXPECT_EQ(json["min_feasible_bytes"], kTinyMinFeasible);
  EXPECT_EQ(run({graph_path_, "--budget", "5000"}).code, kExitOk) << "the minimum itself fits";
}

TEST_F(CliTest, TableOutput) {
  const CliResult r = run({graph_path_, "--budget", "6000", "--explain"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out.rfind("graph           tiny (joint graph: 4 forward + 4 backward nodes", 0), 0u)
      << r.out;
  for (const char* needle : {"budget          5.86 KiB (6000 bytes)", "predicted peak",
                             "store-all peak  6.84 KiB (7000 bytes)", "overhead", "plan time",
                             "steps (", "explanation"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << " missing from:\n" << r.out;
  }
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(CliTest, WritesScheduleDotAndPlotFiles) {
  const std::string dot = path("plan.dot"), schedule = path("plan.json"), svg = path("plan.svg");
  const CliResult r = run({graph_path_, "--budget", "6000", "--format", "json", "--dot", dot,
                           "--schedule", schedule, "--plot", svg});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const Json file = Json::parse(read_file(schedule));
  EXPECT_EQ(file["format"], "ckpt-schedule/1");
  EXPECT_EQ(file["schedule"], Json::parse(r.out)["schedule"]);
  EXPECT_NE(read_file(dot).find("digraph ckpt {"), std::string::npos);
  const std::string plot = read_file(svg);
  EXPECT_EQ(plot.rfind("<svg", 0), 0u);
  for (Strategy s : all_strategies()) {
    EXPECT_NE(plot.find(std::string(to_string(s))), std::string::npos) << to_string(s);
  }
}

TEST_F(CliTest, UnwritableOutputFileIsAnInputError) {
  const std::string dot = path("no_such_dir/plan.dot");
  const CliResult r = run({graph_path_, "--dot", dot});
  EXPECT_EQ(r.code, kExitInputError);
  EXPECT_NE(r.err.find(dot), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << "nothing is printed when an output file fails";
}

TEST_F(CliTest, SweepOfTinyIsTheHandWorkedFrontier) {
  const CliResult r = run({graph_path_, "--format", "json", "--sweep"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const Json expected = Json::parse(R"([
    {"budget_bytes": 5000, "peak_bytes": 5000, "compute_cost": 68.0},
    {"budget_bytes": 6000, "peak_bytes": 6000, "compute_cost": 58.0},
    {"budget_bytes": 7000, "peak_bytes": 7000, "compute_cost": 56.0}])");
  Json sweep = Json::parse(r.out)["sweep"];
  for (Json& row : sweep) row.erase("overhead");
  EXPECT_EQ(sweep, expected);
}

TEST_F(CliTest, SweepSpansMinimumToStoreAll) {
  const CliResult r = run({graph_path_, "--format", "json", "--sweep", "4"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const Json sweep = Json::parse(r.out)["sweep"];
  ASSERT_GE(sweep.size(), 1u);
  ASSERT_LE(sweep.size(), 4u);
  const Plan minimal = expected_plan(Strategy::kOptimal, 1);
  EXPECT_EQ(sweep.front()["budget_bytes"], minimal.min_feasible_bytes);
  EXPECT_EQ(sweep.back()["budget_bytes"], kTinyStoreAllPeak);
  EXPECT_DOUBLE_EQ(sweep.back()["overhead"].get<double>(), 0.0);
  for (std::size_t i = 0; i < sweep.size(); ++i) {
    EXPECT_LE(sweep[i]["peak_bytes"], sweep[i]["budget_bytes"]);
    if (i == 0) continue;
    EXPECT_GT(sweep[i]["budget_bytes"], sweep[i - 1]["budget_bytes"]);
    EXPECT_LE(sweep[i]["overhead"], sweep[i - 1]["overhead"]);
  }
}

TEST_F(CliTest, SweepTableWithDefaultSamples) {
  const CliResult r = run({graph_path_, "--sweep"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.out.find("sweep: the optimal frontier"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("overhead"), std::string::npos) << r.out;
}

TEST_F(CliTest, SweepValueIsOptionalWherever) {
  // `--sweep GRAPH`: GRAPH is not a number, so it stays the positional and N is 16.
  EXPECT_EQ(run({"--sweep", graph_path_, "--format", "json"}).code, kExitOk);
  const CliResult r = run({graph_path_, "--sweep=2", "--format", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_LE(Json::parse(r.out)["sweep"].size(), 2u);
}

TEST_F(CliTest, VerboseReportsProgressOnStderr) {
  const CliResult r = run({graph_path_, "--verbose", "--format", "json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.err.find("ckpt-plan: loaded " + graph_path_), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ckpt-plan: planned in"), std::string::npos) << r.err;
  EXPECT_NO_THROW(Json::parse(r.out)) << "stdout must stay one JSON object";
}

TEST_F(CliTest, EveryStrategyPlansTinyAtTheStoreAllPeak) {
  for (Strategy s : all_strategies()) {
    const std::string name(to_string(s));
    const CliResult r = run({graph_path_, "--strategy", name, "--format", "json"});
    ASSERT_TRUE(r.code == kExitOk || r.code == kExitInfeasible) << name << ": " << r.err;
    const Json json = Json::parse(r.out);
    EXPECT_EQ(json["strategy"], name);
    EXPECT_EQ(json["feasible"], r.code == kExitOk) << name;
    if (r.code == kExitOk) {
      EXPECT_LE(json["peak_bytes"], json["budget_bytes"]) << name;
    }
  }
}

// ---- The real binary, end to end on the bundled example graphs. ----

struct ProcessResult {
  int code = -1;
  std::string out;
};

ProcessResult run_binary(const std::string& args) {
  const std::string command = std::string("'") + CKPT_PLAN_EXE + "' " + args + " 2>/dev/null";
  ProcessResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) {
    result.out.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::vector<fs::path> example_graphs() {
  std::vector<fs::path> graphs;
  const fs::path dir = fs::path(CKPT_SOURCE_DIR) / "examples" / "graphs";
  if (!fs::is_directory(dir)) return graphs;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") graphs.push_back(entry.path());
  }
  std::sort(graphs.begin(), graphs.end());
  return graphs;
}

TEST(CliBinaryTest, EveryStrategyOnEveryExampleGraph) {
  if (std::string(CKPT_PLAN_EXE).empty()) GTEST_SKIP() << "ckpt-plan is not built (tools off)";
  const std::vector<fs::path> graphs = example_graphs();
  for (const char* name : {"mlp.json", "gpt2.json", "resnet50.json", "vgg16.json"}) {
    if (std::find(graphs.begin(), graphs.end(),
                  fs::path(CKPT_SOURCE_DIR) / "examples" / "graphs" / name) == graphs.end()) {
      std::printf("note: examples/graphs/%s is absent; not tested\n", name);
    }
  }
  if (graphs.empty()) GTEST_SKIP() << "no examples/graphs/*.json yet";
  for (const fs::path& graph : graphs) {
    for (Strategy s : all_strategies()) {
      SCOPED_TRACE(graph.filename().string() + " --strategy " + std::string(to_string(s)));
      const ProcessResult r =
          run_binary(fmt::format("'{}' --format json --strategy {}", graph.string(), to_string(s)));
      ASSERT_TRUE(r.code == kExitOk || r.code == kExitInfeasible) << "exit " << r.code;
      const Json json = Json::parse(r.out);
      EXPECT_EQ(json["strategy"], to_string(s));
      EXPECT_EQ(json["budget_bytes"], json["store_all_peak_bytes"]) << "the default budget";
      EXPECT_EQ(json["feasible"], r.code == kExitOk);
      if (r.code == kExitOk) {
        EXPECT_LE(json["peak_bytes"], json["budget_bytes"]);
      } else {
        EXPECT_GT(json["min_feasible_bytes"], json["budget_bytes"]);
      }
      if (s == Strategy::kOptimal) {
        EXPECT_EQ(r.code, kExitOk) << "store-all itself fits the store-all peak";
        EXPECT_NEAR(json["overhead"].get<double>(), 0.0, 1e-9);
      }
    }
  }
}

TEST(CliBinaryTest, TableAt40PercentAndInfeasibleExitCode) {
  if (std::string(CKPT_PLAN_EXE).empty()) GTEST_SKIP() << "ckpt-plan is not built (tools off)";
  const std::vector<fs::path> graphs = example_graphs();
  if (graphs.empty()) GTEST_SKIP() << "no examples/graphs/*.json yet";
  for (const fs::path& graph : graphs) {
    SCOPED_TRACE(graph.filename().string());
    const ProcessResult table = run_binary(fmt::format("'{}' --budget 40%", graph.string()));
    ASSERT_TRUE(table.code == kExitOk || table.code == kExitInfeasible) << "exit " << table.code;
    if (table.code == kExitOk) {
      EXPECT_NE(table.out.find("predicted peak"), std::string::npos);
    }
    // One byte is below what any schedule needs.
    EXPECT_EQ(run_binary(fmt::format("'{}' --budget 1", graph.string())).code, kExitInfeasible);
  }
}

TEST(CliBinaryTest, UnreadableFileExits1) {
  if (std::string(CKPT_PLAN_EXE).empty()) GTEST_SKIP() << "ckpt-plan is not built (tools off)";
  EXPECT_EQ(run_binary("/nonexistent/graph.json").code, kExitInputError);
}

}  // namespace
}  // namespace ckpt
