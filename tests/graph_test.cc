// Tests of the forward-graph IR built through the API: GraphBuilder's ids, defaults and
// conveniences, alias resolution, the value-kind names, and that build() validates.
#include "ckpt/graph.h"

#include <gtest/gtest.h>

#include "ckpt/error.h"

// Designated initializers leave the other members at their defaults on purpose; GCC 12 still
// warns about each omitted member without a default member initializer (vectors, strings).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ckpt {
namespace {

TEST(GraphBuilderTest, IdsAreIndicesAndProducersAreRecorded) {
  GraphBuilder builder("two_layers");
  const ValueId x = builder.add_input("x", 400);
  const ValueId w = builder.add_param("w", 1600);
  const ValueId h = builder.add_simple_op("fc", "matmul", {x, w}, 400, 10, 20, {x, w});
  const ValueId y = builder.add_simple_op("relu", "relu", {h}, 400, 1, 2, {kNoId});
  const Graph graph = std::move(builder).build();

  EXPECT_EQ(graph.name(), "two_layers");
  EXPECT_EQ(x, 0);
  EXPECT_EQ(w, 1);
  EXPECT_EQ(h, 2);
  EXPECT_EQ(y, 3);
  ASSERT_EQ(graph.num_values(), 4);
  ASSERT_EQ(graph.num_ops(), 2);
  EXPECT_EQ(graph.value(x).kind, ValueKind::kInput);
  EXPECT_EQ(graph.value(w).kind, ValueKind::kParam);
  EXPECT_TRUE(graph.value(w).requires_grad);
  EXPECT_EQ(graph.value(h).kind, ValueKind::kActivation);
  EXPECT_EQ(graph.producer(x), kNoId);
  EXPECT_EQ(graph.producer(w), kNoId);
  EXPECT_EQ(graph.producer(h), 0);
  EXPECT_EQ(graph.producer(y), 1);
}

TEST(GraphBuilderTest, SimpleOpNamesItsOutputAfterTheOpAndSavesTheNewOutputForNoId) {
  GraphBuilder builder("simple");
  const ValueId x = builder.add_input("x", 8);
  const ValueId h = builder.add_simple_op("tanh", "tanh", {x}, 8, 1.5, 2.5, {kNoId, x});
  const Graph graph = std::move(builder).build();
  const Op& op = graph.op(0);
  EXPECT_EQ(graph.value(h).name, "tanh");
  EXPECT_EQ(graph.value(h).bytes, 8);
  EXPECT_EQ(op.name, "tanh");
  EXPECT_EQ(op.kind, "tanh");
  EXPECT_EQ(op.inputs, (std::vector<ValueId>{x}));
  EXPECT_EQ(op.outputs, (std::vector<ValueId>{h}));
  EXPECT_EQ(op.saved, (std::vector<ValueId>{h, x}));
  EXPECT_DOUBLE_EQ(op.fwd_time_us, 1.5);
  EXPECT_DOUBLE_EQ(op.bwd_time_us, 2.5);
  EXPECT_TRUE(op.differentiable);
}

TEST(GraphBuilderTest, LossDefaultsToTheLastOpsFirstOutput) {
  GraphBuilder builder("loss");
  const ValueId x = builder.add_input("x", 8);
  const ValueId a = builder.add_value(Value{.name = "a", .bytes = 8});
  const ValueId b = builder.add_value(Value{.name = "b", .bytes = 8});
  builder.add_op(Op{.name = "split", .kind = "split", .inputs = {x}, .outputs = {a, b}});
  const Graph graph = std::move(builder).build();
  EXPECT_EQ(graph.loss(), a);
}

TEST(GraphBuilderTest, SetLossOverridesTheDefault) {
  GraphBuilder builder("loss");
  const ValueId x = builder.add_input("x", 8);
  const ValueId first = builder.add_simple_op("first", "sum", {x}, 4, 1, 1);
  builder.add_simple_op("second", "log", {x}, 4, 1, 1);
  builder.set_loss(first);
  EXPECT_EQ(std::move(builder).build().loss(), first);
}

TEST(GraphBuilderTest, StorageRootFollowsAliasChains) {
  GraphBuilder builder("views");
  const ValueId x = builder.add_input("x", 64);
  const ValueId h = builder.add_simple_op("h", "exp", {x}, 64, 1, 1, {kNoId});
  const ValueId view = builder.add_value(Value{.name = "view", .bytes = 64, .alias_of = h});
  builder.add_op(Op{.name = "view", .kind = "view", .inputs = {h}, .outputs = {view}});
  const ValueId relu = builder.add_value(Value{.name = "relu_", .bytes = 64, .alias_of = view});
  builder.add_op(
      Op{.name = "relu_", .kind = "relu_", .inputs = {view}, .outputs = {relu}, .in_place = true});
  const Graph graph = std::move(builder).build();
  EXPECT_EQ(graph.storage_root(x), x);
  EXPECT_EQ(graph.storage_root(h), h);
  EXPECT_EQ(graph.storage_root(view), h);
  EXPECT_EQ(graph.storage_root(relu), h);
}

TEST(GraphBuilderTest, ParamCanBeFrozen) {
  GraphBuilder builder("frozen");
  const ValueId w = builder.add_param("w", 16, /*requires_grad=*/false);
  builder.add_simple_op("use", "sum", {w}, 4, 1, 1);
  EXPECT_FALSE(std::move(builder).build().value(w).requires_grad);
}

TEST(GraphBuilderTest, BuildValidatesAndNamesTheApiAsTheSource) {
  GraphBuilder builder("broken");
  const ValueId x = builder.add_input("x", 8);
  builder.add_simple_op("a", "exp", {x, 42}, 8, 1, 1);
  try {
    std::move(builder).build();
    FAIL() << "build() accepted an op reading value 42";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kValidation);
    EXPECT_STREQ(error.what(),
                 "<api>: ops[0] \"a\" (field \"inputs\"): unknown value id 42; every entry must "
                 "be the id of a value (0..1)");
  }
}

TEST(GraphValueKindTest, NamesRoundTrip) {
  for (ValueKind kind : {ValueKind::kInput, ValueKind::kParam, ValueKind::kActivation}) {
    EXPECT_EQ(value_kind_from_string(to_string(kind)), kind);
  }
  EXPECT_EQ(to_string(ValueKind::kInput), "input");
  EXPECT_EQ(to_string(ValueKind::kParam), "param");
  EXPECT_EQ(to_string(ValueKind::kActivation), "activation");
  EXPECT_EQ(value_kind_from_string("gradient"), std::nullopt);
  EXPECT_EQ(value_kind_from_string("Input"), std::nullopt);
  EXPECT_EQ(value_kind_from_string(""), std::nullopt);
}

}  // namespace
}  // namespace ckpt
