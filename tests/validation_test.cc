// Tests of every validation rule, through each way a graph comes in: the API (GraphBuilder and
// validate_training_graph), the native forward and joint forms, ckpt-profile/1 and node-link
// files. Each test breaks one thing in an otherwise valid graph and checks that the message names
// the source, the field and the op or node, and says what is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ckpt/error.h"
#include "ckpt/formats.h"
#include "ckpt/graph.h"
#include "ckpt/training_graph.h"

// Designated initializers leave the other members at their defaults on purpose; GCC 12 still
// warns about each omitted member without a default member initializer (vectors, strings).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ckpt {
namespace {

using nlohmann::json;

// Runs `action` and expects a ckpt::Error of `kind` whose message contains each of `parts`.
template <typename Action>
void expect_error(Action&& action, ErrorKind kind, const std::vector<std::string>& parts) {
  try {
    action();
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), kind) << error.what();
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(error.what()).find(part), std::string::npos)
          << "expected \"" << part << "\" in: " << error.what();
    }
    return;
  }
  ADD_FAILURE() << "expected a ckpt::Error mentioning \"" << (parts.empty() ? "" : parts[0])
                << "\", got none";
}

// ---------------------------------------------------------------------------------------------
// Forward graphs through the API. The baseline: x (input), w (param) -> "a": h -> "b": y (loss).

struct ForwardParts {
  std::vector<Value> values;
  std::vector<Op> ops;
  std::optional<ValueId> loss;
};

constexpr ValueId kX = 0, kW = 1, kH = 2, kY = 3;

ForwardParts baseline() {
  ForwardParts parts;
  parts.values = {Value{.name = "x", .bytes = 8, .kind = ValueKind::kInput},
                  Value{.name = "w", .bytes = 8, .kind = ValueKind::kParam},
                  Value{.name = "h", .bytes = 8}, Value{.name = "y", .bytes = 4}};
  parts.ops = {Op{.name = "a",
                  .kind = "matmul",
                  .inputs = {kX, kW},
                  .outputs = {kH},
                  .fwd_time_us = 2,
                  .bwd_time_us = 4,
                  .saved = {kX}},
               Op{.name = "b",
                  .kind = "sum",
                  .inputs = {kH},
                  .outputs = {kY},
                  .fwd_time_us = 1,
                  .bwd_time_us = 1,
                  .saved = {kH}}};
  return parts;
}

Graph build(const ForwardParts& parts) {
  GraphBuilder builder("test");
  for (const Value& value : parts.values) builder.add_value(value);
  for (const Op& op : parts.ops) builder.add_op(op);
  if (parts.loss) builder.set_loss(*parts.loss);
  return std::move(builder).build();
}

void expect_invalid(const ForwardParts& parts, const std::vector<std::string>& message_parts) {
  expect_error([&] { build(parts); }, ErrorKind::kValidation, message_parts);
}

TEST(ValidateForwardTest, BaselineIsValid) {
  const Graph graph = build(baseline());
  EXPECT_NO_THROW(validate_graph(graph, "<api>"));
  EXPECT_EQ(graph.loss(), kY);
}

TEST(ValidateForwardTest, EmptyGraph) {
  ForwardParts parts = baseline();
  parts.ops.clear();
  parts.values.resize(2);
  expect_invalid(parts, {"<api>: field \"ops\": the graph has no ops", "add at least one op"});
}

TEST(ValidateForwardTest, CycleIsReportedAsACycle) {
  ForwardParts parts = baseline();
  parts.ops[0].inputs = {kY};  // a reads b's output, b reads a's output
  expect_invalid(parts, {"<api>: ops[0] \"a\" (field \"inputs\")",
                         "the ops form a cycle: \"a\" -> \"b\" -> \"a\"", "must be acyclic"});
}

TEST(ValidateForwardTest, ConsumingBeforeProducingIsAnOrderingError) {
  ForwardParts parts = baseline();
  std::swap(parts.ops[0], parts.ops[1]);
  expect_invalid(parts, {"ops[0] \"b\" (field \"inputs\")",
                         "value \"h\" is consumed before it is produced (by ops[1] \"a\")",
                         "list the ops in execution order"});
}

TEST(ValidateForwardTest, OpConsumingItsOwnOutput) {
  ForwardParts parts = baseline();
  parts.ops[0].inputs.push_back(kH);
  expect_invalid(parts, {"ops[0] \"a\" (field \"inputs\")",
                         "\"h\" is both an input and an output of the op", "alias_of"});
}

TEST(ValidateForwardTest, UnknownIds) {
  ForwardParts inputs = baseline();
  inputs.ops[1].inputs = {kH, 99};
  expect_invalid(inputs, {"ops[1] \"b\" (field \"inputs\"): unknown value id 99"});
  ForwardParts outputs = baseline();
  outputs.ops[1].outputs = {-3};
  expect_invalid(outputs, {"ops[1] \"b\" (field \"outputs\"): unknown value id -3"});
  ForwardParts saved = baseline();
  saved.ops[0].saved = {7};
  expect_invalid(saved, {"ops[0] \"a\" (field \"saved\"): unknown value id 7"});
  ForwardParts alias = baseline();
  alias.values[kH].alias_of = 12;
  expect_invalid(alias, {"values[2] \"h\" (field \"alias_of\"): unknown value id 12"});
  ForwardParts loss = baseline();
  loss.loss = 40;
  expect_invalid(loss, {"field \"loss\": unknown value id 40"});
}

TEST(ValidateForwardTest, NegativeSizes) {
  ForwardParts value = baseline();
  value.values[kH].bytes = -1;
  expect_invalid(value, {"values[2] \"h\" (field \"bytes\"): negative size -1", "byte counts"});
  ForwardParts workspace = baseline();
  workspace.ops[1].bwd_workspace_bytes = -5;
  expect_invalid(workspace, {"ops[1] \"b\" (field \"bwd_workspace_bytes\"): negative size -5"});
  ForwardParts fwd_workspace = baseline();
  fwd_workspace.ops[0].fwd_workspace_bytes = -6;
  expect_invalid(fwd_workspace, {"ops[0] \"a\" (field \"fwd_workspace_bytes\")"});
  ForwardParts saved_other = baseline();
  saved_other.ops[0].saved_other_bytes = -7;
  expect_invalid(saved_other, {"ops[0] \"a\" (field \"saved_other_bytes\"): negative size -7"});
}

// Sizes that each fit in 64 bits but together pass 2^60 would overflow the planner's sums.
TEST(ValidateForwardTest, SizesMustAddUpToAtMostTwoToTheSixty) {
  ForwardParts values = baseline();
  values.values[kH].bytes = std::int64_t{1} << 59;
  values.values[kH + 1].bytes = std::int64_t{1} << 59;
  expect_invalid(values, {"(field \"bytes\"): size 576460752303423488 takes the graph's sizes "
                          "past 2^60 bytes"});
  ForwardParts workspace = baseline();
  workspace.values[kH].bytes = (std::int64_t{1} << 60) - 20;  // with x, w and y: 2^60 exactly
  workspace.ops[0].fwd_workspace_bytes = 1;
  expect_invalid(workspace, {"ops[0] \"a\" (field \"fwd_workspace_bytes\"): size 1 takes"});
  ForwardParts fits = baseline();
  fits.values[kH].bytes = (std::int64_t{1} << 60) - 1000;
  EXPECT_NO_THROW(build(fits));
}

TEST(ValidateForwardTest, TimesMustBeFiniteAndNonNegative) {
  ForwardParts nan = baseline();
  nan.ops[0].fwd_time_us = std::nan("");
  expect_invalid(nan, {"ops[0] \"a\" (field \"fwd_time_us\"): time nan is not finite"});
  ForwardParts inf = baseline();
  inf.ops[1].bwd_time_us = std::numeric_limits<double>::infinity();
  expect_invalid(inf, {"ops[1] \"b\" (field \"bwd_time_us\"): time inf is not finite"});
  ForwardParts negative = baseline();
  negative.ops[1].fwd_time_us = -0.5;
  expect_invalid(negative, {"ops[1] \"b\" (field \"fwd_time_us\"): negative time -0.5"});
}

TEST(ValidateForwardTest, AttributesMustBeFinite) {
  ForwardParts parts = baseline();
  parts.ops[1].attributes["eps"] = std::numeric_limits<double>::quiet_NaN();
  expect_invalid(parts, {"ops[1] \"b\" (field \"attributes\"): attribute \"eps\" is nan"});
}

TEST(ValidateForwardTest, NamesMustBeUniqueAndNonEmpty) {
  ForwardParts values = baseline();
  values.values[kY].name = "h";
  expect_invalid(values, {"values[3] \"h\" (field \"name\"): duplicate value name \"h\", also "
                          "used by values[2]"});
  ForwardParts ops = baseline();
  ops.ops[1].name = "a";
  expect_invalid(ops, {"ops[1] \"a\" (field \"name\"): duplicate op name \"a\", also used by "
                       "ops[0]"});
  ForwardParts empty = baseline();
  empty.values[kW].name = "";
  expect_invalid(empty, {"values[1] (field \"name\"): empty name"});
}

TEST(ValidateForwardTest, ValueProducedTwice) {
  ForwardParts parts = baseline();
  parts.ops[1].outputs = {kY, kH};
  expect_invalid(parts, {"ops[1] \"b\" (field \"outputs\")",
                         "value \"h\" is produced twice (also by ops[0] \"a\")",
                         "give this result a new value"});
}

TEST(ValidateForwardTest, OutputListedTwice) {
  ForwardParts parts = baseline();
  parts.ops[0].outputs = {kH, kH};
  expect_invalid(parts, {"ops[0] \"a\" (field \"outputs\"): value \"h\" is listed twice"});
}

TEST(ValidateForwardTest, InputsAndParamsAreNotProducedByOps) {
  ForwardParts parts = baseline();
  parts.ops[1].outputs = {kY, kW};
  expect_invalid(parts, {"ops[1] \"b\" (field \"outputs\"): value \"w\" has kind \"param\"",
                         "make it an activation"});
}

TEST(ValidateForwardTest, SavedValueMustBeTouchedByTheOp) {
  ForwardParts parts = baseline();
  parts.ops[1].saved = {kX};
  expect_invalid(parts, {"ops[1] \"b\" (field \"saved\"): saves \"x\", which is neither an input "
                         "nor an output of the op"});
}

TEST(ValidateForwardTest, AliasMustBeAnInputOfTheProducer) {
  ForwardParts parts = baseline();
  parts.values[kY].alias_of = kX;
  expect_invalid(parts, {"values[3] \"y\" (field \"alias_of\"): aliases \"x\", which is not an "
                         "input of its producer ops[1] \"b\""});
}

TEST(ValidateForwardTest, OnlyOpOutputsAlias) {
  ForwardParts parts = baseline();
  parts.values[kX].alias_of = kW;
  expect_invalid(parts, {"values[0] \"x\" (field \"alias_of\")", "only op outputs"});
  ForwardParts self = baseline();
  self.values[kH].alias_of = kH;
  expect_invalid(self, {"values[2] \"h\" (field \"alias_of\"): a value cannot alias itself"});
}

TEST(ValidateForwardTest, ActivationsMustBeProduced) {
  ForwardParts consumed = baseline();
  consumed.values.push_back(Value{.name = "z", .bytes = 8});
  consumed.ops[1].inputs = {kH, 4};
  expect_invalid(consumed, {"ops[1] \"b\" (field \"inputs\"): value \"z\" is an activation that "
                            "no op produces"});
  ForwardParts unused = baseline();
  unused.values.push_back(Value{.name = "z", .bytes = 8});
  expect_invalid(unused, {"values[4] \"z\" (field \"kind\"): an activation that no op produces"});
}

TEST(ValidateForwardTest, ValueOverwrittenInPlaceCannotBeReadAgain) {
  ForwardParts parts = baseline();
  parts.values.push_back(Value{.name = "h.1", .bytes = 8, .alias_of = kH});
  parts.ops.insert(
      parts.ops.begin() + 1,
      Op{.name = "relu_", .kind = "relu_", .inputs = {kH}, .outputs = {4}, .in_place = true});
  expect_invalid(parts, {"ops[2] \"b\" (field \"inputs\"): value \"h\" was overwritten in place "
                         "by ops[1] \"relu_\"",
                         "read that op's output instead"});
}

TEST(ValidateForwardTest, LossMustBeAnActivation) {
  ForwardParts input = baseline();
  input.loss = kX;
  expect_invalid(input, {"field \"loss\": \"x\" has kind \"input\""});
  ForwardParts none = baseline();
  none.values.resize(3);
  none.ops[1].outputs.clear();
  none.ops[1].saved = {kH};
  expect_invalid(none, {"field \"loss\": the graph has no loss"});
}

// ---------------------------------------------------------------------------------------------
// Joint graphs, through the native joint form. Baseline: forward a (x, w -> h), b (h -> y);
// backward b.bwd (h -> h.grad), a.bwd (h.grad, x; accumulates w.grad).

json joint_baseline() {
  return json::parse(R"({
    "format": "ckpt-graph/1", "form": "joint", "name": "joint",
    "values": [
      {"name": "x", "bytes": 8, "kind": "input"},
      {"name": "w", "bytes": 8, "kind": "param"},
      {"name": "w.grad", "bytes": 8, "kind": "param_gradient"},
      {"name": "h", "bytes": 8, "kind": "activation"},
      {"name": "y", "bytes": 4, "kind": "activation"},
      {"name": "h.grad", "bytes": 8, "kind": "gradient"}
    ],
    "nodes": [
      {"name": "a", "kind": "matmul", "phase": "forward", "time_us": 2, "inputs": ["x", "w"],
       "outputs": ["h"]},
      {"name": "b", "kind": "sum", "phase": "forward", "time_us": 1, "inputs": ["h"],
       "outputs": ["y"]},
      {"name": "b.bwd", "kind": "sum", "phase": "backward", "time_us": 1, "inputs": ["h"],
       "outputs": ["h.grad"]},
      {"name": "a.bwd", "kind": "matmul", "phase": "backward", "time_us": 4,
       "inputs": ["h.grad", "x"], "outputs": [], "accumulates": ["w.grad"]}
    ]})");
}

void expect_invalid_joint(const json& document, ErrorKind kind,
                          const std::vector<std::string>& parts) {
  expect_error([&] { parse_graph(document.dump(), "joint.json"); }, kind, parts);
}

TEST(ValidateJointTest, BaselineIsValid) {
  const LoadedGraph loaded = parse_graph(joint_baseline().dump(), "joint.json");
  EXPECT_NO_THROW(validate_training_graph(loaded.training, "joint.json"));
}

TEST(ValidateJointTest, EmptyGraph) {
  json document = joint_baseline();
  document["nodes"] = json::array();
  document["values"] = json::array();
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"joint.json: field \"nodes\": the graph has no nodes"});
}

TEST(ValidateJointTest, ForwardNodesComeFirst) {
  json document = joint_baseline();
  json b = document["nodes"][1];
  document["nodes"].erase(1);
  document["nodes"].push_back(b);
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"joint.json: nodes[3] \"b\" (field \"phase\"): a forward node listed after "
                        "the backward node nodes[2] \"a.bwd\""});
}

TEST(ValidateJointTest, ValueProducedTwice) {
  json document = joint_baseline();
  document["nodes"][3]["outputs"] = {"h.grad"};
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"nodes[3] \"a.bwd\" (field \"outputs\"): value \"h.grad\" is produced "
                        "twice (also by nodes[2] \"b.bwd\")",
                        "accumulates"});
}

TEST(ValidateJointTest, ReadBeforeProduced) {
  json document = joint_baseline();
  std::swap(document["nodes"][2], document["nodes"][3]);
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"nodes[2] \"a.bwd\" (field \"inputs\"): value \"h.grad\" is read before "
                        "it is produced (by nodes[3] \"b.bwd\")"});
}

TEST(ValidateJointTest, CycleIsReportedAsACycle) {
  json document = joint_baseline();
  document["values"].push_back({{"name", "g"}, {"bytes", 8}, {"kind", "gradient"}});
  document["nodes"][2]["inputs"] = {"h", "g"};
  document["nodes"][3]["outputs"] = {"g"};
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"nodes[2] \"b.bwd\" (field \"inputs\")",
                        "the nodes form a cycle: \"b.bwd\" -> \"a.bwd\" -> \"b.bwd\""});
}

TEST(ValidateJointTest, ReadingAValueNoNodeProduces) {
  json document = joint_baseline();
  document["values"].push_back({{"name", "ghost"}, {"bytes", 8}, {"kind", "gradient"}});
  document["nodes"][3]["inputs"].push_back("ghost");
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"nodes[3] \"a.bwd\" (field \"inputs\"): value \"ghost\" (gradient) is "
                        "read but no node produces it"});
  json accumulated = joint_baseline();
  accumulated["values"].push_back({{"name", "ghost"}, {"bytes", 8}, {"kind", "gradient"}});
  accumulated["nodes"][3]["accumulates"].push_back("ghost");
  expect_invalid_joint(accumulated, ErrorKind::kValidation,
                       {"nodes[3] \"a.bwd\" (field \"accumulates\"): value \"ghost\""});
}

TEST(ValidateJointTest, ChargedValuesMustBeProduced) {
  json document = joint_baseline();
  document["values"].push_back({{"name", "ghost"}, {"bytes", 8}, {"kind", "saved_state"}});
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"values[6] \"ghost\" (field \"kind\"): a value of kind \"saved_state\" "
                        "that no node produces"});
}

TEST(ValidateJointTest, KillsMustBeInputs) {
  json document = joint_baseline();
  document["nodes"][3]["kills"] = {"h"};
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"nodes[3] \"a.bwd\" (field \"kills\"): kills \"h\", which is not an input "
                        "of the node"});
}

TEST(ValidateJointTest, AliasMustBeAnInputOfTheProducer) {
  json document = joint_baseline();
  document["values"][5]["alias_of"] = "x";
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"values[5] \"h.grad\" (field \"alias_of\"): aliases \"x\", which is not an "
                        "input of its producer nodes[2] \"b.bwd\""});
  json resident = joint_baseline();
  resident["values"][2]["alias_of"] = "w";
  expect_invalid_joint(resident, ErrorKind::kValidation,
                       {"values[2] \"w.grad\" (field \"alias_of\")", "only node outputs"});
}

TEST(ValidateJointTest, NegativeSizesTimesAndVersions) {
  json bytes = joint_baseline();
  bytes["values"][3]["bytes"] = -8;
  expect_invalid_joint(bytes, ErrorKind::kValidation,
                       {"values[3] \"h\" (field \"bytes\"): negative size -8"});
  json time = joint_baseline();
  time["nodes"][1]["time_us"] = -1.5;
  expect_invalid_joint(time, ErrorKind::kValidation,
                       {"nodes[1] \"b\" (field \"time_us\"): negative time -1.5"});
  json workspace = joint_baseline();
  workspace["nodes"][1]["workspace_bytes"] = -2;
  expect_invalid_joint(workspace, ErrorKind::kValidation,
                       {"nodes[1] \"b\" (field \"workspace_bytes\"): negative size -2"});
  json version = joint_baseline();
  version["values"][3]["version"] = -1;
  expect_invalid_joint(version, ErrorKind::kValidation,
                       {"values[3] \"h\" (field \"version\"): negative version -1"});
}

TEST(ValidateJointTest, DuplicateNames) {
  json nodes = joint_baseline();
  nodes["nodes"][1]["name"] = "a";
  expect_invalid_joint(nodes, ErrorKind::kValidation,
                       {"nodes[1] \"a\" (field \"name\"): duplicate node name \"a\", also used by "
                        "nodes[0]"});
  json values = joint_baseline();
  values["values"][4]["name"] = "h";
  expect_invalid_joint(values, ErrorKind::kValidation,
                       {"values[4] \"h\" (field \"name\"): duplicate value name, also used by "
                        "values[3]"});
}

TEST(ValidateJointTest, ResidentInputsAreNotProduced) {
  json document = joint_baseline();
  document["nodes"][1]["outputs"] = {"y", "x"};
  expect_invalid_joint(document, ErrorKind::kValidation,
                       {"nodes[1] \"b\" (field \"outputs\"): value \"x\" has kind \"input\""});
}

TEST(ValidateJointTest, UnknownNamesAndEnumValues) {
  json input = joint_baseline();
  input["nodes"][3]["accumulates"] = {"w.grd"};
  expect_invalid_joint(input, ErrorKind::kValidation,
                       {"nodes[3] \"a.bwd\" (field \"accumulates\"): unknown value \"w.grd\""});
  json phase = joint_baseline();
  phase["nodes"][0]["phase"] = "fwd";
  expect_invalid_joint(
      phase, ErrorKind::kParse,
      {"nodes[0] \"a\" (field \"phase\"): unknown value \"fwd\"", "\"forward\", \"backward\""});
  json kind = joint_baseline();
  kind["values"][2]["kind"] = "grad";
  expect_invalid_joint(
      kind, ErrorKind::kParse,
      {"values[2] \"w.grad\" (field \"kind\"): unknown value \"grad\"", "\"param_gradient\""});
}

TEST(ValidateJointTest, ApiGraphsAreCheckedToo) {
  GraphBuilder builder("api");
  const ValueId x = builder.add_input("x", 8);
  const ValueId w = builder.add_param("w", 8);
  const ValueId h = builder.add_simple_op("h", "matmul", {x, w}, 8, 1, 1, {x});
  builder.add_simple_op("loss", "sum", {h}, 4, 1, 1, {h});
  const TrainingGraph derived = derive_training_graph(std::move(builder).build());
  EXPECT_NO_THROW(validate_training_graph(derived, "<api>"));

  std::vector<TValue> values = {TValue{.name = "h", .bytes = 8, .producer = 1}};
  std::vector<Node> nodes = {
      Node{.name = "bwd", .kind = "k", .phase = NodePhase::kBackward, .outputs = {}},
      Node{.name = "fwd", .kind = "k", .phase = NodePhase::kForward, .outputs = {0}}};
  const TrainingGraph bad("bad", values, nodes, /*derived=*/false);
  expect_error([&] { validate_training_graph(bad, "<api>"); }, ErrorKind::kValidation,
               {"<api>: nodes[1] \"fwd\" (field \"phase\")"});
}

// ---------------------------------------------------------------------------------------------
// Native forward files: errors only a file can have (names, fields, types).

json forward_baseline() {
  return json::parse(R"({
    "format": "ckpt-graph/1", "form": "forward", "name": "tiny",
    "values": [
      {"name": "x", "bytes": 8, "kind": "input"},
      {"name": "h", "bytes": 8, "kind": "activation"}
    ],
    "ops": [
      {"name": "exp", "kind": "exp", "inputs": ["x"], "outputs": ["h"], "fwd_time_us": 1,
       "bwd_time_us": 1, "saved": ["h"]}
    ]})");
}

void expect_invalid_forward(const json& document, ErrorKind kind,
                            const std::vector<std::string>& parts) {
  expect_error([&] { parse_graph(document.dump(), "tiny.json"); }, kind, parts);
}

TEST(ValidateNativeTest, BaselineIsValid) {
  EXPECT_NO_THROW(parse_graph(forward_baseline().dump(), "tiny.json"));
}

TEST(ValidateNativeTest, UnknownNames) {
  json input = forward_baseline();
  input["ops"][0]["inputs"] = {"y"};
  expect_invalid_forward(input, ErrorKind::kValidation,
                         {"tiny.json: ops[0] \"exp\" (field \"inputs\"): unknown value \"y\"",
                          "the name of an entry in \"values\""});
  json alias = forward_baseline();
  alias["values"][1]["alias_of"] = "nothing";
  expect_invalid_forward(alias, ErrorKind::kValidation,
                         {"values[1] \"h\" (field \"alias_of\"): unknown value \"nothing\""});
  json loss = forward_baseline();
  loss["loss"] = "l";
  expect_invalid_forward(loss, ErrorKind::kValidation,
                         {"tiny.json: field \"loss\": unknown value \"l\""});
}

TEST(ValidateNativeTest, DuplicateValueName) {
  json document = forward_baseline();
  document["values"][1]["name"] = "x";
  expect_invalid_forward(document, ErrorKind::kValidation,
                         {"values[1] \"x\" (field \"name\"): duplicate value name, also used by "
                          "values[0]"});
}

TEST(ValidateNativeTest, MissingAndMistypedFields) {
  json bytes = forward_baseline();
  bytes["values"][1].erase("bytes");
  expect_invalid_forward(bytes, ErrorKind::kParse,
                         {"values[1] \"h\" (field \"bytes\"): missing required field"});
  json time = forward_baseline();
  time["ops"][0].erase("bwd_time_us");
  expect_invalid_forward(time, ErrorKind::kParse,
                         {"ops[0] \"exp\" (field \"bwd_time_us\"): missing required field"});
  json type = forward_baseline();
  type["values"][0]["bytes"] = "8";
  expect_invalid_forward(type, ErrorKind::kParse,
                         {"values[0] \"x\" (field \"bytes\"): expected a whole number"});
  json fraction = forward_baseline();
  fraction["values"][0]["bytes"] = 8.5;
  expect_invalid_forward(fraction, ErrorKind::kParse,
                         {"values[0] \"x\" (field \"bytes\")", "found 8.5"});
  json name = forward_baseline();
  name.erase("name");
  expect_invalid_forward(name, ErrorKind::kParse,
                         {"tiny.json: field \"name\": missing required field"});
  json form = forward_baseline();
  form.erase("form");
  expect_invalid_forward(form, ErrorKind::kParse, {"field \"form\": missing required field"});
}

TEST(ValidateNativeTest, UnknownFieldsAndValues) {
  json misspelt = forward_baseline();
  misspelt["ops"][0]["side_efecting"] = true;
  expect_invalid_forward(
      misspelt, ErrorKind::kParse,
      {"ops[0] \"exp\" (field \"side_efecting\"): unknown field", "\"side_effecting\""});
  json kind = forward_baseline();
  kind["values"][0]["kind"] = "gradient";
  expect_invalid_forward(kind, ErrorKind::kParse,
                         {"values[0] \"x\" (field \"kind\"): unknown kind \"gradient\""});
  json form = forward_baseline();
  form["form"] = "backward";
  expect_invalid_forward(form, ErrorKind::kParse,
                         {"field \"form\": unknown form \"backward\"", "\"forward\"", "\"joint\""});
}

TEST(ValidateNativeTest, ValidationRulesApplyToFiles) {
  json negative = forward_baseline();
  negative["ops"][0]["fwd_time_us"] = -3;
  expect_invalid_forward(negative, ErrorKind::kValidation,
                         {"tiny.json: ops[0] \"exp\" (field \"fwd_time_us\"): negative time -3"});
  json saved = forward_baseline();
  saved["values"].push_back({{"name", "z"}, {"bytes", 8}, {"kind", "input"}});
  saved["ops"][0]["saved"] = {"z"};
  expect_invalid_forward(saved, ErrorKind::kValidation,
                         {"tiny.json: ops[0] \"exp\" (field \"saved\"): saves \"z\""});
  json empty = forward_baseline();
  empty["ops"] = json::array();
  expect_invalid_forward(empty, ErrorKind::kValidation,
                         {"tiny.json: field \"ops\": the graph has no ops"});
}

// ---------------------------------------------------------------------------------------------
// ckpt-profile/1 files: the hand-written sample in tests/data, broken one thing at a time.

json profile_baseline() {
  std::ifstream file(std::string(CKPT_SOURCE_DIR) + "/tests/data/profile_small.json");
  return json::parse(file);
}

void expect_invalid_profile(const json& document, ErrorKind kind,
                            const std::vector<std::string>& parts) {
  expect_error([&] { parse_graph(document.dump(), "small.json"); }, kind, parts);
}

TEST(ValidateProfileTest, BaselineIsValid) {
  EXPECT_NO_THROW(parse_graph(profile_baseline().dump(), "small.json"));
}

TEST(ValidateProfileTest, UnknownTensorId) {
  json document = profile_baseline();
  document["ops"][1]["inputs"] = {2, 0, 9999};
  expect_invalid_profile(document, ErrorKind::kValidation,
                         {"small.json: ops[1] \"aten.addmm.default\" (field \"inputs\"): unknown "
                          "tensor id 9999; every entry must be the id of an entry in \"tensors\""});
  json output = profile_baseline();
  output["ops"][10]["outputs"] = {21};
  expect_invalid_profile(output, ErrorKind::kValidation,
                         {"ops[10] \"aten.mean.default\" (field \"outputs\"): unknown tensor id "
                          "21"});
}

TEST(ValidateProfileTest, DuplicateTensorId) {
  json document = profile_baseline();
  document["tensors"][3]["id"] = 2;
  expect_invalid_profile(document, ErrorKind::kValidation,
                         {"tensors[3] (field \"id\"): duplicate tensor id 2, also used by "
                          "tensors[2]"});
}

TEST(ValidateProfileTest, MissingFields) {
  json op = profile_baseline();
  op["ops"][4].erase("fwd_us");
  expect_invalid_profile(op, ErrorKind::kParse,
                         {"ops[4] \"aten.relu_.default\" (field \"fwd_us\"): missing required "
                          "field"});
  json tensor = profile_baseline();
  tensor["tensors"][5].erase("bytes");
  expect_invalid_profile(tensor, ErrorKind::kParse,
                         {"tensors[5] (field \"bytes\"): missing required field"});
  json tensors = profile_baseline();
  tensors.erase("tensors");
  expect_invalid_profile(tensors, ErrorKind::kParse,
                         {"small.json: field \"tensors\": missing required field"});
}

TEST(ValidateProfileTest, SavedPositionOutOfRange) {
  json outputs = profile_baseline();
  outputs["ops"][4]["saved_outputs"] = {1};
  expect_invalid_profile(outputs, ErrorKind::kValidation,
                         {"ops[4] \"aten.relu_.default\" (field \"saved_outputs\"): position 1 is "
                          "out of range: the op has 1 outputs"});
  json inputs = profile_baseline();
  inputs["ops"][1]["saved_inputs"] = {-1};
  expect_invalid_profile(inputs, ErrorKind::kValidation,
                         {"ops[1] \"aten.addmm.default\" (field \"saved_inputs\"): position -1"});
}

TEST(ValidateProfileTest, NegativeTimesAndSizes) {
  json time = profile_baseline();
  time["ops"][1]["bwd_us"] = -2.0;
  expect_invalid_profile(time, ErrorKind::kValidation,
                         {"ops[1] \"aten.addmm.default\" (field \"bwd_us\"): time -2 is negative"});
  json bytes = profile_baseline();
  bytes["tensors"][4]["bytes"] = -512;
  expect_invalid_profile(bytes, ErrorKind::kValidation,
                         {"tensors[4] (field \"bytes\"): negative size -512"});
  json other = profile_baseline();
  other["ops"][6]["saved_other_bytes"] = -1;
  expect_invalid_profile(other, ErrorKind::kValidation,
                         {"ops[6] \"aten.native_dropout.default\" (field \"saved_other_bytes\")"});
}

TEST(ValidateProfileTest, AliasFlags) {
  json count = profile_baseline();
  count["ops"][7]["alias"] = {true};
  expect_invalid_profile(count, ErrorKind::kValidation,
                         {"ops[7] \"aten.split.Tensor\" (field \"alias\"): has 1 entries for 2 "
                          "outputs"});
  json view = profile_baseline();
  view["ops"][0]["inputs"] = json::array();
  expect_invalid_profile(view, ErrorKind::kValidation,
                         {"ops[0] \"aten.t.default\" (field \"alias\"): output 0 is marked as a "
                          "view but the op has no inputs"});
}

TEST(ValidateProfileTest, TensorProducedTwice) {
  json document = profile_baseline();
  document["ops"][9]["outputs"] = {20};
  expect_invalid_profile(document, ErrorKind::kValidation,
                         {"ops[10] \"10:aten.mean.default\" (field \"outputs\"): value \"t20\" is "
                          "produced twice (also by ops[9] \"9:aten.detach.default\")"});
}

TEST(ValidateProfileTest, CycleThroughOpOrder) {
  json document = profile_baseline();
  document["ops"][3]["inputs"] = {18, 6, 7, 8, 9};  // batch norm reads mul's later output
  expect_invalid_profile(
      document, ErrorKind::kValidation,
      {"ops[3] \"3:aten.native_batch_norm.default\" (field \"inputs\")", "the ops form a cycle"});
}

TEST(ValidateProfileTest, UnknownKind) {
  json document = profile_baseline();
  document["tensors"][0]["kind"] = "buffer";
  expect_invalid_profile(document, ErrorKind::kParse,
                         {"tensors[0] (field \"kind\"): unknown kind \"buffer\""});
}

// ---------------------------------------------------------------------------------------------
// Node-link files. Baseline: forward f0 -> f1, backward loss, f1_backward, f0_backward.

json node_link_baseline() {
  return json::parse(R"({
    "directed": true, "multigraph": false, "graph": {"name": "tiny"},
    "nodes": [
      {"id": 0, "name": "f0", "backward": false, "cost_cpu": 10, "cost_ram": 100},
      {"id": 1, "name": "f1", "backward": false, "cost_cpu": 20, "cost_ram": 200},
      {"id": 2, "name": "loss", "backward": true, "cost_cpu": 5, "cost_ram": 4},
      {"id": 3, "name": "f1_backward", "backward": true, "cost_cpu": 30, "cost_ram": 200},
      {"id": 4, "name": "f0_backward", "backward": true, "cost_cpu": 15, "cost_ram": 100}
    ],
    "links": [
      {"source": 0, "target": 1}, {"source": 1, "target": 2}, {"source": 1, "target": 3},
      {"source": 2, "target": 3}, {"source": 0, "target": 4}, {"source": 3, "target": 4}
    ]})");
}

json node(int id, const std::string& name, bool backward) {
  return {{"id", id}, {"name", name}, {"backward", backward}, {"cost_cpu", 1}, {"cost_ram", 8}};
}

json link(int source, int target) { return {{"source", source}, {"target", target}}; }

void expect_invalid_node_link(const json& document, ErrorKind kind,
                              const std::vector<std::string>& parts) {
  expect_error([&] { parse_graph(document.dump(), "tiny_nx.json"); }, kind, parts);
}

TEST(ValidateNodeLinkTest, BaselineIsValid) {
  EXPECT_NO_THROW(parse_graph(node_link_baseline().dump(), "tiny_nx.json"));
}

TEST(ValidateNodeLinkTest, Cycle) {
  json document = node_link_baseline();
  document["links"].push_back(link(3, 1));
  expect_invalid_node_link(document, ErrorKind::kValidation,
                           {"tiny_nx.json: field \"links\": the links form a cycle: 1 \"f1\" -> ",
                            "3 \"f1_backward\" -> 1 \"f1\"", "must be acyclic"});
  json self = node_link_baseline();
  self["links"].push_back(link(2, 2));
  expect_invalid_node_link(self, ErrorKind::kValidation,
                           {"the links form a cycle: 2 \"loss\" -> 2 \"loss\""});
}

TEST(ValidateNodeLinkTest, UnknownLinkEnd) {
  json document = node_link_baseline();
  document["links"].push_back(link(1, 7));
  expect_invalid_node_link(document, ErrorKind::kValidation,
                           {"tiny_nx.json: links[6] (field \"target\"): unknown node id 7; link "
                            "ends must be ids of entries in \"nodes\""});
}

TEST(ValidateNodeLinkTest, DuplicateId) {
  json document = node_link_baseline();
  document["nodes"][4]["id"] = 3;
  expect_invalid_node_link(document, ErrorKind::kValidation,
                           {"nodes[4] \"f0_backward\" (field \"id\"): duplicate node id 3, also "
                            "used by nodes[3] \"f1_backward\""});
}

TEST(ValidateNodeLinkTest, MissingFields) {
  json ram = node_link_baseline();
  ram["nodes"][2].erase("cost_ram");
  expect_invalid_node_link(ram, ErrorKind::kParse,
                           {"nodes[2] \"loss\" (field \"cost_ram\"): missing required field"});
  json backward = node_link_baseline();
  backward["nodes"][0].erase("backward");
  expect_invalid_node_link(backward, ErrorKind::kParse,
                           {"nodes[0] \"f0\" (field \"backward\"): missing required field"});
  json id = node_link_baseline();
  id["nodes"][1].erase("id");
  expect_invalid_node_link(id, ErrorKind::kParse,
                           {"nodes[1] \"f1\" (field \"id\"): missing required field"});
  json target = node_link_baseline();
  target["links"][0].erase("target");
  expect_invalid_node_link(target, ErrorKind::kParse,
                           {"links[0] (field \"target\"): missing required field"});
}

TEST(ValidateNodeLinkTest, NegativeCosts) {
  json cpu = node_link_baseline();
  cpu["nodes"][1]["cost_cpu"] = -20;
  expect_invalid_node_link(cpu, ErrorKind::kValidation,
                           {"nodes[1] \"f1\" (field \"cost_cpu\"): negative cost -20"});
  json ram = node_link_baseline();
  ram["nodes"][1]["cost_ram"] = -200;
  expect_invalid_node_link(ram, ErrorKind::kValidation,
                           {"nodes[1] \"f1\" (field \"cost_ram\"): negative size -200"});
}

TEST(ValidateNodeLinkTest, IdsMustBeInExecutionOrder) {
  json document = node_link_baseline();
  document["nodes"].push_back(node(5, "extra", false));
  document["links"].push_back(link(5, 1));
  expect_invalid_node_link(document, ErrorKind::kValidation,
                           {"links[6] (field \"target\"): goes from node 5 \"extra\" back to node "
                            "1 \"f1\"",
                            "renumber"});
}

TEST(ValidateNodeLinkTest, ForwardNodeAfterTheBackwardPassIsRejected) {
  json document = node_link_baseline();
  document["nodes"].push_back(node(5, "late", false));
  document["links"].push_back(link(3, 5));
  expect_invalid_node_link(document, ErrorKind::kValidation,
                           {"nodes[5] \"late\" (field \"backward\"): forward node 5 \"late\" "
                            "depends on backward node 3 \"f1_backward\""});
}

TEST(ValidateNodeLinkTest, EmptyAndMalformedGraphs) {
  json empty = node_link_baseline();
  empty["nodes"] = json::array();
  empty["links"] = json::array();
  expect_invalid_node_link(empty, ErrorKind::kValidation,
                           {"tiny_nx.json: field \"nodes\": the graph has no nodes"});
  json string_id = node_link_baseline();
  string_id["nodes"][0]["id"] = "node0";
  expect_invalid_node_link(string_id, ErrorKind::kParse,
                           {"nodes[0] \"f0\" (field \"id\"): expected an integer node id"});
  json undirected = node_link_baseline();
  undirected["directed"] = false;
  expect_invalid_node_link(undirected, ErrorKind::kParse,
                           {"field \"directed\": the graph is undirected"});
}

}  // namespace
}  // namespace ckpt
