// Scale: a transformer-like graph of many ops (tests/scale_graph.h) parses, validates, derives
// its training graph and plans with every strategy within this machine's limits, the optimal DP
// using its documented approximation (a coarsened chain; Plan::exact false, with a note). A
// 5,000-op graph runs in every test run. The 100,000-op run of the hardening issue needs
// CKPT_SCALE_OPS=100000 (scripts/ci-hardening sets it): in-process it times each stage, then runs
// the real ckpt-plan on the file and checks its wall time and peak memory against
// CKPT_SCALE_MAX_SECONDS and CKPT_SCALE_MAX_RSS_MIB. The figures go to docs/benchmarks.md.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ckpt/formats.h"
#include "ckpt/planner.h"
#include "ckpt/simulator.h"
#include "process_util.h"
#include "scale_graph.h"

namespace ckpt {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

long env_number(const char* name, long fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtol(text, nullptr, 10) : fallback;
}

struct Figures {
  std::size_t file_bytes = 0;
  int training_nodes = 0;
  int training_values = 0;
  double generate_s = 0, write_s = 0, load_s = 0;
  std::vector<std::pair<Strategy, double>> plan_s;
  Plan optimal;
};

// Generates, writes, reads back (parse + validate + derive) and plans at half the store-all peak
// with every strategy, checking each plan with the simulator. Every step is timed.
Figures run_in_process(int ops, const fs::path& file) {
  Figures figures;
  auto start = Clock::now();
  const Graph graph = testing::make_scale_graph({.target_ops = ops});
  figures.generate_s = seconds_since(start);
  EXPECT_EQ(graph.num_ops(), ops);

  start = Clock::now();
  const std::string text = to_native_json(graph);
  std::ofstream(file, std::ios::binary) << text;
  figures.write_s = seconds_since(start);
  figures.file_bytes = text.size();

  start = Clock::now();
  const LoadedGraph loaded = load_graph(file.string());
  figures.load_s = seconds_since(start);
  figures.training_nodes = loaded.training.num_nodes();
  figures.training_values = loaded.training.num_values();
  EXPECT_EQ(loaded.forward->num_ops(), ops);

  const SimulationResult store_all = simulate(loaded.training, store_all_schedule(loaded.training));
  EXPECT_TRUE(store_all.valid) << store_all.error;
  for (Strategy strategy : all_strategies()) {
    SCOPED_TRACE(std::string(to_string(strategy)));
    start = Clock::now();
    const Plan plan = ckpt::plan(loaded.training,
                                 {.strategy = strategy, .budget_bytes = store_all.peak_bytes / 2});
    figures.plan_s.emplace_back(strategy, seconds_since(start));
    const SimulationResult check = simulate(loaded.training, plan.schedule);
    EXPECT_TRUE(check.valid) << check.error;
    EXPECT_EQ(check.peak_bytes, plan.peak_bytes);
    if (plan.feasible) {
      EXPECT_LE(check.peak_bytes, store_all.peak_bytes / 2);
    }
    if (strategy != Strategy::kStoreAll) {
      EXPECT_TRUE(plan.feasible);
    }
    if (strategy == Strategy::kOptimal) figures.optimal = plan;
  }
  return figures;
}

std::string plan_times(const Figures& f) {
  std::string text;
  for (const auto& [strategy, seconds] : f.plan_s) {
    text += fmt::format("{}{} {:.2f} s", text.empty() ? "" : ", ", to_string(strategy), seconds);
  }
  return text;
}

class ScaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("ckpt_scale_test_{}", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // ckpt-plan FILE --budget 50% --format json [--strategy S], with the limits of the environment.
  testing::ProcessRun run_ckpt_plan(const fs::path& file, const std::string& strategy) const {
    testing::ProcessOptions options;
    options.timeout_s = static_cast<double>(env_number("CKPT_SCALE_MAX_SECONDS", 600));
    std::vector<std::string> args = {file.string(), "--budget", "50%", "--format", "json"};
    if (!strategy.empty()) args.insert(args.end(), {"--strategy", strategy});
    return testing::run_process(CKPT_PLAN_EXE, args, options);
  }

  // Exit 0, a feasible plan within the budget, within the time and memory limits.
  static void expect_planned_within_limits(const testing::ProcessRun& run) {
    ASSERT_FALSE(run.timed_out) << "ckpt-plan took longer than CKPT_SCALE_MAX_SECONDS";
    ASSERT_EQ(run.exit_code, 0) << run.err << " (signal " << run.signal << ")";
    const nlohmann::json report = nlohmann::json::parse(run.out);
    EXPECT_EQ(report["feasible"], true);
    EXPECT_LE(report["peak_bytes"].get<std::int64_t>(), report["budget_bytes"].get<std::int64_t>());
    const long max_rss_mib = env_number("CKPT_SCALE_MAX_RSS_MIB", 8192);
    EXPECT_LE(run.max_rss_bytes, static_cast<std::int64_t>(max_rss_mib) << 20);
  }

  fs::path dir_;
};

TEST_F(ScaleTest, FiveThousandOpsParseValidateAndPlan) {
  const Figures f = run_in_process(5000, dir_ / "scale5000.json");
  std::printf("scale 5000 ops: load %.2f s; plan %s\n", f.load_s, plan_times(f).c_str());
}

TEST_F(ScaleTest, LargeGraphThroughCkptPlan) {
  const long ops = env_number("CKPT_SCALE_OPS", 0);
  if (ops <= 0) GTEST_SKIP() << "set CKPT_SCALE_OPS=100000 to run (scripts/ci-hardening does)";
  const fs::path file = dir_ / fmt::format("scale{}.json", ops);
  const Figures f = run_in_process(static_cast<int>(ops), file);
  EXPECT_FALSE(f.optimal.exact) << "a chain this long is planned with the coarsened DP";
  std::printf(
      "scale: %ld ops (%d training nodes, %d values), file %.1f MiB\n"
      "  in-process: generate %.2f s, write %.2f s, load (parse + validate + derive) %.2f s\n"
      "  plan at 50%% of store-all: %s\n"
      "  optimal: overhead %.2f%%, %s\n",
      ops, f.training_nodes, f.training_values, static_cast<double>(f.file_bytes) / (1 << 20),
      f.generate_s, f.write_s, f.load_s, plan_times(f).c_str(), 100 * f.optimal.overhead(),
      f.optimal.note.c_str());
  if (std::string(CKPT_PLAN_EXE).empty()) GTEST_SKIP() << "ckpt-plan is not built (tools off)";
  for (const char* strategy : {"optimal", "chen-sqrt"}) {
    SCOPED_TRACE(strategy);
    const testing::ProcessRun run = run_ckpt_plan(file, strategy);
    expect_planned_within_limits(run);
    std::printf("  ckpt-plan --budget 50%% --strategy %s: %.2f s wall, %.0f MiB peak RSS\n",
                strategy, run.wall_s, static_cast<double>(run.max_rss_bytes) / (1 << 20));
  }
}

}  // namespace
}  // namespace ckpt
