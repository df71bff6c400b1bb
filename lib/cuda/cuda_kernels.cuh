// Launchers of the CUDA kernels behind the built-in ops (lib/cuda/cuda_kernels.cu). Plain C++
// declarations so host code compiled by the C++ compiler can call them. Every reduction has a
// fixed shape (a fixed block size and tree, partial sums over fixed row chunks combined in order):
// no atomics, so results are bitwise reproducible. Each launcher returns cudaGetLastError().
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ckpt::cuda {

// Rows per partial sum in the deterministic column reductions (bias, layernorm gain and shift).
inline constexpr std::int64_t kRowsPerChunk = 128;
inline std::int64_t column_chunks(std::int64_t rows) {
  return (rows + kRowsPerChunk - 1) / kRowsPerChunk;
}

// Elementwise. `accumulate`: g += value rather than g = value. g may alias the gradient read.
cudaError_t add(const float* a, const float* b, float* y, std::int64_t n, cudaStream_t stream);
cudaError_t copy_gradient(const float* dy, float* g, std::int64_t n, bool accumulate,
                          cudaStream_t stream);
cudaError_t gelu_forward(const float* x, float* y, std::int64_t n, cudaStream_t stream);
cudaError_t gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n,
                          bool accumulate, cudaStream_t stream);
cudaError_t relu_forward(const float* x, float* y, std::int64_t n, cudaStream_t stream);
cudaError_t relu_backward(const float* y, const float* dy, float* dx, std::int64_t n,
                          bool accumulate, cudaStream_t stream);
cudaError_t dropout_forward(const float* x, float* y, std::uint8_t* mask, std::int64_t n,
                            std::uint64_t seed, std::uint32_t threshold, float scale,
                            cudaStream_t stream);
cudaError_t dropout_backward(const std::uint8_t* mask, const float* dy, float* dx, std::int64_t n,
                             float scale, bool accumulate, cudaStream_t stream);
cudaError_t sgd(float* param, const float* grad, std::int64_t n, float learning_rate,
                cudaStream_t stream);

// y[r, c] += bias[c]
cudaError_t add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                     cudaStream_t stream);
// out[c] (+)= sum over rows of x[r, c]; `partial` holds column_chunks(rows) * cols floats.
cudaError_t column_sum(const float* x, std::int64_t rows, std::int64_t cols, float* partial,
                       float* out, bool accumulate, cudaStream_t stream);

// LayerNorm over the last dimension. mean and rstd (rows floats each) may be null in forward.
cudaError_t layernorm_forward(const float* x, const float* gamma, const float* beta, float* y,
                              float* mean, float* rstd, std::int64_t rows, std::int64_t cols,
                              float eps, cudaStream_t stream);
// dx, dgamma and dbeta may each be null; `partial` holds 2 * column_chunks(rows) * cols floats.
cudaError_t layernorm_backward(const float* x, const float* gamma, const float* dy,
                               const float* mean, const float* rstd, float* dx, bool accumulate_dx,
                               float* dgamma, bool accumulate_dgamma, float* dbeta,
                               bool accumulate_dbeta, float* partial, std::int64_t rows,
                               std::int64_t cols, cudaStream_t stream);

// Softmax over rows of `cols`; with `causal`, row r sees columns <= r % queries + cols - queries.
cudaError_t softmax_forward(const float* x, float* y, std::int64_t rows, std::int64_t cols,
                            std::int64_t queries, bool causal, cudaStream_t stream);
cudaError_t softmax_backward(const float* y, const float* dy, float* dx, std::int64_t rows,
                             std::int64_t cols, bool accumulate, cudaStream_t stream);

// y[t, :] = table[ids[t], :] (+ positions[t % seq, :]); ids outside the table give zeros.
cudaError_t embedding_forward(const std::int32_t* ids, const float* table, const float* positions,
                              float* y, std::int64_t tokens, std::int64_t seq, std::int64_t dim,
                              std::int64_t vocab, cudaStream_t stream);
// Each table row sums its tokens' gradients in token order (a linked list in `next`, tokens
// int32s of workspace), positions sum over the batch in order. dtable / dpositions may be null.
cudaError_t embedding_backward(const std::int32_t* ids, const float* dy, float* dtable,
                               bool accumulate_table, float* dpositions, bool accumulate_positions,
                               std::int32_t* next, std::int64_t tokens, std::int64_t seq,
                               std::int64_t dim, std::int64_t vocab, std::int64_t position_rows,
                               cudaStream_t stream);

// loss[0] = mean over rows of lse - logits[target]; lse (rows floats) may be null; row_loss is
// rows floats of workspace.
cudaError_t cross_entropy_forward(const float* logits, const std::int32_t* targets, float* lse,
                                  float* row_loss, float* loss, std::int64_t rows,
                                  std::int64_t vocab, cudaStream_t stream);
// dlogits (+)= (softmax - onehot) * dloss / rows; dloss null means 1.
cudaError_t cross_entropy_backward(const float* logits, const std::int32_t* targets,
                                   const float* lse, const float* dloss, float* dlogits,
                                   std::int64_t rows, std::int64_t vocab, bool accumulate,
                                   cudaStream_t stream);

// [batch, rows, cols] -> [batch, cols, rows]; `backward` maps a gradient the other way.
cudaError_t transpose(const float* x, float* y, std::int64_t batch, std::int64_t rows,
                      std::int64_t cols, bool backward, bool accumulate, cudaStream_t stream);

}  // namespace ckpt::cuda
