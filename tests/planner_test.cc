// Tests of the planner on hand-made graphs (each budget's reason in a comment), on the bundled
// example graphs and on hundreds of random chains and DAGs: every plan passes the simulator within
// its budget, the optimal overhead never rises with the budget, the least budget is reported
// exactly, and the optimal plan is never worse than a baseline at a budget the baseline meets.
#include "ckpt/planner.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <string>

#include "ckpt/error.h"
#include "ckpt/formats.h"
#include "ckpt/graph.h"
#include "ckpt/simulator.h"
#include "random_graphs.h"

namespace ckpt {
namespace {

Plan plan_at(const TrainingGraph& g, Strategy strategy, std::int64_t budget_bytes) {
  PlanOptions options;
  options.strategy = strategy;
  options.budget_bytes = budget_bytes;
  return plan(g, options);
}

// What every plan must satisfy; returns its simulation.
SimulationResult check_plan(const TrainingGraph& g, const Plan& p) {
  const SimulationResult r = simulate(g, p.schedule);
  EXPECT_TRUE(r.valid) << to_string(p.strategy) << ": " << r.error;
  EXPECT_EQ(r.peak_bytes, p.peak_bytes) << to_string(p.strategy);
  EXPECT_NEAR(r.compute_time_us, p.compute_time_us, 1e-6) << to_string(p.strategy);
  EXPECT_NEAR(p.baseline_time_us, g.baseline_time_us(), 1e-9);
  EXPECT_EQ(p.feasible, p.peak_bytes <= p.budget_bytes) << to_string(p.strategy);
  EXPECT_LE(p.min_feasible_bytes, p.peak_bytes) << to_string(p.strategy);
  // Not meeting the budget returns the strategy's least-memory schedule.
  if (!p.feasible) {
    EXPECT_EQ(p.peak_bytes, p.min_feasible_bytes) << to_string(p.strategy);
  }
  return r;
}

// x -> l1 -> l2 -> l3 -> loss; each layer keeps its input for its backward, activations are
// 1000 bytes. Store-all: the loss's backward runs with h1, h2, h3 and h3.grad live: 4000.
// l3's backward needs h2, h3.grad and makes h2.grad: 3000 under any schedule, so 3000 is the
// least budget, met by dropping h1 after l2 and recomputing l1 (5 us) before l2's backward.
struct FourLayers {
  TrainingGraph graph;
  ValueId h1, h2, h3;
};

FourLayers four_layers() {
  GraphBuilder b("four");
  const ValueId x = b.add_input("x", 100);
  const ValueId w = b.add_param("w", 100);
  FourLayers f;
  f.h1 = b.add_simple_op("l1", "linear", {x, w}, 1000, 5, 5, {x});
  f.h2 = b.add_simple_op("l2", "linear", {f.h1, w}, 1000, 7, 7, {f.h1});
  f.h3 = b.add_simple_op("l3", "linear", {f.h2, w}, 1000, 9, 9, {f.h2});
  b.add_simple_op("loss", "loss", {f.h3}, 4, 1, 1, {f.h3});
  f.graph = derive_training_graph(std::move(b).build());
  return f;
}

TEST(PlannerTest, FourLayersAtWorkedOutBudgets) {
  const FourLayers f = four_layers();
  const TrainingGraph& g = f.graph;
  const double baseline = g.baseline_time_us();  // 5+7+9+1 forward, 5+7+9+1 backward
  EXPECT_DOUBLE_EQ(baseline, 44);
  EXPECT_EQ(simulate(g, store_all_schedule(g)).peak_bytes, 4000);

  const Plan roomy = plan_at(g, Strategy::kOptimal, 4000);  // store-all fits
  check_plan(g, roomy);
  EXPECT_TRUE(roomy.feasible);
  EXPECT_DOUBLE_EQ(roomy.overhead(), 0);
  EXPECT_EQ(roomy.min_feasible_bytes, 3000);

  const Plan tight = plan_at(g, Strategy::kOptimal, 3000);  // recompute l1 once
  check_plan(g, tight);
  EXPECT_TRUE(tight.feasible);
  EXPECT_EQ(tight.peak_bytes, 3000);
  EXPECT_DOUBLE_EQ(tight.compute_time_us, baseline + 5);
  EXPECT_TRUE(tight.exact);
  ASSERT_EQ(tight.blocks.size(), 4u);
  EXPECT_EQ(tight.blocks[0].output, f.h1);
  EXPECT_EQ(tight.blocks[0].recomputations, 1);
  EXPECT_FALSE(tight.blocks[0].explanation.empty());

  const Plan too_tight = plan_at(g, Strategy::kOptimal, 2999);  // l3's backward needs 3000
  check_plan(g, too_tight);
  EXPECT_FALSE(too_tight.feasible);
  EXPECT_EQ(too_tight.min_feasible_bytes, 3000);
  EXPECT_EQ(too_tight.peak_bytes, 3000);

  const std::vector<FrontierPoint> frontier = pareto_frontier(g, PlanOptions{});
  ASSERT_EQ(frontier.size(), 2u);
  EXPECT_EQ(frontier[0].peak_bytes, 3000);
  EXPECT_DOUBLE_EQ(frontier[0].compute_time_us, 49);
  EXPECT_EQ(frontier[1].peak_bytes, 4000);
  EXPECT_DOUBLE_EQ(frontier[1].compute_time_us, 44);
}

TEST(PlannerTest, BaselinesOnFourLayers) {
  const FourLayers f = four_layers();
  // Memory-minimal recomputes everything from x for every backward: it fits 3000 as well, at
  // a higher cost than the optimal plan.
  const Plan minimal = plan_at(f.graph, Strategy::kMemoryMinimal, 3000);
  check_plan(f.graph, minimal);
  EXPECT_TRUE(minimal.feasible);
  EXPECT_GT(minimal.compute_time_us, 49);
  const Plan store_all = plan_at(f.graph, Strategy::kStoreAll, 3000);
  check_plan(f.graph, store_all);
  EXPECT_FALSE(store_all.feasible);
  EXPECT_EQ(store_all.min_feasible_bytes, 4000);
  for (Strategy s : {Strategy::kChenSqrt, Strategy::kChenGreedy, Strategy::kUniform}) {
    check_plan(f.graph, plan_at(f.graph, s, 3500));
  }
}

// A small value made inside a block (copy of h0, next to l1 in block {copy, l1}), read by that
// block and by the loss at the end: it is pinned, and the block can still be recomputed around it
// (the pinned value stays live and is not made again).
TEST(PlannerTest, BlockMakingAPinnedValueIsRecomputable) {
  GraphBuilder b("pinned");
  const ValueId x = b.add_input("x", 100);
  const ValueId w = b.add_param("w", 100);
  const ValueId h0 = b.add_simple_op("l0", "linear", {x, w}, 1000, 5, 5, {x});
  const ValueId labels = b.add_simple_op("labels", "copy", {h0}, 8, 1, 0, {});
  ValueId h = b.add_simple_op("l1", "linear", {h0, w, labels}, 1000, 5, 5, {h0});
  for (int i = 2; i < 6; ++i) {
    h = b.add_simple_op("l" + std::to_string(i), "linear", {h, w}, 1000, 5, 5, {h});
  }
  b.add_simple_op("loss", "loss", {h, labels}, 4, 1, 1, {h});
  const TrainingGraph g = derive_training_graph(std::move(b).build());
  const Plan least = plan_at(g, Strategy::kMemoryMinimal, 0);
  check_plan(g, least);
  ASSERT_GE(least.blocks.size(), 3u);
  EXPECT_EQ(least.blocks[1].forward_nodes.size(), 2u);  // {labels, l1}
  EXPECT_GT(least.blocks[1].recomputations, 0) << least.blocks[1].explanation;
  const Plan optimal = plan_at(g, Strategy::kOptimal, least.peak_bytes);
  check_plan(g, optimal);
  EXPECT_TRUE(optimal.feasible);
  EXPECT_LE(optimal.compute_time_us, least.compute_time_us);
}

TEST(PlannerTest, StrategyNamesRoundTrip) {
  ASSERT_EQ(all_strategies().size(), 6u);
  for (Strategy s : all_strategies()) EXPECT_EQ(strategy_from_string(to_string(s)), s);
  EXPECT_EQ(strategy_from_string("chen-sqrt"), Strategy::kChenSqrt);
  EXPECT_FALSE(strategy_from_string("rotor").has_value());
}

TEST(PlannerTest, BadOptionsAreUsageErrors) {
  const FourLayers f = four_layers();
  PlanOptions options;
  options.budget_bytes = -1;
  try {
    plan(f.graph, options);
    FAIL() << "a negative budget was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("budget_bytes"), std::string::npos) << e.what();
  }
  options.budget_bytes = 0;
  options.segments = -3;
  EXPECT_THROW(plan(f.graph, options), Error);
  options.segments = 0;
  for (int blocks : {-1, 2049}) {
    options.max_exact_blocks = blocks;
    try {
      plan(f.graph, options);
      FAIL() << "max_exact_blocks " << blocks << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUsage);
      EXPECT_NE(std::string(e.what()).find("max_exact_blocks"), std::string::npos) << e.what();
    }
  }
}

TEST(PlannerTest, PlansAreDeterministicAndReportProgress) {
  std::mt19937 rng(3);
  testing::RandomGraphOptions options;
  options.num_ops = 14;
  options.chain = false;
  const TrainingGraph g = testing::random_training_graph(rng, options);
  PlanOptions plan_options;
  plan_options.budget_bytes = simulate(g, store_all_schedule(g)).peak_bytes * 2 / 3;
  int lines = 0;
  plan_options.progress = [&](std::string_view line) {
    ++lines;
    EXPECT_FALSE(line.empty());
  };
  const Plan a = plan(g, plan_options);
  const Plan b = plan(g, plan_options);
  EXPECT_EQ(a.schedule.steps, b.schedule.steps);
  EXPECT_GE(lines, 4);  // blocks, modes, DP, emission: twice
}

// Many random graphs: every strategy at every budget; the optimal frontier's shape; the least
// budget, exactly; and the optimal plan no worse than any baseline that fits.
void check_graph(const TrainingGraph& g) {
  const SimulationResult store_all = simulate(g, store_all_schedule(g));
  const std::vector<FrontierPoint> frontier = pareto_frontier(g, PlanOptions{});
  ASSERT_FALSE(frontier.empty());
  for (std::size_t i = 1; i < frontier.size(); ++i) {
    EXPECT_LT(frontier[i - 1].peak_bytes, frontier[i].peak_bytes);
    EXPECT_GT(frontier[i - 1].compute_time_us, frontier[i].compute_time_us);
  }
  // The cheapest point costs plain backpropagation's time; its peak can be below store-all's when
  // recomputing something costs nothing (a view, a zero-time op).
  EXPECT_LE(frontier.back().peak_bytes, store_all.peak_bytes);
  EXPECT_NEAR(frontier.back().compute_time_us, store_all.compute_time_us, 1e-6);
  // The least budget: met exactly there, missed one byte below.
  const std::int64_t least = frontier.front().peak_bytes;
  const Plan at_least = plan_at(g, Strategy::kOptimal, least);
  check_plan(g, at_least);
  EXPECT_TRUE(at_least.feasible);
  EXPECT_EQ(at_least.min_feasible_bytes, least);
  const Plan below = plan_at(g, Strategy::kOptimal, least - 1);
  check_plan(g, below);
  EXPECT_FALSE(below.feasible);
  EXPECT_EQ(below.min_feasible_bytes, least);
  // A sweep from below the least budget to above store-all.
  std::vector<std::int64_t> budgets = {least / 2, least, store_all.peak_bytes,
                                       store_all.peak_bytes + 100};
  for (int i = 1; i < 6; ++i) budgets.push_back(least + (store_all.peak_bytes - least) * i / 6);
  std::sort(budgets.begin(), budgets.end());
  double previous_overhead = std::numeric_limits<double>::infinity();
  for (std::int64_t budget : budgets) {
    SCOPED_TRACE(::testing::Message() << "budget " << budget);
    const Plan optimal = plan_at(g, Strategy::kOptimal, budget);
    check_plan(g, optimal);
    if (optimal.feasible) {
      EXPECT_LE(optimal.overhead(), previous_overhead + 1e-12);
      previous_overhead = optimal.overhead();
      // The plan costs what the frontier says at this budget.
      const auto it =
          std::upper_bound(frontier.begin(), frontier.end(), budget,
                           [](std::int64_t b, const FrontierPoint& p) { return b < p.peak_bytes; });
      ASSERT_NE(it, frontier.begin());
      EXPECT_NEAR(optimal.compute_time_us, (it - 1)->compute_time_us, 1e-6);
    }
    for (Strategy strategy : all_strategies()) {
      if (strategy == Strategy::kOptimal) continue;
      const Plan baseline = plan_at(g, strategy, budget);
      check_plan(g, baseline);
      if (baseline.feasible) {
        EXPECT_TRUE(optimal.feasible) << to_string(strategy);
        EXPECT_LE(optimal.compute_time_us, baseline.compute_time_us + 1e-6) << to_string(strategy);
      }
    }
  }
}

TEST(PlannerTest, RandomGraphsEveryStrategyEveryBudget) {
  std::mt19937 rng(2026);
  for (int i = 0; i < 800; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 2 + i % 17;
    options.chain = i % 3 == 0;
    TrainingGraph g = testing::random_training_graph(rng, options, "random" + std::to_string(i));
    if (i % 5 == 4) g = testing::as_joint_graph(g);
    SCOPED_TRACE(::testing::Message() << "graph " << i << (g.derived() ? "" : " (joint)"));
    check_graph(g);
    if (HasFailure()) return;
  }
}

TEST(PlannerTest, SweepReturnsWhatPlanReturnsAtEachBudget) {
  std::mt19937 rng(77);
  for (int i = 0; i < 60; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 3 + i % 13;
    options.chain = i % 2 == 0;
    const TrainingGraph g = testing::random_training_graph(rng, options);
    const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
    const std::vector<std::int64_t> budgets = {
        0, store_all / 3, store_all / 2, store_all * 3 / 4, store_all, store_all * 2};
    for (Strategy strategy : all_strategies()) {
      PlanOptions plan_options;
      plan_options.strategy = strategy;
      const std::vector<Plan> sweep = plan_sweep(g, plan_options, budgets);
      ASSERT_EQ(sweep.size(), budgets.size());
      for (std::size_t b = 0; b < budgets.size(); ++b) {
        const Plan single = plan_at(g, strategy, budgets[b]);
        check_plan(g, sweep[b]);
        EXPECT_EQ(sweep[b].budget_bytes, budgets[b]);
        EXPECT_EQ(sweep[b].schedule.steps, single.schedule.steps)
            << "graph " << i << " " << to_string(strategy) << " budget " << budgets[b];
        EXPECT_EQ(sweep[b].min_feasible_bytes, single.min_feasible_bytes);
      }
    }
  }
}

TEST(PlannerTest, ApproximateModeSearchStaysValidAndNoWorseThanBaselines) {
  // With at most 2^1 keep/drop choices searched exhaustively, most blocks of these DAGs are
  // searched greedily: the plan says so, and still beats the baselines that fit.
  std::mt19937 rng(99);
  int approximate = 0;
  for (int i = 0; i < 40; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 12;
    options.chain = false;
    const TrainingGraph g = testing::random_training_graph(rng, options);
    const std::int64_t budget = simulate(g, store_all_schedule(g)).peak_bytes * 3 / 4;
    PlanOptions plan_options;
    plan_options.budget_bytes = budget;
    plan_options.max_exhaustive_block_values = 1;
    const Plan p = plan(g, plan_options);
    check_plan(g, p);
    if (!p.exact) {
      ++approximate;
      EXPECT_NE(p.note.find("greedily"), std::string::npos) << p.note;
      if (p.feasible) {
        EXPECT_NE(p.note.find("could save at most"), std::string::npos) << p.note;
      }
    }
    for (Strategy strategy : {Strategy::kChenSqrt, Strategy::kChenGreedy, Strategy::kUniform,
                              Strategy::kMemoryMinimal}) {
      const Plan baseline = plan_at(g, strategy, budget);
      if (baseline.feasible && p.feasible) {
        EXPECT_LE(p.compute_time_us, baseline.compute_time_us + 1e-6) << to_string(strategy);
      }
    }
  }
  EXPECT_GT(approximate, 10);
}

// A random chain of `ops` single-op blocks without in-place ops, views or side effects.
TrainingGraph plain_chain(std::mt19937& rng, int ops) {
  testing::RandomGraphOptions options;
  options.num_ops = ops;
  options.chain = true;
  options.in_place_probability = 0;
  options.view_probability = 0;
  options.side_effect_probability = 0;
  return testing::random_training_graph(rng, options);
}

// max_exact_blocks moves the line between the exact and the two-level DP: on chains of 40 to 65
// blocks the two-level plan is valid, marked approximate, never cheaper than the exact one, and
// the least budget is the same, met by the two-level plan too (the least-peak DP,
// planning::LeastPeakSolver).
TEST(PlannerTest, MaxExactBlocksChoosesTheDp) {
  std::mt19937 rng(21);
  for (int graph = 0; graph < 6; ++graph) {
    SCOPED_TRACE(graph);
    const TrainingGraph g = plain_chain(rng, 40 + 5 * graph);
    const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
    for (int percent : {0, 30, 60, 90}) {
      PlanOptions exact;
      exact.budget_bytes = store_all * percent / 100;
      PlanOptions two_level = exact;
      two_level.max_exact_blocks = 0;
      two_level.max_bounded_work = 0;
      const Plan a = plan(g, exact);
      const Plan b = plan(g, two_level);
      check_plan(g, a);
      check_plan(g, b);
      EXPECT_TRUE(a.exact) << a.note;
      EXPECT_FALSE(b.exact);
      EXPECT_NE(b.note.find("two-level"), std::string::npos) << b.note;
      EXPECT_EQ(a.min_feasible_bytes, b.min_feasible_bytes);
      EXPECT_EQ(a.feasible, b.feasible);
      if (a.feasible) {
        EXPECT_GE(b.compute_time_us, a.compute_time_us - 1e-6);
      }
      if (percent == 0) {  // and the two-level plan meets the least budget
        two_level.budget_bytes = a.min_feasible_bytes;
        const Plan at_least = plan(g, two_level);
        check_plan(g, at_least);
        EXPECT_TRUE(at_least.feasible);
      }
    }
  }
}

// compute_time_lower_bound never exceeds the exact plan's time; without merging (more points than
// any frontier has) it is the exact plan's time; on a two-level chain it is below the plan's.
TEST(PlannerTest, LowerBoundIsBelowTheOptimumAndTightWithoutMerging) {
  std::mt19937 rng(33);
  int compared = 0;
  for (int i = 0; i < 40; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 3 + i % 10;
    options.chain = i % 2 == 0;
    const TrainingGraph g = testing::random_training_graph(rng, options);
    const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
    for (int percent : {30, 50, 70, 100}) {
      PlanOptions plan_options;
      plan_options.budget_bytes = store_all * percent / 100;
      const Plan exact = plan(g, plan_options);
      if (!exact.feasible || !exact.exact) continue;
      ++compared;
      const std::optional<double> loose = compute_time_lower_bound(g, plan_options, 2);
      const std::optional<double> tight = compute_time_lower_bound(g, plan_options, 1 << 20);
      ASSERT_TRUE(loose && tight) << "graph " << i << " at " << percent << "%";
      EXPECT_LE(*loose, exact.compute_time_us + 1e-6) << "graph " << i << " at " << percent << "%";
      EXPECT_NEAR(*tight, exact.compute_time_us, 1e-6) << "graph " << i << " at " << percent << "%";
    }
  }
  EXPECT_GT(compared, 40);
  std::mt19937 chain_rng(9);
  const TrainingGraph g = plain_chain(chain_rng, 120);
  PlanOptions half;
  half.budget_bytes = 0;
  half.max_bounded_work = 0;  // the two-level plan itself
  const std::int64_t least = plan(g, half).min_feasible_bytes;
  const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
  ASSERT_LT(least, store_all);  // else store-all would be the plan, exact by itself
  half.budget_bytes = (least + store_all) / 2;
  const Plan approximate = plan(g, half);
  EXPECT_TRUE(approximate.feasible);
  EXPECT_FALSE(approximate.exact) << approximate.note << " least " << least;
  const std::optional<double> bound = compute_time_lower_bound(g, half, 8);
  ASSERT_TRUE(bound);
  EXPECT_LE(*bound, approximate.compute_time_us + 1e-6);
  EXPECT_THROW(compute_time_lower_bound(g, half, 1), Error);
}

// The bounded exact DP (the exact DP restricted to what could beat a plan already known) finds
// the exact DP's optimum: random chains and DAGs with every feature the generator has (a fifth
// read as joint graphs), forced off the exact DP (max_exact_blocks 0) with no work limit.
TEST(PlannerTest, BoundedExactDpFindsTheOptimum) {
  std::mt19937 rng(61);
  int compared = 0, bounded = 0;
  for (int i = 0; i < 120; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 8 + i % 30;
    options.chain = i % 3 != 0;
    TrainingGraph g = testing::random_training_graph(rng, options);
    if (i % 5 == 4) g = testing::as_joint_graph(g);  // Checkmate form: backward placed apart
    const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
    PlanOptions exact;
    exact.budget_bytes = 0;
    const std::int64_t least = plan(g, exact).min_feasible_bytes;
    for (std::int64_t budget : {least, store_all * 30 / 100, store_all * 50 / 100,
                                store_all * 70 / 100, store_all * 90 / 100}) {
      SCOPED_TRACE(fmt::format("graph {} ({} ops) at {} bytes", i, options.num_ops, budget));
      exact.budget_bytes = budget;
      PlanOptions from_two_level = exact;
      from_two_level.max_exact_blocks = 0;
      from_two_level.max_bounded_work = std::numeric_limits<double>::infinity();
      const Plan a = plan(g, exact);
      const Plan b = plan(g, from_two_level);
      check_plan(g, b);
      EXPECT_EQ(a.feasible, b.feasible);
      EXPECT_EQ(a.min_feasible_bytes, b.min_feasible_bytes);
      EXPECT_EQ(a.exact, b.exact) << b.note;
      if (!a.feasible) continue;
      ++compared;
      bounded += b.note.find("bounded exact DP") != std::string::npos;
      EXPECT_NEAR(b.compute_time_us, a.compute_time_us, 1e-6 * a.compute_time_us) << b.note;
    }
  }
  EXPECT_GT(compared, 300);
  EXPECT_GT(bounded, 150);  // the rest are chains of at most 3 blocks (always single-level)
}

// In a sweep the bounded exact DP's work limit is shared by the budgets: without a limit every
// plan of a 60-block chain forced onto the two-level path is the exact one; with a limit below
// any single solve's work none is exact.
TEST(PlannerTest, SweepSharesTheBoundedWorkLimit) {
  std::mt19937 rng(71);
  const TrainingGraph g = plain_chain(rng, 60);
  const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
  std::vector<std::int64_t> budgets;
  for (int percent : {30, 45, 60, 75, 90}) budgets.push_back(store_all * percent / 100);
  PlanOptions exact;
  const std::vector<Plan> a = plan_sweep(g, exact, budgets);
  PlanOptions unlimited;
  unlimited.max_exact_blocks = 0;
  unlimited.max_bounded_work = std::numeric_limits<double>::infinity();
  const std::vector<Plan> b = plan_sweep(g, unlimited, budgets);
  PlanOptions limited = unlimited;
  limited.max_bounded_work = 10;
  const std::vector<Plan> c = plan_sweep(g, limited, budgets);
  for (std::size_t i = 0; i < budgets.size(); ++i) {
    SCOPED_TRACE(budgets[i]);
    ASSERT_TRUE(a[i].feasible);
    EXPECT_TRUE(b[i].exact) << b[i].note;
    EXPECT_NEAR(b[i].compute_time_us, a[i].compute_time_us, 1e-9 * a[i].compute_time_us);
    EXPECT_FALSE(c[i].exact) << c[i].note;
    EXPECT_GE(c[i].compute_time_us, a[i].compute_time_us * (1 - 1e-9));
  }
}

// A chain like ckpt-bench's synthetic one: ops of 1..64 MiB and 10..500 us, linear-like ops
// saving their input and activation-like ones their output.
TrainingGraph alternating_chain(int ops, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int64_t> mib(1, 64);
  std::uniform_real_distribution<double> us(10, 500);
  GraphBuilder b("alternating");
  ValueId x = b.add_input("x", mib(rng) << 20);
  const ValueId w = b.add_param("w", 4 << 20);
  for (int i = 0; i < ops; ++i) {
    const bool linear = i % 2 == 0;
    std::vector<ValueId> inputs = {x};
    if (linear) inputs.push_back(w);
    x = b.add_simple_op(fmt::format("op{}", i), linear ? "linear" : "gelu", inputs,
                        i + 1 == ops ? 4 : mib(rng) << 20, us(rng), us(rng),
                        linear ? std::vector<ValueId>{x} : std::vector<ValueId>{kNoId});
  }
  return derive_training_graph(std::move(b).build());
}

// The bounded exact DP gives up at max_bounded_bytes (its work estimate does not bound its
// frontiers), and the plan is two-level; with room it is exact.
TEST(PlannerTest, BoundedExactDpGivesUpAtItsMemoryLimit) {
  const TrainingGraph g = alternating_chain(300, 3);
  PlanOptions options;
  options.budget_bytes = simulate(g, store_all_schedule(g)).peak_bytes * 4 / 10;  // 1.8 MB
  options.max_bounded_work = std::numeric_limits<double>::infinity();
  options.max_bounded_bytes = std::int64_t{1} << 20;
  const Plan capped = plan(g, options);
  check_plan(g, capped);
  EXPECT_FALSE(capped.exact);
  EXPECT_NE(capped.note.find("two-level"), std::string::npos) << capped.note;
  options.max_bounded_bytes = std::int64_t{1} << 32;
  const Plan roomy = plan(g, options);
  EXPECT_TRUE(roomy.exact) << roomy.note;
  EXPECT_LE(roomy.compute_time_us, capped.compute_time_us * (1 + 1e-9));
  options.max_bounded_bytes = 1000;
  EXPECT_THROW(plan(g, options), Error);
}

TEST(PlannerTest, LongChainUsesTheTwoLevelDp) {
  // 200 single-op blocks: more than the single-level DP takes; the bounded exact DP is off.
  std::mt19937 rng(8);
  const TrainingGraph g = plain_chain(rng, 200);
  const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
  for (int percent : {20, 50, 80}) {
    const std::int64_t budget = store_all * percent / 100;
    PlanOptions options;
    options.budget_bytes = budget;
    options.max_bounded_work = 0;
    const Plan p = plan(g, options);
    check_plan(g, p);
    EXPECT_FALSE(p.exact);
    EXPECT_NE(p.note.find("two-level"), std::string::npos) << p.note;
    for (Strategy strategy : {Strategy::kChenSqrt, Strategy::kChenGreedy, Strategy::kUniform,
                              Strategy::kMemoryMinimal}) {
      const Plan baseline = plan_at(g, strategy, budget);
      check_plan(g, baseline);
      if (baseline.feasible) {
        EXPECT_TRUE(p.feasible);
        EXPECT_LE(p.compute_time_us, baseline.compute_time_us + 1e-6) << to_string(strategy);
      }
    }
  }
}

// VGG-16's convolutions read only their input for their backward. With backward nodes placed with
// their ops, the input of each convolution block is held through that block's whole backward;
// placed in the earliest block (planning::BackwardPlacement::kEarliest), it is recomputed just
// before the convolution's backward. The least budget of the two classes together: four
// 392 MiB tensors at the first ReLU's backward become three (1,233,125,632 bytes, 44.7% of
// store-all, against 1,644,167,424 with the first class alone).
TEST(PlannerTest, Vgg16LeastBudgetComesFromEitherBackwardPlacement) {
  const std::filesystem::path path =
      std::filesystem::path(CKPT_SOURCE_DIR) / "examples" / "graphs" / "vgg16.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no examples/graphs/vgg16.json";
  const TrainingGraph g = load_graph(path.string()).training;
  const Plan least = plan_at(g, Strategy::kOptimal, 1);
  EXPECT_FALSE(least.feasible);
  EXPECT_EQ(least.min_feasible_bytes, 1'233'125'632);
  const Plan fits = plan_at(g, Strategy::kOptimal, least.min_feasible_bytes);
  check_plan(g, fits);
  EXPECT_TRUE(fits.feasible);
  EXPECT_TRUE(fits.exact) << fits.note;
  EXPECT_FALSE(plan_at(g, Strategy::kOptimal, least.min_feasible_bytes - 1).feasible);
  // The frontier starts at the same least budget.
  const std::vector<FrontierPoint> frontier = pareto_frontier(g, PlanOptions{});
  ASSERT_FALSE(frontier.empty());
  EXPECT_EQ(frontier.front().peak_bytes, least.min_feasible_bytes);
}

TEST(PlannerTest, ExampleGraphs) {
  const std::filesystem::path dir = std::filesystem::path(CKPT_SOURCE_DIR) / "examples" / "graphs";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no examples/graphs";
  int graphs = 0;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    SCOPED_TRACE(path.filename().string());
    const TrainingGraph g = load_graph(path.string()).training;
    ++graphs;
    const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
    for (int percent : {40, 70}) {
      const Plan optimal = plan_at(g, Strategy::kOptimal, store_all * percent / 100);
      check_plan(g, optimal);
      EXPECT_EQ(optimal.blocks.empty(), false);
      for (Strategy strategy : all_strategies()) {
        if (strategy == Strategy::kOptimal) continue;
        const Plan baseline = plan_at(g, strategy, store_all * percent / 100);
        check_plan(g, baseline);
        if (baseline.feasible) {
          EXPECT_LE(optimal.compute_time_us, baseline.compute_time_us + 1e-6)
              << to_string(strategy);
        }
      }
    }
  }
  EXPECT_GE(graphs, 4);
}

}  // namespace
}  // namespace ckpt
