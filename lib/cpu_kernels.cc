// The CPU kernels of the built-in ops: plain loops in fp32 with a fixed order of every sum, so the
// same inputs give bitwise the same outputs whatever schedule runs them. No kernel allocates: any
// scratch would come from the workspace, and none of these needs one.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "ckpt/cpu_backend.h"  // register_cpu_kernels
#include "ckpt/error.h"
#include "ckpt/executor.h"
#include "ckpt/executor_ops.h"
#include "ckpt/kernel_random.h"

namespace ckpt {

namespace {

using ops::BmmLayout;
using ops::MatrixOperand;

void require(bool ok, const KernelContext& ctx, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "ckpt: cpu kernel for op \"%s\" (%s): %s\n", ctx.op->name.c_str(),
               ctx.op->kind.c_str(), what);
  std::abort();
}

const float* input(const KernelContext& ctx, std::size_t i) {
  require(ctx.inputs.at(i) != nullptr, ctx, "an input the kernel reads was not saved");
  return static_cast<const float*>(ctx.inputs[i]);
}
const std::int32_t* int_input(const KernelContext& ctx, std::size_t i) {
  require(ctx.inputs.at(i) != nullptr, ctx, "an input the kernel reads was not saved");
  return static_cast<const std::int32_t*>(ctx.inputs[i]);
}
float* output(const KernelContext& ctx, std::size_t j) {
  require(ctx.outputs.at(j) != nullptr, ctx, "an output the kernel reads was not saved");
  return static_cast<float*>(ctx.outputs[j]);
}
const float* grad_output(const KernelContext& ctx) {
  require(ctx.grad_outputs.at(0) != nullptr, ctx, "the output has no gradient");
  return ctx.grad_outputs[0];
}
std::int64_t numel(const Value& value) { return element_count(value.shape); }

// g[i] = f(i), or g[i] += f(i) when accumulating. f(i) reads only index i of its arguments, so g
// may be the very buffer f reads (a gradient passed through in place).
template <typename F>
void write_gradient(float* g, bool accumulate, std::int64_t count, F f) {
  if (g == nullptr) return;
  if (accumulate) {
    for (std::int64_t i = 0; i < count; ++i) g[i] += f(i);
  } else {
    for (std::int64_t i = 0; i < count; ++i) g[i] = f(i);
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM

struct Mat {
  const float* data;
  std::int64_t ld;
  bool trans;  // the logical matrix is the stored one transposed
  float at(std::int64_t r, std::int64_t c) const {
    return trans ? data[c * ld + r] : data[r * ld + c];
  }
};

// Dot product of two contiguous rows with eight partial sums combined in a fixed tree.
float dot(const float* a, const float* b, std::int64_t k) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    for (int u = 0; u < 8; ++u) s[u] += a[p + u] * b[p + u];
  }
  for (; p < k; ++p) s[0] += a[p] * b[p];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// C (m x n, row stride ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, beta 0 or 1.
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, Mat a, Mat b, float beta,
          float* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0) std::fill(row, row + n, 0.0f);
    if (!b.trans) {
      // Rows of B are contiguous: accumulate alpha * A(i, p) * B(p, :) over p in order.
      for (std::int64_t p = 0; p < k; ++p) {
        const float scaled = alpha * a.at(i, p);
        const float* brow = b.data + p * b.ld;
        for (std::int64_t j = 0; j < n; ++j) row[j] += scaled * brow[j];
      }
      continue;
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const float* bcol = b.data + j * b.ld;  // row j of the stored B is column j of op(B)
      float sum;
      if (!a.trans) {
        sum = dot(a.data + i * a.ld, bcol, k);
      } else {
        sum = 0;
        for (std::int64_t p = 0; p < k; ++p) sum += a.at(i, p) * bcol[p];
      }
      row[j] += alpha * sum;
    }
  }
}

const float* at(const float* base, const MatrixOperand& m, std::int64_t o, std::int64_t h) {
  return base + m.offset + o * m.batch_stride + h * m.head_stride;
}
float* at(float* base, const MatrixOperand& m, std::int64_t o, std::int64_t h) {
  return base + m.offset + o * m.batch_stride + h * m.head_stride;
}

// The beta to write a gradient with: 1 when accumulating; 0 when the matrices cover the whole
// gradient; otherwise the gradient is cleared first (a strided slice of a fused tensor) and 1.
float gradient_beta(float* g, bool accumulate, const MatrixOperand& m, std::int64_t rows,
                    std::int64_t cols, const BmmLayout& l, std::int64_t elements) {
  if (accumulate) return 1;
  if (ops::covers(m, rows, cols, l.batch, l.heads, elements)) return 0;
  std::fill(g, g + elements, 0.0f);
  return 1;
}

void bmm_forward(const KernelContext& ctx) {
  const BmmLayout l = ops::bmm_layout(*ctx.graph, *ctx.op);
  const float* a = input(ctx, 0);
  const float* b = input(ctx, 1);
  float* c = output(ctx, 0);
  for (std::int64_t o = 0; o < l.batch; ++o) {
    for (std::int64_t h = 0; h < l.heads; ++h) {
      gemm(l.m, l.n, l.k, l.alpha, {at(a, l.a, o, h), l.a.ld, l.a.trans},
           {at(b, l.b, o, h), l.b.ld, l.b.trans}, 0, at(c, l.c, o, h), l.c.ld);
    }
  }
}

void bmm_backward(const KernelContext& ctx) {
  const BmmLayout l = ops::bmm_layout(*ctx.graph, *ctx.op);
  const float* dc = grad_output(ctx);
  if (float* da = ctx.grad_inputs[0]) {
    const float* b = input(ctx, 1);
    const std::int64_t rows = l.a.trans ? l.k : l.m;
    const std::int64_t cols = l.a.trans ? l.m : l.k;
    const float beta =
        gradient_beta(da, ctx.accumulate[0], l.a, rows, cols, l, numel(ctx.input_value(0)));
    for (std::int64_t o = 0; o < l.batch; ++o) {
      for (std::int64_t h = 0; h < l.heads; ++h) {
        const Mat dcm{at(dc, l.c, o, h), l.c.ld, false};
        const Mat bm{at(b, l.b, o, h), l.b.ld, l.b.trans};
        float* out = at(da, l.a, o, h);
        if (!l.a.trans) {  // dA = dC op(B)^T
          gemm(l.m, l.k, l.n, l.alpha, dcm, {bm.data, bm.ld, !l.b.trans}, beta, out, l.a.ld);
        } else {  // stored A is k x m: dA^T = op(B) dC^T
          gemm(l.k, l.m, l.n, l.alpha, bm, {dcm.data, dcm.ld, true}, beta, out, l.a.ld);
        }
      }
    }
  }
  if (float* db = ctx.grad_inputs[1]) {
    const float* a = input(ctx, 0);
    const std::int64_t rows = l.b.trans ? l.n : l.k;
    const std::int64_t cols = l.b.trans ? l.k : l.n;
    const float beta =
        gradient_beta(db, ctx.accumulate[1], l.b, rows, cols, l, numel(ctx.input_value(1)));
    for (std::int64_t o = 0; o < l.batch; ++o) {
      for (std::int64_t h = 0; h < l.heads; ++h) {
        const Mat dcm{at(dc, l.c, o, h), l.c.ld, false};
        const Mat am{at(a, l.a, o, h), l.a.ld, l.a.trans};
        float* out = at(db, l.b, o, h);
        if (!l.b.trans) {  // dB = op(A)^T dC
          gemm(l.k, l.n, l.m, l.alpha, {am.data, am.ld, !l.a.trans}, dcm, beta, out, l.b.ld);
        } else {  // stored B is n x k: dB^T = dC^T op(A)
          gemm(l.n, l.k, l.m, l.alpha, {dcm.data, dcm.ld, true}, am, beta, out, l.b.ld);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// linear: y[rows, out] = x[rows, in] W[out, in]^T (+ b[out])

void linear_forward(const KernelContext& ctx) {
  const auto [rows, in] = ops::rows_cols(ctx.input_value(0));
  const std::int64_t out = ctx.input_value(1).shape.at(0);
  float* y = output(ctx, 0);
  gemm(rows, out, in, 1, {input(ctx, 0), in, false}, {input(ctx, 1), in, true}, 0, y, out);
  if (ctx.inputs.size() < 3) return;
  const float* bias = input(ctx, 2);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < out; ++j) y[r * out + j] += bias[j];
  }
}

void linear_backward(const KernelContext& ctx) {
  const auto [rows, in] = ops::rows_cols(ctx.input_value(0));
  const std::int64_t out = ctx.input_value(1).shape.at(0);
  const float* dy = grad_output(ctx);
  if (float* dx = ctx.grad_inputs[0]) {
    gemm(rows, in, out, 1, {dy, out, false}, {input(ctx, 1), in, false},
         ctx.accumulate[0] ? 1.0f : 0.0f, dx, in);
  }
  if (float* dw = ctx.grad_inputs[1]) {
    gemm(out, in, rows, 1, {dy, out, true}, {input(ctx, 0), in, false},
         ctx.accumulate[1] ? 1.0f : 0.0f, dw, in);
  }
  if (ctx.grad_inputs.size() < 3 || ctx.grad_inputs[2] == nullptr) return;
  float* db = ctx.grad_inputs[2];
  if (!ctx.accumulate[2]) std::fill(db, db + out, 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < out; ++j) db[j] += dy[r * out + j];
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise: add, gelu, relu, dropout

void add_forward(const KernelContext& ctx) {
  const float* a = input(ctx, 0);
  const float* b = input(ctx, 1);
  float* y = output(ctx, 0);
  const std::int64_t n = numel(ctx.output_value(0));
  for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void add_backward(const KernelContext& ctx) {
  const float* dy = grad_output(ctx);
  const std::int64_t n = numel(ctx.output_value(0));
  for (std::size_t i = 0; i < 2; ++i) {
    float* g = ctx.grad_inputs[i];
    if (g == dy && !ctx.accumulate[i]) continue;  // passed through: already the gradient
    write_gradient(g, ctx.accumulate[i], n, [&](std::int64_t e) { return dy[e]; });
  }
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

void gelu_forward(const KernelContext& ctx) {
  const float* x = input(ctx, 0);
  float* y = output(ctx, 0);
  const std::int64_t n = numel(ctx.output_value(0));
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + kGeluCubic * v * v * v)));
  }
}

void gelu_backward(const KernelContext& ctx) {
  const float* x = input(ctx, 0);
  const float* dy = grad_output(ctx);
  write_gradient(ctx.grad_inputs[0], ctx.accumulate[0], numel(ctx.output_value(0)),
                 [&](std::int64_t i) {
                   const float v = x[i];
                   const float t = std::tanh(kSqrt2OverPi * (v + kGeluCubic * v * v * v));
                   const float dt = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
                   return dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * dt);
                 });
}

void relu_forward(const KernelContext& ctx) {
  const float* x = input(ctx, 0);
  float* y = output(ctx, 0);  // may be x itself (in place)
  const std::int64_t n = numel(ctx.output_value(0));
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > 0 ? x[i] : 0.0f;
}

void relu_backward(const KernelContext& ctx) {
  const float* y = output(ctx, 0);
  const float* dy = grad_output(ctx);
  write_gradient(ctx.grad_inputs[0], ctx.accumulate[0], numel(ctx.output_value(0)),
                 [&](std::int64_t i) { return y[i] > 0 ? dy[i] : 0.0f; });
}

void dropout_forward(const KernelContext& ctx) {
  const double p = ctx.attribute("p", 0.0);
  const std::uint32_t threshold = dropout_threshold(p);
  const float scale = p < 1 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  const float* x = input(ctx, 0);
  float* y = output(ctx, 0);
  auto* mask = static_cast<std::uint8_t*>(ctx.saved_state);
  const std::int64_t n = numel(ctx.output_value(0));
  for (std::int64_t i = 0; i < n; ++i) {
    const bool keep = dropout_keep(ctx.seed, static_cast<std::uint64_t>(i), threshold);
    if (mask != nullptr) mask[i] = keep ? 1 : 0;
    y[i] = keep ? x[i] * scale : 0.0f;
  }
}

void dropout_backward(const KernelContext& ctx) {
  const double p = ctx.attribute("p", 0.0);
  const float scale = p < 1 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  require(ctx.saved_state != nullptr, ctx, "the dropout mask was not saved");
  const auto* mask = static_cast<const std::uint8_t*>(ctx.saved_state);
  const float* dy = grad_output(ctx);
  write_gradient(ctx.grad_inputs[0], ctx.accumulate[0], numel(ctx.output_value(0)),
                 [&](std::int64_t i) { return mask[i] != 0 ? dy[i] * scale : 0.0f; });
}

// ---------------------------------------------------------------------------------------------
// layernorm over the last dimension; saved state: mean[rows] then rstd[rows]

void layernorm_forward(const KernelContext& ctx) {
  const auto [rows, cols] = ops::rows_cols(ctx.input_value(0));
  const auto eps = static_cast<float>(ctx.attribute("eps", 1e-5));
  const float* x = input(ctx, 0);
  const float* gamma = input(ctx, 1);
  const float* beta = input(ctx, 2);
  float* y = output(ctx, 0);
  auto* stats = static_cast<float*>(ctx.saved_state);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float sum = 0;
    for (std::int64_t c = 0; c < cols; ++c) sum += xr[c];
    const float mean = sum / static_cast<float>(cols);
    float squares = 0;
    for (std::int64_t c = 0; c < cols; ++c) squares += (xr[c] - mean) * (xr[c] - mean);
    const float rstd = 1.0f / std::sqrt(squares / static_cast<float>(cols) + eps);
    if (stats != nullptr) {
      stats[r] = mean;
      stats[rows + r] = rstd;
    }
    float* yr = y + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mean) * rstd * gamma[c] + beta[c];
  }
}

void layernorm_backward(const KernelContext& ctx) {
  const auto [rows, cols] = ops::rows_cols(ctx.input_value(0));
  require(ctx.saved_state != nullptr, ctx, "the layernorm statistics were not saved");
  const auto* stats = static_cast<const float*>(ctx.saved_state);
  const float* x = input(ctx, 0);
  const float* gamma = input(ctx, 1);
  const float* dy = grad_output(ctx);
  float* dx = ctx.grad_inputs[0];
  float* dgamma = ctx.grad_inputs[1];
  float* dbeta = ctx.grad_inputs[2];
  if (dgamma != nullptr && !ctx.accumulate[1]) std::fill(dgamma, dgamma + cols, 0.0f);
  if (dbeta != nullptr && !ctx.accumulate[2]) std::fill(dbeta, dbeta + cols, 0.0f);
  const float inv_cols = 1.0f / static_cast<float>(cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float mean = stats[r];
    const float rstd = stats[rows + r];
    const float* xr = x + r * cols;
    const float* dyr = dy + r * cols;
    float sum_dxhat = 0;
    float sum_dxhat_xhat = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float xhat = (xr[c] - mean) * rstd;
      const float dxhat = dyr[c] * gamma[c];
      sum_dxhat += dxhat;
      sum_dxhat_xhat += dxhat * xhat;
      if (dgamma != nullptr) dgamma[c] += dyr[c] * xhat;
      if (dbeta != nullptr) dbeta[c] += dyr[c];
    }
    if (dx == nullptr) continue;
    float* dxr = dx + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float xhat = (xr[c] - mean) * rstd;
      const float dxhat = dyr[c] * gamma[c];
      const float value = rstd * (dxhat - inv_cols * sum_dxhat - xhat * inv_cols * sum_dxhat_xhat);
      dxr[c] = ctx.accumulate[0] ? dxr[c] + value : value;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// softmax over the last dimension; "causal": row i of each [q, k] matrix sees columns <= i + k - q

struct SoftmaxShape {
  std::int64_t rows, cols, queries;
  bool causal;
  std::int64_t visible(std::int64_t row) const {
    if (!causal) return cols;
    return std::min(cols, row % queries + cols - queries + 1);
  }
};

SoftmaxShape softmax_shape(const KernelContext& ctx) {
  const Value& x = ctx.input_value(0);
  const auto [rows, cols] = ops::rows_cols(x);
  const std::int64_t queries = x.shape.size() >= 2 ? x.shape[x.shape.size() - 2] : 1;
  return {rows, cols, queries, ctx.attribute("causal", 0) != 0};
}

void softmax_forward(const KernelContext& ctx) {
  const SoftmaxShape s = softmax_shape(ctx);
  const float* x = input(ctx, 0);
  float* y = output(ctx, 0);
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const float* xr = x + r * s.cols;
    float* yr = y + r * s.cols;
    const std::int64_t visible = s.visible(r);
    float max = -std::numeric_limits<float>::infinity();
    for (std::int64_t c = 0; c < visible; ++c) max = std::max(max, xr[c]);
    float sum = 0;
    for (std::int64_t c = 0; c < visible; ++c) {
      yr[c] = std::exp(xr[c] - max);
      sum += yr[c];
    }
    const float inv = 1.0f / sum;
    for (std::int64_t c = 0; c < visible; ++c) yr[c] *= inv;
    for (std::int64_t c = visible; c < s.cols; ++c) yr[c] = 0;
  }
}

void softmax_backward(const KernelContext& ctx) {
  const SoftmaxShape s = softmax_shape(ctx);
  const float* y = output(ctx, 0);
  const float* dy = grad_output(ctx);
  float* dx = ctx.grad_inputs[0];
  if (dx == nullptr) return;
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const float* yr = y + r * s.cols;
    const float* dyr = dy + r * s.cols;
    float* dxr = dx + r * s.cols;
    float dot_y_dy = 0;
    for (std::int64_t c = 0; c < s.cols; ++c) dot_y_dy += yr[c] * dyr[c];
    for (std::int64_t c = 0; c < s.cols; ++c) {
      const float value = yr[c] * (dyr[c] - dot_y_dy);
      dxr[c] = ctx.accumulate[0] ? dxr[c] + value : value;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// embedding: out[n, :] = table[ids[n], :] (+ positions[n % seq, :])

void check_token(const KernelContext& ctx, std::int32_t id, std::int64_t vocab) {
  if (id >= 0 && id < vocab) return;
  throw Error(ErrorKind::kUsage, fmt::format("op \"{}\": token id {} is outside the table's {} "
                                             "rows",
                                             ctx.op->name, id, vocab));
}

void embedding_forward(const KernelContext& ctx) {
  const std::int32_t* ids = int_input(ctx, 0);
  const std::int64_t tokens = numel(ctx.input_value(0));
  const std::int64_t seq = ctx.input_value(0).shape.back();
  const std::int64_t vocab = ctx.input_value(1).shape.at(0);
  const std::int64_t dim = ctx.input_value(1).shape.at(1);
  const float* table = input(ctx, 1);
  const float* positions = ctx.inputs.size() > 2 ? input(ctx, 2) : nullptr;
  float* y = output(ctx, 0);
  for (std::int64_t t = 0; t < tokens; ++t) {
    check_token(ctx, ids[t], vocab);
    const float* row = table + static_cast<std::int64_t>(ids[t]) * dim;
    float* yr = y + t * dim;
    for (std::int64_t c = 0; c < dim; ++c) yr[c] = row[c];
    if (positions == nullptr) continue;
    const float* pos = positions + (t % seq) * dim;
    for (std::int64_t c = 0; c < dim; ++c) yr[c] += pos[c];
  }
}

void embedding_backward(const KernelContext& ctx) {
  const std::int32_t* ids = int_input(ctx, 0);
  const std::int64_t tokens = numel(ctx.input_value(0));
  const std::int64_t seq = ctx.input_value(0).shape.back();
  const std::int64_t vocab = ctx.input_value(1).shape.at(0);
  const std::int64_t dim = ctx.input_value(1).shape.at(1);
  const float* dy = grad_output(ctx);
  // Tokens in order: the GPU kernel sums each table row's tokens in the same order.
  if (float* dtable = ctx.grad_inputs[1]) {
    if (!ctx.accumulate[1]) std::fill(dtable, dtable + vocab * dim, 0.0f);
    for (std::int64_t t = 0; t < tokens; ++t) {
      float* row = dtable + static_cast<std::int64_t>(ids[t]) * dim;
      for (std::int64_t c = 0; c < dim; ++c) row[c] += dy[t * dim + c];
    }
  }
  if (ctx.grad_inputs.size() < 3 || ctx.grad_inputs[2] == nullptr) return;
  float* dpos = ctx.grad_inputs[2];
  if (!ctx.accumulate[2]) std::fill(dpos, dpos + numel(ctx.input_value(2)), 0.0f);
  for (std::int64_t t = 0; t < tokens; ++t) {
    float* row = dpos + (t % seq) * dim;
    for (std::int64_t c = 0; c < dim; ++c) row[c] += dy[t * dim + c];
  }
}

// ---------------------------------------------------------------------------------------------
// cross_entropy: mean over rows of logsumexp(logits[r]) - logits[r, target[r]]; saved: lse[rows]

void cross_entropy_forward(const KernelContext& ctx) {
  const auto [rows, vocab] = ops::rows_cols(ctx.input_value(0));
  const float* logits = input(ctx, 0);
  const std::int32_t* targets = int_input(ctx, 1);
  auto* lse_out = static_cast<float*>(ctx.saved_state);
  double total = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* lr = logits + r * vocab;
    check_token(ctx, targets[r], vocab);
    float max = -std::numeric_limits<float>::infinity();
    for (std::int64_t c = 0; c < vocab; ++c) max = std::max(max, lr[c]);
    float sum = 0;
    for (std::int64_t c = 0; c < vocab; ++c) sum += std::exp(lr[c] - max);
    const float lse = max + std::log(sum);
    if (lse_out != nullptr) lse_out[r] = lse;
    total += static_cast<double>(lse - lr[targets[r]]);
  }
  *output(ctx, 0) = static_cast<float>(total / static_cast<double>(rows));
}

void cross_entropy_backward(const KernelContext& ctx) {
  const auto [rows, vocab] = ops::rows_cols(ctx.input_value(0));
  require(ctx.saved_state != nullptr, ctx, "the log-sum-exp rows were not saved");
  const auto* lse = static_cast<const float*>(ctx.saved_state);
  const float* logits = input(ctx, 0);
  const std::int32_t* targets = int_input(ctx, 1);
  const float seed = ctx.loss_output == 0 ? 1.0f : *grad_output(ctx);
  const float scale = seed / static_cast<float>(rows);
  float* dlogits = ctx.grad_inputs[0];
  if (dlogits == nullptr) return;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* lr = logits + r * vocab;
    float* dr = dlogits + r * vocab;
    for (std::int64_t c = 0; c < vocab; ++c) {
      const float value = (std::exp(lr[c] - lse[r]) - (c == targets[r] ? 1.0f : 0.0f)) * scale;
      dr[c] = ctx.accumulate[0] ? dr[c] + value : value;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// view (no copy: the output is the input's storage) and transpose of the last two dimensions

void view_forward(const KernelContext& ctx) {
  if (ctx.outputs[0] == ctx.inputs[0]) return;
  // Not an alias in the graph (a copying reshape): copy.
  std::memmove(ctx.outputs[0], ctx.inputs[0],
               static_cast<std::size_t>(numel(ctx.output_value(0))) * sizeof(float));
}

void view_backward(const KernelContext& ctx) {
  const float* dy = grad_output(ctx);
  float* dx = ctx.grad_inputs[0];
  if (dx == dy && !ctx.accumulate[0]) return;  // passed through
  write_gradient(dx, ctx.accumulate[0], numel(ctx.output_value(0)),
                 [&](std::int64_t i) { return dy[i]; });
}

struct TransposeShape {
  std::int64_t batch, rows, cols;  // input [batch, rows, cols] -> output [batch, cols, rows]
};

TransposeShape transpose_shape(const KernelContext& ctx) {
  const Value& x = ctx.input_value(0);
  const std::int64_t cols = x.shape.back();
  const std::int64_t rows = x.shape.size() >= 2 ? x.shape[x.shape.size() - 2] : 1;
  return {numel(x) / (rows * cols), rows, cols};
}

void transpose_forward(const KernelContext& ctx) {
  const auto [batch, rows, cols] = transpose_shape(ctx);
  const float* x = input(ctx, 0);
  float* y = output(ctx, 0);
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c) {
        y[b * rows * cols + c * rows + r] = x[b * rows * cols + r * cols + c];
      }
    }
  }
}

void transpose_backward(const KernelContext& ctx) {
  const auto [batch, rows, cols] = transpose_shape(ctx);
  const float* dy = grad_output(ctx);
  float* dx = ctx.grad_inputs[0];
  if (dx == nullptr) return;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c) {
        const float value = dy[b * rows * cols + c * rows + r];
        float& target = dx[b * rows * cols + r * cols + c];
        target = ctx.accumulate[0] ? target + value : value;
      }
    }
  }
}

}  // namespace

void register_cpu_kernels(KernelRegistry& registry) {
  registry.add(std::string(ops::kLinear), {linear_forward, linear_backward, {}, {}});
  registry.add(std::string(ops::kBmm), {bmm_forward, bmm_backward, {}, {}});
  registry.add(std::string(ops::kAdd), {add_forward, add_backward, {}, {}});
  registry.add(std::string(ops::kGelu), {gelu_forward, gelu_backward, {}, {}});
  registry.add(std::string(ops::kRelu), {relu_forward, relu_backward, {}, {}});
  registry.add(std::string(ops::kLayerNorm), {layernorm_forward, layernorm_backward, {}, {}});
  registry.add(std::string(ops::kSoftmax), {softmax_forward, softmax_backward, {}, {}});
  registry.add(std::string(ops::kEmbedding), {embedding_forward, embedding_backward, {}, {}});
  registry.add(std::string(ops::kCrossEntropy),
               {cross_entropy_forward, cross_entropy_backward, {}, {}});
  registry.add(std::string(ops::kDropout), {dropout_forward, dropout_backward, {}, {}});
  registry.add(std::string(ops::kView), {view_forward, view_backward, {}, {}});
  registry.add(std::string(ops::kTranspose), {transpose_forward, transpose_backward, {}, {}});
}

}  // namespace ckpt
