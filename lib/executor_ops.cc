// Decoding of the built-in ops' shapes and attributes (ckpt/executor_ops.h), with errors that name
// the op and the attribute, so both backends and the model builders agree on one convention.
#include "ckpt/executor_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "ckpt/error.h"
#include "ckpt/executor.h"

namespace ckpt::ops {

namespace {

[[noreturn]] void fail(const Op& op, const std::string& what) {
  throw Error(ErrorKind::kValidation, fmt::format("op \"{}\" ({}): {}", op.name, op.kind, what));
}

std::int64_t integer_attribute(const Op& op, const std::string& name,
                               std::optional<std::int64_t> fallback) {
  const auto it = op.attributes.find(name);
  if (it == op.attributes.end()) {
    if (!fallback) fail(op, fmt::format("attribute \"{}\" is required", name));
    return *fallback;
  }
  const double value = it->second;
  if (!std::isfinite(value) || value != std::floor(value) || value < 0 || value > 9.0e15) {
    fail(op, fmt::format("attribute \"{}\" = {} must be a non-negative integer", name, value));
  }
  return static_cast<std::int64_t>(value);
}

MatrixOperand operand(const Op& op, const std::string& prefix, std::int64_t rows, std::int64_t cols,
                      std::int64_t heads, bool trans) {
  MatrixOperand result;
  result.trans = trans;
  result.offset = integer_attribute(op, prefix + "_offset", 0);
  result.ld = integer_attribute(op, prefix + "_ld", cols);
  result.head_stride = integer_attribute(op, prefix + "_head_stride", rows * result.ld);
  result.batch_stride = integer_attribute(op, prefix + "_batch_stride", heads * result.head_stride);
  if (result.ld < cols) {
    fail(op, fmt::format("{}_ld = {} is below the {} columns of its matrices", prefix, result.ld,
                         cols));
  }
  return result;
}

void check_fits(const Graph& graph, const Op& op, ValueId id, const MatrixOperand& m,
                std::int64_t rows, std::int64_t cols, std::int64_t batch, std::int64_t heads,
                const char* which) {
  const std::int64_t last = m.offset + (batch - 1) * m.batch_stride + (heads - 1) * m.head_stride +
                            (rows - 1) * m.ld + cols - 1;
  const std::int64_t elements = element_count(graph.value(id).shape);
  if (last >= elements) {
    fail(op, fmt::format("operand {} (\"{}\", {} elements) is addressed up to element {}", which,
                         graph.value(id).name, elements, last));
  }
}

}  // namespace

BmmLayout bmm_layout(const Graph& graph, const Op& op) {
  if (op.inputs.size() != 2 || op.outputs.size() != 1) {
    fail(op, "bmm takes two inputs (a, b) and has one output");
  }
  BmmLayout l;
  l.batch = integer_attribute(op, "batch", 1);
  l.heads = integer_attribute(op, "heads", 1);
  l.m = integer_attribute(op, "m", std::nullopt);
  l.n = integer_attribute(op, "n", std::nullopt);
  l.k = integer_attribute(op, "k", std::nullopt);
  const bool trans_a = integer_attribute(op, "trans_a", 0) != 0;
  const bool trans_b = integer_attribute(op, "trans_b", 0) != 0;
  const auto alpha = op.attributes.find("alpha");
  l.alpha = alpha == op.attributes.end() ? 1.0f : static_cast<float>(alpha->second);
  if (l.batch < 1 || l.heads < 1 || l.m < 1 || l.n < 1 || l.k < 1) {
    fail(op, "batch, heads, m, n and k must be at least 1");
  }
  const std::int64_t a_rows = trans_a ? l.k : l.m;
  const std::int64_t a_cols = trans_a ? l.m : l.k;
  const std::int64_t b_rows = trans_b ? l.n : l.k;
  const std::int64_t b_cols = trans_b ? l.k : l.n;
  l.a = operand(op, "a", a_rows, a_cols, l.heads, trans_a);
  l.b = operand(op, "b", b_rows, b_cols, l.heads, trans_b);
  l.c = operand(op, "c", l.m, l.n, l.heads, false);
  check_fits(graph, op, op.inputs[0], l.a, a_rows, a_cols, l.batch, l.heads, "a");
  check_fits(graph, op, op.inputs[1], l.b, b_rows, b_cols, l.batch, l.heads, "b");
  check_fits(graph, op, op.outputs[0], l.c, l.m, l.n, l.batch, l.heads, "c");
  if (!covers(l.c, l.m, l.n, l.batch, l.heads, element_count(graph.value(op.outputs[0]).shape))) {
    // The output is written with beta = 0: elements outside the matrices would stay undefined.
    fail(op, "the output's matrices must cover every element of the output");
  }
  return l;
}

RowsCols rows_cols(const Value& value) {
  RowsCols rc;
  rc.cols = value.shape.empty() ? 1 : value.shape.back();
  const std::int64_t elements = element_count(value.shape);
  rc.rows = rc.cols > 0 ? elements / rc.cols : 0;
  return rc;
}

bool covers(const MatrixOperand& operand, std::int64_t rows, std::int64_t cols, std::int64_t batch,
            std::int64_t heads, std::int64_t elements) {
  // The addresses tile [0, elements) exactly when the four dimensions, ordered by stride, form a
  // dense layout: each stride is the product of the extents below it (a permutation of row-major
  // order, like heads interleaved in the columns of a [batch, seq, heads * dim] tensor).
  if (operand.offset != 0) return false;
  std::array<std::pair<std::int64_t, std::int64_t>, 4> dims = {
      {{1, cols}, {operand.ld, rows}, {operand.head_stride, heads}, {operand.batch_stride, batch}}};
  std::sort(dims.begin(), dims.end());
  std::int64_t expected = 1;
  for (const auto& [stride, extent] : dims) {
    if (extent == 1) continue;
    if (stride != expected) return false;
    expected *= extent;
  }
  return expected == elements;
}

}  // namespace ckpt::ops
