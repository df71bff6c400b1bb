// Tests of the block decomposition: where cuts go on hand-made chains, residuals, in-place ops and
// graphs with a small long-lived value, and the crossing and backward rules checked independently
// on a thousand random chains and DAGs, derived and read as joint graphs.
#include "chain.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "ckpt/graph.h"
#include "ckpt/training_graph.h"
#include "random_graphs.h"

namespace ckpt::planning {
namespace {

// x -> a (saves x) -> b (saves its output) -> c: every op is its own block.
TEST(ChainTest, PlainChainCutsAfterEveryOp) {
  GraphBuilder b("chain");
  const ValueId x = b.add_input("x", 100);
  const ValueId w = b.add_param("w", 100);
  const ValueId h1 = b.add_simple_op("a", "linear", {x, w}, 1000, 1, 1, {x});
  const ValueId h2 = b.add_simple_op("b", "relu", {h1}, 1000, 1, 1, {kNoId});
  b.add_simple_op("c", "loss", {h2}, 4, 1, 1, {h2});
  const TrainingGraph g = derive_training_graph(std::move(b).build());
  const BlockChain chain = decompose_into_blocks(g);
  ASSERT_EQ(chain.blocks.size(), 3u);
  EXPECT_EQ(chain.blocks[0].output, (std::vector<ValueId>{h1}));
  EXPECT_EQ(chain.blocks[1].output, (std::vector<ValueId>{h2}));
  EXPECT_TRUE(chain.blocks[2].output.empty());
  // Backward runs in reverse: c.backward (node 3), b.backward (4), a.backward (5).
  EXPECT_EQ(chain.blocks[2].first_backward, 3);
  EXPECT_EQ(chain.blocks[1].first_backward, 4);
  EXPECT_EQ(chain.blocks[0].first_backward, 5);
  // Between b.backward and a.backward, h1.grad is live: it is block 0's delta.
  ASSERT_EQ(chain.blocks[0].gradients_in.size(), 1u);
  EXPECT_EQ(g.value(chain.blocks[0].gradients_in[0]).name, "a.grad");
  EXPECT_EQ(chain.merged_cuts, 0);
}

// x -> a -> b -> c(a, b): a is read across b, so no cut between a and c except after c.
TEST(ChainTest, ResidualKeepsItsBranchInOneBlock) {
  GraphBuilder b("residual");
  const ValueId x = b.add_input("x", 10);
  const ValueId w = b.add_param("w", 10);
  const ValueId a = b.add_simple_op("a", "linear", {x, w}, 100, 1, 1, {x});
  const ValueId h = b.add_simple_op("b", "relu", {a}, 100, 1, 1, {kNoId});
  const ValueId c = b.add_simple_op("c", "add", {a, h}, 100, 1, 1, {});
  b.add_simple_op("d", "loss", {c}, 4, 1, 1, {c});
  const TrainingGraph g = derive_training_graph(std::move(b).build());
  const BlockChain chain = decompose_into_blocks(g);
  ASSERT_EQ(chain.blocks.size(), 3u);
  EXPECT_EQ(chain.blocks[0].end_forward, 1);  // {a}
  EXPECT_EQ(chain.blocks[1].end_forward, 3);  // {b, c}: a crosses the position after b
  EXPECT_EQ(chain.blocks[1].output, (std::vector<ValueId>{c}));
}

// h = a(x); r = relu_(h) overwrites h in place: the cut after a would hand over h, which the
// next block overwrites, so a and relu_ share a block.
TEST(ChainTest, NoCutBeforeAnInPlaceOverwriteOfTheBoundary) {
  GraphBuilder b("inplace");
  const ValueId x = b.add_input("x", 10);
  const ValueId w = b.add_param("w", 10);
  const ValueId h = b.add_simple_op("a", "linear", {x, w}, 100, 1, 1, {x});
  const ValueId r = b.add_value(Value{.name = "r", .bytes = 0, .alias_of = h});
  b.add_op(Op{.name = "relu_",
              .kind = "relu_",
              .inputs = {h},
              .outputs = {r},
              .fwd_time_us = 1,
              .bwd_time_us = 1,
              .saved = {r},
              .in_place = true});
  b.add_simple_op("loss", "loss", {r}, 4, 1, 1, {r});
  const TrainingGraph g = derive_training_graph(std::move(b).build());
  const BlockChain chain = decompose_into_blocks(g);
  ASSERT_EQ(chain.blocks.size(), 2u);
  EXPECT_EQ(chain.blocks[0].end_forward, 2);  // {a, relu_}
  EXPECT_EQ(chain.blocks[0].output, (std::vector<ValueId>{r}));
}

// The labels (8 bytes) are read by the loss at the end: without pinning no cut would be valid.
TEST(ChainTest, SmallLongLivedValueIsPinned) {
  GraphBuilder b("labels");
  const ValueId x = b.add_input("x", 10);
  const ValueId w = b.add_param("w", 10);
  const ValueId labels = b.add_simple_op("labels", "copy", {x}, 8, 1, 0, {});
  ValueId h = x;
  for (int i = 0; i < 4; ++i) {
    h = b.add_simple_op("l" + std::to_string(i), "linear", {h, w}, 1000, 1, 1, {h});
  }
  b.add_simple_op("loss", "loss", {h, labels}, 4, 1, 1, {h});
  const TrainingGraph g = derive_training_graph(std::move(b).build());
  const BlockChain chain = decompose_into_blocks(g);
  EXPECT_TRUE(chain.is_pinned(labels));
  EXPECT_EQ(chain.pinned_values, (std::vector<ValueId>{labels}));
  EXPECT_GE(chain.blocks.size(), 5u);
}

// Independent checks of the rules on a decomposition.
void check_rules(const TrainingGraph& g, const BlockChain& chain) {
  const int num_blocks = static_cast<int>(chain.blocks.size());
  ASSERT_GE(num_blocks, 1);
  // Blocks tile the forward nodes; backward runs tile the backward nodes in reverse order.
  NodeId next_forward = 0;
  NodeId next_backward = g.num_nodes();
  for (int b = 0; b < num_blocks; ++b) {
    const Block& block = chain.blocks[static_cast<std::size_t>(b)];
    EXPECT_EQ(block.first_forward, next_forward);
    EXPECT_LT(block.first_forward, block.end_forward);
    next_forward = block.end_forward;
    EXPECT_EQ(block.end_backward, next_backward);
    next_backward = block.first_backward;
    for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
      EXPECT_EQ(chain.block_of_node[static_cast<std::size_t>(n)], b);
    }
  }
  EXPECT_EQ(next_forward, g.num_forward_nodes());
  EXPECT_EQ(next_backward, g.num_forward_nodes());
  std::vector<NodeId> producer(static_cast<std::size_t>(g.num_values()), kNoId);
  for (NodeId n = g.num_nodes() - 1; n >= 0; --n) {
    for (ValueId v : g.node(n).outputs) producer[static_cast<std::size_t>(v)] = n;
  }
  auto charged_forward = [&](ValueId v) {
    const NodeId p = producer[static_cast<std::size_t>(v)];
    return p != kNoId && p < g.num_forward_nodes() && !g.is_resident(v) && !chain.is_pinned(v);
  };
  // (a): at each cut at most one storage crosses, and it is the block's output storage.
  for (int b = 0; b + 1 < num_blocks; ++b) {
    const NodeId cut = chain.blocks[static_cast<std::size_t>(b)].end_forward;
    std::set<ValueId> crossing;
    for (NodeId n = cut; n < g.num_forward_nodes(); ++n) {
      for (ValueId v : g.node(n).inputs) {
        if (charged_forward(v) && producer[static_cast<std::size_t>(v)] < cut) {
          crossing.insert(g.storage_root(v));
        }
      }
    }
    EXPECT_LE(crossing.size(), 1u) << "cut " << cut;
    if (!crossing.empty()) {
      EXPECT_EQ(*crossing.begin(), chain.blocks[static_cast<std::size_t>(b)].output_root);
    }
  }
  // (b): backward nodes read forward values of their block, or its input or output boundary.
  for (NodeId n = g.num_forward_nodes(); n < g.num_nodes(); ++n) {
    const int b = chain.block_of_node[static_cast<std::size_t>(n)];
    for (ValueId v : g.node(n).inputs) {
      if (!charged_forward(v)) continue;
      const int made_in =
          chain.block_of_node[static_cast<std::size_t>(producer[static_cast<std::size_t>(v)])];
      if (made_in == b) continue;
      const auto& boundary = chain.blocks[static_cast<std::size_t>(made_in)].output;
      const bool is_boundary = std::find(boundary.begin(), boundary.end(), v) != boundary.end();
      EXPECT_TRUE(is_boundary && made_in == b - 1)
          << g.node(n).name << " reads " << g.value(v).name << " of block " << made_in;
    }
  }
}

TEST(ChainTest, RandomGraphsKeepTheRules) {
  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {
    testing::RandomGraphOptions options;
    options.num_ops = 2 + i % 24;
    options.chain = i % 3 == 0;
    const TrainingGraph g = testing::random_training_graph(rng, options);
    SCOPED_TRACE(::testing::Message() << "graph " << i);
    const BlockChain chain = decompose_into_blocks(g);
    check_rules(g, chain);
    // Read as a joint graph (no op to attribute backward nodes to), the same graph gets the
    // same cuts; its backward nodes may go to a neighbouring block where the rules allow both.
    const TrainingGraph joint_graph = testing::as_joint_graph(g);
    const BlockChain joint = decompose_into_blocks(joint_graph);
    check_rules(joint_graph, joint);
    ASSERT_EQ(joint.blocks.size(), chain.blocks.size());
    for (std::size_t b = 0; b < chain.blocks.size(); ++b) {
      EXPECT_EQ(joint.blocks[b].end_forward, chain.blocks[b].end_forward);
    }
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace ckpt::planning
