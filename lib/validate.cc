// Structural checks of forward graphs and joint training graphs, shared by the API (GraphBuilder)
// and every file reader. Each rule a user can break has its own message naming the source, the
// field and the op or node, and saying what would fix it. Cycles are told apart from a mere
// misordering with Boost.Graph, so the message says which one the user has.
#include "ckpt/graph.h"
#include "ckpt/training_graph.h"
// ^ This file's own headers: it implements validate_graph and validate_training_graph.

#include <fmt/format.h>

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>
#include <cmath>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "formats_internal.h"

namespace ckpt {

namespace internal {

namespace {

using BoostGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;

BoostGraph to_boost(const DirectedEdges& graph) {
  BoostGraph boost_graph(static_cast<std::size_t>(graph.num_vertices));
  for (const auto& [from, to] : graph.edges) boost::add_edge(from, to, boost_graph);
  return boost_graph;
}

// Records the DFS tree and the first back edge: that edge closes a cycle through the tree path.
class CycleRecorder : public boost::default_dfs_visitor {
 public:
  CycleRecorder(std::vector<int>* parent, std::optional<std::pair<int, int>>* closing_edge)
      : parent_(parent), closing_edge_(closing_edge) {}

  template <class Edge, class Graph>
  void tree_edge(Edge edge, const Graph& graph) const {
    (*parent_)[boost::target(edge, graph)] = static_cast<int>(boost::source(edge, graph));
  }
  template <class Edge, class Graph>
  void back_edge(Edge edge, const Graph& graph) const {
    if (closing_edge_->has_value()) return;
    *closing_edge_ = std::pair<int, int>(static_cast<int>(boost::source(edge, graph)),
                                         static_cast<int>(boost::target(edge, graph)));
  }

 private:
  std::vector<int>* parent_;
  std::optional<std::pair<int, int>>* closing_edge_;
};

}  // namespace

std::optional<std::vector<int>> topological_order(const DirectedEdges& graph) {
  const BoostGraph boost_graph = to_boost(graph);
  std::vector<BoostGraph::vertex_descriptor> reversed;
  try {
    boost::topological_sort(boost_graph, std::back_inserter(reversed));
  } catch (const boost::not_a_dag&) {
    return std::nullopt;
  }
  return std::vector<int>(reversed.rbegin(), reversed.rend());
}

std::vector<int> find_cycle(const DirectedEdges& graph) {
  const BoostGraph boost_graph = to_boost(graph);
  std::vector<int> parent(static_cast<std::size_t>(graph.num_vertices), -1);
  std::optional<std::pair<int, int>> closing_edge;
  boost::depth_first_search(boost_graph, boost::visitor(CycleRecorder(&parent, &closing_edge)));
  if (!closing_edge) return {};
  // The back edge u -> v has v on the tree path to u: the cycle is v -> ... -> u -> v.
  const auto [u, v] = *closing_edge;
  std::vector<int> cycle;
  for (int at = u; at != v && at != -1; at = parent[static_cast<std::size_t>(at)]) {
    cycle.push_back(at);
  }
  cycle.push_back(v);
  return std::vector<int>(cycle.rbegin(), cycle.rend());
}

ValueId default_loss(const std::vector<Op>& ops) {
  if (ops.empty() || ops.back().outputs.empty()) return kNoId;
  return ops.back().outputs.front();
}

namespace {

template <typename Item>
std::string entry(std::string_view list, const std::vector<Item>& items, std::int32_t id) {
  return list_entry(list, static_cast<std::size_t>(id), items[static_cast<std::size_t>(id)].name);
}

template <typename Item>
const std::string& name_of(const std::vector<Item>& items, std::int32_t id) {
  return items[static_cast<std::size_t>(id)].name;
}

bool in_range(std::int32_t id, std::size_t size) {
  return id >= 0 && static_cast<std::size_t>(id) < size;
}

bool contains(const std::vector<ValueId>& ids, ValueId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// Finite and non-negative: what every time in the IR must be.
std::optional<std::string> bad_time(double time_us) {
  if (!std::isfinite(time_us)) {
    return fmt::format("time {} is not finite; times are finite microseconds >= 0", time_us);
  }
  if (time_us < 0) return fmt::format("negative time {}; times are microseconds >= 0", time_us);
  return std::nullopt;
}

std::optional<std::string> bad_bytes(std::int64_t bytes) {
  if (bytes >= 0) return std::nullopt;
  return fmt::format("negative size {}; sizes are byte counts >= 0", bytes);
}

// All the sizes of a graph together: the planner, the simulator and the memory plan add them in
// signed 64-bit arithmetic (a training graph holds a gradient for each value besides), so a
// graph's sizes may add up to 2^60 bytes (1 EiB) at most.
class ByteTotal {
 public:
  static constexpr std::int64_t kMax = std::int64_t{1} << 60;

  // Adds a size already checked by bad_bytes(); says what is wrong once the total is too large.
  std::optional<std::string> add(std::int64_t bytes) {
    if (bytes <= kMax - total_) {
      total_ += bytes;
      return std::nullopt;
    }
    return fmt::format("size {} takes the graph's sizes past 2^60 bytes (1 EiB) in all, more "
                       "than ckpt's 64-bit byte arithmetic can plan with; sizes are bytes, not "
                       "bits or elements",
                       bytes);
  }

 private:
  std::int64_t total_ = 0;
};

// A size: >= 0, and the graph's sizes together within ByteTotal's limit.
void check_size(std::string_view source, const std::string& where, std::string_view field,
                std::int64_t bytes, ByteTotal& total) {
  if (auto problem = bad_bytes(bytes)) fail(ErrorKind::kValidation, source, where, field, *problem);
  if (auto problem = total.add(bytes)) fail(ErrorKind::kValidation, source, where, field, *problem);
}

// A value's alias_of: none, or the id of another value.
void check_alias_field(std::string_view source, const std::string& where, ValueId v,
                       ValueId alias_of, std::size_t num_values) {
  if (alias_of == kNoId) return;
  if (!in_range(alias_of, num_values)) {
    fail(ErrorKind::kValidation, source, where, "alias_of",
         fmt::format("unknown value id {}; alias_of must be the id of another value", alias_of));
  }
  if (alias_of == v) {
    fail(ErrorKind::kValidation, source, where, "alias_of",
         "a value cannot alias itself; clear alias_of or point it at the value it shares "
         "storage with");
  }
}

// A list of value ids (an op's or node's inputs, outputs, ...): every id names a value.
void check_id_list(std::string_view source, const std::string& where, std::string_view field,
                   const std::vector<ValueId>& ids, std::size_t num_values) {
  for (ValueId id : ids) {
    if (in_range(id, num_values)) continue;
    fail(ErrorKind::kValidation, source, where, field,
         fmt::format("unknown value id {}; every entry must be the id of a value (0..{})", id,
                     static_cast<int>(num_values) - 1));
  }
}

// Unique, non-empty names: the native format refers to values and ops by name.
template <typename Item>
void check_names(std::string_view source, std::string_view list, const std::vector<Item>& items,
                 std::string_view what) {
  std::map<std::string_view, std::size_t> first_use;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string& name = items[i].name;
    const std::string where = list_entry(list, i, name);
    if (name.empty()) {
      fail(ErrorKind::kValidation, source, where, "name",
           fmt::format("empty name; give every {} a unique, non-empty name", what));
    }
    const auto [it, inserted] = first_use.emplace(name, i);
    if (!inserted) {
      fail(ErrorKind::kValidation, source, where, "name",
           fmt::format("duplicate {} name \"{}\", also used by {}[{}]; give every {} a unique name",
                       what, name, list, it->second, what));
    }
  }
}

std::string cycle_text(const std::vector<int>& cycle, const std::vector<std::string>& names) {
  std::string text;
  for (int vertex : cycle) {
    text += fmt::format("\"{}\" -> ", names[static_cast<std::size_t>(vertex)]);
  }
  return text + fmt::format("\"{}\"", names[static_cast<std::size_t>(cycle.front())]);
}

// One forward graph's checks, in the order their messages are most useful: entries first, then
// how ops connect, then aliases and the loss.
class ForwardChecker {
 public:
  ForwardChecker(const std::vector<Value>& values, const std::vector<Op>& ops, ValueId loss,
                 std::string_view source)
      : values_(values), ops_(ops), loss_(loss), source_(source) {}

  void run() {
    if (ops_.empty()) {
      fail(ErrorKind::kValidation, source_, "", "ops",
           "the graph has no ops; add at least one op (there is nothing to plan)");
    }
    check_values();
    check_names(source_, "ops", ops_, "op");
    producer_.assign(values_.size(), kNoId);
    for (OpId o = 0; o < num_ops(); ++o) check_op_entry(o);
    overwritten_by_.assign(values_.size(), kNoId);
    for (OpId o = 0; o < num_ops(); ++o) check_op_connections(o);
    check_aliases();
    check_unproduced_activations();
    check_loss();
  }

 private:
  OpId num_ops() const { return static_cast<OpId>(ops_.size()); }
  std::string op_where(OpId o) const { return entry("ops", ops_, o); }
  std::string value_where(ValueId v) const { return entry("values", values_, v); }
  const std::string& value_name(ValueId v) const { return name_of(values_, v); }

  void check_values() {
    check_names(source_, "values", values_, "value");
    for (ValueId v = 0; v < static_cast<ValueId>(values_.size()); ++v) {
      const Value& value = values_[static_cast<std::size_t>(v)];
      check_size(source_, value_where(v), "bytes", value.bytes, total_bytes_);
      check_alias_field(source_, value_where(v), v, value.alias_of, values_.size());
    }
  }

  void check_ids(OpId o, std::string_view field, const std::vector<ValueId>& ids) const {
    check_id_list(source_, op_where(o), field, ids, values_.size());
  }

  // Sizes, times, id ranges and producers: everything that does not depend on op order.
  void check_op_entry(OpId o) {
    const Op& op = ops_[static_cast<std::size_t>(o)];
    const std::pair<std::string_view, double> times[] = {{"fwd_time_us", op.fwd_time_us},
                                                         {"bwd_time_us", op.bwd_time_us}};
    for (const auto& [field, time_us] : times) {
      if (auto problem = bad_time(time_us)) {
        fail(ErrorKind::kValidation, source_, op_where(o), field, *problem);
      }
    }
    const std::pair<std::string_view, std::int64_t> sizes[] = {
        {"fwd_workspace_bytes", op.fwd_workspace_bytes},
        {"bwd_workspace_bytes", op.bwd_workspace_bytes},
        {"saved_other_bytes", op.saved_other_bytes}};
    for (const auto& [field, bytes] : sizes) {
      check_size(source_, op_where(o), field, bytes, total_bytes_);
    }
    for (const auto& [attribute, value] : op.attributes) {
      if (std::isfinite(value)) continue;
      fail(ErrorKind::kValidation, source_, op_where(o), "attributes",
           fmt::format("attribute \"{}\" is {}; attribute values must be finite numbers", attribute,
                       value));
    }
    check_ids(o, "inputs", op.inputs);
    check_ids(o, "outputs", op.outputs);
    check_ids(o, "saved", op.saved);
    for (ValueId out : op.outputs) {
      const Value& value = values_[static_cast<std::size_t>(out)];
      if (value.kind != ValueKind::kActivation) {
        fail(ErrorKind::kValidation, source_, op_where(o), "outputs",
             fmt::format("value \"{}\" has kind \"{}\", which no op produces; make it an "
                         "activation",
                         value.name, to_string(value.kind)));
      }
      const OpId earlier = producer_[static_cast<std::size_t>(out)];
      if (earlier == o) {
        fail(ErrorKind::kValidation, source_, op_where(o), "outputs",
             fmt::format("value \"{}\" is listed twice; list each output once", value.name));
      }
      if (earlier != kNoId) {
        fail(ErrorKind::kValidation, source_, op_where(o), "outputs",
             fmt::format("value \"{}\" is produced twice (also by {}); every value has one "
                         "producer: give this result a new value (with alias_of set to the old one "
                         "for an in-place op)",
                         value.name, op_where(earlier)));
      }
      producer_[static_cast<std::size_t>(out)] = o;
    }
  }

  DirectedEdges op_dependencies() const {
    DirectedEdges graph;
    graph.num_vertices = num_ops();
    for (OpId o = 0; o < num_ops(); ++o) {
      for (ValueId in : ops_[static_cast<std::size_t>(o)].inputs) {
        const OpId from = producer_[static_cast<std::size_t>(in)];
        if (from != kNoId) graph.edges.emplace_back(from, o);
      }
    }
    return graph;
  }

  [[noreturn]] void fail_consumed_before_produced(OpId o, ValueId in) const {
    const OpId producer = producer_[static_cast<std::size_t>(in)];
    if (producer == o) {
      fail(ErrorKind::kValidation, source_, op_where(o), "inputs",
           fmt::format("value \"{}\" is both an input and an output of the op; an op cannot "
                       "consume its own result (an in-place op outputs a new value whose "
                       "alias_of is the input)",
                       value_name(in)));
    }
    const std::vector<int> cycle = find_cycle(op_dependencies());
    if (!cycle.empty()) {
      std::vector<std::string> names;
      for (const Op& op : ops_) names.push_back(op.name);
      fail(ErrorKind::kValidation, source_, op_where(o), "inputs",
           fmt::format("the ops form a cycle: {}; a forward graph must be acyclic",
                       cycle_text(cycle, names)));
    }
    fail(ErrorKind::kValidation, source_, op_where(o), "inputs",
         fmt::format("value \"{}\" is consumed before it is produced (by {}); list the ops in "
                     "execution order, each after the producers of its inputs",
                     value_name(in), op_where(producer)));
  }

  // Inputs produced earlier and not overwritten since, saved values among the op's own.
  void check_op_connections(OpId o) {
    const Op& op = ops_[static_cast<std::size_t>(o)];
    for (ValueId in : op.inputs) {
      const Value& value = values_[static_cast<std::size_t>(in)];
      const OpId producer = producer_[static_cast<std::size_t>(in)];
      if (value.kind == ValueKind::kActivation && producer == kNoId) {
        fail(ErrorKind::kValidation, source_, op_where(o), "inputs",
             fmt::format("value \"{}\" is an activation that no op produces; make it an input or "
                         "param, or add the op that produces it",
                         value.name));
      }
      if (producer != kNoId && producer >= o) fail_consumed_before_produced(o, in);
      const OpId overwriter = overwritten_by_[static_cast<std::size_t>(in)];
      if (overwriter != kNoId) {
        fail(ErrorKind::kValidation, source_, op_where(o), "inputs",
             fmt::format("value \"{}\" was overwritten in place by {} and no longer exists; read "
                         "that op's output instead",
                         value.name, op_where(overwriter)));
      }
    }
    for (ValueId saved : op.saved) {
      if (contains(op.inputs, saved) || contains(op.outputs, saved)) continue;
      fail(ErrorKind::kValidation, source_, op_where(o), "saved",
           fmt::format("saves \"{}\", which is neither an input nor an output of the op; a "
                       "backward can only keep what its op touches",
                       value_name(saved)));
    }
    if (!op.in_place) return;
    for (ValueId out : op.outputs) {
      const ValueId target = values_[static_cast<std::size_t>(out)].alias_of;
      if (target != kNoId && contains(op.inputs, target)) {
        overwritten_by_[static_cast<std::size_t>(target)] = o;
      }
    }
  }

  void check_aliases() const {
    for (ValueId v = 0; v < static_cast<ValueId>(values_.size()); ++v) {
      const ValueId target = values_[static_cast<std::size_t>(v)].alias_of;
      if (target == kNoId) continue;
      const OpId producer = producer_[static_cast<std::size_t>(v)];
      if (producer == kNoId) {
        fail(ErrorKind::kValidation, source_, value_where(v), "alias_of",
             "only op outputs (views, in-place results) can alias another value, and no op "
             "produces this one; clear alias_of");
      }
      if (contains(ops_[static_cast<std::size_t>(producer)].inputs, target)) continue;
      fail(ErrorKind::kValidation, source_, value_where(v), "alias_of",
           fmt::format("aliases \"{}\", which is not an input of its producer {}; alias_of must "
                       "name one of the producing op's inputs",
                       value_name(target), op_where(producer)));
    }
  }

  void check_unproduced_activations() const {
    for (ValueId v = 0; v < static_cast<ValueId>(values_.size()); ++v) {
      if (values_[static_cast<std::size_t>(v)].kind != ValueKind::kActivation) continue;
      if (producer_[static_cast<std::size_t>(v)] != kNoId) continue;
      fail(ErrorKind::kValidation, source_, value_where(v), "kind",
           "an activation that no op produces; make it an input or param, add the op that "
           "produces it, or remove it");
    }
  }

  void check_loss() const {
    if (loss_ == kNoId) {
      fail(ErrorKind::kValidation, source_, "", "loss",
           "the graph has no loss and its last op has no output to default to; set the loss");
    }
    if (!in_range(loss_, values_.size())) {
      fail(ErrorKind::kValidation, source_, "", "loss",
           fmt::format("unknown value id {}; the loss must be one of the graph's values", loss_));
    }
    if (values_[static_cast<std::size_t>(loss_)].kind == ValueKind::kActivation) return;
    fail(ErrorKind::kValidation, source_, "", "loss",
         fmt::format("\"{}\" has kind \"{}\"; the loss must be an activation that an op "
                     "produces",
                     value_name(loss_), to_string(values_[static_cast<std::size_t>(loss_)].kind)));
  }

  const std::vector<Value>& values_;
  const std::vector<Op>& ops_;
  ValueId loss_;
  std::string_view source_;
  std::vector<OpId> producer_;        // per value: the op outputting it, or kNoId
  std::vector<OpId> overwritten_by_;  // per value: the in-place op that took its storage
  ByteTotal total_bytes_;
};

// One joint graph's checks; the joint counterpart of ForwardChecker.
class JointChecker {
 public:
  JointChecker(const std::vector<TValue>& values, const std::vector<Node>& nodes,
               std::string_view source)
      : values_(values), nodes_(nodes), source_(source) {}

  void run() {
    if (nodes_.empty()) {
      fail(ErrorKind::kValidation, source_, "", "nodes",
           "the graph has no nodes; add at least one node (there is nothing to plan)");
    }
    check_values();
    check_names(source_, "nodes", nodes_, "node");
    producer_.assign(values_.size(), kNoId);
    for (NodeId n = 0; n < num_nodes(); ++n) check_node_entry(n);
    check_recorded_producers();
    for (NodeId n = 0; n < num_nodes(); ++n) check_node_connections(n);
    check_aliases();
    check_unproduced_values();
  }

 private:
  NodeId num_nodes() const { return static_cast<NodeId>(nodes_.size()); }
  std::string node_where(NodeId n) const { return entry("nodes", nodes_, n); }
  std::string value_where(ValueId v) const { return entry("values", values_, v); }
  const std::string& value_name(ValueId v) const { return name_of(values_, v); }
  bool resident(ValueId v) const { return is_resident(values_[static_cast<std::size_t>(v)].kind); }

  void check_values() {
    check_names(source_, "values", values_, "value");
    for (ValueId v = 0; v < static_cast<ValueId>(values_.size()); ++v) {
      const TValue& value = values_[static_cast<std::size_t>(v)];
      check_size(source_, value_where(v), "bytes", value.bytes, total_bytes_);
      if (value.version < 0) {
        fail(ErrorKind::kValidation, source_, value_where(v), "version",
             fmt::format("negative version {}; versions count in-place writes from 0",
                         value.version));
      }
      if (value.producer != kNoId && !in_range(value.producer, nodes_.size())) {
        fail(ErrorKind::kValidation, source_, value_where(v), "producer",
             fmt::format("unknown node id {}; the producer must be a node id or none",
                         value.producer));
      }
      check_alias_field(source_, value_where(v), v, value.alias_of, values_.size());
    }
  }

  void check_ids(NodeId n, std::string_view field, const std::vector<ValueId>& ids) const {
    check_id_list(source_, node_where(n), field, ids, values_.size());
  }

  void check_node_entry(NodeId n) {
    const Node& node = nodes_[static_cast<std::size_t>(n)];
    if (node.phase == NodePhase::kForward && last_backward_ != kNoId) {
      fail(ErrorKind::kValidation, source_, node_where(n), "phase",
           fmt::format("a forward node listed after the backward node {}; list every forward "
                       "node before the first backward node",
                       node_where(last_backward_)));
    }
    if (node.phase == NodePhase::kBackward) last_backward_ = n;
    if (auto problem = bad_time(node.time_us)) {
      fail(ErrorKind::kValidation, source_, node_where(n), "time_us", *problem);
    }
    check_size(source_, node_where(n), "workspace_bytes", node.workspace_bytes, total_bytes_);
    check_ids(n, "inputs", node.inputs);
    check_ids(n, "outputs", node.outputs);
    check_ids(n, "accumulates", node.accumulates);
    check_ids(n, "kills", node.kills);
    for (ValueId out : node.outputs) {
      const TValue& value = values_[static_cast<std::size_t>(out)];
      if (value.kind == TValueKind::kInput || value.kind == TValueKind::kParam) {
        fail(ErrorKind::kValidation, source_, node_where(n), "outputs",
             fmt::format("value \"{}\" has kind \"{}\", which no node produces; make it an "
                         "activation or a gradient",
                         value.name, to_string(value.kind)));
      }
      const NodeId earlier = producer_[static_cast<std::size_t>(out)];
      if (earlier == n) {
        fail(ErrorKind::kValidation, source_, node_where(n), "outputs",
             fmt::format("value \"{}\" is listed twice; list each output once", value.name));
      }
      if (earlier != kNoId) {
        fail(ErrorKind::kValidation, source_, node_where(n), "outputs",
             fmt::format("value \"{}\" is produced twice (also by {}); every value has one "
                         "producer (later contributions to a gradient go in \"accumulates\")",
                         value.name, node_where(earlier)));
      }
      producer_[static_cast<std::size_t>(out)] = n;
    }
    for (ValueId killed : node.kills) {
      if (contains(node.inputs, killed)) continue;
      fail(ErrorKind::kValidation, source_, node_where(n), "kills",
           fmt::format("kills \"{}\", which is not an input of the node; only an input's storage "
                       "can pass to an in-place output",
                       value_name(killed)));
    }
  }

  void check_recorded_producers() const {
    for (ValueId v = 0; v < static_cast<ValueId>(values_.size()); ++v) {
      const NodeId recorded = values_[static_cast<std::size_t>(v)].producer;
      const NodeId actual = producer_[static_cast<std::size_t>(v)];
      if (recorded == actual) continue;
      fail(ErrorKind::kValidation, source_, value_where(v), "producer",
           fmt::format("records producer {} but {}; the producer is the node that outputs the "
                       "value",
                       recorded == kNoId ? std::string("none") : node_where(recorded),
                       actual == kNoId ? std::string("no node outputs it")
                                       : "it is output by " + node_where(actual)));
    }
  }

  DirectedEdges node_dependencies() const {
    DirectedEdges graph;
    graph.num_vertices = num_nodes();
    for (NodeId n = 0; n < num_nodes(); ++n) {
      const Node& node = nodes_[static_cast<std::size_t>(n)];
      for (const auto* list : {&node.inputs, &node.accumulates}) {
        for (ValueId in : *list) {
          const NodeId from = producer_[static_cast<std::size_t>(in)];
          if (from != kNoId) graph.edges.emplace_back(from, n);
        }
      }
    }
    return graph;
  }

  void check_read(NodeId n, std::string_view field, ValueId in) const {
    if (resident(in)) return;
    const NodeId producer = producer_[static_cast<std::size_t>(in)];
    if (producer == kNoId) {
      fail(ErrorKind::kValidation, source_, node_where(n), field,
           fmt::format("value \"{}\" ({}) is read but no node produces it; add its producer or "
                       "make it resident (input, param, param_gradient)",
                       value_name(in), to_string(values_[static_cast<std::size_t>(in)].kind)));
    }
    if (producer < n) return;
    if (producer == n) {
      fail(ErrorKind::kValidation, source_, node_where(n), field,
           fmt::format("value \"{}\" is both read and produced by the node; a node cannot "
                       "consume its own result",
                       value_name(in)));
    }
    const std::vector<int> cycle = find_cycle(node_dependencies());
    if (!cycle.empty()) {
      std::vector<std::string> names;
      for (const Node& node : nodes_) names.push_back(node.name);
      fail(ErrorKind::kValidation, source_, node_where(n), field,
           fmt::format("the nodes form a cycle: {}; a training graph must be acyclic",
                       cycle_text(cycle, names)));
    }
    fail(ErrorKind::kValidation, source_, node_where(n), field,
         fmt::format("value \"{}\" is read before it is produced (by {}); list the nodes in "
                     "execution order, each after the producers of what it reads",
                     value_name(in), node_where(producer)));
  }

  void check_node_connections(NodeId n) const {
    const Node& node = nodes_[static_cast<std::size_t>(n)];
    for (ValueId in : node.inputs) check_read(n, "inputs", in);
    for (ValueId in : node.accumulates) check_read(n, "accumulates", in);
  }

  void check_aliases() const {
    for (ValueId v = 0; v < static_cast<ValueId>(values_.size()); ++v) {
      const ValueId target = values_[static_cast<std::size_t>(v)].alias_of;
      if (target == kNoId) continue;
      const NodeId producer = producer_[static_cast<std::size_t>(v)];
      if (producer == kNoId) {
        fail(ErrorKind::kValidation, source_, value_where(v), "alias_of",
             "only node outputs (views, in-place results) can alias another value, and no node "
             "produces this one; clear alias_of");
      }
      if (contains(nodes_[static_cast<std::size_t>(producer)].inputs, target)) continue;
      fail(ErrorKind::kValidation, source_, value_where(v), "alias_of",
           fmt::format("aliases \"{}\", which is not an input of its producer {}; alias_of must "
                       "name one of the producing node's inputs",
                       value_name(target), node_where(producer)));
    }
  }

  void check_unproduced_values() const {
    for (ValueId v = 0; v < static_cast<ValueId>(values_.size()); ++v) {
      if (resident(v) || producer_[static_cast<std::size_t>(v)] != kNoId) continue;
      fail(ErrorKind::kValidation, source_, value_where(v), "kind",
           fmt::format("a value of kind \"{}\" that no node produces; add its producer, make "
                       "it resident (input, param, param_gradient), or remove it",
                       to_string(values_[static_cast<std::size_t>(v)].kind)));
    }
  }

  const std::vector<TValue>& values_;
  const std::vector<Node>& nodes_;
  std::string_view source_;
  std::vector<NodeId> producer_;  // per value: the node outputting it, or kNoId
  NodeId last_backward_ = kNoId;
  ByteTotal total_bytes_;
};

}  // namespace

void validate_forward_parts(const std::vector<Value>& values, const std::vector<Op>& ops,
                            ValueId loss, std::string_view source) {
  ForwardChecker(values, ops, loss, source).run();
}

void validate_joint_parts(const std::vector<TValue>& values, const std::vector<Node>& nodes,
                          std::string_view source) {
  JointChecker(values, nodes, source).run();
}

}  // namespace internal

void validate_graph(const Graph& graph, std::string_view source) {
  internal::validate_forward_parts(graph.values(), graph.ops(), graph.loss(), source);
}

void validate_training_graph(const TrainingGraph& graph, std::string_view source) {
  internal::validate_joint_parts(graph.values(), graph.nodes(), source);
}

}  // namespace ckpt
