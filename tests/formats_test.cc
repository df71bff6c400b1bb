// Tests of graph files: format detection, JSON syntax errors by line and column, file I/O errors,
// the exact layout of the native format, and lossless round trips (native forward, native joint,
// ckpt-profile/1 -> native, node-link -> native joint), on hand-made graphs and on the bundled
// examples (the four measured profiles converted to the native format and a real Checkmate graph).
#include "ckpt/formats.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ckpt/error.h"
#include "ckpt/graph.h"
#include "ckpt/training_graph.h"

// Designated initializers leave the other members at their defaults on purpose; GCC 12 still
// warns about each omitted member without a default member initializer (vectors, strings).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ckpt {
namespace {

using nlohmann::json;

std::string source_path(const std::string& relative) {
  return std::string(CKPT_SOURCE_DIR) + "/" + relative;
}

std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file) << "cannot read " << path;
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

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

// Field-by-field equality; doubles compare exactly, since the native format is lossless.
void expect_same(const Graph& expected, const Graph& actual) {
  EXPECT_EQ(actual.name(), expected.name());
  EXPECT_EQ(actual.loss(), expected.loss());
  ASSERT_EQ(actual.num_values(), expected.num_values());
  ASSERT_EQ(actual.num_ops(), expected.num_ops());
  for (ValueId v = 0; v < expected.num_values(); ++v) {
    const Value& a = expected.value(v);
    const Value& b = actual.value(v);
    SCOPED_TRACE("value " + a.name);
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.bytes, a.bytes);
    EXPECT_EQ(b.kind, a.kind);
    EXPECT_EQ(b.shape, a.shape);
    EXPECT_EQ(b.dtype, a.dtype);
    EXPECT_EQ(b.alias_of, a.alias_of);
    EXPECT_EQ(b.requires_grad, a.requires_grad);
    EXPECT_EQ(actual.producer(v), expected.producer(v));
  }
  for (OpId o = 0; o < expected.num_ops(); ++o) {
    const Op& a = expected.op(o);
    const Op& b = actual.op(o);
    SCOPED_TRACE("op " + a.name);
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.kind, a.kind);
    EXPECT_EQ(b.inputs, a.inputs);
    EXPECT_EQ(b.outputs, a.outputs);
    EXPECT_EQ(b.fwd_time_us, a.fwd_time_us);
    EXPECT_EQ(b.bwd_time_us, a.bwd_time_us);
    EXPECT_EQ(b.fwd_workspace_bytes, a.fwd_workspace_bytes);
    EXPECT_EQ(b.bwd_workspace_bytes, a.bwd_workspace_bytes);
    EXPECT_EQ(b.saved, a.saved);
    EXPECT_EQ(b.saved_other_bytes, a.saved_other_bytes);
    EXPECT_EQ(b.side_effecting, a.side_effecting);
    EXPECT_EQ(b.random, a.random);
    EXPECT_EQ(b.in_place, a.in_place);
    EXPECT_EQ(b.differentiable, a.differentiable);
    EXPECT_EQ(b.attributes, a.attributes);
  }
}

// `provenance`: also compare what only a derived graph has (derived(), source_value).
void expect_same(const TrainingGraph& expected, const TrainingGraph& actual, bool provenance) {
  EXPECT_EQ(actual.name(), expected.name());
  if (provenance) {
    EXPECT_EQ(actual.derived(), expected.derived());
  }
  EXPECT_EQ(actual.num_forward_nodes(), expected.num_forward_nodes());
  ASSERT_EQ(actual.num_values(), expected.num_values());
  ASSERT_EQ(actual.num_nodes(), expected.num_nodes());
  for (ValueId v = 0; v < expected.num_values(); ++v) {
    const TValue& a = expected.value(v);
    const TValue& b = actual.value(v);
    SCOPED_TRACE("value " + a.name);
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.bytes, a.bytes);
    EXPECT_EQ(b.kind, a.kind);
    EXPECT_EQ(b.alias_of, a.alias_of);
    EXPECT_EQ(b.version, a.version);
    EXPECT_EQ(b.producer, a.producer);
    if (provenance) {
      EXPECT_EQ(b.source_value, a.source_value);
    }
    EXPECT_EQ(actual.storage_root(v), expected.storage_root(v));
    EXPECT_EQ(actual.consumers(v), expected.consumers(v));
  }
  for (NodeId n = 0; n < expected.num_nodes(); ++n) {
    const Node& a = expected.node(n);
    const Node& b = actual.node(n);
    SCOPED_TRACE("node " + a.name);
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.kind, a.kind);
    EXPECT_EQ(b.phase, a.phase);
    EXPECT_EQ(b.time_us, a.time_us);
    EXPECT_EQ(b.workspace_bytes, a.workspace_bytes);
    EXPECT_EQ(b.inputs, a.inputs);
    EXPECT_EQ(b.outputs, a.outputs);
    EXPECT_EQ(b.accumulates, a.accumulates);
    EXPECT_EQ(b.kills, a.kills);
    EXPECT_EQ(b.side_effecting, a.side_effecting);
    EXPECT_EQ(b.random, a.random);
    EXPECT_EQ(b.source_id, a.source_id);
  }
}

ValueId value_named(const Graph& graph, const std::string& name) {
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    if (graph.value(v).name == name) return v;
  }
  ADD_FAILURE() << "no value " << name;
  return kNoId;
}

// A graph that sets every field to something other than its default.
Graph every_field_graph() {
  GraphBuilder builder("every \"field\"");
  const ValueId x = builder.add_value(Value{.name = "x",
                                            .bytes = 4096,
                                            .kind = ValueKind::kInput,
                                            .shape = {32, 32},
                                            .dtype = "float32"});
  const ValueId w = builder.add_param("w", 1 << 20, /*requires_grad=*/false);
  const ValueId b = builder.add_param("b", 128);
  const ValueId h = builder.add_value(Value{.name = "h", .bytes = 4096, .shape = {32, 32}});
  builder.add_op(Op{.name = "fc",
                    .kind = "aten.addmm.default",
                    .inputs = {b, x, w},
                    .outputs = {h},
                    .fwd_time_us = 0.1 + 0.2,  // not exactly representable: must round-trip
                    .bwd_time_us = 1e-7,
                    .fwd_workspace_bytes = 7,
                    // Near the 2^60 bytes a graph may hold in all: every digit must round-trip.
                    .bwd_workspace_bytes = (std::int64_t{1} << 60) - (std::int64_t{1} << 22) + 1,
                    .saved = {x, w},
                    .saved_other_bytes = 3,
                    .side_effecting = true,
                    .random = true,
                    .attributes = {{"p", 0.1}, {"eps", 1e-5}}});
  const ValueId r = builder.add_value(Value{.name = "h.1", .bytes = 4096, .alias_of = h});
  builder.add_op(Op{.name = "relu_",
                    .kind = "relu_",
                    .inputs = {h},
                    .outputs = {r},
                    .fwd_time_us = 123456789.125,
                    .bwd_time_us = 0,
                    .saved = {r},
                    .in_place = true});
  const ValueId first = builder.add_simple_op("sum", "sum", {r}, 4, 1, 1, {r});
  const ValueId d = builder.add_value(Value{.name = "d", .bytes = 4, .alias_of = first});
  builder.add_op(Op{.name = "detach",
                    .kind = "detach",
                    .inputs = {first},
                    .outputs = {d},
                    .differentiable = false});
  builder.set_loss(first);  // not the default (the last op's output)
  return std::move(builder).build();
}

// ---------------------------------------------------------------------------------------------

TEST(FormatDetectTest, EachFormatIsRecognisedByItsContent) {
  const LoadedGraph native = load_graph(source_path("examples/graphs/mlp.json"));
  EXPECT_EQ(native.format, GraphFormat::kNative);
  EXPECT_TRUE(native.forward.has_value());
  EXPECT_TRUE(native.training.derived());

  const LoadedGraph joint = load_graph(source_path("examples/graphs/mlp4_joint.json"));
  EXPECT_EQ(joint.format, GraphFormat::kNative);
  EXPECT_FALSE(joint.forward.has_value());
  EXPECT_FALSE(joint.training.derived());

  const LoadedGraph profile = load_graph(source_path("tests/data/profile_small.json"));
  EXPECT_EQ(profile.format, GraphFormat::kProfile);
  EXPECT_TRUE(profile.forward.has_value());

  const LoadedGraph node_link = load_graph(source_path("examples/graphs/vgg16_checkmate.json"));
  EXPECT_EQ(node_link.format, GraphFormat::kNodeLink);
  EXPECT_FALSE(node_link.forward.has_value());

  EXPECT_EQ(to_string(GraphFormat::kNative), "native");
  EXPECT_EQ(to_string(GraphFormat::kNodeLink), "node-link");
  EXPECT_EQ(to_string(GraphFormat::kProfile), "profile");
}

TEST(FormatDetectTest, UnknownFormatListsWhatIsAccepted) {
  expect_error([] { parse_graph(R"({"format": "onnx", "graph": {}})", "model.json"); },
               ErrorKind::kParse,
               {"model.json: field \"format\": unknown format \"onnx\"", "\"ckpt-graph/1\"",
                "\"ckpt-profile/1\"", "\"nodes\" and \"links\""});
}

TEST(FormatDetectTest, WrongVersionNamesTheExpectedOne) {
  expect_error([] { parse_graph(R"({"format": "ckpt-graph/2", "form": "forward"})", "g.json"); },
               ErrorKind::kParse,
               {"g.json: field \"format\": unsupported version \"ckpt-graph/2\"; this build of "
                "ckpt reads \"ckpt-graph/1\""});
  expect_error([] { parse_graph(R"({"format": "ckpt-profile/7"})", "p.json"); }, ErrorKind::kParse,
               {"unsupported version \"ckpt-profile/7\"", "\"ckpt-profile/1\""});
  expect_error([] { parse_graph(R"({"format": 1})", "g.json"); }, ErrorKind::kParse,
               {"g.json: field \"format\": expected a string such as \"ckpt-graph/1\""});
}

TEST(FormatDetectTest, MissingFormatNamesTheExpectedVersion) {
  expect_error([] { parse_graph(R"({"form": "forward", "values": [], "ops": []})", "g.json"); },
               ErrorKind::kParse,
               {"g.json: field \"format\": missing", "\"format\": \"ckpt-graph/1\""});
  // Only one of "nodes" and "links" is no node-link graph.
  expect_error([] { parse_graph(R"({"nodes": []})", "g.json"); }, ErrorKind::kParse,
               {"field \"format\": missing"});
}

TEST(FormatDetectTest, TopLevelMustBeAnObject) {
  expect_error([] { parse_graph("[1, 2]", "list.json"); }, ErrorKind::kParse,
               {"list.json: expected a JSON object, found array"});
}

// ---------------------------------------------------------------------------------------------

TEST(FormatJsonTest, SyntaxErrorsGiveLineAndColumn) {
  const std::string text = "{\n  \"format\": \"ckpt-graph/1\",\n  \"form\": x\n}\n";
  expect_error([&] { parse_graph(text, "bad.json"); }, ErrorKind::kParse,
               {"bad.json:3:11: invalid JSON: syntax error while parsing value"});
  expect_error([] { parse_graph("{\n  \"a\": 1,\n", "cut.json"); }, ErrorKind::kParse,
               {"cut.json:3:1: invalid JSON:", "unexpected end of input"});
  expect_error([] { parse_graph("", "empty.json"); }, ErrorKind::kParse,
               {"empty.json:1:1: invalid JSON:"});
  expect_error([] { parse_graph("{}\n{}", "two.json"); }, ErrorKind::kParse,
               {"two.json:2:1: invalid JSON:"});
}

TEST(FormatJsonTest, NumberOverflowHasALocationToo) {
  const std::string text = "{\"format\": \"ckpt-graph/1\",\n \"x\": 1e999}";
  expect_error([&] { parse_graph(text, "big.json"); }, ErrorKind::kParse,
               {"big.json:2:", "number overflow", "1e999"});
}

// ---------------------------------------------------------------------------------------------

class FormatIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           (std::string("ckpt_formats_") + test->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::filesystem::path dir_;
};

TEST_F(FormatIoTest, UnreadableFileNamesThePathAndTheReason) {
  const std::string missing = (dir_ / "missing.json").string();
  expect_error([&] { load_graph(missing); }, ErrorKind::kIo,
               {missing + ": cannot open the file for reading: No such file or directory"});
  expect_error([&] { load_graph(dir_.string()); }, ErrorKind::kIo,
               {dir_.string() + ": cannot read the file: Is a directory"});
}

TEST_F(FormatIoTest, ErrorsInALoadedFileNameThePath) {
  const std::string path = (dir_ / "broken.json").string();
  write_text_file(path, "{\n  \"format\": \"ckpt-graph/1\",\n  \"form\": \"forward\"\n}\n");
  expect_error([&] { load_graph(path); }, ErrorKind::kParse,
               {path + ": field \"name\": missing required field"});
}

TEST_F(FormatIoTest, WriteReplacesTheFileAndLeavesNoTemporary) {
  const std::string path = (dir_ / "graph.json").string();
  write_text_file(path, "first");
  write_text_file(path, "second\n");
  EXPECT_EQ(read_text(path), "second\n");
  EXPECT_EQ(entries(), (std::vector<std::string>{"graph.json"}));
}

TEST_F(FormatIoTest, FailedWriteThrowsAndLeavesNothing) {
  const std::string no_dir = (dir_ / "no" / "such" / "graph.json").string();
  expect_error([&] { write_text_file(no_dir, "text"); }, ErrorKind::kIo,
               {no_dir + ": cannot create the temporary file", "No such file or directory"});
  EXPECT_TRUE(entries().empty());

  // The target is a directory: the temporary is written, the rename fails, nothing remains.
  std::filesystem::create_directory(dir_ / "taken");
  const std::string taken = (dir_ / "taken").string();
  expect_error([&] { write_text_file(taken, "text"); }, ErrorKind::kIo,
               {taken + ": cannot write the file (rename)"});
  EXPECT_EQ(entries(), (std::vector<std::string>{"taken"}));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "taken"));
}

TEST_F(FormatIoTest, WrittenGraphLoadsBack) {
  const Graph graph = every_field_graph();
  const std::string path = (dir_ / "every.json").string();
  write_text_file(path, to_native_json(graph));
  const LoadedGraph loaded = load_graph(path);
  ASSERT_TRUE(loaded.forward.has_value());
  expect_same(graph, *loaded.forward);
}

// ---------------------------------------------------------------------------------------------

TEST(FormatNativeTest, ForwardRoundTripKeepsEveryField) {
  const Graph graph = every_field_graph();
  const std::string text = to_native_json(graph);
  const LoadedGraph loaded = parse_graph(text, "every.json");
  ASSERT_TRUE(loaded.forward.has_value());
  expect_same(graph, *loaded.forward);
  EXPECT_EQ(to_native_json(*loaded.forward), text);
}

TEST(FormatNativeTest, LayoutIsFixed) {
  GraphBuilder builder("tiny");
  const ValueId x = builder.add_input("x", 8);
  builder.add_simple_op("exp", "exp", {x}, 8, 1.5, 2, {kNoId});
  const std::string expected = R"({
  "format": "ckpt-graph/1",
  "form": "forward",
  "name": "tiny",
  "loss": "exp",
  "values": [
    {"name": "x", "bytes": 8, "kind": "input"},
    {"name": "exp", "bytes": 8, "kind": "activation"}
  ],
  "ops": [
    {"name": "exp", "kind": "exp", "inputs": ["x"], "outputs": ["exp"], "fwd_time_us": 1.5, "bwd_time_us": 2.0, "saved": ["exp"]}
  ]
}
)";
  EXPECT_EQ(to_native_json(std::move(builder).build()), expected);
}

TEST(FormatNativeTest, OptionalFieldsTakeTheirDefaults) {
  const std::string text = R"({"format": "ckpt-graph/1", "form": "forward", "name": "defaults",
    "values": [{"name": "x", "bytes": 8, "kind": "input"},
               {"name": "y", "bytes": 4.0, "kind": "activation"}],
    "ops": [{"name": "f", "kind": "sum", "inputs": ["x"], "outputs": ["y"],
             "fwd_time_us": 3, "bwd_time_us": 4}]})";
  const LoadedGraph loaded = parse_graph(text, "defaults.json");
  ASSERT_TRUE(loaded.forward.has_value());
  const Graph& graph = *loaded.forward;
  EXPECT_EQ(graph.loss(), 1);  // the last op's first output
  EXPECT_EQ(graph.value(1).bytes, 4);
  EXPECT_TRUE(graph.value(0).shape.empty());
  EXPECT_TRUE(graph.value(0).requires_grad);
  const Op& op = graph.op(0);
  EXPECT_EQ(op.fwd_workspace_bytes, 0);
  EXPECT_TRUE(op.saved.empty());
  EXPECT_FALSE(op.side_effecting);
  EXPECT_FALSE(op.random);
  EXPECT_FALSE(op.in_place);
  EXPECT_TRUE(op.differentiable);
  EXPECT_TRUE(op.attributes.empty());
}

TEST(FormatNativeTest, JointExampleRoundTripsByteForByte) {
  const std::string path = source_path("examples/graphs/mlp4_joint.json");
  const std::string text = read_text(path);
  const LoadedGraph loaded = parse_graph(text, path);
  const TrainingGraph& graph = loaded.training;
  EXPECT_EQ(to_native_json(graph), text);
  expect_same(graph, parse_graph(to_native_json(graph), "again.json").training, true);

  // 8 forward nodes (4 linear layers, 3 ReLUs, the loss), then one backward node for each.
  EXPECT_EQ(graph.num_forward_nodes(), 8);
  EXPECT_EQ(graph.num_nodes(), 16);
  // x: 32 x 784 float32 = 100352 bytes, resident; h1: 32 x 512 float32 = 65536 bytes, charged.
  EXPECT_EQ(graph.value(0).bytes, 100352);
  EXPECT_TRUE(graph.is_resident(0));
  const NodeId fc1 = 0;
  const ValueId h1 = graph.node(fc1).outputs.at(0);
  EXPECT_EQ(graph.value(h1).name, "h1");
  EXPECT_EQ(graph.storage_bytes(h1), 65536);
  EXPECT_EQ(graph.value(h1).producer, fc1);
  EXPECT_EQ(graph.node(15).name, "fc1.backward");
  EXPECT_EQ(graph.node(15).accumulates.size(), 1u);
}

TEST(FormatNativeTest, DerivedJointGraphRoundTrips) {
  const LoadedGraph profile = load_graph(source_path("tests/data/profile_small.json"));
  const std::string text = to_native_json(profile.training);
  const LoadedGraph joint = parse_graph(text, "joint.json");
  EXPECT_FALSE(joint.forward.has_value());
  // A joint file does not say which forward value each value came from.
  expect_same(profile.training, joint.training, /*provenance=*/false);
  EXPECT_EQ(to_native_json(joint.training), text);
}

TEST(FormatNativeTest, JointWriterRejectsGraphsThatCannotBeReadBack) {
  std::vector<TValue> values = {TValue{.name = "same", .producer = 0},
                                TValue{.name = "same", .producer = 0}};
  std::vector<Node> nodes = {Node{.name = "n", .kind = "k", .outputs = {0, 1}}};
  const TrainingGraph graph("dup", values, nodes, /*derived=*/false);
  expect_error([&] { to_native_json(graph); }, ErrorKind::kValidation,
               {"graph \"dup\": values[1] \"same\" (field \"name\"): duplicate value name"});
}

TEST(FormatNativeTest, ExamplesRoundTripByteForByte) {
  struct Example {
    const char* file;
    int ops;
    const char* loss;
  };
  for (const Example& example : {Example{"mlp", 75, "t123"}, Example{"gpt2", 530, "t813"},
                                 Example{"resnet50", 283, "t646"}, Example{"vgg16", 63, "t88"}}) {
    SCOPED_TRACE(example.file);
    const std::string path = source_path(std::string("examples/graphs/") + example.file + ".json");
    const std::string text = read_text(path);
    const LoadedGraph loaded = parse_graph(text, path);
    ASSERT_TRUE(loaded.forward.has_value());
    const Graph& graph = *loaded.forward;
    EXPECT_EQ(graph.name(), example.file);
    EXPECT_EQ(graph.num_ops(), example.ops);
    EXPECT_EQ(graph.value(graph.loss()).name, example.loss);
    EXPECT_EQ(to_native_json(graph), text);
    EXPECT_NO_THROW(validate_training_graph(loaded.training, path));
    EXPECT_GT(loaded.training.num_nodes(), graph.num_ops());
  }
}

// ---------------------------------------------------------------------------------------------

TEST(FormatProfileTest, SmallProfileMapsToTheIr) {
  const LoadedGraph loaded = load_graph(source_path("tests/data/profile_small.json"));
  ASSERT_TRUE(loaded.forward.has_value());
  const Graph& g = *loaded.forward;
  EXPECT_EQ(g.name(), "small");
  // 21 tensors plus one new version per in-place write: t5.1 (add_) and t10.1 (relu_).
  ASSERT_EQ(g.num_values(), 23);
  ASSERT_EQ(g.num_ops(), 11);
  EXPECT_EQ(g.value(value_named(g, "t20")).kind, ValueKind::kActivation);
  EXPECT_EQ(g.loss(), value_named(g, "t20"));

  // Tensors keep bytes, kind, shape and dtype; only a param's requires_grad is copied.
  const Value& x = g.value(value_named(g, "t0"));
  EXPECT_EQ(x.bytes, 512);
  EXPECT_EQ(x.kind, ValueKind::kInput);
  EXPECT_EQ(x.shape, (std::vector<std::int64_t>{8, 16}));
  EXPECT_EQ(x.dtype, "float32");
  EXPECT_TRUE(g.value(value_named(g, "t1")).requires_grad);
  EXPECT_FALSE(g.value(value_named(g, "t2")).requires_grad);

  // A view of a parameter aliases the op's first input.
  EXPECT_EQ(g.value(value_named(g, "t3")).alias_of, value_named(g, "t1"));
  const Op& t = g.op(0);
  EXPECT_EQ(t.name, "0:aten.t.default");
  EXPECT_EQ(t.kind, "aten.t.default");
  EXPECT_TRUE(t.differentiable);

  const Op& addmm = g.op(1);
  EXPECT_EQ(addmm.fwd_time_us, 5.5);
  EXPECT_EQ(addmm.bwd_time_us, 9.25);
  EXPECT_EQ(addmm.saved, (std::vector<ValueId>{value_named(g, "t0"), value_named(g, "t3")}));

  // num_batches_tracked += 1: in place on an input-kind buffer, so a side effect.
  const Op& counter = g.op(2);
  const ValueId t5_1 = value_named(g, "t5.1");
  EXPECT_EQ(counter.inputs, (std::vector<ValueId>{value_named(g, "t5")}));
  EXPECT_EQ(counter.outputs, (std::vector<ValueId>{t5_1}));
  EXPECT_EQ(g.value(t5_1).alias_of, value_named(g, "t5"));
  EXPECT_EQ(g.value(t5_1).kind, ValueKind::kActivation);
  EXPECT_TRUE(counter.in_place);
  EXPECT_TRUE(counter.side_effecting);
  EXPECT_FALSE(counter.differentiable);  // no bwd_wall_us

  // Batch norm updates its running statistics; saved positions become value ids.
  const Op& norm = g.op(3);
  EXPECT_TRUE(norm.side_effecting);
  EXPECT_FALSE(norm.in_place);
  EXPECT_EQ(norm.saved, (std::vector<ValueId>{value_named(g, "t4"), value_named(g, "t6"),
                                              value_named(g, "t8"), value_named(g, "t9"),
                                              value_named(g, "t11"), value_named(g, "t12")}));

  // relu_ writes t10 in place: a new version, saved by its backward; later reads of tensor 10
  // (the view) see the new version.
  const Op& relu = g.op(4);
  const ValueId t10_1 = value_named(g, "t10.1");
  EXPECT_EQ(relu.outputs, (std::vector<ValueId>{t10_1}));
  EXPECT_EQ(relu.saved, (std::vector<ValueId>{t10_1}));
  EXPECT_TRUE(relu.in_place);
  EXPECT_FALSE(relu.side_effecting);
  EXPECT_EQ(g.value(t10_1).alias_of, value_named(g, "t10"));
  EXPECT_EQ(g.op(5).inputs, (std::vector<ValueId>{t10_1}));
  EXPECT_EQ(g.value(value_named(g, "t13")).alias_of, t10_1);
  EXPECT_EQ(g.storage_root(value_named(g, "t13")), value_named(g, "t10"));

  EXPECT_TRUE(g.op(6).random);  // native_dropout
  EXPECT_FALSE(g.op(8).random);
  // split: every output views input 0.
  EXPECT_EQ(g.value(value_named(g, "t16")).alias_of, value_named(g, "t14"));
  EXPECT_EQ(g.value(value_named(g, "t17")).alias_of, value_named(g, "t14"));
  EXPECT_FALSE(g.op(9).differentiable);  // detach
}

TEST(FormatProfileTest, NativeTextMatchesTheGolden) {
  const LoadedGraph loaded = load_graph(source_path("tests/data/profile_small.json"));
  ASSERT_TRUE(loaded.forward.has_value());
  EXPECT_EQ(to_native_json(*loaded.forward),
            read_text(source_path("tests/data/profile_small.native.json")));
}

TEST(FormatProfileTest, ProfileToNativeAndBackIsEqual) {
  const LoadedGraph profile = load_graph(source_path("tests/data/profile_small.json"));
  ASSERT_TRUE(profile.forward.has_value());
  const LoadedGraph native = parse_graph(to_native_json(*profile.forward), "small.native.json");
  ASSERT_TRUE(native.forward.has_value());
  EXPECT_EQ(native.format, GraphFormat::kNative);
  expect_same(*profile.forward, *native.forward);
  expect_same(profile.training, native.training, /*provenance=*/true);
}

TEST(FormatProfileTest, NameFallsBackToTheFileStemAndRandomOpsAreFlagged) {
  const std::string text = R"({"format": "ckpt-profile/1",
    "tensors": [{"id": 7, "bytes": 64, "kind": "input"},
                {"id": 8, "bytes": 64, "kind": "activation"},
                {"id": 9, "bytes": 64, "kind": "activation"}],
    "ops": [{"op": "aten.rand_like.default", "inputs": [7], "outputs": [8], "alias": [false],
             "fwd_us": 1, "bwd_us": 0, "saved_inputs": [], "saved_outputs": [],
             "saved_other_bytes": 0},
            {"op": "aten.bernoulli_.float", "inputs": [8], "outputs": [8], "alias": [true],
             "fwd_us": 1, "bwd_us": 0, "saved_inputs": [], "saved_outputs": [],
             "saved_other_bytes": 0},
            {"op": "aten.mul.Tensor", "inputs": [8, 7], "outputs": [9], "alias": [false],
             "fwd_us": 1, "bwd_us": 1, "bwd_wall_us": 2, "saved_inputs": [1],
             "saved_outputs": [], "saved_other_bytes": 16}]})";
  const LoadedGraph loaded = parse_graph(text, "dir/masked_model.json");
  ASSERT_TRUE(loaded.forward.has_value());
  const Graph& g = *loaded.forward;
  EXPECT_EQ(g.name(), "masked_model");
  EXPECT_TRUE(g.op(0).random);
  EXPECT_TRUE(g.op(1).random);
  EXPECT_TRUE(g.op(1).in_place);
  EXPECT_FALSE(g.op(1).side_effecting);  // writes an activation, not a buffer
  EXPECT_FALSE(g.op(2).random);
  EXPECT_EQ(g.op(2).inputs, (std::vector<ValueId>{value_named(g, "t8.1"), value_named(g, "t7")}));
  EXPECT_EQ(g.op(2).saved_other_bytes, 16);
  EXPECT_EQ(g.loss(), value_named(g, "t9"));
}

// ---------------------------------------------------------------------------------------------

const char* const kTinyNodeLink = R"({
  "directed": true, "multigraph": false, "graph": {"name": "tiny"},
  "nodes": [
    {"id": 0, "name": "f0", "backward": false, "cost_cpu": 10, "cost_ram": 100},
    {"id": 1, "name": "f1", "backward": false, "cost_cpu": 20.5, "cost_ram": 200},
    {"id": 2, "name": "loss", "backward": true, "cost_cpu": 5, "cost_ram": 4},
    {"id": 3, "name": "f1_backward", "backward": true, "cost_cpu": 30, "cost_ram": 200},
    {"id": 4, "name": "f0_backward", "backward": true, "cost_cpu": 15, "cost_ram": 100}
  ],
  "links": [
    {"source": 0, "target": 1}, {"source": 1, "target": 2}, {"source": 1, "target": 3},
    {"source": 2, "target": 3}, {"source": 0, "target": 4}, {"source": 3, "target": 4},
    {"source": 3, "target": 4}
  ]})";

TEST(FormatNodeLinkTest, EachNodeComputesOneValueFromItsPredecessors) {
  const LoadedGraph loaded = parse_graph(kTinyNodeLink, "tiny_nx.json");
  const TrainingGraph& g = loaded.training;
  EXPECT_EQ(g.name(), "tiny");
  ASSERT_EQ(g.num_nodes(), 5);
  ASSERT_EQ(g.num_values(), 5);
  EXPECT_EQ(g.num_forward_nodes(), 2);
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    EXPECT_EQ(g.node(n).outputs, (std::vector<ValueId>{n}));
    EXPECT_EQ(g.node(n).source_id, n);
    EXPECT_EQ(g.value(n).producer, n);
    EXPECT_EQ(g.value(n).name, g.node(n).name);
  }
  EXPECT_EQ(g.value(1).bytes, 200);
  EXPECT_EQ(g.value(1).kind, TValueKind::kActivation);
  EXPECT_EQ(g.value(3).kind, TValueKind::kGradient);
  EXPECT_EQ(g.node(1).time_us, 20.5);  // cost_cpu, unitless, kept as-is
  EXPECT_EQ(g.node(1).phase, NodePhase::kForward);
  EXPECT_EQ(g.node(2).phase, NodePhase::kBackward);
  // Inputs are the predecessors' values in id order; the repeated link counts once.
  EXPECT_EQ(g.node(3).inputs, (std::vector<ValueId>{1, 2}));
  EXPECT_EQ(g.node(4).inputs, (std::vector<ValueId>{0, 3}));
}

TEST(FormatNodeLinkTest, InterleavedNodesArePartitionedForwardFirst) {
  // The file lists a's backward between the forward nodes a and b.
  const json document = json::parse(R"({"directed": true, "graph": {"name": "mixed"},
    "nodes": [
      {"id": 0, "name": "a", "backward": false, "cost_cpu": 1, "cost_ram": 8},
      {"id": 1, "name": "a_backward", "backward": true, "cost_cpu": 2, "cost_ram": 8},
      {"id": 2, "name": "b", "backward": false, "cost_cpu": 3, "cost_ram": 8},
      {"id": 3, "name": "b_backward", "backward": true, "cost_cpu": 4, "cost_ram": 8}],
    "links": [{"source": 0, "target": 1}, {"source": 0, "target": 2},
              {"source": 2, "target": 3}, {"source": 1, "target": 3}]})");
  const TrainingGraph g = parse_graph(document.dump(), "mixed.json").training;
  ASSERT_EQ(g.num_nodes(), 4);
  EXPECT_EQ(g.num_forward_nodes(), 2);
  std::vector<std::string> names;
  std::vector<std::int32_t> source_ids;
  for (const Node& node : g.nodes()) {
    names.push_back(node.name);
    source_ids.push_back(node.source_id);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "a_backward", "b_backward"}));
  EXPECT_EQ(source_ids, (std::vector<std::int32_t>{0, 2, 1, 3}));
  // b_backward reads a_backward (id 1) then b (id 2): ordered by file id, not by new position.
  EXPECT_EQ(g.node(3).inputs, (std::vector<ValueId>{2, 1}));
}

TEST(FormatNodeLinkTest, RepeatedNamesAreMadeUnique) {
  const TrainingGraph g = parse_graph(R"({"directed": true, "nodes": [
      {"id": 0, "name": "conv", "backward": false, "cost_cpu": 1, "cost_ram": 8},
      {"id": 1, "name": "conv", "backward": false, "cost_cpu": 1, "cost_ram": 8}],
    "links": [{"source": 0, "target": 1}]})",
                                      "path/to/convs.json")
                              .training;
  EXPECT_EQ(g.name(), "convs");
  EXPECT_EQ(g.node(0).name, "conv#0");
  EXPECT_EQ(g.node(1).name, "conv#1");
}

TEST(FormatNodeLinkTest, NodeLinkToNativeJointAndBackIsEqual) {
  const TrainingGraph tiny = parse_graph(kTinyNodeLink, "tiny_nx.json").training;
  expect_same(tiny, parse_graph(to_native_json(tiny), "tiny.json").training, true);
}

TEST(FormatNodeLinkTest, RealCheckmateGraph) {
  const std::string path = source_path("examples/graphs/vgg16_checkmate.json");
  const LoadedGraph loaded = load_graph(path);
  const TrainingGraph& g = loaded.training;
  EXPECT_EQ(g.name(), "VGG16 (MLSys)_256_(224, 224, 3)_train");
  ASSERT_EQ(g.num_nodes(), 45);
  EXPECT_EQ(g.num_forward_nodes(), 22);
  // block1_conv1's output: batch 256 x 224 x 224 x 64 channels x 4 bytes.
  EXPECT_EQ(g.value(0).name, "block1_conv1");
  EXPECT_EQ(g.value(0).bytes, std::int64_t{256} * 224 * 224 * 64 * 4);
  EXPECT_EQ(g.node(0).time_us, 385);
  EXPECT_EQ(g.node(22).name, "Loss");
  EXPECT_EQ(g.node(22).phase, NodePhase::kBackward);
  // A layer's backward reads its input, its output and the gradient flowing in.
  const Node& fc2_backward = g.node(24);
  EXPECT_EQ(fc2_backward.name, "fc2_backward");
  std::vector<std::string> inputs;
  for (ValueId v : fc2_backward.inputs) inputs.push_back(g.value(v).name);
  EXPECT_EQ(inputs, (std::vector<std::string>{"fc2", "predictions", "predictions_backward"}));
  EXPECT_NO_THROW(validate_training_graph(g, path));
  expect_same(g, parse_graph(to_native_json(g), "vgg16.json").training, true);
}

}  // namespace
}  // namespace ckpt
