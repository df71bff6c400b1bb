// Forward-graph IR: the values (tensors) and ops of one training forward pass, with what each op's
// backward costs and saves. Framework authors build it with GraphBuilder or load it from a file
// (ckpt/formats.h); derive_training_graph() (ckpt/training_graph.h) turns it into the joint
// forward + backward graph that planners and the simulator work on.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt {

// Ids are positions in Graph::values() and Graph::ops(); kNoId means none.
using ValueId = std::int32_t;
using OpId = std::int32_t;
inline constexpr std::int32_t kNoId = -1;

// Where a value's storage comes from. Inputs and params are resident for the whole step and are not
// charged to the budget; activations are what checkpointing trades against compute.
enum class ValueKind : std::uint8_t {
  kInput,       // graph input or buffer (token ids, images, BatchNorm running statistics)
  kParam,       // trainable parameter; its gradient is resident too
  kActivation,  // produced by an op
};

// The file format's names of value kinds ("input", "param", "activation") and back.
std::string_view to_string(ValueKind kind);
std::optional<ValueKind> value_kind_from_string(std::string_view text);

// A tensor of the forward pass; docs/format.md describes each field.
struct Value {
  std::string name;
  std::int64_t bytes = 0;  // bytes of its own storage; 0 contributes nothing (aliases ignore it)
  ValueKind kind = ValueKind::kActivation;
  std::vector<std::int64_t> shape;  // optional, informative
  std::string dtype;                // optional, informative ("float32")
  // Views and in-place results share the storage of the value they alias and take no new memory.
  ValueId alias_of = kNoId;
  // Only meaningful for params: whether the parameter is trained (gets a gradient).
  bool requires_grad = true;
};

// One forward computation and what its backward costs and keeps.
struct Op {
  std::string name;
  std::string kind;  // free-form, e.g. "matmul", "aten.addmm.default"
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  double fwd_time_us = 0;
  double bwd_time_us = 0;
  std::int64_t fwd_workspace_bytes = 0;  // scratch live only while the forward runs
  std::int64_t bwd_workspace_bytes = 0;  // scratch live only while the backward runs
  // Inputs and outputs (value ids, each one of this op's inputs or outputs) its backward reads.
  std::vector<ValueId> saved;
  // Bytes of other state the backward keeps (a dropout mask, softmax statistics), made by the
  // forward and freed by the backward.
  std::int64_t saved_other_bytes = 0;
  // Effects beyond the outputs (a BatchNorm running-statistics update): never recomputed.
  bool side_effecting = false;
  // Draws random numbers (dropout): a recompute must replay the forward's seed.
  bool random = false;
  // Each output that aliases an input takes over that input's storage; the input is dead after it.
  bool in_place = false;
  // False when gradients do not flow through the op (detach, integer arithmetic).
  bool differentiable = true;
  // Numeric parameters an executor's kernel needs beyond the shapes (dropout "p", layernorm
  // "eps", "causal"); planners ignore them. Sorted by name, so output stays deterministic.
  std::map<std::string, double> attributes;
};

// A forward graph. Ops are stored in a valid execution (topological) order; ids are indices.
class Graph {
 public:
  Graph() = default;

  // The graph's name, values and ops; ids index the lists.
  const std::string& name() const { return name_; }
  const std::vector<Value>& values() const { return values_; }
  const std::vector<Op>& ops() const { return ops_; }
  const Value& value(ValueId id) const { return values_.at(static_cast<std::size_t>(id)); }
  const Op& op(OpId id) const { return ops_.at(static_cast<std::size_t>(id)); }
  // Sizes of the value and op lists.
  int num_values() const { return static_cast<int>(values_.size()); }
  int num_ops() const { return static_cast<int>(ops_.size()); }
  // The scalar whose gradient seeds the backward pass.
  ValueId loss() const { return loss_; }
  // The op that produces `id`, or kNoId for inputs and params.
  OpId producer(ValueId id) const { return producer_.at(static_cast<std::size_t>(id)); }
  // Follows alias_of to the value that owns the storage.
  ValueId storage_root(ValueId id) const;

 private:
  friend class GraphBuilder;
  std::string name_;
  std::vector<Value> values_;
  std::vector<Op> ops_;
  std::vector<OpId> producer_;
  ValueId loss_ = kNoId;
};

// Builds a Graph through the API; build() validates it (see validate_graph) and throws
// ckpt::Error on a malformed graph.
class GraphBuilder {
 public:
  explicit GraphBuilder(std::string graph_name);

  // Adds a resident graph input (or buffer) of `bytes`; returns its id.
  ValueId add_input(std::string name, std::int64_t bytes);
  // Adds a resident parameter; requires_grad = false freezes it (it gets no gradient).
  ValueId add_param(std::string name, std::int64_t bytes, bool requires_grad = true);
  // Adds a value with every field given; ops reference it by id.
  ValueId add_value(Value value);
  // Adds an op whose inputs and outputs already exist as values. Returns its id.
  OpId add_op(Op op);
  // Convenience: adds an op producing one new activation of `output_bytes`; returns that value.
  // The backward saves `saved` (ids among the inputs, or kNoId for the new output).
  ValueId add_simple_op(std::string name, std::string kind, std::vector<ValueId> inputs,
                        std::int64_t output_bytes, double fwd_time_us, double bwd_time_us,
                        std::vector<ValueId> saved = {});
  // The loss value; defaults to the last op's first output.
  void set_loss(ValueId loss);

  // Validates and returns the graph; throws ckpt::Error naming "<api>", the op and the field.
  Graph build() &&;

 private:
  Graph graph_;
  bool loss_set_ = false;
};

// Checks a graph: ids in range, every value produced at most once and only after its inputs,
// sizes and times finite and non-negative, saved values among the op's inputs and outputs, aliases
// pointing at an input of the producing op, a non-empty graph and a loss. Throws ckpt::Error naming
// `source` (a file name or "<api>"), the field and the op.
void validate_graph(const Graph& graph, std::string_view source);

}  // namespace ckpt
