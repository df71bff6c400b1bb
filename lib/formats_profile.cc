// Importer for "ckpt-profile/1", op-level PyTorch profiles of one training forward pass (see
// docs/format.md for the mapping). Tensors become values named "t<id>"; ops become ops named
// "<index>:<aten op>". A tensor an op both reads and writes (relu_, add_, lift_fresh) gets a fresh
// value per write ("t9.1", "t9.2", ...) aliasing the version before it, and later references to
// the tensor id resolve to its newest version. Members the IR has no place for are ignored.
#include "ckpt/formats.h"
// ^ This file's own header: it implements part of the formats API.

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <utility>

#include "formats_internal.h"

namespace ckpt {

namespace {

using internal::fail;
using internal::list_entry;
using internal::ObjectReader;

// What the importer knows of one tensor id while walking the ops.
struct Tensor {
  ValueId base = kNoId;     // the value of the tensor as listed in "tensors"
  ValueId current = kNoId;  // its newest version
  int writes = 0;           // in-place writes so far (the suffix of the newest version's name)
};

std::string lowercase(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Draws random numbers, so a recompute must replay the forward's seed.
bool is_random_op(std::string_view op_name) {
  const std::string name = lowercase(op_name);
  return contains(name, "dropout") || contains(name, "bernoulli") || contains(name, "rand");
}

// A training-mode batch norm updates its running statistics (input-kind buffers) as it runs.
bool updates_running_statistics(std::string_view op_name) {
  const std::string name = lowercase(op_name);
  return contains(name, "batch_norm") && !contains(name, "backward") &&
         !contains(name, "no_training") && !contains(name, "no_stats");
}

void check_time(const ObjectReader& reader, std::string_view field, double time_us) {
  if (std::isfinite(time_us) && time_us >= 0) return;
  reader.fail(
      ErrorKind::kValidation, field,
      fmt::format("time {} is negative or not finite; times are microseconds >= 0", time_us));
}

class ProfileReader {
 public:
  explicit ProfileReader(std::string_view source) : source_(source) {}

  Graph read(const nlohmann::json& document) {
    const ObjectReader top(document, source_, "");
    std::string name = top.optional_string("model").value_or(internal::file_stem(source_));
    const nlohmann::json& tensors = top.array("tensors");
    const nlohmann::json& ops = top.array("ops");
    for (std::size_t i = 0; i < tensors.size(); ++i) read_tensor(tensors[i], i);
    for (std::size_t i = 0; i < ops.size(); ++i) read_op(ops[i], i);
    return internal::build_forward_graph(std::move(name), std::move(values_), std::move(ops_),
                                         /*loss=*/std::nullopt, source_);
  }

 private:
  void read_tensor(const nlohmann::json& item, std::size_t index) {
    const ObjectReader reader(item, source_, list_entry("tensors", index, ""));
    const std::int64_t id = reader.integer("id");
    Value value;
    value.name = fmt::format("t{}", id);
    value.bytes = reader.integer("bytes");
    if (value.bytes < 0) {
      reader.fail(ErrorKind::kValidation, "bytes",
                  fmt::format("negative size {}; sizes are byte counts >= 0", value.bytes));
    }
    const std::string kind = reader.string("kind");
    const std::optional<ValueKind> parsed_kind = value_kind_from_string(kind);
    if (!parsed_kind) {
      reader.fail(ErrorKind::kParse, "kind",
                  fmt::format("unknown kind \"{}\"; expected \"input\", \"param\" or "
                              "\"activation\"",
                              kind));
    }
    value.kind = *parsed_kind;
    if (reader.has("shape")) value.shape = reader.integers("shape");
    value.dtype = reader.optional_string("dtype").value_or("");
    // Activations all say false in these files: only a parameter's flag means something.
    if (value.kind == ValueKind::kParam)
      value.requires_grad = reader.boolean("requires_grad", true);

    const auto id_value = static_cast<ValueId>(values_.size());
    const auto [it, inserted] = tensors_.emplace(id, Tensor{id_value, id_value, 0});
    if (!inserted) {
      reader.fail(
          ErrorKind::kValidation, "id",
          fmt::format("duplicate tensor id {}, also used by tensors[{}]; tensor ids must be "
                      "unique",
                      id, it->second.base));
    }
    values_.push_back(std::move(value));
  }

  Tensor& tensor(const ObjectReader& reader, std::string_view field, std::int64_t id) {
    const auto it = tensors_.find(id);
    if (it != tensors_.end()) return it->second;
    reader.fail(ErrorKind::kValidation, field,
                fmt::format("unknown tensor id {}; every entry must be the id of an entry in "
                            "\"tensors\"",
                            id));
  }

  // The value an in-place write of `tensor` creates: a new version aliasing the current one.
  ValueId new_version(Tensor& tensor) {
    const Value& base = values_[static_cast<std::size_t>(tensor.base)];
    Value version = base;
    version.name = fmt::format("{}.{}", base.name, ++tensor.writes);
    version.kind = ValueKind::kActivation;
    version.alias_of = tensor.current;
    version.requires_grad = true;
    values_.push_back(std::move(version));
    tensor.current = static_cast<ValueId>(values_.size() - 1);
    return tensor.current;
  }

  // Positions into the op's inputs or outputs, turned into value ids.
  void add_saved(const ObjectReader& reader, std::string_view field,
                 const std::vector<ValueId>& ids, std::string_view list, Op& op) const {
    for (std::int64_t position : reader.integers(field)) {
      if (position < 0 || static_cast<std::size_t>(position) >= ids.size()) {
        reader.fail(ErrorKind::kValidation, field,
                    fmt::format("position {} is out of range: the op has {} {}; positions index "
                                "the op's \"{}\" from 0",
                                position, ids.size(), list, list));
      }
      const ValueId id = ids[static_cast<std::size_t>(position)];
      if (std::find(op.saved.begin(), op.saved.end(), id) == op.saved.end()) op.saved.push_back(id);
    }
  }

  void read_op(const nlohmann::json& item, std::size_t index) {
    const ObjectReader unnamed(item, source_, list_entry("ops", index, ""));
    const std::string op_name = unnamed.string("op");
    const ObjectReader reader(item, source_, list_entry("ops", index, op_name));
    const std::vector<std::int64_t> input_ids = reader.integers("inputs");
    const std::vector<std::int64_t> output_ids = reader.integers("outputs");
    const std::vector<bool> alias = reader.booleans("alias");
    if (alias.size() != output_ids.size()) {
      reader.fail(ErrorKind::kValidation, "alias",
                  fmt::format("has {} entries for {} outputs; give one flag per output",
                              alias.size(), output_ids.size()));
    }

    Op op;
    op.name = fmt::format("{}:{}", index, op_name);
    op.kind = op_name;
    op.fwd_time_us = reader.number("fwd_us");
    check_time(reader, "fwd_us", op.fwd_time_us);
    op.bwd_time_us = reader.number("bwd_us");
    check_time(reader, "bwd_us", op.bwd_time_us);
    op.saved_other_bytes = reader.integer("saved_other_bytes");
    if (op.saved_other_bytes < 0) {
      reader.fail(
          ErrorKind::kValidation, "saved_other_bytes",
          fmt::format("negative size {}; sizes are byte counts >= 0", op.saved_other_bytes));
    }
    // The profiler measured a backward only where gradients flow through the op.
    op.differentiable = reader.has("bwd_wall_us");
    op.random = is_random_op(op_name);
    op.side_effecting = updates_running_statistics(op_name);

    // Inputs resolve to the versions before the op; in-place outputs then create new ones.
    for (std::int64_t id : input_ids) op.inputs.push_back(tensor(reader, "inputs", id).current);
    for (std::size_t k = 0; k < output_ids.size(); ++k) {
      Tensor& written = tensor(reader, "outputs", output_ids[k]);
      const bool in_place =
          std::find(input_ids.begin(), input_ids.end(), output_ids[k]) != input_ids.end();
      if (in_place) {
        op.outputs.push_back(new_version(written));
        op.in_place = true;
        // Mutating a buffer (BatchNorm's num_batches_tracked += 1) is a side effect; lift_fresh
        // also lists its input as output but writes nothing (its alias flag is false).
        const bool buffer =
            values_[static_cast<std::size_t>(written.base)].kind == ValueKind::kInput;
        if (alias[k] && buffer) op.side_effecting = true;
        continue;
      }
      op.outputs.push_back(written.current);
      if (!alias[k]) continue;
      if (op.inputs.empty()) {
        reader.fail(ErrorKind::kValidation, "alias",
                    fmt::format("output {} is marked as a view but the op has no inputs to view; "
                                "set its alias flag to false",
                                k));
      }
      // A view shares the storage of the op's first input (split's outputs all view input 0).
      values_[static_cast<std::size_t>(written.current)].alias_of = op.inputs.front();
    }
    add_saved(reader, "saved_inputs", op.inputs, "inputs", op);
    add_saved(reader, "saved_outputs", op.outputs, "outputs", op);
    ops_.push_back(std::move(op));
  }

  std::string_view source_;
  std::vector<Value> values_;
  std::vector<Op> ops_;
  std::map<std::int64_t, Tensor> tensors_;  // by tensor id
};

}  // namespace

namespace internal {

LoadedGraph read_profile(const nlohmann::json& document, std::string_view source) {
  LoadedGraph loaded;
  loaded.format = GraphFormat::kProfile;
  loaded.forward = ProfileReader(source).read(document);
  loaded.training = derive_training_graph(*loaded.forward);
  return loaded;
}

}  // namespace internal

}  // namespace ckpt
