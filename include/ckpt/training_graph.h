// The joint training graph: forward and backward computations ("nodes") over values with bytes.
// Planners, the simulator and the executor all work on this form. It comes either from a forward
// graph (derive_training_graph adds the backward nodes, the gradients and the saved state) or
// directly from a file that lists forward and backward nodes explicitly (the Checkmate form).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ckpt/graph.h"

namespace ckpt {

// Position in TrainingGraph::nodes(); forward ids come before backward ids.
using NodeId = std::int32_t;

// The kinds of a training-graph value; only resident kinds are free of charge.
enum class TValueKind : std::uint8_t {
  kInput,          // resident: graph inputs and buffers
  kParam,          // resident: parameters
  kParamGradient,  // resident: parameter gradients (accumulated into)
  kActivation,     // charged: produced by a forward node
  kSavedState,     // charged: extra state a forward keeps for its backward (dropout mask)
  kGradient,       // charged: gradient of an activation, produced by backward nodes
};

// The joint format's name of a kind; is_resident: input, param or param gradient.
std::string_view to_string(TValueKind kind);
bool is_resident(TValueKind kind);

// A value of the joint graph (an activation, gradient, saved state or resident tensor).
struct TValue {
  std::string name;
  std::int64_t bytes = 0;
  TValueKind kind = TValueKind::kActivation;
  ValueId alias_of = kNoId;  // shares the storage of this value (views, in-place results)
  // Number of in-place writes between the storage's first value and this one. Two values of one
  // storage can be live together only if their versions are equal.
  int version = 0;
  NodeId producer = kNoId;  // the node computing it (the first contributor for a gradient)
  // For a derived graph: the forward-graph value this is (or the gradient of); kNoId otherwise.
  ValueId source_value = kNoId;
};

// Whether a node belongs to the forward or the backward pass.
enum class NodePhase : std::uint8_t { kForward, kBackward };
std::string_view to_string(NodePhase phase);

// One computation of the joint graph: a forward op or one op's backward.
struct Node {
  std::string name;
  std::string kind;  // the op kind it comes from ("aten.addmm.default", "backward", ...)
  NodePhase phase = NodePhase::kForward;
  double time_us = 0;
  std::int64_t workspace_bytes = 0;
  std::vector<ValueId> inputs;       // read; must be live (or resident)
  std::vector<ValueId> outputs;      // written; become live
  std::vector<ValueId> accumulates;  // added into in place; must be live (or resident)
  std::vector<ValueId> kills;        // inputs whose storage an in-place output takes over
  bool side_effecting = false;       // computed at most once
  bool random = false;               // a recompute replays the first computation's seed
  // For a derived graph: the forward op this node computes or differentiates. For a joint graph
  // read from a file: the node's id in that file.
  std::int32_t source_id = kNoId;
};

// The joint forward + backward graph planners, the simulator and the executor work on.
class TrainingGraph {
 public:
  TrainingGraph() = default;
  // Builds the graph and computes producers, storage roots and consumers from the lists.
  TrainingGraph(std::string name, std::vector<TValue> values, std::vector<Node> nodes,
                bool derived);

  // The graph's name, values and nodes; ids index the lists.
  const std::string& name() const { return name_; }
  const std::vector<TValue>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const TValue& value(ValueId id) const { return values_.at(static_cast<std::size_t>(id)); }
  const Node& node(NodeId id) const { return nodes_.at(static_cast<std::size_t>(id)); }
  // Sizes of the value and node lists.
  int num_values() const { return static_cast<int>(values_.size()); }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  // True when built by derive_training_graph, false for a joint graph read as such.
  bool derived() const { return derived_; }

  // Forward nodes in the order of their first computation, then backward nodes in execution
  // order. Node ids are assigned in exactly this order: forward ids < backward ids.
  int num_forward_nodes() const { return num_forward_; }
  // Resident when its storage belongs to an input, param or param gradient (a view of a param too).
  bool is_resident(ValueId id) const { return ckpt::is_resident(value(storage_root(id)).kind); }
  ValueId storage_root(ValueId id) const { return root_.at(static_cast<std::size_t>(id)); }
  // Bytes charged while the value's storage is held (its root's bytes; 0 for resident values).
  std::int64_t storage_bytes(ValueId id) const;
  // Nodes reading (inputs or accumulates) each value, in node id order.
  const std::vector<NodeId>& consumers(ValueId id) const {
    return consumers_.at(static_cast<std::size_t>(id));
  }
  // Sum of every node's time: the cost of plain backpropagation (store-all).
  double baseline_time_us() const;
  // Bytes of resident values (inputs, params, param gradients), reported but not budgeted.
  std::int64_t resident_bytes() const;

 private:
  std::string name_;
  std::vector<TValue> values_;
  std::vector<Node> nodes_;
  std::vector<ValueId> root_;
  std::vector<std::vector<NodeId>> consumers_;
  int num_forward_ = 0;
  bool derived_ = false;
};

// Adds the backward pass to a forward graph: one backward node per differentiable op on the path
// to the loss (in reverse op order), a gradient value per activation that needs one (accumulated
// when several ops consume it), and a saved-state value per op with saved_other_bytes. Forward
// value ids and op ids are kept: value i and forward node i are the graph's value i and op i.
TrainingGraph derive_training_graph(const Graph& graph);

// Checks a joint graph's structure: ids in range, forward nodes before backward nodes, each value
// produced once before use (gradient accumulation aside), finite non-negative sizes and times.
// Throws ckpt::Error naming `source`, the field and the node.
void validate_training_graph(const TrainingGraph& graph, std::string_view source);

}  // namespace ckpt
