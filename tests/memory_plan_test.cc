// Tests of the static memory plan: hand-made graphs whose lifetimes are worked out in comments,
// views and in-place versions sharing their root's offset, and random graphs under store-all and
// recompute schedules, checked exhaustively (no two lifetimes live together overlap) and against
// MemoryTracker at every compute step.
#include "ckpt/memory_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "ckpt/error.h"
#include "ckpt/graph.h"
#include "ckpt/simulator.h"
#include "executor_test_util.h"
#include "memory_tracker.h"

namespace ckpt {
namespace {

using testing::keep_every;
using testing::random_graph;
using testing::recompute_schedule;

// x(input, 100) -> a: h1 (1000 B, saves x) -> b: h2 = relu(h1) (1000 B, saves h2)
//   -> c: loss (4 B, saves h2). add_simple_op names each output after its op: "a", "b", "c".
TrainingGraph make_chain() {
  GraphBuilder b("chain");
  const ValueId x = b.add_input("x", 100);
  const ValueId w = b.add_param("w", 400);
  const ValueId h1 = b.add_simple_op("a", "linear", {x, w}, 1000, 10, 20, {x});
  const ValueId h2 = b.add_simple_op("b", "relu", {h1}, 1000, 1, 2, {kNoId});
  b.add_simple_op("c", "loss", {h2}, 4, 1, 1, {h2});
  return derive_training_graph(std::move(b).build());
}

int count_lifetimes_of(const MemoryPlan& plan, std::string_view root_name,
                       const TrainingGraph& graph) {
  return static_cast<int>(
      std::count_if(plan.lifetimes.begin(), plan.lifetimes.end(), [&](const Lifetime& l) {
        return l.kind == Lifetime::Kind::kStorage && graph.value(l.root).name == root_name;
      }));
}

// Every invariant of a plan, checked the slow way.
void expect_plan_is_sound(const TrainingGraph& graph, const Schedule& schedule,
                          const MemoryPlan& plan) {
  const SimulationResult sim = simulate(graph, schedule);
  ASSERT_TRUE(sim.valid) << sim.error;
  EXPECT_EQ(plan.peak_bytes, sim.peak_bytes);
  EXPECT_GE(plan.aligned_peak_bytes, plan.peak_bytes);
  EXPECT_GE(plan.arena_bytes, plan.aligned_peak_bytes);
  // Exhaustive pairwise check: lifetimes live together never share a byte.
  const auto& lts = plan.lifetimes;
  for (std::size_t i = 0; i < lts.size(); ++i) {
    EXPECT_EQ(lts[i].offset_bytes % plan.alignment_bytes, 0);
    EXPECT_LE(lts[i].offset_bytes + lts[i].aligned_bytes, plan.arena_bytes);
    EXPECT_LT(lts[i].start_step, lts[i].end_step);
    for (std::size_t j = i + 1; j < lts.size(); ++j) {
      if (!lts[i].overlaps_in_time(lts[j]) || lts[i].bytes == 0 || lts[j].bytes == 0) continue;
      const bool disjoint = lts[i].offset_bytes + lts[i].aligned_bytes <= lts[j].offset_bytes ||
                            lts[j].offset_bytes + lts[j].aligned_bytes <= lts[i].offset_bytes;
      ASSERT_TRUE(disjoint) << "lifetimes " << i << " and " << j << " overlap";
    }
  }
  // Occupancy equals the memory model's charge at every compute step, and every value live at a
  // step sits in exactly one lifetime of its storage root.
  MemoryTracker tracker(graph);
  for (std::size_t s = 0; s < schedule.steps.size(); ++s) {
    const Step& step = schedule.steps[s];
    if (!step.is_compute()) {
      tracker.free(step.value);
      continue;
    }
    const std::int64_t model = tracker.compute(step.node);
    const std::int64_t workspace = graph.node(step.node).workspace_bytes;
    EXPECT_EQ(live_bytes_at(plan, s), model) << "step " << s;
    EXPECT_EQ(plan.workspace_of_step[s] >= 0, workspace > 0);
    for (ValueId v : graph.node(step.node).outputs) {
      if (graph.is_resident(v)) continue;
      const ValueId root = graph.storage_root(v);
      const int covering = static_cast<int>(std::count_if(lts.begin(), lts.end(), [&](auto& l) {
        return l.kind == Lifetime::Kind::kStorage && l.root == root && l.start_step <= s &&
               s < l.end_step;
      }));
      EXPECT_EQ(covering, 1) << graph.value(v).name << " at step " << s;
    }
  }
}

TEST(MemoryPlanTest, ChainStoreAllIsWorkedOut) {
  // Store-all with 1-byte alignment: a (h1 1000), b (h2 1000; h1 dies after b since b.backward
  // reads only h2), c (loss 4, freed at once), then the backward. Peak: h1 + h2 + the new h2.grad
  // is not reached; the peak is during c.backward or b: 2004 bytes at c (h1 is freed after b).
  const TrainingGraph graph = make_chain();
  const Schedule schedule = store_all_schedule(graph);
  const MemoryPlan plan = plan_memory(graph, schedule, {.alignment_bytes = 1});
  expect_plan_is_sound(graph, schedule, plan);
  EXPECT_EQ(plan.arena_bytes, plan.peak_bytes);
  EXPECT_DOUBLE_EQ(plan.fragmentation(), 0.0);
  // With 256-byte alignment each 1000-byte lifetime takes 1024 and the 4-byte loss 256.
  const MemoryPlan aligned = plan_memory(graph, schedule);
  expect_plan_is_sound(graph, schedule, aligned);
  EXPECT_EQ(aligned.alignment_bytes, 256);
  for (const Lifetime& l : aligned.lifetimes) {
    EXPECT_EQ(l.aligned_bytes, (l.bytes + 255) / 256 * 256);
  }
  EXPECT_EQ(aligned.arena_bytes, aligned.aligned_peak_bytes);
}

TEST(MemoryPlanTest, RecomputedValueGetsANewLifetime) {
  // Keeping no forward node: h1 is computed in the forward, freed, and recomputed before
  // a.backward reads... no: a.backward reads only x. h2 is recomputed for b.backward and
  // c.backward, from h1, which is recomputed too: two lifetimes each.
  const TrainingGraph graph = make_chain();
  const Schedule schedule = recompute_schedule(graph, keep_every(graph, 0), false);
  const MemoryPlan plan = plan_memory(graph, schedule);
  expect_plan_is_sound(graph, schedule, plan);
  EXPECT_EQ(count_lifetimes_of(plan, "a", graph), 2);
  EXPECT_EQ(count_lifetimes_of(plan, "b", graph), 2);
}

TEST(MemoryPlanTest, ViewsAndInPlaceVersionsShareTheRootsLifetime) {
  // x -> a: h (1000 B) -> relu_: r (in place: alias of h, version 1) -> view: v (alias of r)
  //   -> loss(v). h, r and v are one storage: one lifetime, rooted at h, while any is live.
  GraphBuilder b("inplace");
  const ValueId x = b.add_input("x", 100);
  const ValueId w = b.add_param("w", 400);
  const ValueId h = b.add_simple_op("a", "linear", {x, w}, 1000, 10, 20, {x});
  const ValueId r = b.add_value(testing::make_value("r", 0, h));
  Op relu = testing::make_op("relu_", "relu", {h}, {r}, 1, 1);
  relu.saved = {r};
  relu.in_place = true;
  b.add_op(relu);
  const ValueId v = b.add_value(testing::make_value("v", 0, r));
  b.add_op(testing::make_op("view", "view", {r}, {v}));
  b.add_simple_op("loss", "loss", {v}, 4, 1, 1, {v});
  const TrainingGraph graph = derive_training_graph(std::move(b).build());
  const Schedule schedule = store_all_schedule(graph);
  const MemoryPlan plan = plan_memory(graph, schedule);
  expect_plan_is_sound(graph, schedule, plan);
  EXPECT_EQ(count_lifetimes_of(plan, "a", graph), 1);
  EXPECT_EQ(count_lifetimes_of(plan, "r", graph), 0);
  EXPECT_EQ(count_lifetimes_of(plan, "v", graph), 0);
  // The view's backward takes no time, so it passes the gradient through: r.grad is a view of
  // v.grad and has no lifetime of its own.
  ValueId v_grad = kNoId;
  ValueId r_grad = kNoId;
  for (ValueId id = 0; id < graph.num_values(); ++id) {
    if (graph.value(id).name == "v.grad") v_grad = id;
    if (graph.value(id).name == "r.grad") r_grad = id;
  }
  ASSERT_NE(r_grad, kNoId);
  EXPECT_EQ(graph.storage_root(r_grad), v_grad);
  EXPECT_EQ(count_lifetimes_of(plan, "r.grad", graph), 0);
}

TEST(MemoryPlanTest, InvalidScheduleAndAlignmentAreErrors) {
  const TrainingGraph graph = make_chain();
  Schedule broken = store_all_schedule(graph);
  broken.steps.erase(broken.steps.begin());  // "a" never runs: b's input is not live
  try {
    plan_memory(graph, broken);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kValidation);
    EXPECT_NE(std::string(e.what()).find("not live"), std::string::npos) << e.what();
  }
  try {
    plan_memory(graph, store_all_schedule(graph), {.alignment_bytes = 48});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  }
}

// Random graphs, five schedules each (store-all, keep every 2nd / 3rd node, keep none, with and
// without forgetting recomputed values between backward nodes). Also reports fragmentation.
TEST(MemoryPlanTest, RandomGraphsArePlannedSoundly) {
  double worst_placement_loss = 0;  // arena / aligned peak - 1: what placement alone costs
  double sum_placement_loss = 0;
  double worst_fragmentation = 0;  // arena / peak - 1: alignment included
  int plans = 0;
  int optimal = 0;
  for (std::uint32_t seed = 1; seed <= 60; ++seed) {
    const Graph forward = random_graph(seed, 8 + static_cast<int>(seed % 7) * 8);
    const TrainingGraph graph = derive_training_graph(forward);
    const std::vector<Schedule> schedules = {
        store_all_schedule(graph),
        recompute_schedule(graph, keep_every(graph, 2), false),
        recompute_schedule(graph, keep_every(graph, 3), true),
        recompute_schedule(graph, keep_every(graph, 0), false),
        recompute_schedule(graph, keep_every(graph, 0), true),
    };
    for (const Schedule& schedule : schedules) {
      const SimulationResult sim = simulate(graph, schedule);
      ASSERT_TRUE(sim.valid) << "seed " << seed << ": " << sim.error;
      for (std::int64_t alignment : {std::int64_t{1}, std::int64_t{256}}) {
        const MemoryPlan plan = plan_memory(graph, schedule, {.alignment_bytes = alignment});
        expect_plan_is_sound(graph, schedule, plan);
        if (::testing::Test::HasFatalFailure()) return;
        const double loss =
            static_cast<double>(plan.arena_bytes) / static_cast<double>(plan.aligned_peak_bytes) -
            1;
        worst_placement_loss = std::max(worst_placement_loss, loss);
        sum_placement_loss += loss;
        worst_fragmentation = std::max(worst_fragmentation, plan.fragmentation());
        optimal += plan.arena_bytes == plan.aligned_peak_bytes ? 1 : 0;
        ++plans;
      }
    }
  }
  std::printf(
      "[ memory plan ] %d plans on random graphs: %d at the aligned peak; placement loss "
      "mean %.2f%%, worst %.2f%%; worst fragmentation incl. 256 B alignment %.2f%%\n",
      plans, optimal, 100 * sum_placement_loss / plans, 100 * worst_placement_loss,
      100 * worst_fragmentation);
  RecordProperty("mean_placement_loss_percent", std::to_string(100 * sum_placement_loss / plans));
  // Best fit over three orders stays close to the lower bound on these graphs.
  EXPECT_LT(worst_placement_loss, 0.25);
}

}  // namespace
}  // namespace ckpt
