// Tests of the DOT printer: the fate of every value of the "tiny" plan, the golden DOT text, that
// Graphviz renders it (skipped when `dot` is not on PATH), escaping, and that large graphs hide
// resident values and stay clustered by block.
#include "ckpt/dot.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "report_test_util.h"

namespace ckpt {
namespace {

using testing::make_tiny_plan;
using testing::TinyPlan;

TEST(DotTest, ClassifiesEveryValueOfTinyPlan) {
  const TinyPlan tiny = make_tiny_plan();
  const std::vector<ValueFate> fates = classify_values(tiny.graph, tiny.plan);
  const std::vector<ValueFate> expected = {
      ValueFate::kResident,    // x
      ValueFate::kResident,    // w
      ValueFate::kResident,    // w.grad
      ValueFate::kCheckpoint,  // a: kept, and relu's recompute starts from it
      ValueFate::kRecomputed,  // b: dropped after scale, recomputed for scale.backward
      ValueFate::kKept,        // c: held until loss.backward reads it
      ValueFate::kFreedEarly,  // loss: freed in the forward, never read again
      ValueFate::kBackward,    // c.grad
      ValueFate::kBackward,    // b.grad
      ValueFate::kBackward,    // a.grad
  };
  EXPECT_EQ(fates, expected);
}

TEST(DotTest, StoreAllKeepsOrFreesEveryValue) {
  TinyPlan tiny = make_tiny_plan();
  tiny.plan.schedule = store_all_schedule(tiny.graph);
  tiny.plan.blocks.clear();
  const std::vector<ValueFate> fates = classify_values(tiny.graph, tiny.plan);
  EXPECT_EQ(fates[3], ValueFate::kFreedEarly);  // a: relu.backward reads b, not a
  EXPECT_EQ(fates[4], ValueFate::kKept);
  EXPECT_EQ(fates[5], ValueFate::kKept);
  EXPECT_EQ(fates[6], ValueFate::kFreedEarly);
}

TEST(DotTest, CheckpointFlagOfABlockMarksItsOutput) {
  TinyPlan tiny = make_tiny_plan();
  tiny.plan.schedule = store_all_schedule(tiny.graph);
  tiny.plan.blocks[1].checkpointed = true;  // output c
  EXPECT_EQ(classify_values(tiny.graph, tiny.plan)[5], ValueFate::kCheckpoint);
}

TEST(DotTest, MatchesGolden) {
  const TinyPlan tiny = make_tiny_plan();
  testing::expect_matches_golden(render_dot(tiny.graph, tiny.plan), "tiny_plan.dot");
}

TEST(DotTest, IsDeterministic) {
  const TinyPlan tiny = make_tiny_plan();
  EXPECT_EQ(render_dot(tiny.graph, tiny.plan), render_dot(tiny.graph, tiny.plan));
}

// A chain of `length` forward nodes, each with its own param, and its backward nodes; the plan is
// store-all with one block per 10 forward nodes.
TinyPlan make_chain_plan(int length) {
  std::vector<TValue> values;
  std::vector<Node> nodes;
  values.push_back({.name = "x", .bytes = 64, .kind = TValueKind::kInput});
  ValueId previous = 0;
  std::vector<ValueId> params, activations;
  for (int i = 0; i < length; ++i) {
    values.push_back({.name = "w" + std::to_string(i), .bytes = 16, .kind = TValueKind::kParam});
    params.push_back(static_cast<ValueId>(values.size()) - 1);
    values.push_back({.name = "h" + std::to_string(i),
                      .bytes = 128,
                      .kind = TValueKind::kActivation,
                      .producer = i});
    activations.push_back(static_cast<ValueId>(values.size()) - 1);
    Node node;
    node.name = "layer" + std::to_string(i);
    node.kind = "linear";
    node.time_us = 1;
    node.inputs = {previous, params.back()};
    node.outputs = {activations.back()};
    nodes.push_back(node);
    previous = activations.back();
  }
  // One backward node per layer, reading the layer's input (for the weight gradient) and the
  // gradient chain; gradients are values too.
  ValueId grad = kNoId;
  for (int i = length - 1; i >= 0; --i) {
    Node node;
    node.name = "layer" + std::to_string(i) + ".backward";
    node.kind = "backward";
    node.phase = NodePhase::kBackward;
    node.time_us = 2;
    node.inputs = {i == 0 ? ValueId{0} : activations[static_cast<std::size_t>(i - 1)]};
    if (grad != kNoId) node.inputs.push_back(grad);
    values.push_back({.name = "g" + std::to_string(i),
                      .bytes = 128,
                      .kind = TValueKind::kGradient,
                      .producer = static_cast<NodeId>(nodes.size())});
    grad = static_cast<ValueId>(values.size()) - 1;
    node.outputs = {grad};
    nodes.push_back(node);
  }
  TinyPlan chain{TrainingGraph("chain", values, nodes, /*derived=*/true), {}};
  chain.plan.schedule = store_all_schedule(chain.graph);
  const SimulationResult sim = simulate(chain.graph, chain.plan.schedule);
  EXPECT_TRUE(sim.valid) << sim.error;
  chain.plan.strategy = Strategy::kStoreAll;
  chain.plan.feasible = true;
  chain.plan.peak_bytes = sim.peak_bytes;
  chain.plan.budget_bytes = sim.peak_bytes;
  for (int start = 0; start < length; start += 10) {
    BlockSummary block;
    for (int n = start; n < std::min(length, start + 10); ++n) block.forward_nodes.push_back(n);
    block.output = activations[static_cast<std::size_t>(block.forward_nodes.back())];
    chain.plan.blocks.push_back(block);
  }
  return chain;
}

int count(const std::string& text, const std::string& needle) {
  int found = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++found;
  }
  return found;
}

TEST(DotTest, LargeGraphsHideResidentValuesAndClusterByBlock) {
  const TinyPlan chain = make_chain_plan(60);
  const std::string dot = render_dot(chain.graph, chain.plan);
  EXPECT_EQ(count(dot, "subgraph cluster_block_"), 6);
  EXPECT_EQ(dot.find("label=\"w0\\n"), std::string::npos) << "params should be hidden";
  EXPECT_NE(dot.find("resident: 61 values, 1.00 KiB, hidden"), std::string::npos);
  EXPECT_EQ(count(dot, " [shape=box, "), 60) << "one box per forward node";
  EXPECT_EQ(dot.find("g0"), std::string::npos) << "gradients are not part of the forward view";

  DotOptions show;
  show.show_resident_up_to_nodes = -1;
  EXPECT_NE(render_dot(chain.graph, chain.plan, show).find("label=\"w0\\n16 B\""),
            std::string::npos);
}

TEST(DotTest, EscapesNames) {
  TinyPlan tiny = make_tiny_plan();
  std::vector<TValue> values = tiny.graph.values();
  std::vector<Node> nodes = tiny.graph.nodes();
  values[3].name = "a \"quoted\" \\ name";
  nodes[0].name = "fc\nline";
  const TrainingGraph graph("tiny \"g\"", values, nodes, /*derived=*/false);
  const std::string dot = render_dot(graph, tiny.plan);
  EXPECT_NE(dot.find(R"(label="a \"quoted\" \\ name\n)"), std::string::npos) << dot;
  EXPECT_NE(dot.find(R"(label="fc line\nlinear")"), std::string::npos) << dot;
  EXPECT_NE(dot.find(R"(label="tiny \"g\": optimal plan)"), std::string::npos) << dot;
}

bool dot_on_path() { return std::system("command -v dot >/dev/null 2>&1") == 0; }

// Renders `dot_text` with `dot -Tsvg`; returns the exit status and fills `svg`.
int render_with_graphviz(const std::string& dot_text, const std::string& stem, std::string& svg) {
  // The pid keeps concurrent test runs (other build directories) apart.
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::string unique = stem + "_" + std::to_string(::getpid());
  const std::filesystem::path input = dir / (unique + ".dot");
  const std::filesystem::path output = dir / (unique + ".svg");
  std::ofstream(input) << dot_text;
  const std::string command =
      "dot -Tsvg '" + input.string() + "' -o '" + output.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream file(output);
  std::stringstream text;
  text << file.rdbuf();
  svg = text.str();
  std::filesystem::remove(input);
  std::filesystem::remove(output);
  return status;
}

TEST(DotTest, GraphvizRendersTinyPlan) {
  if (!dot_on_path()) GTEST_SKIP() << "graphviz `dot` is not on PATH; cannot check rendering";
  const TinyPlan tiny = make_tiny_plan();
  std::string svg;
  ASSERT_EQ(render_with_graphviz(render_dot(tiny.graph, tiny.plan), "ckpt_dot_test_tiny", svg), 0);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("relu"), std::string::npos);
}

TEST(DotTest, GraphvizRendersALargeClusteredGraph) {
  if (!dot_on_path()) GTEST_SKIP() << "graphviz `dot` is not on PATH; cannot check rendering";
  const TinyPlan chain = make_chain_plan(120);
  std::string svg;
  ASSERT_EQ(render_with_graphviz(render_dot(chain.graph, chain.plan), "ckpt_dot_test_chain", svg),
            0);
  EXPECT_NE(svg.find("layer119"), std::string::npos);
}

}  // namespace
}  // namespace ckpt
