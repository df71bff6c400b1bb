// The built-in ops on CUDA: GEMMs through cuBLAS (row-major operands passed as their column-major
// transposes), everything else through the launchers of lib/cuda/cuda_kernels.cu. Shapes and
// attributes are decoded exactly as the CPU backend does (ckpt/executor_ops.h); scratch comes from
// the workspace the executor hands in, whose size the registered queries declare.
#include "cuda_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "ckpt/executor.h"
#include "ckpt/executor_ops.h"
#include "ckpt/kernel_random.h"
#include "cuda_kernels.cuh"

namespace ckpt::cuda {

void check(cudaError_t status, std::string_view what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky-free error so later calls report their own
  const auto reason = status == cudaErrorMemoryAllocation ? DeviceError::Reason::kOutOfMemory
                                                          : DeviceError::Reason::kFailure;
  throw DeviceError(reason, fmt::format("CUDA error in {}: {} ({})", what,
                                        cudaGetErrorString(status), cudaGetErrorName(status)));
}

void check(cublasStatus_t status, std::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const auto reason = status == CUBLAS_STATUS_ALLOC_FAILED ? DeviceError::Reason::kOutOfMemory
                                                           : DeviceError::Reason::kFailure;
  throw DeviceError(reason,
                    fmt::format("cuBLAS error in {}: {} ({})", what, cublasGetStatusString(status),
                                cublasGetStatusName(status)));
}

namespace {

using ops::BmmLayout;
using ops::MatrixOperand;

const float* in(const KernelContext& ctx, std::size_t i) {
  return static_cast<const float*>(ctx.inputs.at(i));
}
const std::int32_t* int_in(const KernelContext& ctx, std::size_t i) {
  return static_cast<const std::int32_t*>(ctx.inputs.at(i));
}
float* out(const KernelContext& ctx, std::size_t j) {
  return static_cast<float*>(ctx.outputs.at(j));
}
std::int64_t numel(const Value& value) { return element_count(value.shape); }
const std::string& name(const KernelContext& ctx) { return ctx.op->name; }

// A row-major operand: `count` matrices `stride` elements apart.
struct Mat {
  const float* data;
  std::int64_t ld;
  bool trans;
  std::int64_t stride = 0;
};

int as_int(std::int64_t value, const KernelContext& ctx) {
  if (value > std::numeric_limits<int>::max()) {
    throw DeviceError(
        DeviceError::Reason::kFailure,
        fmt::format("op \"{}\": GEMM size {} exceeds cuBLAS's 32-bit sizes", name(ctx), value));
  }
  return static_cast<int>(value);
}

// Row-major C (m x n) = alpha op(A) op(B) + beta C, `count` times. cuBLAS is column-major: a
// row-major matrix is its column-major transpose, so this computes C^T = op(B)^T op(A)^T.
void gemm(const Context& cx, const KernelContext& ctx, std::int64_t m, std::int64_t n,
          std::int64_t k, float alpha, Mat a, Mat b, float beta, float* c, std::int64_t ldc,
          std::int64_t c_stride = 0, std::int64_t count = 1) {
  const cublasOperation_t op_b = b.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = a.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (count == 1) {
    check(cublasSgemm(cx.cublas, op_b, op_a, as_int(n, ctx), as_int(m, ctx), as_int(k, ctx), &alpha,
                      b.data, as_int(b.ld, ctx), a.data, as_int(a.ld, ctx), &beta, c,
                      as_int(ldc, ctx)),
          name(ctx));
    return;
  }
  check(cublasSgemmStridedBatched(cx.cublas, op_b, op_a, as_int(n, ctx), as_int(m, ctx),
                                  as_int(k, ctx), &alpha, b.data, as_int(b.ld, ctx), b.stride,
                                  a.data, as_int(a.ld, ctx), a.stride, &beta, c, as_int(ldc, ctx),
                                  c_stride, as_int(count, ctx)),
        name(ctx));
}

// ---------------------------------------------------------------------------------------------
// linear

void linear_forward(const Context& cx, const KernelContext& ctx) {
  const auto [rows, in_features] = ops::rows_cols(ctx.input_value(0));
  const std::int64_t out_features = ctx.input_value(1).shape.at(0);
  float* y = out(ctx, 0);
  gemm(cx, ctx, rows, out_features, in_features, 1, {in(ctx, 0), in_features, false},
       {in(ctx, 1), in_features, true}, 0, y, out_features);
  if (ctx.inputs.size() > 2) {
    check(add_bias(y, in(ctx, 2), rows, out_features, cx.stream), name(ctx));
  }
}

void linear_backward(const Context& cx, const KernelContext& ctx) {
  const auto [rows, in_features] = ops::rows_cols(ctx.input_value(0));
  const std::int64_t out_features = ctx.input_value(1).shape.at(0);
  const float* dy = ctx.grad_outputs.at(0);
  if (float* dx = ctx.grad_inputs[0]) {
    gemm(cx, ctx, rows, in_features, out_features, 1, {dy, out_features, false},
         {in(ctx, 1), in_features, false}, ctx.accumulate[0] ? 1.0f : 0.0f, dx, in_features);
  }
  if (float* dw = ctx.grad_inputs[1]) {
    gemm(cx, ctx, out_features, in_features, rows, 1, {dy, out_features, true},
         {in(ctx, 0), in_features, false}, ctx.accumulate[1] ? 1.0f : 0.0f, dw, in_features);
  }
  if (ctx.grad_inputs.size() > 2 && ctx.grad_inputs[2] != nullptr) {
    check(column_sum(dy, rows, out_features, static_cast<float*>(ctx.workspace), ctx.grad_inputs[2],
                     ctx.accumulate[2], cx.stream),
          name(ctx));
  }
}

std::int64_t linear_backward_workspace(const Graph& graph, const Op& op) {
  if (op.inputs.size() < 3) return 0;
  const std::int64_t rows = ops::rows_cols(graph.value(op.inputs[0])).rows;
  const std::int64_t out_features = graph.value(op.inputs[1]).shape.at(0);
  return column_chunks(rows) * out_features * static_cast<std::int64_t>(sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// bmm: one strided-batched GEMM over the heads per batch entry

const float* at(const float* base, const MatrixOperand& m, std::int64_t o) {
  return base + m.offset + o * m.batch_stride;
}
float* at(float* base, const MatrixOperand& m, std::int64_t o) {
  return base + m.offset + o * m.batch_stride;
}

void bmm_forward(const Context& cx, const KernelContext& ctx) {
  const BmmLayout l = ops::bmm_layout(*ctx.graph, *ctx.op);
  for (std::int64_t o = 0; o < l.batch; ++o) {
    gemm(cx, ctx, l.m, l.n, l.k, l.alpha,
         {at(in(ctx, 0), l.a, o), l.a.ld, l.a.trans, l.a.head_stride},
         {at(in(ctx, 1), l.b, o), l.b.ld, l.b.trans, l.b.head_stride}, 0, at(out(ctx, 0), l.c, o),
         l.c.ld, l.c.head_stride, l.heads);
  }
}

// The beta a gradient is written with; a gradient the matrices do not cover is cleared first.
float gradient_beta(const Context& cx, const KernelContext& ctx, std::size_t input, float* g,
                    const MatrixOperand& m, std::int64_t rows, std::int64_t cols,
                    const BmmLayout& l) {
  if (ctx.accumulate[input]) return 1;
  const std::int64_t elements = numel(ctx.input_value(input));
  if (ops::covers(m, rows, cols, l.batch, l.heads, elements)) return 0;
  check(cudaMemsetAsync(g, 0, static_cast<std::size_t>(elements) * sizeof(float), cx.stream),
        name(ctx));
  return 1;
}

void bmm_backward(const Context& cx, const KernelContext& ctx) {
  const BmmLayout l = ops::bmm_layout(*ctx.graph, *ctx.op);
  const float* dc = ctx.grad_outputs.at(0);
  if (float* da = ctx.grad_inputs[0]) {
    const float beta =
        gradient_beta(cx, ctx, 0, da, l.a, l.a.trans ? l.k : l.m, l.a.trans ? l.m : l.k, l);
    for (std::int64_t o = 0; o < l.batch; ++o) {
      const Mat dcm{at(dc, l.c, o), l.c.ld, false, l.c.head_stride};
      const Mat bm{at(in(ctx, 1), l.b, o), l.b.ld, l.b.trans, l.b.head_stride};
      if (!l.a.trans) {  // dA = dC op(B)^T
        gemm(cx, ctx, l.m, l.k, l.n, l.alpha, dcm, {bm.data, bm.ld, !l.b.trans, bm.stride}, beta,
             at(da, l.a, o), l.a.ld, l.a.head_stride, l.heads);
      } else {  // stored A is k x m: dA^T = op(B) dC^T
        gemm(cx, ctx, l.k, l.m, l.n, l.alpha, bm, {dcm.data, dcm.ld, true, dcm.stride}, beta,
             at(da, l.a, o), l.a.ld, l.a.head_stride, l.heads);
      }
    }
  }
  if (float* db = ctx.grad_inputs[1]) {
    const float beta =
        gradient_beta(cx, ctx, 1, db, l.b, l.b.trans ? l.n : l.k, l.b.trans ? l.k : l.n, l);
    for (std::int64_t o = 0; o < l.batch; ++o) {
      const Mat dcm{at(dc, l.c, o), l.c.ld, false, l.c.head_stride};
      const Mat am{at(in(ctx, 0), l.a, o), l.a.ld, l.a.trans, l.a.head_stride};
      if (!l.b.trans) {  // dB = op(A)^T dC
        gemm(cx, ctx, l.k, l.n, l.m, l.alpha, {am.data, am.ld, !l.a.trans, am.stride}, dcm, beta,
             at(db, l.b, o), l.b.ld, l.b.head_stride, l.heads);
      } else {  // stored B is n x k: dB^T = dC^T op(A)
        gemm(cx, ctx, l.n, l.k, l.m, l.alpha, {dcm.data, dcm.ld, true, dcm.stride}, am, beta,
             at(db, l.b, o), l.b.ld, l.b.head_stride, l.heads);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise

void add_forward(const Context& cx, const KernelContext& ctx) {
  check(add(in(ctx, 0), in(ctx, 1), out(ctx, 0), numel(ctx.output_value(0)), cx.stream), name(ctx));
}

// g (+)= dy for each input gradient, skipping one that is dy itself (passed through).
void pass_gradient(const Context& cx, const KernelContext& ctx, std::size_t inputs) {
  const float* dy = ctx.grad_outputs.at(0);
  for (std::size_t i = 0; i < inputs; ++i) {
    float* g = ctx.grad_inputs[i];
    if (g == nullptr || (g == dy && !ctx.accumulate[i])) continue;
    check(copy_gradient(dy, g, numel(ctx.output_value(0)), ctx.accumulate[i], cx.stream),
          name(ctx));
  }
}

void gelu_forward_op(const Context& cx, const KernelContext& ctx) {
  check(gelu_forward(in(ctx, 0), out(ctx, 0), numel(ctx.output_value(0)), cx.stream), name(ctx));
}
void gelu_backward_op(const Context& cx, const KernelContext& ctx) {
  if (ctx.grad_inputs[0] == nullptr) return;
  check(gelu_backward(in(ctx, 0), ctx.grad_outputs.at(0), ctx.grad_inputs[0],
                      numel(ctx.output_value(0)), ctx.accumulate[0], cx.stream),
        name(ctx));
}
void relu_forward_op(const Context& cx, const KernelContext& ctx) {
  check(relu_forward(in(ctx, 0), out(ctx, 0), numel(ctx.output_value(0)), cx.stream), name(ctx));
}
void relu_backward_op(const Context& cx, const KernelContext& ctx) {
  if (ctx.grad_inputs[0] == nullptr) return;
  check(relu_backward(out(ctx, 0), ctx.grad_outputs.at(0), ctx.grad_inputs[0],
                      numel(ctx.output_value(0)), ctx.accumulate[0], cx.stream),
        name(ctx));
}

float dropout_scale(double p) { return p < 1 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f; }

void dropout_forward_op(const Context& cx, const KernelContext& ctx) {
  const double p = ctx.attribute("p", 0.0);
  check(dropout_forward(in(ctx, 0), out(ctx, 0), static_cast<std::uint8_t*>(ctx.saved_state),
                        numel(ctx.output_value(0)), ctx.seed, dropout_threshold(p),
                        dropout_scale(p), cx.stream),
        name(ctx));
}
void dropout_backward_op(const Context& cx, const KernelContext& ctx) {
  if (ctx.grad_inputs[0] == nullptr) return;
  check(dropout_backward(static_cast<const std::uint8_t*>(ctx.saved_state), ctx.grad_outputs.at(0),
                         ctx.grad_inputs[0], numel(ctx.output_value(0)),
                         dropout_scale(ctx.attribute("p", 0.0)), ctx.accumulate[0], cx.stream),
        name(ctx));
}

// ---------------------------------------------------------------------------------------------
// layernorm, softmax

void layernorm_forward_op(const Context& cx, const KernelContext& ctx) {
  const auto [rows, cols] = ops::rows_cols(ctx.input_value(0));
  auto* stats = static_cast<float*>(ctx.saved_state);
  check(layernorm_forward(in(ctx, 0), in(ctx, 1), in(ctx, 2), out(ctx, 0), stats,
                          stats != nullptr ? stats + rows : nullptr, rows, cols,
                          static_cast<float>(ctx.attribute("eps", 1e-5)), cx.stream),
        name(ctx));
}

void layernorm_backward_op(const Context& cx, const KernelContext& ctx) {
  const auto [rows, cols] = ops::rows_cols(ctx.input_value(0));
  const auto* stats = static_cast<const float*>(ctx.saved_state);
  check(layernorm_backward(in(ctx, 0), in(ctx, 1), ctx.grad_outputs.at(0), stats, stats + rows,
                           ctx.grad_inputs[0], ctx.accumulate[0], ctx.grad_inputs[1],
                           ctx.accumulate[1], ctx.grad_inputs[2], ctx.accumulate[2],
                           static_cast<float*>(ctx.workspace), rows, cols, cx.stream),
        name(ctx));
}

std::int64_t layernorm_backward_workspace(const Graph& graph, const Op& op) {
  const auto [rows, cols] = ops::rows_cols(graph.value(op.inputs[0]));
  return 2 * column_chunks(rows) * cols * static_cast<std::int64_t>(sizeof(float));
}

void softmax_forward_op(const Context& cx, const KernelContext& ctx) {
  const Value& x = ctx.input_value(0);
  const auto [rows, cols] = ops::rows_cols(x);
  const std::int64_t queries = x.shape.size() >= 2 ? x.shape[x.shape.size() - 2] : 1;
  check(softmax_forward(in(ctx, 0), out(ctx, 0), rows, cols, queries,
                        ctx.attribute("causal", 0) != 0, cx.stream),
        name(ctx));
}

void softmax_backward_op(const Context& cx, const KernelContext& ctx) {
  if (ctx.grad_inputs[0] == nullptr) return;
  const auto [rows, cols] = ops::rows_cols(ctx.input_value(0));
  check(softmax_backward(out(ctx, 0), ctx.grad_outputs.at(0), ctx.grad_inputs[0], rows, cols,
                         ctx.accumulate[0], cx.stream),
        name(ctx));
}

// ---------------------------------------------------------------------------------------------
// embedding, cross_entropy

void embedding_forward_op(const Context& cx, const KernelContext& ctx) {
  const Value& ids = ctx.input_value(0);
  const Value& table = ctx.input_value(1);
  check(embedding_forward(int_in(ctx, 0), in(ctx, 1), ctx.inputs.size() > 2 ? in(ctx, 2) : nullptr,
                          out(ctx, 0), numel(ids), ids.shape.back(), table.shape.at(1),
                          table.shape.at(0), cx.stream),
        name(ctx));
}

void embedding_backward_op(const Context& cx, const KernelContext& ctx) {
  const Value& ids = ctx.input_value(0);
  const Value& table = ctx.input_value(1);
  const bool positions = ctx.grad_inputs.size() > 2 && ctx.grad_inputs[2] != nullptr;
  check(
      embedding_backward(int_in(ctx, 0), ctx.grad_outputs.at(0), ctx.grad_inputs[1],
                         ctx.accumulate[1], positions ? ctx.grad_inputs[2] : nullptr,
                         positions && ctx.accumulate[2], static_cast<std::int32_t*>(ctx.workspace),
                         numel(ids), ids.shape.back(), table.shape.at(1), table.shape.at(0),
                         positions ? ctx.input_value(2).shape.at(0) : 0, cx.stream),
      name(ctx));
}

std::int64_t embedding_backward_workspace(const Graph& graph, const Op& op) {
  return numel(graph.value(op.inputs[0])) * static_cast<std::int64_t>(sizeof(std::int32_t));
}

void cross_entropy_forward_op(const Context& cx, const KernelContext& ctx) {
  const auto [rows, vocab] = ops::rows_cols(ctx.input_value(0));
  check(cross_entropy_forward(in(ctx, 0), int_in(ctx, 1), static_cast<float*>(ctx.saved_state),
                              static_cast<float*>(ctx.workspace), out(ctx, 0), rows, vocab,
                              cx.stream),
        name(ctx));
}

void cross_entropy_backward_op(const Context& cx, const KernelContext& ctx) {
  if (ctx.grad_inputs[0] == nullptr) return;
  const auto [rows, vocab] = ops::rows_cols(ctx.input_value(0));
  const float* dloss = ctx.loss_output == 0 ? nullptr : ctx.grad_outputs.at(0);
  check(
      cross_entropy_backward(in(ctx, 0), int_in(ctx, 1), static_cast<const float*>(ctx.saved_state),
                             dloss, ctx.grad_inputs[0], rows, vocab, ctx.accumulate[0], cx.stream),
      name(ctx));
}

std::int64_t cross_entropy_forward_workspace(const Graph& graph, const Op& op) {
  return ops::rows_cols(graph.value(op.inputs[0])).rows * static_cast<std::int64_t>(sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// view, transpose

void view_forward(const Context& cx, const KernelContext& ctx) {
  if (ctx.outputs[0] == ctx.inputs[0]) return;  // an alias: no copy
  check(cudaMemcpyAsync(ctx.outputs[0], ctx.inputs[0],
                        static_cast<std::size_t>(ctx.output_value(0).bytes),
                        cudaMemcpyDeviceToDevice, cx.stream),
        name(ctx));
}

void transpose_op(const Context& cx, const KernelContext& ctx, bool backward) {
  const Value& x = ctx.input_value(0);
  const std::int64_t cols = x.shape.back();
  const std::int64_t rows = x.shape.size() >= 2 ? x.shape[x.shape.size() - 2] : 1;
  const std::int64_t batch = numel(x) / (rows * cols);
  if (backward) {
    if (ctx.grad_inputs[0] == nullptr) return;
    check(transpose(ctx.grad_outputs.at(0), ctx.grad_inputs[0], batch, rows, cols, true,
                    ctx.accumulate[0], cx.stream),
          name(ctx));
    return;
  }
  check(transpose(in(ctx, 0), out(ctx, 0), batch, rows, cols, false, false, cx.stream), name(ctx));
}

// Binds a (context, kernel context) function to the context.
template <typename F>
Kernel bind(const Context& cx, F f) {
  return [&cx, f](const KernelContext& ctx) { f(cx, ctx); };
}

}  // namespace

void register_kernels(KernelRegistry& registry, const Context& cx) {
  auto add_op = [&](std::string_view kind, auto forward, auto backward,
                    WorkspaceQuery forward_workspace = {}, WorkspaceQuery backward_workspace = {}) {
    registry.add(std::string(kind),
                 OpKernels{bind(cx, forward), bind(cx, backward), std::move(forward_workspace),
                           std::move(backward_workspace)});
  };
  add_op(ops::kLinear, linear_forward, linear_backward, {}, linear_backward_workspace);
  add_op(ops::kBmm, bmm_forward, bmm_backward);
  add_op(ops::kAdd, add_forward,
         [](const Context& c, const KernelContext& ctx) { pass_gradient(c, ctx, 2); });
  add_op(ops::kGelu, gelu_forward_op, gelu_backward_op);
  add_op(ops::kRelu, relu_forward_op, relu_backward_op);
  add_op(ops::kDropout, dropout_forward_op, dropout_backward_op);
  add_op(ops::kLayerNorm, layernorm_forward_op, layernorm_backward_op, {},
         layernorm_backward_workspace);
  add_op(ops::kSoftmax, softmax_forward_op, softmax_backward_op);
  add_op(ops::kEmbedding, embedding_forward_op, embedding_backward_op, {},
         embedding_backward_workspace);
  add_op(ops::kCrossEntropy, cross_entropy_forward_op, cross_entropy_backward_op,
         cross_entropy_forward_workspace, {});
  add_op(ops::kView, view_forward,
         [](const Context& c, const KernelContext& ctx) { pass_gradient(c, ctx, 1); });
  add_op(
      ops::kTranspose,
      [](const Context& c, const KernelContext& ctx) { transpose_op(c, ctx, false); },
      [](const Context& c, const KernelContext& ctx) { transpose_op(c, ctx, true); });
}

}  // namespace ckpt::cuda
