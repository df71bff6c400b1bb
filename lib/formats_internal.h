// Helpers shared by the graph validators and the file readers and writers, kept out of the public
// headers: error messages that name the source, field and op; typed JSON field access that reports
// missing or mistyped fields; validation of graph parts before a Graph or TrainingGraph exists (so
// a reader can name its file); cycle finding with Boost.Graph; and the deterministic JSON layout.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ckpt/error.h"
#include "ckpt/formats.h"
#include "ckpt/graph.h"
#include "ckpt/training_graph.h"

namespace ckpt::internal {

// "<source>: <where> (field "<field>"): <problem>", leaving out the parts that are empty.
std::string describe(std::string_view source, std::string_view where, std::string_view field,
                     std::string_view problem);
[[noreturn]] void fail(ErrorKind kind, std::string_view source, std::string_view where,
                       std::string_view field, std::string_view problem);

// `ops[3] "name"`: how messages point at the i-th entry of a list.
std::string list_entry(std::string_view list, std::size_t index, std::string_view name);

// Typed access to the members of one JSON object; every failure is a kParse error naming the
// source, the object (`where`) and the field.
class ObjectReader {
 public:
  ObjectReader(const nlohmann::json& object, std::string_view source, std::string where);

  bool has(std::string_view key) const;
  const nlohmann::json& get(std::string_view key) const;  // required
  std::string string(std::string_view key) const;
  std::optional<std::string> optional_string(std::string_view key) const;
  std::int64_t integer(std::string_view key) const;
  std::optional<std::int64_t> optional_integer(std::string_view key) const;
  double number(std::string_view key) const;
  bool boolean(std::string_view key) const;  // required
  bool boolean(std::string_view key, bool default_value) const;
  const nlohmann::json& array(std::string_view key) const;
  // Required arrays of whole numbers, strings or booleans.
  std::vector<std::int64_t> integers(std::string_view key) const;
  std::vector<std::string> strings(std::string_view key) const;
  std::vector<bool> booleans(std::string_view key) const;
  // Rejects members other than `known`, so a misspelt optional field is not silently ignored.
  void reject_unknown_keys(std::initializer_list<std::string_view> known) const;

  [[noreturn]] void fail(ErrorKind kind, std::string_view field, std::string_view problem) const;
  const std::string& where() const { return where_; }
  std::string_view source() const { return source_; }

 private:
  const nlohmann::json& object_;
  std::string_view source_;
  std::string where_;
};

// Checks that `json` is an object, naming `where` otherwise.
void require_object(const nlohmann::json& json, std::string_view source, std::string_view where);

// The rules of validate_graph / validate_training_graph, on the parts a graph is made of. Readers
// call these before building, so that errors name the file and ids are known to be in range.
void validate_forward_parts(const std::vector<Value>& values, const std::vector<Op>& ops,
                            ValueId loss, std::string_view source);
void validate_joint_parts(const std::vector<TValue>& values, const std::vector<Node>& nodes,
                          std::string_view source);

// The default loss of a forward graph: the last op's first output, or kNoId.
ValueId default_loss(const std::vector<Op>& ops);

// Builds a validated Graph (errors name `source`); `loss` defaults to default_loss(ops).
Graph build_forward_graph(std::string name, std::vector<Value> values, std::vector<Op> ops,
                          std::optional<ValueId> loss, std::string_view source);
// Sets each value's producer (the first node outputting it), validates (errors name `source`)
// and builds the joint graph with derived() false.
TrainingGraph build_joint_graph(std::string name, std::vector<TValue> values,
                                std::vector<Node> nodes, std::string_view source);

// A directed graph on vertices 0..n-1, as Boost.Graph sees it.
struct DirectedEdges {
  int num_vertices = 0;
  std::vector<std::pair<int, int>> edges;  // (from, to)
};
// A topological order of the vertices, or nothing when there is a cycle.
std::optional<std::vector<int>> topological_order(const DirectedEdges& graph);
// The vertices of one cycle, in edge order (v0 -> v1 -> ... -> v0), or empty for a DAG.
std::vector<int> find_cycle(const DirectedEdges& graph);

// The readers behind parse_graph, one per format; `document` is the parsed JSON object.
LoadedGraph read_native(const nlohmann::json& document, std::string_view source);
LoadedGraph read_node_link(const nlohmann::json& document, std::string_view source);
LoadedGraph read_profile(const nlohmann::json& document, std::string_view source);

// The file layout of every JSON ckpt writes: two-space indent, the top-level members one per line,
// arrays of objects one object per line, everything else inline; keys in insertion order.
std::string dump_layout(const nlohmann::ordered_json& document);

// The basename of a path without its extension: a graph name when a file gives none.
std::string file_stem(std::string_view path);

}  // namespace ckpt::internal
