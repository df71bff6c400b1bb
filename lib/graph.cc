// The forward-graph IR: value-kind names, alias resolution, and GraphBuilder, which collects values
// and ops through the API and hands out a Graph only once validate_graph accepts it.
#include "ckpt/graph.h"

#include <array>
#include <utility>

#include "formats_internal.h"

namespace ckpt {

namespace {

constexpr std::array<std::pair<ValueKind, std::string_view>, 3> kValueKindNames = {{
    {ValueKind::kInput, "input"},
    {ValueKind::kParam, "param"},
    {ValueKind::kActivation, "activation"},
}};

}  // namespace

std::string_view to_string(ValueKind kind) {
  for (const auto& [known, name] : kValueKindNames) {
    if (known == kind) return name;
  }
  return "unknown";
}

std::optional<ValueKind> value_kind_from_string(std::string_view text) {
  for (const auto& [kind, name] : kValueKindNames) {
    if (name == text) return kind;
  }
  return std::nullopt;
}

ValueId Graph::storage_root(ValueId id) const {
  // Validation guarantees alias chains end (each alias points at an input of its producer, which
  // comes earlier); the bound only keeps a hand-made Graph from looping.
  ValueId root = id;
  for (int hops = 0; hops <= num_values(); ++hops) {
    const ValueId next = value(root).alias_of;
    if (next == kNoId) return root;
    root = next;
  }
  return root;
}

GraphBuilder::GraphBuilder(std::string graph_name) { graph_.name_ = std::move(graph_name); }

ValueId GraphBuilder::add_input(std::string name, std::int64_t bytes) {
  Value value;
  value.name = std::move(name);
  value.bytes = bytes;
  value.kind = ValueKind::kInput;
  return add_value(std::move(value));
}

ValueId GraphBuilder::add_param(std::string name, std::int64_t bytes, bool requires_grad) {
  Value value;
  value.name = std::move(name);
  value.bytes = bytes;
  value.kind = ValueKind::kParam;
  value.requires_grad = requires_grad;
  return add_value(std::move(value));
}

ValueId GraphBuilder::add_value(Value value) {
  graph_.values_.push_back(std::move(value));
  return static_cast<ValueId>(graph_.values_.size() - 1);
}

OpId GraphBuilder::add_op(Op op) {
  graph_.ops_.push_back(std::move(op));
  return static_cast<OpId>(graph_.ops_.size() - 1);
}

ValueId GraphBuilder::add_simple_op(std::string name, std::string kind, std::vector<ValueId> inputs,
                                    std::int64_t output_bytes, double fwd_time_us,
                                    double bwd_time_us, std::vector<ValueId> saved) {
  // Values and ops have separate name spaces: the output takes the op's name.
  Value value;
  value.name = name;
  value.bytes = output_bytes;
  const ValueId output = add_value(std::move(value));
  for (ValueId& id : saved) {
    if (id == kNoId) id = output;
  }
  Op op;
  op.name = std::move(name);
  op.kind = std::move(kind);
  op.inputs = std::move(inputs);
  op.outputs = {output};
  op.fwd_time_us = fwd_time_us;
  op.bwd_time_us = bwd_time_us;
  op.saved = std::move(saved);
  add_op(std::move(op));
  return output;
}

void GraphBuilder::set_loss(ValueId loss) {
  graph_.loss_ = loss;
  loss_set_ = true;
}

Graph GraphBuilder::build() && {
  if (!loss_set_) graph_.loss_ = internal::default_loss(graph_.ops_);
  validate_graph(graph_, "<api>");
  // Valid ids from here on: every value has at most one producer.
  graph_.producer_.assign(graph_.values_.size(), kNoId);
  for (std::size_t o = 0; o < graph_.ops_.size(); ++o) {
    for (ValueId out : graph_.ops_[o].outputs) {
      graph_.producer_[static_cast<std::size_t>(out)] = static_cast<OpId>(o);
    }
  }
  return std::move(graph_);
}

}  // namespace ckpt
