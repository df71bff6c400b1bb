// The joint training graph and its derivation from a forward graph: backward nodes in reverse op
// order, gradients (accumulated when a value has several consumers), saved state, and the storage
// relations (views, in-place versions) that memory accounting relies on.
#include "ckpt/training_graph.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <numeric>

#include <fmt/format.h>

namespace ckpt {

std::string_view to_string(TValueKind kind) {
  switch (kind) {
    case TValueKind::kInput: return "input";
    case TValueKind::kParam: return "param";
    case TValueKind::kParamGradient: return "param_gradient";
    case TValueKind::kActivation: return "activation";
    case TValueKind::kSavedState: return "saved_state";
    case TValueKind::kGradient: return "gradient";
  }
  return "?";
}

bool is_resident(TValueKind kind) {
  return kind == TValueKind::kInput || kind == TValueKind::kParam ||
         kind == TValueKind::kParamGradient;
}

std::string_view to_string(NodePhase phase) {
  return phase == NodePhase::kForward ? "forward" : "backward";
}

TrainingGraph::TrainingGraph(std::string name, std::vector<TValue> values, std::vector<Node> nodes,
                             bool derived)
    : name_(std::move(name)), values_(std::move(values)), nodes_(std::move(nodes)),
      derived_(derived) {
  const auto num_values = values_.size();
  root_.resize(num_values);
  for (std::size_t v = 0; v < num_values; ++v) {
    auto root = static_cast<ValueId>(v);
    // Bounded walk: a malformed alias cycle is reported by validation, not looped on here.
    for (std::size_t hops = 0; hops <= num_values; ++hops) {
      const ValueId next = values_[static_cast<std::size_t>(root)].alias_of;
      if (next < 0 || static_cast<std::size_t>(next) >= num_values) break;
      root = next;
    }
    root_[v] = root;
  }
  consumers_.resize(num_values);
  for (std::size_t n = 0; n < nodes_.size(); ++n) {
    const Node& node = nodes_[n];
    if (node.phase == NodePhase::kForward) num_forward_ = static_cast<int>(n) + 1;
    auto add_consumer = [&](ValueId v) {
      if (v < 0 || static_cast<std::size_t>(v) >= num_values) return;
      auto& list = consumers_[static_cast<std::size_t>(v)];
      if (list.empty() || list.back() != static_cast<NodeId>(n)) {
        list.push_back(static_cast<NodeId>(n));
      }
    };
    for (ValueId v : node.inputs) add_consumer(v);
    for (ValueId v : node.accumulates) add_consumer(v);
  }
}

std::int64_t TrainingGraph::storage_bytes(ValueId id) const {
  const ValueId root = storage_root(id);
  if (ckpt::is_resident(value(root).kind)) return 0;
  return value(root).bytes;
}

double TrainingGraph::baseline_time_us() const {
  return std::accumulate(nodes_.begin(), nodes_.end(), 0.0,
                         [](double sum, const Node& node) { return sum + node.time_us; });
}

std::int64_t TrainingGraph::resident_bytes() const {
  std::int64_t total = 0;
  for (std::size_t v = 0; v < values_.size(); ++v) {
    if (ckpt::is_resident(values_[v].kind) && values_[v].alias_of == kNoId) {
      total += values_[v].bytes;
    }
  }
  return total;
}

namespace {

TValueKind training_kind(ValueKind kind) {
  switch (kind) {
    case ValueKind::kInput: return TValueKind::kInput;
    case ValueKind::kParam: return TValueKind::kParam;
    case ValueKind::kActivation: return TValueKind::kActivation;
  }
  return TValueKind::kActivation;
}

template <typename T>
void push_unique(std::vector<T>& list, T item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

// Builds the derived graph step by step; one instance per derivation.
class Deriver {
 public:
  explicit Deriver(const Graph& graph) : graph_(graph) {}

  TrainingGraph run() {
    add_forward_values();
    propagate_requires_grad();
    propagate_needs_grad();
    add_forward_nodes();
    add_backward_nodes();
    return TrainingGraph(graph_.name(), std::move(values_), std::move(nodes_), /*derived=*/true);
  }

 private:
  void add_forward_values() {
    values_.reserve(static_cast<std::size_t>(graph_.num_values()) * 2);
    for (ValueId v = 0; v < graph_.num_values(); ++v) {
      const Value& value = graph_.value(v);
      TValue tvalue;
      tvalue.name = value.name;
      tvalue.bytes = value.bytes;
      tvalue.kind = training_kind(value.kind);
      tvalue.alias_of = value.alias_of;
      tvalue.producer = graph_.producer(v);
      tvalue.source_value = v;
      values_.push_back(std::move(tvalue));
    }
    // Versions follow the producing op: an in-place result is one write past what it aliases.
    // Ops are in topological order, so an alias target's version is known before its alias.
    for (OpId o = 0; o < graph_.num_ops(); ++o) {
      const Op& op = graph_.op(o);
      for (ValueId out : op.outputs) {
        TValue& tvalue = values_[static_cast<std::size_t>(out)];
        if (tvalue.alias_of == kNoId) continue;
        tvalue.version = values_[static_cast<std::size_t>(tvalue.alias_of)].version +
                         (op.in_place ? 1 : 0);
      }
    }
  }

  void propagate_requires_grad() {
    requires_grad_.assign(static_cast<std::size_t>(graph_.num_values()), false);
    for (ValueId v = 0; v < graph_.num_values(); ++v) {
      const Value& value = graph_.value(v);
      if (value.kind == ValueKind::kParam && value.requires_grad) {
        requires_grad_[static_cast<std::size_t>(v)] = true;
      }
    }
    for (const Op& op : graph_.ops()) {
      if (!op.differentiable) continue;
      const bool any = std::any_of(op.inputs.begin(), op.inputs.end(), [&](ValueId in) {
        return requires_grad_[static_cast<std::size_t>(in)];
      });
      if (!any) continue;
      for (ValueId out : op.outputs) {
        if (graph_.value(out).kind == ValueKind::kActivation) {
          requires_grad_[static_cast<std::size_t>(out)] = true;
        }
      }
    }
  }

  void propagate_needs_grad() {
    needs_grad_.assign(static_cast<std::size_t>(graph_.num_values()), false);
    op_active_.assign(static_cast<std::size_t>(graph_.num_ops()), false);
    const ValueId loss = graph_.loss();
    if (loss != kNoId && requires_grad_[static_cast<std::size_t>(loss)]) {
      needs_grad_[static_cast<std::size_t>(loss)] = true;
    }
    for (OpId o = graph_.num_ops() - 1; o >= 0; --o) {
      const Op& op = graph_.op(o);
      if (!op.differentiable) continue;
      const bool active = std::any_of(op.outputs.begin(), op.outputs.end(), [&](ValueId out) {
        return needs_grad_[static_cast<std::size_t>(out)];
      });
      if (!active) continue;
      op_active_[static_cast<std::size_t>(o)] = true;
      for (ValueId in : op.inputs) {
        if (requires_grad_[static_cast<std::size_t>(in)]) {
          needs_grad_[static_cast<std::size_t>(in)] = true;
        }
      }
    }
  }

  void add_forward_nodes() {
    saved_state_.assign(static_cast<std::size_t>(graph_.num_ops()), kNoId);
    for (OpId o = 0; o < graph_.num_ops(); ++o) {
      const Op& op = graph_.op(o);
      Node node;
      node.name = op.name;
      node.kind = op.kind;
      node.phase = NodePhase::kForward;
      node.time_us = op.fwd_time_us;
      node.workspace_bytes = op.fwd_workspace_bytes;
      for (ValueId in : op.inputs) push_unique(node.inputs, in);
      node.outputs = op.outputs;
      if (op.in_place) {
        for (ValueId out : op.outputs) {
          const ValueId target = graph_.value(out).alias_of;
          if (target != kNoId) push_unique(node.kills, target);
        }
      }
      node.side_effecting = op.side_effecting;
      node.random = op.random;
      node.source_id = o;
      if (op_active_[static_cast<std::size_t>(o)] && op.saved_other_bytes > 0) {
        TValue state;
        state.name = op.name + ".saved";
        state.bytes = op.saved_other_bytes;
        state.kind = TValueKind::kSavedState;
        state.producer = o;
        const auto id = static_cast<ValueId>(values_.size());
        values_.push_back(std::move(state));
        node.outputs.push_back(id);
        saved_state_[static_cast<std::size_t>(o)] = id;
      }
      nodes_.push_back(std::move(node));
    }
  }

  // The gradient value of forward value `v`, created on first use.
  ValueId gradient_of(ValueId v, TValueKind kind, std::int64_t bytes) {
    if (grad_of_[static_cast<std::size_t>(v)] != kNoId) return grad_of_[static_cast<std::size_t>(v)];
    TValue grad;
    grad.name = graph_.value(v).name + ".grad";
    grad.bytes = bytes;
    grad.kind = kind;
    grad.source_value = v;
    const auto id = static_cast<ValueId>(values_.size());
    values_.push_back(std::move(grad));
    grad_of_[static_cast<std::size_t>(v)] = id;
    return id;
  }

  ValueId existing_gradient(ValueId v) const { return grad_of_[static_cast<std::size_t>(v)]; }

  void add_backward_nodes() {
    grad_of_.assign(static_cast<std::size_t>(graph_.num_values()), kNoId);
    for (OpId o = graph_.num_ops() - 1; o >= 0; --o) {
      if (!op_active_[static_cast<std::size_t>(o)]) continue;
      const Op& op = graph_.op(o);
      const auto node_id = static_cast<NodeId>(nodes_.size());
      Node node;
      node.name = op.name + ".backward";
      node.kind = op.kind;
      node.phase = NodePhase::kBackward;
      node.time_us = op.bwd_time_us;
      node.workspace_bytes = op.bwd_workspace_bytes;
      node.source_id = o;
      for (ValueId out : op.outputs) {
        if (out == graph_.loss()) continue;
        const ValueId grad = existing_gradient(out);
        if (grad != kNoId) push_unique(node.inputs, grad);
      }
      for (ValueId saved : op.saved) push_unique(node.inputs, saved);
      if (saved_state_[static_cast<std::size_t>(o)] != kNoId) {
        push_unique(node.inputs, saved_state_[static_cast<std::size_t>(o)]);
      }
      for (ValueId in : op.inputs) {
        if (!needs_grad_[static_cast<std::size_t>(in)]) continue;
        const Value& input = graph_.value(in);
        if (input.kind == ValueKind::kParam) {
          push_unique(node.accumulates, gradient_of(in, TValueKind::kParamGradient, input.bytes));
          continue;
        }
        const ValueId existing = existing_gradient(in);
        if (existing != kNoId) {
          push_unique(node.accumulates, existing);
          continue;
        }
        const ValueId grad = gradient_of(in, TValueKind::kGradient, gradient_bytes(in));
        TValue& tgrad = values_[static_cast<std::size_t>(grad)];
        tgrad.producer = node_id;
        // A backward that takes no time passes its output's gradient through as a view of it
        // (views, reshapes, in-place adds): the input's gradient shares that storage.
        const ValueId passed = passthrough_gradient(op, in);
        if (passed != kNoId) {
          tgrad.alias_of = passed;
          tgrad.version = values_[static_cast<std::size_t>(passed)].version;
        }
        node.outputs.push_back(grad);
      }
      nodes_.push_back(std::move(node));
    }
  }

  std::int64_t gradient_bytes(ValueId v) const {
    const Value& value = graph_.value(v);
    if (value.bytes > 0 || value.alias_of == kNoId) return value.bytes;
    return graph_.value(graph_.storage_root(v)).bytes;
  }

  ValueId passthrough_gradient(const Op& op, ValueId input) const {
    if (op.bwd_time_us > 0 || op.outputs.size() != 1) return kNoId;
    const ValueId out = op.outputs.front();
    if (graph_.value(out).alias_of != input) return kNoId;
    return existing_gradient(out);
  }

  const Graph& graph_;
  std::vector<TValue> values_;
  std::vector<Node> nodes_;
  std::vector<bool> requires_grad_;
  std::vector<bool> needs_grad_;
  std::vector<bool> op_active_;
  std::vector<ValueId> saved_state_;
  std::vector<ValueId> grad_of_;  // forward value -> its gradient value, or kNoId
};

}  // namespace

TrainingGraph derive_training_graph(const Graph& graph) { return Deriver(graph).run(); }

}  // namespace ckpt
