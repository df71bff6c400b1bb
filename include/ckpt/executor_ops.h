// The built-in op kinds the CPU and CUDA backends implement, and the decoding of their shapes and
// attributes, shared by both backends and by the model builders so there is one convention
// (docs/executor.md lists each op's inputs, outputs, saved values and attributes).
#pragma once

#include <cstdint>
#include <string_view>

#include "ckpt/graph.h"

namespace ckpt::ops {

inline constexpr std::string_view kLinear = "linear";               // x W^T (+ b)
inline constexpr std::string_view kBmm = "bmm";                     // strided batched GEMM
inline constexpr std::string_view kAdd = "add";                     // a + b
inline constexpr std::string_view kGelu = "gelu";                   // tanh approximation
inline constexpr std::string_view kRelu = "relu";                   // may be in place
inline constexpr std::string_view kLayerNorm = "layernorm";         // over the last dimension
inline constexpr std::string_view kSoftmax = "softmax";             // last dim, "causal" mask
inline constexpr std::string_view kEmbedding = "embedding";         // table[ids] (+ positions)
inline constexpr std::string_view kCrossEntropy = "cross_entropy";  // mean over rows
inline constexpr std::string_view kDropout = "dropout";             // random, mask saved
inline constexpr std::string_view kView = "view";                   // reshape: no copy
inline constexpr std::string_view kTranspose = "transpose";         // last two dims: a copy

// One operand of a batched GEMM in row-major storage: element (r, c) of matrix (batch o, head i)
// of the stored (untransposed) matrix is at offset + o * batch_stride + i * head_stride +
// r * ld + c. With `trans` the logical operand is the stored matrix transposed.
struct MatrixOperand {
  std::int64_t offset = 0;
  std::int64_t ld = 0;
  std::int64_t batch_stride = 0;
  std::int64_t head_stride = 0;
  bool trans = false;
};

// C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) for every (batch, head): GPT-2's attention
// without copies (heads are strided slices of the fused qkv projection).
struct BmmLayout {
  std::int64_t batch = 1;
  std::int64_t heads = 1;
  std::int64_t m = 0, n = 0, k = 0;
  float alpha = 1;
  MatrixOperand a, b, c;
};

// Decodes a bmm op's attributes (docs/executor.md). Throws ckpt::Error (kValidation) naming the
// op and the attribute when one is missing or out of range for the operands' element counts.
BmmLayout bmm_layout(const Graph& graph, const Op& op);

// Rows and columns of a row-major tensor seen as a matrix over its last dimension.
struct RowsCols {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};
// The value's shape as rows x cols (a scalar is 1 x 1).
RowsCols rows_cols(const Value& value);

// Whether the operand's matrices tile a tensor of `elements` exactly, each element once (a dense
// layout, possibly with heads interleaved); when not, overwriting its gradient must first clear it.
bool covers(const MatrixOperand& operand, std::int64_t rows, std::int64_t cols, std::int64_t batch,
            std::int64_t heads, std::int64_t elements);

}  // namespace ckpt::ops
