// Shared by the report, DOT and CLI tests: a small joint graph with a hand-written plan whose
// every byte is worked out below, and golden-file comparison (line by line, with a readable diff;
// CKPT_UPDATE_GOLDEN=1 rewrites the golden files instead).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ckpt/planner.h"
#include "ckpt/schedule.h"
#include "ckpt/simulator.h"
#include "ckpt/training_graph.h"

namespace ckpt::testing {

// A joint graph "tiny" (as if read from a file: node source ids are 10 + the node id):
//
//   x (input, 100 B), w (param, 400 B), w.grad (param gradient, 400 B)
//   0 fc       x, w -> a (1000 B)       10 us
//   1 relu     a    -> b (2000 B)        2 us
//   2 scale    b    -> c (1000 B)       10 us
//   3 loss     c    -> loss (4 B)        1 us
//   4 loss.backward  c          -> c.grad (1000 B)  1 us, 3000 B workspace
//   5 scale.backward c.grad, b  -> b.grad (2000 B) 10 us
//   6 relu.backward  b.grad, b  -> a.grad (1000 B)  2 us
//   7 fc.backward    a.grad, x  += w.grad          20 us, 500 B workspace
//
// Store-all holds b and c during loss.backward: 3000 + 1000 (c.grad) + 3000 (workspace) = 7000 B.
// The plan drops b after scale and recomputes it from a (kept: the checkpoint) after
// loss.backward, so loss.backward runs with a, c: 2000 + 1000 + 3000 = 6000 B, the plan's peak
// (scale.backward and relu.backward need 5000 B). Compute: 56 us + 2 us (relu again) = 58 us.
struct TinyPlan {
  TrainingGraph graph;
  Plan plan;
};

inline TrainingGraph make_tiny_graph() {
  auto value = [](std::string name, std::int64_t bytes, TValueKind kind, NodeId producer) {
    TValue v;
    v.name = std::move(name);
    v.bytes = bytes;
    v.kind = kind;
    v.producer = producer;
    return v;
  };
  std::vector<TValue> values = {
      value("x", 100, TValueKind::kInput, kNoId),
      value("w", 400, TValueKind::kParam, kNoId),
      value("w.grad", 400, TValueKind::kParamGradient, kNoId),
      value("a", 1000, TValueKind::kActivation, 0),
      value("b", 2000, TValueKind::kActivation, 1),
      value("c", 1000, TValueKind::kActivation, 2),
      value("loss", 4, TValueKind::kActivation, 3),
      value("c.grad", 1000, TValueKind::kGradient, 4),
      value("b.grad", 2000, TValueKind::kGradient, 5),
      value("a.grad", 1000, TValueKind::kGradient, 6),
  };
  auto node = [](std::string name, std::string kind, NodePhase phase, double time_us,
                 std::vector<ValueId> inputs, std::vector<ValueId> outputs,
                 std::int64_t workspace_bytes = 0, std::vector<ValueId> accumulates = {}) {
    Node n;
    n.name = std::move(name);
    n.kind = std::move(kind);
    n.phase = phase;
    n.time_us = time_us;
    n.inputs = std::move(inputs);
    n.outputs = std::move(outputs);
    n.workspace_bytes = workspace_bytes;
    n.accumulates = std::move(accumulates);
    return n;
  };
  const auto fwd = NodePhase::kForward;
  const auto bwd = NodePhase::kBackward;
  std::vector<Node> nodes = {
      node("fc", "linear", fwd, 10, {0, 1}, {3}),
      node("relu", "relu", fwd, 2, {3}, {4}),
      node("scale", "mul", fwd, 10, {4}, {5}),
      node("loss", "sum", fwd, 1, {5}, {6}),
      node("loss.backward", "backward", bwd, 1, {5}, {7}, 3000),
      node("scale.backward", "backward", bwd, 10, {7, 4}, {8}),
      node("relu.backward", "backward", bwd, 2, {8, 4}, {9}),
      node("fc.backward", "backward", bwd, 20, {9, 0}, {}, 500, {2}),
  };
  for (std::size_t n = 0; n < nodes.size(); ++n) nodes[n].source_id = 10 + static_cast<int>(n);
  return TrainingGraph("tiny", std::move(values), std::move(nodes), /*derived=*/false);
}

inline TinyPlan make_tiny_plan() {
  TinyPlan tiny{make_tiny_graph(), {}};
  Schedule schedule;
  for (NodeId n = 0; n < 4; ++n) schedule.steps.push_back(Step::compute(n, Phase::kForward));
  schedule.steps.push_back(Step::compute(4, Phase::kBackward));
  schedule.steps.push_back(Step::compute(1, Phase::kRecompute));
  for (NodeId n = 5; n < 8; ++n) schedule.steps.push_back(Step::compute(n, Phase::kBackward));
  insert_frees_after_last_use(tiny.graph, schedule);
  const SimulationResult sim = simulate(tiny.graph, schedule);
  EXPECT_TRUE(sim.valid) << sim.error;

  Plan& plan = tiny.plan;
  plan.strategy = Strategy::kOptimal;
  plan.feasible = true;
  plan.exact = true;
  plan.budget_bytes = 6000;
  plan.peak_bytes = sim.peak_bytes;
  plan.min_feasible_bytes = 6000;
  plan.compute_time_us = sim.compute_time_us;
  plan.baseline_time_us = sim.baseline_time_us;
  plan.plan_ms = 0.25;  // fixed, so that golden output does not depend on the machine
  plan.schedule = std::move(schedule);
  plan.blocks = {
      {.forward_nodes = {0},
       .output = 3,
       .kept = {},
       .checkpointed = true,
       .recomputations = 0,
       .explanation = "a is kept: block 1 is recomputed from it"},
      {.forward_nodes = {1, 2},
       .output = 5,
       .kept = {},
       .checkpointed = false,
       .recomputations = 1,
       .explanation = "dropping b saves 1000 B at the peak (loss.backward) for 2 us"},
      {.forward_nodes = {3},
       .output = 6,
       .kept = {},
       .checkpointed = false,
       .recomputations = 0,
       .explanation = "loss is not read by the backward"},
  };
  return tiny;
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

// Compares `actual` with tests/golden/<name> line by line. With CKPT_UPDATE_GOLDEN=1 set, writes
// `actual` to the golden file instead (review the diff before committing it).
inline void expect_matches_golden(const std::string& actual, const std::string& name) {
  const std::string path = std::string(CKPT_SOURCE_DIR) + "/tests/golden/" + name;
  if (const char* update = std::getenv("CKPT_UPDATE_GOLDEN");
      update && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
    GTEST_SKIP() << "rewrote " << path;
  }
  std::ifstream file(path, std::ios::binary);
  ASSERT_TRUE(file) << "missing golden file " << path
                    << "; run the test with CKPT_UPDATE_GOLDEN=1 to create it";
  std::stringstream expected_text;
  expected_text << file.rdbuf();
  const std::vector<std::string> expected = split_lines(expected_text.str());
  const std::vector<std::string> got = split_lines(actual);
  std::ostringstream diff;
  int mismatches = 0;
  for (std::size_t i = 0; i < std::max(expected.size(), got.size()); ++i) {
    const bool has_expected = i < expected.size();
    const bool has_got = i < got.size();
    if (has_expected && has_got && expected[i] == got[i]) continue;
    if (++mismatches > 20) continue;  // the first 20 differences are enough to read
    diff << "  line " << i + 1 << ":\n";
    diff << "    - " << (has_expected ? expected[i] : "<end of golden file>") << "\n";
    diff << "    + " << (has_got ? got[i] : "<end of output>") << "\n";
  }
  EXPECT_EQ(mismatches, 0) << path << " differs in " << mismatches << " line(s) (- golden, "
                           << "+ actual); rerun with CKPT_UPDATE_GOLDEN=1 to accept:\n"
                           << diff.str();
}

}  // namespace ckpt::testing
