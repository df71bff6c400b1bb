// The native format, "ckpt-graph/1" (docs/format.md): a forward graph or a joint training graph
// whose values and ops/nodes refer to values by name. Reading is strict (unknown fields are
// errors, so a misspelt optional field is not silently dropped); writing is deterministic (fixed
// key order, optional fields only when they differ from their defaults) and lossless: reading
// back what was written gives the same structures.
#include "ckpt/formats.h"
// ^ This file's own header: it implements part of the formats API.

#include <fmt/format.h>

#include <array>
#include <limits>
#include <map>
#include <utility>

#include "formats_internal.h"

namespace ckpt {

namespace {

using internal::fail;
using internal::list_entry;
using internal::ObjectReader;
using Json = nlohmann::ordered_json;

constexpr std::string_view kFormat = "ckpt-graph/1";

// The file's spelling of the joint-graph enums: part of the format, kept apart from the display
// strings so that neither can change the other.
constexpr std::array<std::pair<TValueKind, std::string_view>, 6> kTValueKindNames = {{
    {TValueKind::kInput, "input"},
    {TValueKind::kParam, "param"},
    {TValueKind::kParamGradient, "param_gradient"},
    {TValueKind::kActivation, "activation"},
    {TValueKind::kSavedState, "saved_state"},
    {TValueKind::kGradient, "gradient"},
}};
constexpr std::array<std::pair<NodePhase, std::string_view>, 2> kPhaseNames = {{
    {NodePhase::kForward, "forward"},
    {NodePhase::kBackward, "backward"},
}};

template <typename Enum, std::size_t N>
std::string_view enum_name(const std::array<std::pair<Enum, std::string_view>, N>& table,
                           Enum value) {
  for (const auto& [known, name] : table) {
    if (known == value) return name;
  }
  return "unknown";
}

template <typename Enum, std::size_t N>
Enum enum_field(const std::array<std::pair<Enum, std::string_view>, N>& table,
                const ObjectReader& reader, std::string_view key) {
  const std::string text = reader.string(key);
  std::string accepted;
  for (const auto& [value, name] : table) {
    if (name == text) return value;
    accepted += fmt::format("{}\"{}\"", accepted.empty() ? "" : ", ", name);
  }
  reader.fail(ErrorKind::kParse, key,
              fmt::format("unknown value \"{}\"; expected one of {}", text, accepted));
}

// Value names to ids, filled while reading "values"; resolves the names ops and nodes use.
class ValueNames {
 public:
  explicit ValueNames(std::string_view source) : source_(source) {}

  void add(const std::string& name, std::size_t index) {
    const auto [it, inserted] = ids_.emplace(name, static_cast<ValueId>(index));
    if (inserted) return;
    fail(ErrorKind::kValidation, source_, list_entry("values", index, name), "name",
         fmt::format("duplicate value name, also used by values[{}]; give every value a unique "
                     "name",
                     it->second));
  }

  ValueId resolve(const ObjectReader& reader, std::string_view field,
                  const std::string& name) const {
    const auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    reader.fail(ErrorKind::kValidation, field,
                fmt::format("unknown value \"{}\"; every name here must be the name of an entry "
                            "in \"values\"",
                            name));
  }

  std::vector<ValueId> resolve_all(const ObjectReader& reader, std::string_view field) const {
    std::vector<ValueId> ids;
    for (const std::string& name : reader.strings(field))
      ids.push_back(resolve(reader, field, name));
    return ids;
  }

  std::vector<ValueId> resolve_optional(const ObjectReader& reader, std::string_view field) const {
    if (!reader.has(field)) return {};
    return resolve_all(reader, field);
  }

 private:
  std::string_view source_;
  std::map<std::string, ValueId, std::less<>> ids_;
};

// Each entry of a list gets a reader whose messages say `values[3] "name"` once the name is read.
ObjectReader entry_reader(const nlohmann::json& item, std::string_view source,
                          std::string_view list, std::size_t index) {
  const ObjectReader unnamed(item, source, list_entry(list, index, ""));
  if (!unnamed.has("name") || !unnamed.get("name").is_string()) return unnamed;
  return ObjectReader(item, source, list_entry(list, index, unnamed.string("name")));
}

std::int32_t int32_field(const ObjectReader& reader, std::string_view key) {
  const std::int64_t value = reader.integer(key);
  if (value < std::numeric_limits<std::int32_t>::min() ||
      value > std::numeric_limits<std::int32_t>::max()) {
    reader.fail(ErrorKind::kParse, key, fmt::format("{} does not fit in 32 bits", value));
  }
  return static_cast<std::int32_t>(value);
}

Value read_value(const ObjectReader& reader) {
  reader.reject_unknown_keys(
      {"name", "bytes", "kind", "shape", "dtype", "alias_of", "requires_grad"});
  Value value;
  value.name = reader.string("name");
  value.bytes = reader.integer("bytes");
  const std::string kind = reader.string("kind");
  const std::optional<ValueKind> parsed_kind = value_kind_from_string(kind);
  if (!parsed_kind) {
    reader.fail(ErrorKind::kParse, "kind",
                fmt::format("unknown kind \"{}\"; expected \"input\", \"param\" or "
                            "\"activation\" (joint-graph kinds need \"form\": \"joint\")",
                            kind));
  }
  value.kind = *parsed_kind;
  if (reader.has("shape")) value.shape = reader.integers("shape");
  value.dtype = reader.optional_string("dtype").value_or("");
  value.requires_grad = reader.boolean("requires_grad", true);
  return value;
}

// "attributes": {"p": 0.1, "eps": 1e-05}, numbers only.
std::map<std::string, double> read_attributes(const ObjectReader& reader) {
  const nlohmann::json& json = reader.get("attributes");
  if (!json.is_object()) {
    reader.fail(ErrorKind::kParse, "attributes",
                fmt::format("expected an object of numbers, found {}", json.type_name()));
  }
  std::map<std::string, double> attributes;
  for (const auto& [key, value] : json.items()) {
    if (!value.is_number()) {
      reader.fail(ErrorKind::kParse, "attributes",
                  fmt::format("attribute \"{}\" is {}; attribute values must be numbers", key,
                              value.type_name()));
    }
    attributes.emplace(key, value.get<double>());
  }
  return attributes;
}

Op read_op(const ObjectReader& reader, const ValueNames& names) {
  reader.reject_unknown_keys({"name", "kind", "inputs", "outputs", "fwd_time_us", "bwd_time_us",
                              "fwd_workspace_bytes", "bwd_workspace_bytes", "saved",
                              "saved_other_bytes", "side_effecting", "random", "in_place",
                              "differentiable", "attributes"});
  Op op;
  op.name = reader.string("name");
  op.kind = reader.string("kind");
  op.inputs = names.resolve_all(reader, "inputs");
  op.outputs = names.resolve_all(reader, "outputs");
  op.fwd_time_us = reader.number("fwd_time_us");
  op.bwd_time_us = reader.number("bwd_time_us");
  op.fwd_workspace_bytes = reader.optional_integer("fwd_workspace_bytes").value_or(0);
  op.bwd_workspace_bytes = reader.optional_integer("bwd_workspace_bytes").value_or(0);
  op.saved = names.resolve_optional(reader, "saved");
  op.saved_other_bytes = reader.optional_integer("saved_other_bytes").value_or(0);
  op.side_effecting = reader.boolean("side_effecting", false);
  op.random = reader.boolean("random", false);
  op.in_place = reader.boolean("in_place", false);
  op.differentiable = reader.boolean("differentiable", true);
  if (reader.has("attributes")) op.attributes = read_attributes(reader);
  return op;
}

// The "values" list, each entry read by read_one (forward or joint) and its name registered;
// alias_of names may name values listed later, so they resolve once every name is known.
template <typename V, typename ReadOne>
std::vector<V> read_values(const nlohmann::json& values_json, std::string_view source,
                           ValueNames& names, const ReadOne& read_one) {
  std::vector<V> values;
  std::vector<std::optional<std::string>> alias_names;
  for (std::size_t i = 0; i < values_json.size(); ++i) {
    const ObjectReader reader = entry_reader(values_json[i], source, "values", i);
    values.push_back(read_one(reader));
    names.add(values.back().name, i);
    alias_names.push_back(reader.optional_string("alias_of"));
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!alias_names[i]) continue;
    const ObjectReader reader = entry_reader(values_json[i], source, "values", i);
    values[i].alias_of = names.resolve(reader, "alias_of", *alias_names[i]);
  }
  return values;
}

LoadedGraph read_forward(const ObjectReader& top, std::string_view source) {
  top.reject_unknown_keys({"format", "form", "name", "loss", "values", "ops"});
  std::string name = top.string("name");
  const nlohmann::json& values_json = top.array("values");
  const nlohmann::json& ops_json = top.array("ops");

  ValueNames names(source);
  std::vector<Value> values = read_values<Value>(values_json, source, names, read_value);

  std::vector<Op> ops;
  for (std::size_t i = 0; i < ops_json.size(); ++i) {
    ops.push_back(read_op(entry_reader(ops_json[i], source, "ops", i), names));
  }
  std::optional<ValueId> loss;
  if (top.has("loss")) loss = names.resolve(top, "loss", top.string("loss"));

  LoadedGraph loaded;
  loaded.format = GraphFormat::kNative;
  loaded.forward = internal::build_forward_graph(std::move(name), std::move(values), std::move(ops),
                                                 loss, source);
  loaded.training = derive_training_graph(*loaded.forward);
  return loaded;
}

TValue read_tvalue(const ObjectReader& reader) {
  reader.reject_unknown_keys({"name", "bytes", "kind", "alias_of", "version"});
  TValue value;
  value.name = reader.string("name");
  value.bytes = reader.integer("bytes");
  value.kind = enum_field(kTValueKindNames, reader, "kind");
  if (reader.has("version")) value.version = int32_field(reader, "version");
  return value;
}

Node read_node(const ObjectReader& reader, const ValueNames& names) {
  reader.reject_unknown_keys({"name", "kind", "phase", "time_us", "workspace_bytes", "inputs",
                              "outputs", "accumulates", "kills", "side_effecting", "random",
                              "source_id"});
  Node node;
  node.name = reader.string("name");
  node.kind = reader.string("kind");
  node.phase = enum_field(kPhaseNames, reader, "phase");
  node.time_us = reader.number("time_us");
  node.workspace_bytes = reader.optional_integer("workspace_bytes").value_or(0);
  node.inputs = names.resolve_all(reader, "inputs");
  node.outputs = names.resolve_all(reader, "outputs");
  node.accumulates = names.resolve_optional(reader, "accumulates");
  node.kills = names.resolve_optional(reader, "kills");
  node.side_effecting = reader.boolean("side_effecting", false);
  node.random = reader.boolean("random", false);
  if (reader.has("source_id")) node.source_id = int32_field(reader, "source_id");
  return node;
}

LoadedGraph read_joint(const ObjectReader& top, std::string_view source) {
  top.reject_unknown_keys({"format", "form", "name", "values", "nodes"});
  std::string name = top.string("name");
  const nlohmann::json& values_json = top.array("values");
  const nlohmann::json& nodes_json = top.array("nodes");

  ValueNames names(source);
  std::vector<TValue> values = read_values<TValue>(values_json, source, names, read_tvalue);

  std::vector<Node> nodes;
  for (std::size_t i = 0; i < nodes_json.size(); ++i) {
    nodes.push_back(read_node(entry_reader(nodes_json[i], source, "nodes", i), names));
  }
  LoadedGraph loaded;
  loaded.format = GraphFormat::kNative;
  loaded.training =
      internal::build_joint_graph(std::move(name), std::move(values), std::move(nodes), source);
  return loaded;
}

template <typename Item>
Json names_of(const std::vector<Item>& values, const std::vector<ValueId>& ids) {
  Json names = Json::array();
  for (ValueId id : ids) names.push_back(values.at(static_cast<std::size_t>(id)).name);
  return names;
}

Json value_json(const Graph& graph, const Value& value) {
  Json json;
  json["name"] = value.name;
  json["bytes"] = value.bytes;
  json["kind"] = to_string(value.kind);
  if (!value.shape.empty()) json["shape"] = value.shape;
  if (!value.dtype.empty()) json["dtype"] = value.dtype;
  if (value.alias_of != kNoId) json["alias_of"] = graph.value(value.alias_of).name;
  if (!value.requires_grad) json["requires_grad"] = false;
  return json;
}

Json op_json(const Graph& graph, const Op& op) {
  Json json;
  json["name"] = op.name;
  json["kind"] = op.kind;
  json["inputs"] = names_of(graph.values(), op.inputs);
  json["outputs"] = names_of(graph.values(), op.outputs);
  json["fwd_time_us"] = op.fwd_time_us;
  json["bwd_time_us"] = op.bwd_time_us;
  if (op.fwd_workspace_bytes != 0) json["fwd_workspace_bytes"] = op.fwd_workspace_bytes;
  if (op.bwd_workspace_bytes != 0) json["bwd_workspace_bytes"] = op.bwd_workspace_bytes;
  if (!op.saved.empty()) json["saved"] = names_of(graph.values(), op.saved);
  if (op.saved_other_bytes != 0) json["saved_other_bytes"] = op.saved_other_bytes;
  if (op.side_effecting) json["side_effecting"] = true;
  if (op.random) json["random"] = true;
  if (op.in_place) json["in_place"] = true;
  if (!op.differentiable) json["differentiable"] = false;
  if (!op.attributes.empty()) {
    Json attributes = Json::object();
    for (const auto& [key, value] : op.attributes) attributes[key] = value;
    json["attributes"] = std::move(attributes);
  }
  return json;
}

Json tvalue_json(const TrainingGraph& graph, const TValue& value) {
  Json json;
  json["name"] = value.name;
  json["bytes"] = value.bytes;
  json["kind"] = enum_name(kTValueKindNames, value.kind);
  if (value.alias_of != kNoId) json["alias_of"] = graph.value(value.alias_of).name;
  if (value.version != 0) json["version"] = value.version;
  return json;
}

Json node_json(const TrainingGraph& graph, const Node& node) {
  Json json;
  json["name"] = node.name;
  json["kind"] = node.kind;
  json["phase"] = enum_name(kPhaseNames, node.phase);
  json["time_us"] = node.time_us;
  if (node.workspace_bytes != 0) json["workspace_bytes"] = node.workspace_bytes;
  json["inputs"] = names_of(graph.values(), node.inputs);
  json["outputs"] = names_of(graph.values(), node.outputs);
  if (!node.accumulates.empty()) json["accumulates"] = names_of(graph.values(), node.accumulates);
  if (!node.kills.empty()) json["kills"] = names_of(graph.values(), node.kills);
  if (node.side_effecting) json["side_effecting"] = true;
  if (node.random) json["random"] = true;
  if (node.source_id != kNoId) json["source_id"] = node.source_id;
  return json;
}

// nlohmann refuses to write strings that are not UTF-8; say which graph and how to fix it.
std::string dump_checked(const Json& document, std::string_view graph_name) {
  try {
    return internal::dump_layout(document);
  } catch (const nlohmann::json::exception& error) {
    throw Error(ErrorKind::kValidation,
                fmt::format("graph \"{}\": cannot write it as JSON ({}); names and kinds must be "
                            "valid UTF-8",
                            graph_name, error.what()));
  }
}

}  // namespace

namespace internal {

LoadedGraph read_native(const nlohmann::json& document, std::string_view source) {
  const ObjectReader top(document, source, "");
  const std::string form = top.string("form");
  if (form == "forward") return read_forward(top, source);
  if (form == "joint") return read_joint(top, source);
  top.fail(ErrorKind::kParse, "form",
           fmt::format("unknown form \"{}\"; expected \"forward\" (a forward graph the backward "
                       "is derived from) or \"joint\" (forward and backward nodes listed)",
                       form));
}

}  // namespace internal

std::string to_native_json(const Graph& graph) {
  Json document;
  document["format"] = kFormat;
  document["form"] = "forward";
  document["name"] = graph.name();
  if (graph.loss() != kNoId) document["loss"] = graph.value(graph.loss()).name;
  document["values"] = Json::array();
  for (const Value& value : graph.values()) document["values"].push_back(value_json(graph, value));
  document["ops"] = Json::array();
  for (const Op& op : graph.ops()) document["ops"].push_back(op_json(graph, op));
  return dump_checked(document, graph.name());
}

std::string to_native_json(const TrainingGraph& joint_graph) {
  // A file that cannot be read back is worse than no file: names must be unique, ids valid.
  validate_training_graph(joint_graph, fmt::format("graph \"{}\"", joint_graph.name()));
  Json document;
  document["format"] = kFormat;
  document["form"] = "joint";
  document["name"] = joint_graph.name();
  document["values"] = Json::array();
  for (const TValue& value : joint_graph.values()) {
    document["values"].push_back(tvalue_json(joint_graph, value));
  }
  document["nodes"] = Json::array();
  for (const Node& node : joint_graph.nodes()) {
    document["nodes"].push_back(node_json(joint_graph, node));
  }
  return dump_checked(document, joint_graph.name());
}

}  // namespace ckpt
