// Importer for joint graphs in networkx node-link JSON, the form Checkmate and Moccasin exchange:
// {"directed": true, "graph": {"name"}, "nodes": [{"id", "name", "backward", "cost_cpu",
// "cost_ram"}], "links": [{"source", "target"}]}. Each node computes one value of cost_ram bytes
// from the values of its predecessors; node ids number the nodes in execution order. The cost_cpu
// is a unitless cost and is kept as-is as time_us. Members other than these are ignored.
#include "ckpt/formats.h"
// ^ This file's own header: it implements part of the formats API.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "formats_internal.h"

namespace ckpt {

namespace {

using internal::fail;
using internal::list_entry;
using internal::ObjectReader;

struct FileNode {
  std::int64_t id = 0;
  std::string name;
  bool backward = false;
  double cost_cpu = 0;
  std::int64_t cost_ram = 0;
  std::size_t file_index = 0;  // position in the file's "nodes", for messages
};

std::string node_where(const FileNode& node) {
  return list_entry("nodes", node.file_index, node.name);
}

FileNode read_node(const nlohmann::json& item, std::size_t index, std::string_view source) {
  const ObjectReader unnamed(item, source, list_entry("nodes", index, ""));
  const ObjectReader reader(
      item, source,
      list_entry(
          "nodes", index,
          unnamed.has("name") && unnamed.get("name").is_string() ? unnamed.string("name") : ""));
  FileNode node;
  node.file_index = index;
  const nlohmann::json& id = reader.get("id");
  if (!id.is_number_integer()) {
    reader.fail(ErrorKind::kParse, "id",
                fmt::format("expected an integer node id, found {}; ckpt reads node-link graphs "
                            "whose ids number the nodes in execution order",
                            id.is_primitive() && id.dump().size() <= 40 ? id.dump()
                                                                        : id.type_name()));
  }
  node.id = reader.integer("id");
  node.name = reader.string("name");
  node.backward = reader.boolean("backward");
  node.cost_cpu = reader.number("cost_cpu");
  node.cost_ram = reader.integer("cost_ram");
  if (node.cost_cpu < 0) {
    reader.fail(ErrorKind::kValidation, "cost_cpu",
                fmt::format("negative cost {}; costs are >= 0", node.cost_cpu));
  }
  if (node.cost_ram < 0) {
    reader.fail(ErrorKind::kValidation, "cost_ram",
                fmt::format("negative size {}; cost_ram is the node's output size in bytes, >= 0",
                            node.cost_ram));
  }
  return node;
}

// Nodes sorted by id, with duplicate ids rejected.
std::vector<FileNode> read_nodes(const nlohmann::json& nodes_json, std::string_view source) {
  std::vector<FileNode> nodes;
  std::map<std::int64_t, std::size_t> seen;  // id -> index in `nodes`
  for (std::size_t i = 0; i < nodes_json.size(); ++i) {
    nodes.push_back(read_node(nodes_json[i], i, source));
    const auto [it, inserted] = seen.emplace(nodes.back().id, i);
    if (inserted) continue;
    fail(ErrorKind::kValidation, source, node_where(nodes.back()), "id",
         fmt::format("duplicate node id {}, also used by {}; node ids must be unique",
                     nodes.back().id, node_where(nodes[it->second])));
  }
  if (nodes.empty()) {
    fail(ErrorKind::kValidation, source, "", "nodes",
         "the graph has no nodes; add at least one node (there is nothing to plan)");
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const FileNode& a, const FileNode& b) { return a.id < b.id; });
  return nodes;
}

struct Link {
  int from = 0;  // positions in the id-sorted nodes
  int to = 0;
  std::size_t file_index = 0;
};

std::vector<Link> read_links(const nlohmann::json& links_json, const std::vector<FileNode>& nodes,
                             std::string_view source) {
  std::map<std::int64_t, int> position;
  for (std::size_t p = 0; p < nodes.size(); ++p) position[nodes[p].id] = static_cast<int>(p);
  std::vector<Link> links;
  std::set<std::pair<int, int>> seen;  // a multigraph may repeat a link; one dependency is enough
  for (std::size_t i = 0; i < links_json.size(); ++i) {
    const ObjectReader reader(links_json[i], source, list_entry("links", i, ""));
    Link link{.file_index = i};
    const std::pair<std::string_view, int*> ends[] = {{"source", &link.from}, {"target", &link.to}};
    for (const auto& [field, end] : ends) {
      const std::int64_t id = reader.integer(field);
      const auto it = position.find(id);
      if (it == position.end()) {
        reader.fail(
            ErrorKind::kValidation, field,
            fmt::format("unknown node id {}; link ends must be ids of entries in \"nodes\"", id));
      }
      *end = it->second;
    }
    if (seen.insert({link.from, link.to}).second) links.push_back(link);
  }
  return links;
}

// Node ids must be a topological order: a cycle, or a link against id order, is an error.
void check_id_order(const std::vector<FileNode>& nodes, const std::vector<Link>& links,
                    std::string_view source) {
  internal::DirectedEdges graph;
  graph.num_vertices = static_cast<int>(nodes.size());
  for (const Link& link : links) graph.edges.emplace_back(link.from, link.to);
  if (!internal::topological_order(graph)) {
    const std::vector<int> cycle = internal::find_cycle(graph);
    std::string text;
    for (int p : cycle) {
      const FileNode& node = nodes[static_cast<std::size_t>(p)];
      text += fmt::format("{} \"{}\" -> ", node.id, node.name);
    }
    const FileNode& first = nodes[static_cast<std::size_t>(cycle.front())];
    fail(ErrorKind::kValidation, source, "", "links",
         fmt::format("the links form a cycle: {}{} \"{}\"; a computation graph must be acyclic",
                     text, first.id, first.name));
  }
  for (const Link& link : links) {
    if (link.from < link.to) continue;
    const FileNode& from = nodes[static_cast<std::size_t>(link.from)];
    const FileNode& to = nodes[static_cast<std::size_t>(link.to)];
    fail(ErrorKind::kValidation, source, list_entry("links", link.file_index, ""), "target",
         fmt::format("goes from node {} \"{}\" back to node {} \"{}\"; node ids must number the "
                     "nodes in execution order (a topological order): renumber them",
                     from.id, from.name, to.id, to.name));
  }
}

// Forward nodes first, each part in id order. The result must still be topological: a forward
// node that needs a backward one cannot run before the backward pass.
std::vector<int> forward_first_order(const std::vector<FileNode>& nodes,
                                     const std::vector<Link>& links, std::string_view source) {
  std::vector<int> order(nodes.size());
  for (std::size_t p = 0; p < nodes.size(); ++p) order[p] = static_cast<int>(p);
  std::stable_partition(order.begin(), order.end(),
                        [&](int p) { return !nodes[static_cast<std::size_t>(p)].backward; });
  for (const Link& link : links) {
    const FileNode& from = nodes[static_cast<std::size_t>(link.from)];
    const FileNode& to = nodes[static_cast<std::size_t>(link.to)];
    if (!from.backward || to.backward) continue;
    fail(ErrorKind::kValidation, source, node_where(to), "backward",
         fmt::format("forward node {} \"{}\" depends on backward node {} \"{}\", so the forward "
                     "nodes cannot all run first; mark it backward or remove the link",
                     to.id, to.name, from.id, from.name));
  }
  return order;
}

// Node names become value and node names, which must be unique: repeats get their id appended.
// A node whose own name is such a made-up name is an error (the two could not be told apart).
std::vector<std::string> unique_names(const std::vector<FileNode>& nodes, std::string_view source) {
  std::map<std::string, int> count;
  for (const FileNode& node : nodes) ++count[node.name];
  std::vector<std::string> names;
  std::map<std::string, const FileNode*> renamed;  // made-up name -> the node given it
  for (const FileNode& node : nodes) {
    const bool repeated = count[node.name] > 1 || node.name.empty();
    names.push_back(repeated ? fmt::format("{}#{}", node.name, node.id) : node.name);
    if (repeated) renamed.emplace(names.back(), &node);
  }
  for (const FileNode& node : nodes) {
    const auto it = renamed.find(node.name);
    if (it == renamed.end() || it->second == &node) continue;
    fail(ErrorKind::kValidation, source, node_where(node), "name",
         fmt::format("\"{}\" is also the name ckpt gives {}, whose name is repeated (a repeated "
                     "name gets \"#<id>\" appended); rename one of them",
                     node.name, node_where(*it->second)));
  }
  return names;
}

}  // namespace

namespace internal {

LoadedGraph read_node_link(const nlohmann::json& document, std::string_view source) {
  const ObjectReader top(document, source, "");
  if (!top.boolean("directed", true)) {
    top.fail(ErrorKind::kParse, "directed",
             "the graph is undirected; a computation graph needs \"directed\": true");
  }
  std::string name = file_stem(source);
  if (top.has("graph") && top.get("graph").is_object()) {
    const ObjectReader graph(top.get("graph"), source, "graph");
    name = graph.optional_string("name").value_or(name);
  }
  const std::vector<FileNode> nodes = read_nodes(top.array("nodes"), source);
  const std::vector<Link> links = read_links(top.array("links"), nodes, source);
  check_id_order(nodes, links, source);
  const std::vector<int> order = forward_first_order(nodes, links, source);
  const std::vector<std::string> names = unique_names(nodes, source);

  std::vector<int> rank(nodes.size());  // id-sorted position -> node (and value) id
  for (std::size_t r = 0; r < order.size(); ++r)
    rank[static_cast<std::size_t>(order[r])] = static_cast<int>(r);
  std::vector<std::vector<int>> predecessors(nodes.size());
  for (const Link& link : links)
    predecessors[static_cast<std::size_t>(link.to)].push_back(link.from);

  std::vector<TValue> values;
  std::vector<Node> graph_nodes;
  for (int p : order) {
    const FileNode& file_node = nodes[static_cast<std::size_t>(p)];
    if (file_node.id < std::numeric_limits<std::int32_t>::min() ||
        file_node.id > std::numeric_limits<std::int32_t>::max()) {
      fail(ErrorKind::kParse, source, node_where(file_node), "id",
           fmt::format("node id {} does not fit in 32 bits", file_node.id));
    }
    const std::string& node_name = names[static_cast<std::size_t>(p)];
    TValue value;
    value.name = node_name;
    value.bytes = file_node.cost_ram;
    value.kind = file_node.backward ? TValueKind::kGradient : TValueKind::kActivation;
    values.push_back(std::move(value));
    Node node;
    node.name = node_name;
    node.kind = "node-link";
    node.phase = file_node.backward ? NodePhase::kBackward : NodePhase::kForward;
    node.time_us = file_node.cost_cpu;
    node.outputs = {rank[static_cast<std::size_t>(p)]};
    node.source_id = static_cast<std::int32_t>(file_node.id);
    // Inputs in id order of the predecessors (positions are id-sorted).
    std::vector<int> from = predecessors[static_cast<std::size_t>(p)];
    std::sort(from.begin(), from.end());
    for (int q : from) node.inputs.push_back(rank[static_cast<std::size_t>(q)]);
    graph_nodes.push_back(std::move(node));
  }
  LoadedGraph loaded;
  loaded.format = GraphFormat::kNodeLink;
  loaded.training =
      build_joint_graph(std::move(name), std::move(values), std::move(graph_nodes), source);
  return loaded;
}

}  // namespace internal

}  // namespace ckpt
