// Brute-force checks of the optimal planner on small random graphs. A plain recursive search
// enumerates every choice tree of the class (every mode of every kAll, every split of every
// kCheckpoint, with the keep modes unpruned), emits and simulates each tree, and the DP's plan must
// cost exactly the best tree's time at every budget. For tiny chains a Dijkstra search over all
// schedules (any order of computes and frees) shows how close the class comes to the true optimum.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <tuple>

#include "ckpt/planner.h"
#include "ckpt/simulator.h"
#include "memory_tracker.h"
#include "planner_internal.h"
#include "random_graphs.h"

namespace ckpt {
namespace {

using planning::ChainModel;
using planning::Tree;
using planning::TreeNode;

// Appends `part` to `into`; returns the index its root got.
int append_tree(Tree& into, const Tree& part) {
  const int offset = static_cast<int>(into.nodes.size());
  for (TreeNode node : part.nodes) {
    if (node.first >= 0) node.first += offset;
    if (node.second >= 0) node.second += offset;
    into.nodes.push_back(node);
  }
  return part.root + offset;
}

// Every tree of the class for C(s, t, hold), independently of the DP. Returns false when there
// are more than `limit`.
class TreeEnumerator {
 public:
  TreeEnumerator(const ChainModel& model, std::size_t limit) : model_(model), limit_(limit) {}

  bool enumerate(int s, int t, bool hold, std::vector<Tree>& out) {
    const planning::BlockModel& block = model_.blocks[static_cast<std::size_t>(s)];
    for (int m = 0; m < static_cast<int>(block.modes.size()); ++m) {
      const planning::AllTerms terms = planning::all_terms(model_, s, t, hold, m);
      if (!terms.valid) continue;
      TreeNode node{.kind = TreeNode::Kind::kAll, .s = s, .t = t, .hold = hold, .mode = m};
      if (s == t) {
        Tree tree;
        tree.nodes.push_back(node);
        tree.root = 0;
        out.push_back(std::move(tree));
        if (out.size() > limit_) return false;
        continue;
      }
      std::vector<Tree> subs;
      if (!enumerate(s + 1, t, terms.sub_hold, subs)) return false;
      for (const Tree& sub : subs) {
        Tree tree;
        node.first = append_tree(tree, sub);
        tree.nodes.push_back(node);
        tree.root = static_cast<int>(tree.nodes.size()) - 1;
        out.push_back(std::move(tree));
        if (out.size() > limit_) return false;
      }
    }
    for (int split = s + 1; split <= t; ++split) {
      if (!planning::sweep_terms(model_, s, split, t).valid) continue;
      std::vector<Tree> later, earlier;
      if (!enumerate(split, t, false, later) || !enumerate(s, split - 1, hold, earlier)) {
        return false;
      }
      for (const Tree& a : later) {
        for (const Tree& b : earlier) {
          Tree tree;
          TreeNode node{
              .kind = TreeNode::Kind::kCheckpoint, .s = s, .t = t, .hold = hold, .split = split};
          node.first = append_tree(tree, a);
          node.second = append_tree(tree, b);
          tree.nodes.push_back(node);
          tree.root = static_cast<int>(tree.nodes.size()) - 1;
          out.push_back(std::move(tree));
          if (out.size() > limit_) return false;
        }
      }
    }
    return true;
  }

 private:
  const ChainModel& model_;
  std::size_t limit_;
};

struct ClassPoint {
  std::int64_t peak_bytes;
  double time_us;
};

// Adds the peak and time of each tree, checked against the simulator.
void add_points(const TrainingGraph& g, const ChainModel& model, const std::vector<Tree>& trees,
                std::vector<ClassPoint>& points) {
  for (const Tree& tree : trees) {
    const planning::TreeValue value = planning::evaluate_tree(model, tree);
    EXPECT_TRUE(value.valid);
    const SimulationResult simulated = simulate(g, planning::emit_tree(model, tree));
    EXPECT_TRUE(simulated.valid) << simulated.error;
    EXPECT_EQ(simulated.peak_bytes, value.peak_bytes);
    EXPECT_NEAR(simulated.compute_time_us, value.time_us, 1e-6);
    points.push_back({value.peak_bytes, value.time_us});
  }
}

// Peak and time of every tree of the class, each checked against the simulator: the trees over
// both chains the optimal planner solves (planning::BackwardPlacement).
std::vector<ClassPoint> class_points(const TrainingGraph& g, bool* too_many) {
  std::vector<ClassPoint> points;
  *too_many = false;
  for (planning::BackwardPlacement placement :
       {planning::BackwardPlacement::kWithItsOp, planning::BackwardPlacement::kEarliest}) {
    planning::ModelOptions options;
    options.prune_dominated = false;
    const ChainModel model =
        planning::build_chain_model(g, planning::decompose_into_blocks(g, placement), options);
    std::vector<Tree> trees;
    TreeEnumerator enumerator(model, 4000);
    *too_many = !enumerator.enumerate(0, model.num_blocks() - 1, false, trees);
    if (*too_many) return {};
    add_points(g, model, trees, points);
  }
  return points;
}

// The least time of the class at a budget (infinity when nothing fits).
double class_best(const std::vector<ClassPoint>& points, std::int64_t budget_bytes) {
  double best = std::numeric_limits<double>::infinity();
  for (const ClassPoint& p : points) {
    if (p.peak_bytes <= budget_bytes) best = std::min(best, p.time_us);
  }
  return best;
}

Plan optimal_plan(const TrainingGraph& g, std::int64_t budget_bytes) {
  PlanOptions options;
  options.budget_bytes = budget_bytes;
  return plan(g, options);
}

TEST(PlannerBruteForceTest, DpMatchesEveryTreeOfTheClass) {
  std::mt19937 rng(11);
  int graphs = 0;
  int budgets = 0;
  for (int i = 0; graphs < 150 && i < 1000; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 2 + i % 11;  // up to 12 ops
    options.chain = i % 2 == 0;
    const TrainingGraph g = testing::random_training_graph(rng, options);
    bool too_many = false;
    const std::vector<ClassPoint> points = class_points(g, &too_many);
    if (too_many) continue;
    ++graphs;
    SCOPED_TRACE(::testing::Message() << "graph " << i << " with " << g.num_nodes() << " nodes");
    const SimulationResult store_all = simulate(g, store_all_schedule(g));
    std::set<std::int64_t> peaks;
    std::int64_t least = store_all.peak_bytes;
    for (const ClassPoint& p : points) {
      peaks.insert(p.peak_bytes);
      least = std::min(least, p.peak_bytes);
    }
    // At every peak some tree reaches, and one byte below it, the DP finds the best tree.
    for (std::int64_t peak : peaks) {
      for (std::int64_t budget : {peak - 1, peak}) {
        const Plan p = optimal_plan(g, budget);
        const double best = class_best(points, budget);
        ++budgets;
        if (budget >= store_all.peak_bytes) {
          EXPECT_TRUE(p.feasible);
          EXPECT_NEAR(p.compute_time_us, store_all.compute_time_us, 1e-6);
          EXPECT_LE(p.compute_time_us, best + 1e-6);
        } else if (best == std::numeric_limits<double>::infinity()) {
          EXPECT_FALSE(p.feasible) << "budget " << budget;
        } else {
          ASSERT_TRUE(p.feasible) << "budget " << budget;
          EXPECT_NEAR(p.compute_time_us, best, 1e-6) << "budget " << budget;
        }
        EXPECT_EQ(p.min_feasible_bytes, least);
      }
    }
    if (HasFailure()) return;
  }
  EXPECT_GE(graphs, 100);
  std::printf("[ brute force ] %d graphs, %d budgets\n", graphs, budgets);
}

TEST(PlannerBruteForceTest, RelaxedModesBoundTheExhaustiveSearch) {
  // The greedy mode search's gap bound is sound: the DP over the relaxed model (a fictitious
  // mode no worse than any real one) never costs more than the exhaustive plan.
  std::mt19937 rng(21);
  int checked = 0;
  for (int i = 0; i < 80; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 6 + i % 8;
    options.chain = false;
    const TrainingGraph g = testing::random_training_graph(rng, options);
    planning::ModelOptions greedy;
    greedy.max_exhaustive_groups = 0;
    const ChainModel model =
        planning::build_chain_model(g, planning::decompose_into_blocks(g), greedy);
    if (!model.approximate()) continue;
    const ChainModel relaxed = planning::relaxed_model(model);
    const planning::ChainDp bound(relaxed, planning::DpOptions{});
    const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
    for (std::int64_t budget : {store_all / 2, store_all * 3 / 4, store_all - 1}) {
      const Plan exact = optimal_plan(g, budget);
      if (!exact.feasible) continue;
      const auto& frontier = bound.frontier();
      auto it = std::upper_bound(
          frontier.begin(), frontier.end(), budget,
          [](std::int64_t b, const planning::DpPoint& p) { return b < p.peak_bytes; });
      ASSERT_NE(it, frontier.begin()) << "graph " << i << ": the bound finds nothing that fits";
      EXPECT_LE((it - 1)->time_us, exact.compute_time_us + 1e-6) << "graph " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
}

// The bounded exact DP's bounds (the per-block times, the memory at the turn of the first pass,
// the prefix's memory under each point) are sound and tight: with the ceiling at exactly the
// optimum's time (no slack at all) it still rebuilds a tree of that time, and with the ceiling
// just below it finds none. Its work estimate is 0 below the chain's least time, and it gives up
// at max_points.
TEST(PlannerBruteForceTest, BoundedDpFindsTheOptimumAtAZeroSlackCeiling) {
  std::mt19937 rng(83);
  int checked = 0;
  for (int i = 0; i < 400; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 6 + i % 40;
    options.chain = i % 3 != 0;
    TrainingGraph g = testing::random_training_graph(rng, options);
    if (i % 5 == 4) g = testing::as_joint_graph(g);
    const ChainModel model = planning::build_chain_model(g, planning::decompose_into_blocks(g),
                                                         planning::ModelOptions{});
    const planning::ChainDp full(model, planning::DpOptions{});
    const std::int64_t store_all = simulate(g, store_all_schedule(g)).peak_bytes;
    for (std::int64_t budget : {full.min_peak(), store_all * 3 / 10, store_all / 2,
                                store_all * 7 / 10, store_all * 9 / 10}) {
      const Tree best = full.reconstruct(budget);
      if (best.root < 0) continue;
      const double optimum = planning::evaluate_tree(model, best).time_us;
      SCOPED_TRACE(::testing::Message()
                   << "graph " << i << " at " << budget << " bytes, optimum " << optimum);
      planning::DpOptions bounded;
      bounded.cap_bytes = budget;
      bounded.time_ceiling_us = optimum;
      const planning::ChainDp at(model, bounded);
      ASSERT_FALSE(at.gave_up());
      const Tree tree = at.reconstruct(budget);
      ASSERT_GE(tree.root, 0);
      const planning::TreeValue value = planning::evaluate_tree(model, tree);
      EXPECT_LE(value.peak_bytes, budget);
      EXPECT_NEAR(value.time_us, optimum, 1e-9 * optimum);
      bounded.time_ceiling_us = optimum * (1 - 1e-6);
      EXPECT_LT(planning::ChainDp(model, bounded).reconstruct(budget).root, 0);
      EXPECT_GT(planning::bounded_dp_work(model, budget, optimum), 0);
      ++checked;
    }
    // Below the least time any tree of the chain can take: nothing to try.
    EXPECT_EQ(planning::bounded_dp_work(model, store_all, 0), 0);
  }
  EXPECT_GT(checked, 1000);
  std::mt19937 chain_rng(5);
  testing::RandomGraphOptions options;
  options.num_ops = 40;
  const TrainingGraph g = testing::random_training_graph(chain_rng, options);
  const ChainModel model =
      planning::build_chain_model(g, planning::decompose_into_blocks(g), planning::ModelOptions{});
  planning::DpOptions tiny;
  tiny.time_ceiling_us = 1e12;
  tiny.max_points = 1;
  EXPECT_TRUE(planning::ChainDp(model, tiny).gave_up());
}

// ---- Every schedule, for tiny graphs. ----

// The least compute time of any valid schedule whose peak fits `budget_bytes` and whose first
// forward pass ends before the backward pass starts: Dijkstra over (live values, forward nodes
// computed at least once, next backward node), with computes and frees as moves. Step bytes come
// from MemoryTracker. (The simulator alone would also accept running the loss's backward before
// the loss, which reads nothing of it in a derived graph; no framework can run that.)
double best_schedule_time(const TrainingGraph& g, std::int64_t budget_bytes) {
  std::vector<ValueId> charged;
  std::vector<int> bit(static_cast<std::size_t>(g.num_values()), -1);
  for (ValueId v = 0; v < g.num_values(); ++v) {
    if (g.is_resident(v)) continue;
    bit[static_cast<std::size_t>(v)] = static_cast<int>(charged.size());
    charged.push_back(v);
  }
  const int num_forward = g.num_forward_nodes();
  using State = std::tuple<std::uint32_t, std::uint32_t, int>;  // live, computed, next backward
  std::map<State, double> best;
  using Entry = std::pair<double, State>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  const State start{0, 0, num_forward};
  best[start] = 0;
  queue.push({0, start});
  const std::uint32_t all_forward = (1U << num_forward) - 1;
  while (!queue.empty()) {
    const auto [time, state] = queue.top();
    queue.pop();
    if (best[state] < time) continue;
    const auto [live, computed, next_backward] = state;
    if (next_backward == g.num_nodes() && computed == all_forward) return time;
    auto relax = [&](const State& next, double t) {
      auto it = best.find(next);
      if (it != best.end() && it->second <= t) return;
      best[next] = t;
      queue.push({t, next});
    };
    // Frees.
    for (std::size_t b = 0; b < charged.size(); ++b) {
      if ((live >> b) & 1U) relax({live & ~(1U << b), computed, next_backward}, time);
    }
    // Computes: any forward node, or the next backward node.
    auto try_compute = [&](NodeId n) {
      const Node& node = g.node(n);
      if (node.phase == NodePhase::kForward && node.side_effecting && ((computed >> n) & 1U)) {
        return;
      }
      MemoryTracker tracker(g);
      for (std::size_t b = 0; b < charged.size(); ++b) {
        if ((live >> b) & 1U) tracker.assume_live(charged[b]);
      }
      if (!tracker.check_compute(n).empty()) return;
      if (tracker.compute(n) > budget_bytes) return;
      std::uint32_t next_live = 0;
      for (std::size_t b = 0; b < charged.size(); ++b) {
        if (tracker.is_live(charged[b])) next_live |= 1U << b;
      }
      const bool forward = node.phase == NodePhase::kForward;
      relax({next_live, forward ? computed | (1U << n) : computed,
             forward ? next_backward : next_backward + 1},
            time + node.time_us);
    };
    for (NodeId n = 0; n < num_forward; ++n) try_compute(n);
    if (next_backward < g.num_nodes() && computed == all_forward) try_compute(next_backward);
  }
  return std::numeric_limits<double>::infinity();
}

TEST(PlannerBruteForceTest, ClassAgainstEverySchedule) {
  // The class is never better than the true optimum (a check of both searches), and on tiny
  // chains it is the true optimum at most budgets. Where it is not, a schedule outside the class
  // keeps a block's (small) output across the recomputation of the block itself, recomputing
  // only its input: the class, like Rotor's, frees a checkpointed boundary after the later
  // blocks and recomputes it with its block (docs/algorithms.md, "What the class leaves out").
  std::mt19937 rng(5);
  int compared = 0;
  int equal = 0;
  for (int i = 0; i < 60; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 2 + i % 3;
    options.chain = true;
    if (i % 2 == 0) {  // plain chains: no in-place ops, views or multi-output ops
      options.in_place_probability = 0;
      options.view_probability = 0;
      options.multi_output_probability = 0;
    }
    const TrainingGraph g = testing::random_training_graph(rng, options);
    int charged = 0;
    for (ValueId v = 0; v < g.num_values(); ++v) charged += g.is_resident(v) ? 0 : 1;
    if (charged > 14) continue;
    bool too_many = false;
    const std::vector<ClassPoint> points = class_points(g, &too_many);
    if (too_many) continue;
    std::set<std::int64_t> peaks;
    for (const ClassPoint& p : points) peaks.insert(p.peak_bytes);
    for (std::int64_t budget : peaks) {
      const double in_class = class_best(points, budget);
      const double overall = best_schedule_time(g, budget);
      ++compared;
      EXPECT_LE(overall, in_class + 1e-6);
      if (std::abs(overall - in_class) <= 1e-6) ++equal;
    }
  }
  std::printf("[ all schedules ] class optimum equals the overall optimum at %d of %d budgets\n",
              equal, compared);
  EXPECT_GE(compared, 80);
  EXPECT_GE(equal * 10, compared * 9) << "the class should be optimal at 90% of these budgets";
}

}  // namespace
}  // namespace ckpt
