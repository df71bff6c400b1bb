// Tests of the training-graph derivation, the store-all schedule and the simulator on small
// hand-made graphs whose every byte is worked out in the comments.
#include "ckpt/simulator.h"

#include <gtest/gtest.h>

#include "ckpt/graph.h"
#include "ckpt/schedule.h"
#include "ckpt/training_graph.h"

namespace ckpt {
namespace {

// x(input, 100) -> h1 = x W (1000 B, saves x) -> h2 = relu(h1) (1000 B, saves h2)
//   -> loss(h2) (4 B, saves h2). add_simple_op names each output after its op.
struct Chain {
  Graph graph;
  ValueId x, w, h1, h2, loss;
};

Chain make_chain() {
  GraphBuilder b("chain");
  Chain c;
  c.x = b.add_input("x", 100);
  c.w = b.add_param("w", 400);
  c.h1 = b.add_simple_op("h1", "linear", {c.x, c.w}, 1000, 10, 20, {c.x});
  c.h2 = b.add_simple_op("h2", "relu", {c.h1}, 1000, 1, 2, {kNoId});
  c.loss = b.add_simple_op("loss", "loss", {c.h2}, 4, 1, 1, {c.h2});
  c.graph = std::move(b).build();
  return c;
}

NodeId find_node(const TrainingGraph& g, std::string_view name) {
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    if (g.node(n).name == name) return n;
  }
  ADD_FAILURE() << "no node " << name;
  return kNoId;
}

ValueId find_value(const TrainingGraph& g, std::string_view name) {
  for (ValueId v = 0; v < g.num_values(); ++v) {
    if (g.value(v).name == name) return v;
  }
  ADD_FAILURE() << "no value " << name;
  return kNoId;
}

TEST(DeriveTest, ChainGetsBackwardNodesInReverseOrder) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  ASSERT_EQ(g.num_forward_nodes(), 3);
  ASSERT_EQ(g.num_nodes(), 6);
  EXPECT_EQ(g.node(3).name, "loss.backward");
  EXPECT_EQ(g.node(4).name, "h2.backward");
  EXPECT_EQ(g.node(5).name, "h1.backward");
  // h2.backward reads the gradient of h2 and the saved h2, and produces h1's gradient.
  const Node& b_bwd = g.node(4);
  const ValueId h2_grad = find_value(g, "h2.grad");
  EXPECT_EQ(b_bwd.inputs, (std::vector<ValueId>{h2_grad, c.h2}));
  EXPECT_EQ(b_bwd.outputs, (std::vector<ValueId>{find_value(g, "h1.grad")}));
  // The parameter gradient is resident and accumulated into; x gets no gradient.
  const ValueId w_grad = find_value(g, "w.grad");
  EXPECT_EQ(g.node(5).accumulates, (std::vector<ValueId>{w_grad}));
  EXPECT_TRUE(g.is_resident(w_grad));
  EXPECT_EQ(g.storage_bytes(w_grad), 0);
  EXPECT_TRUE(g.node(5).outputs.empty());
  // Forward ids are kept.
  EXPECT_EQ(g.value(c.h1).name, "h1");
  EXPECT_EQ(g.node(0).source_id, 0);
  EXPECT_EQ(g.node(5).source_id, 0);
}

TEST(DeriveTest, SecondConsumerAccumulatesIntoTheGradient) {
  // h feeds two ops; their sum is the loss. The later consumer's backward (first in backward
  // order) creates h.grad and the earlier one accumulates into it.
  GraphBuilder b("fork");
  const ValueId w = b.add_param("w", 8);
  const ValueId x = b.add_input("x", 8);
  const ValueId h = b.add_simple_op("h", "linear", {x, w}, 64, 1, 1, {x});
  const ValueId p = b.add_simple_op("p", "relu", {h}, 64, 1, 1, {kNoId});
  const ValueId q = b.add_simple_op("q", "tanh", {h}, 64, 1, 1, {kNoId});
  b.add_simple_op("sum", "add", {p, q}, 4, 1, 1, {});
  const TrainingGraph g = derive_training_graph(std::move(b).build());
  const ValueId h_grad = find_value(g, "h.grad");
  EXPECT_EQ(g.value(h_grad).producer, find_node(g, "q.backward"));
  EXPECT_EQ(g.node(find_node(g, "p.backward")).accumulates, (std::vector<ValueId>{h_grad}));
}

TEST(DeriveTest, NonDifferentiableOpsAndSavedStateAndViews) {
  GraphBuilder b("misc");
  const ValueId w = b.add_param("w", 8);
  const ValueId x = b.add_input("x", 8);
  const ValueId h = b.add_simple_op("h", "linear", {x, w}, 64, 1, 1, {x});
  // A dropout that keeps a 16-byte mask for its backward.
  Value d_out{.name = "d", .bytes = 64};
  const ValueId d = b.add_value(d_out);
  Op dropout{.name = "drop", .kind = "dropout", .inputs = {h}, .outputs = {d}, .fwd_time_us = 1,
             .bwd_time_us = 1, .saved_other_bytes = 16, .random = true};
  b.add_op(dropout);
  // A view of d: no new memory; its backward (0 us) passes the gradient through as a view.
  const ValueId view = b.add_value(Value{.name = "dv", .bytes = 64, .alias_of = d});
  b.add_op(Op{.name = "view", .kind = "view", .inputs = {d}, .outputs = {view}});
  // A detached copy is not differentiable.
  const ValueId det = b.add_value(Value{.name = "det", .bytes = 64, .alias_of = view});
  b.add_op(Op{.name = "detach", .kind = "detach", .inputs = {view}, .outputs = {det},
              .differentiable = false});
  b.add_simple_op("loss", "loss", {view}, 4, 1, 1, {view});
  const TrainingGraph g = derive_training_graph(std::move(b).build());
  EXPECT_EQ(g.storage_bytes(view), 64);
  EXPECT_EQ(g.storage_root(view), d);
  EXPECT_EQ(g.storage_root(find_value(g, "d.grad")), find_value(g, "dv.grad"));
  const ValueId mask = find_value(g, "drop.saved");
  EXPECT_EQ(g.value(mask).kind, TValueKind::kSavedState);
  EXPECT_EQ(g.value(mask).bytes, 16);
  EXPECT_TRUE(g.node(find_node(g, "drop")).random);
  for (const Node& node : g.nodes()) EXPECT_NE(node.name, "detach.backward");
}

// Store-all on the chain, byte by byte:
//   h1: h1 live                               -> 1000
//   h2: h1 + h2                               -> 2000, then h1 is freed (h1's backward saves x)
//   loss: h2 + loss                           -> 1004, loss freed
//   loss.backward: h2 + h2.grad               -> 2000
//   h2.backward: h2 + h2.grad + h1.grad       -> 3000 (the peak)
//   h1.backward: h1.grad                      -> 1000
TEST(SimulatorTest, StoreAllChainPeakIsWorkedOut) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  const Schedule schedule = store_all_schedule(g);
  const SimulationResult r = simulate(g, schedule);
  ASSERT_TRUE(r.valid) << r.error;
  EXPECT_EQ(r.peak_bytes, 3000);
  const Step& peak = schedule.steps[r.peak_step];
  ASSERT_TRUE(peak.is_compute());
  EXPECT_EQ(g.node(peak.node).name, "h2.backward");
  EXPECT_DOUBLE_EQ(r.compute_time_us, 10 + 1 + 1 + 1 + 2 + 20);
  EXPECT_DOUBLE_EQ(r.overhead(), 0);
  EXPECT_EQ(r.resident_bytes, 100 + 400 + 400);  // x, w and w's gradient
}

TEST(SimulatorTest, RecomputingADroppedValueCostsTimeAndSavesMemory) {
  // Free h2 after the forward and recompute it before loss.backward:
  //   h1 1000, h2 2000, free h1, loss 1004, free loss + h2 -> 0; recompute h1 (1000) and h2
  //   (2000), free h1 (1000); loss.backward 2000; h2.backward 3000. Same peak here, but the
  //   overhead is the recomputed h1 and h2.
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule s;
  s.steps = {Step::compute(0, Phase::kForward),   Step::compute(1, Phase::kForward),
             Step::free(c.h1),                    Step::compute(2, Phase::kForward),
             Step::free(c.loss),                  Step::free(c.h2),
             Step::compute(0, Phase::kRecompute), Step::compute(1, Phase::kRecompute),
             Step::free(c.h1),                    Step::compute(3, Phase::kBackward),
             Step::compute(4, Phase::kBackward),  Step::compute(5, Phase::kBackward)};
  const SimulationResult r = simulate(g, s);
  ASSERT_TRUE(r.valid) << r.error;
  EXPECT_EQ(r.peak_bytes, 3000);
  EXPECT_DOUBLE_EQ(r.recompute_time_us, 11);
  EXPECT_NEAR(r.overhead(), 11.0 / 35.0, 1e-12);
}

Schedule chain_schedule_without(const TrainingGraph& g, std::size_t drop_index) {
  Schedule s = store_all_schedule(g);
  s.steps.erase(s.steps.begin() + static_cast<std::ptrdiff_t>(drop_index));
  return s;
}

TEST(SimulatorTest, UseOfAFreedValueNamesTheStepAndTheValue) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule s;
  s.steps = {Step::compute(0, Phase::kForward), Step::free(c.h1),
             Step::compute(1, Phase::kForward)};
  const SimulationResult r = simulate(g, s);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.error_step, 2u);
  EXPECT_NE(r.error.find("input \"h1\" is not live"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("step 2"), std::string::npos) << r.error;
}

TEST(SimulatorTest, DoubleFreeIsRejected) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule s;
  s.steps = {Step::compute(0, Phase::kForward), Step::free(c.h1), Step::free(c.h1)};
  const SimulationResult r = simulate(g, s);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.error_step, 2u);
  EXPECT_NE(r.error.find("\"h1\" is not live"), std::string::npos) << r.error;
}

TEST(SimulatorTest, FreeingAResidentValueIsRejected) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule s;
  s.steps = {Step::free(c.w)};
  const SimulationResult r = simulate(g, s);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("resident"), std::string::npos) << r.error;
}

TEST(SimulatorTest, MissingBackwardNodeMeansAMissingGradient) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule s = store_all_schedule(g);
  while (!s.steps.empty() && !(s.steps.back().is_compute() && s.steps.back().node == 5)) {
    s.steps.pop_back();
  }
  s.steps.pop_back();  // drop h1.backward
  const SimulationResult r = simulate(g, s);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.error_step, s.steps.size());
  EXPECT_NE(r.error.find("h1.backward"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("gradient"), std::string::npos) << r.error;
}

TEST(SimulatorTest, PhaseMustMatchTheComputation) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule first_as_recompute;
  first_as_recompute.steps = {Step::compute(0, Phase::kRecompute)};
  EXPECT_FALSE(simulate(g, first_as_recompute).valid);
  Schedule backward_as_forward = store_all_schedule(g);
  for (Step& step : backward_as_forward.steps) {
    if (step.is_compute() && step.node == 3) step.phase = Phase::kForward;
  }
  const SimulationResult r = simulate(g, backward_as_forward);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("backward node must run as backward"), std::string::npos) << r.error;
}

TEST(SimulatorTest, ComputingALiveValueAgainIsRejected) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule s;
  s.steps = {Step::compute(0, Phase::kForward), Step::compute(0, Phase::kRecompute)};
  const SimulationResult r = simulate(g, s);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("already live"), std::string::npos) << r.error;
}

TEST(SimulatorTest, BackwardRunsOnce) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule s = store_all_schedule(g);
  s.steps.push_back(Step::compute(3, Phase::kBackward));
  const SimulationResult r = simulate(g, s);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("exactly once"), std::string::npos) << r.error;
}

// x -> a: h (1000 B) -> relu_ in place: r (alias of h, version 1) -> loss(r), saves r.
struct InPlace {
  TrainingGraph g;
  ValueId h, r;
};

InPlace make_in_place(bool side_effecting_producer) {
  GraphBuilder b("inplace");
  const ValueId x = b.add_input("x", 100);
  const ValueId w = b.add_param("w", 100);
  Value hv{.name = "h", .bytes = 1000};
  const ValueId h = b.add_value(hv);
  b.add_op(Op{.name = "a", .kind = "bn", .inputs = {x, w}, .outputs = {h}, .fwd_time_us = 5,
              .bwd_time_us = 5, .saved = {x}, .side_effecting = side_effecting_producer});
  const ValueId r = b.add_value(Value{.name = "r", .bytes = 1000, .alias_of = h});
  b.add_op(Op{.name = "relu_", .kind = "relu_", .inputs = {h}, .outputs = {r}, .fwd_time_us = 1,
              .bwd_time_us = 1, .saved = {r}, .in_place = true});
  b.add_simple_op("loss", "loss", {r}, 4, 1, 1, {r});
  return {derive_training_graph(std::move(b).build()), h, r};
}

TEST(SimulatorTest, InPlaceOpTakesOverTheStorage) {
  const InPlace ip = make_in_place(false);
  EXPECT_EQ(ip.g.value(ip.r).version, 1);
  EXPECT_EQ(ip.g.node(1).kills, (std::vector<ValueId>{ip.h}));
  const Schedule schedule = store_all_schedule(ip.g);
  const SimulationResult r = simulate(ip.g, schedule);
  ASSERT_TRUE(r.valid) << r.error;
  // h and r share 1000 bytes; the peak is r + loss.backward's r.grad + relu_.backward's h.grad:
  // 1000 + 1000 + 1000.
  EXPECT_EQ(r.peak_bytes, 3000);
  // Freeing h is never scheduled: the in-place op killed it.
  for (const Step& step : schedule.steps) {
    if (!step.is_compute()) EXPECT_NE(step.value, ip.h);
  }
}

TEST(SimulatorTest, RecomputingAnOverwrittenVersionWhileTheNewOneIsLiveIsRejected) {
  const InPlace ip = make_in_place(false);
  Schedule s;
  s.steps = {Step::compute(0, Phase::kForward), Step::compute(1, Phase::kForward),
             Step::compute(0, Phase::kRecompute)};
  const SimulationResult r = simulate(ip.g, s);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.error_step, 2u);
  EXPECT_NE(r.error.find("another version"), std::string::npos) << r.error;
}

TEST(SimulatorTest, SideEffectingNodeIsNeverRecomputed) {
  const InPlace ip = make_in_place(true);
  Schedule s;
  s.steps = {Step::compute(0, Phase::kForward), Step::compute(1, Phase::kForward),
             Step::free(ip.r), Step::compute(0, Phase::kRecompute)};
  const SimulationResult r = simulate(ip.g, s);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("side-effecting"), std::string::npos) << r.error;
}

TEST(SimulatorTest, WorkspaceCountsOnlyDuringItsStep) {
  GraphBuilder b("ws");
  const ValueId x = b.add_input("x", 10);
  const ValueId w = b.add_param("w", 10);
  const ValueId h = b.add_value(Value{.name = "h", .bytes = 100});
  b.add_op(Op{.name = "conv", .kind = "conv", .inputs = {x, w}, .outputs = {h},
              .fwd_time_us = 1, .bwd_time_us = 1, .fwd_workspace_bytes = 5000,
              .bwd_workspace_bytes = 7000, .saved = {x}});
  b.add_simple_op("loss", "loss", {h}, 4, 1, 1, {h});
  const TrainingGraph g = derive_training_graph(std::move(b).build());
  const SimulationResult r = simulate(g, store_all_schedule(g));
  ASSERT_TRUE(r.valid) << r.error;
  // conv.backward: h.grad (100) + 7000 of workspace; conv forward: h (100) + 5000.
  EXPECT_EQ(r.peak_bytes, 7100);
}

TEST(SimulatorTest, UnknownIdsAreErrorsNotCrashes) {
  const Chain c = make_chain();
  const TrainingGraph g = derive_training_graph(c.graph);
  Schedule bad_node;
  bad_node.steps = {Step::compute(99, Phase::kForward)};
  EXPECT_NE(simulate(g, bad_node).error.find("unknown node id 99"), std::string::npos);
  Schedule bad_value;
  bad_value.steps = {Step::free(-5)};
  EXPECT_NE(simulate(g, bad_value).error.find("unknown value id -5"), std::string::npos);
  EXPECT_FALSE(simulate(g, chain_schedule_without(g, 0)).valid);
}

}  // namespace
}  // namespace ckpt
