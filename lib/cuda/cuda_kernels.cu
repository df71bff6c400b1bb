// CUDA kernels of the built-in ops. Determinism is by construction: elementwise kernels compute
// each element independently; every reduction runs in one block of a fixed size with a fixed
// shuffle tree, or as partial sums over fixed row chunks combined in a fixed order. No atomics.
// clang-format does not treat a .cu file as the main file of its .cuh; keep that header first.
// clang-format off
#include "cuda_kernels.cuh"
// clang-format on

#include <algorithm>

#include "ckpt/kernel_random.h"

namespace ckpt::cuda {

namespace {

constexpr int kThreads = 256;

int grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(blocks, 1 << 20)));
}

// Grid-stride loop over n elements calling f(i).
template <typename F>
__global__ void elementwise_kernel(std::int64_t n, F f) {
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    f(i);
  }
}

template <typename F>
cudaError_t elementwise(std::int64_t n, cudaStream_t stream, F f) {
  if (n > 0) elementwise_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, f);
  return cudaGetLastError();
}

// Block-wide sum and max with a fixed tree: warp shuffles, then the first warp over warp results.
// Every thread gets the result. blockDim.x must be a multiple of 32 (at most 1024).
template <bool kMax>
__device__ float block_reduce(float v) {
  __shared__ float warp_values[32];
  __shared__ float result;
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float other = __shfl_down_sync(0xffffffffu, v, offset);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  __syncthreads();  // the previous call's readers are done with warp_values and result
  if (lane == 0) warp_values[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = static_cast<int>(blockDim.x) >> 5;
    v = lane < warps ? warp_values[lane] : (kMax ? -INFINITY : 0.0f);
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float other = __shfl_down_sync(0xffffffffu, v, offset);
      v = kMax ? fmaxf(v, other) : v + other;
    }
    if (lane == 0) result = v;
  }
  __syncthreads();
  return result;
}

__device__ float block_sum(float v) { return block_reduce<false>(v); }
__device__ float block_max(float v) { return block_reduce<true>(v); }

__device__ inline std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

__device__ inline void store(float* g, std::int64_t i, float value, bool accumulate) {
  g[i] = accumulate ? g[i] + value : value;
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

// --- column sums over fixed row chunks --------------------------------------------------------

__global__ void column_partial_kernel(const float* x, std::int64_t rows, std::int64_t cols,
                                      float* partial) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const std::int64_t chunk = blockIdx.x;
  const std::int64_t end = min64(rows, (chunk + 1) * kRowsPerChunk);
  float sum = 0;
  for (std::int64_t r = chunk * kRowsPerChunk; r < end; ++r) sum += x[r * cols + c];
  partial[chunk * cols + c] = sum;
}

__global__ void column_final_kernel(const float* partial, std::int64_t chunks, std::int64_t cols,
                                    float* out, bool accumulate) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0;
  for (std::int64_t k = 0; k < chunks; ++k) sum += partial[k * cols + c];
  store(out, c, sum, accumulate);
}

dim3 chunk_grid(std::int64_t rows, std::int64_t cols) {
  return dim3(static_cast<unsigned>(column_chunks(rows)),
              static_cast<unsigned>((cols + kThreads - 1) / kThreads));
}

// --- layernorm ---------------------------------------------------------------------------------

__global__ void layernorm_forward_kernel(const float* x, const float* gamma, const float* beta,
                                         float* y, float* mean_out, float* rstd_out,
                                         std::int64_t cols, float eps) {
  const std::int64_t r = blockIdx.x;
  const float* xr = x + r * cols;
  float sum = 0;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += xr[c];
  const float mean = block_sum(sum) / static_cast<float>(cols);
  float squares = 0;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    squares += (xr[c] - mean) * (xr[c] - mean);
  }
  const float rstd = 1.0f / sqrtf(block_sum(squares) / static_cast<float>(cols) + eps);
  if (threadIdx.x == 0 && mean_out != nullptr) {
    mean_out[r] = mean;
    rstd_out[r] = rstd;
  }
  float* yr = y + r * cols;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    yr[c] = (xr[c] - mean) * rstd * gamma[c] + beta[c];
  }
}

__global__ void layernorm_dx_kernel(const float* x, const float* gamma, const float* dy,
                                    const float* mean, const float* rstd, float* dx,
                                    bool accumulate, std::int64_t cols) {
  const std::int64_t r = blockIdx.x;
  const float* xr = x + r * cols;
  const float* dyr = dy + r * cols;
  float sum_dxhat = 0;
  float sum_dxhat_xhat = 0;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float xhat = (xr[c] - mean[r]) * rstd[r];
    const float dxhat = dyr[c] * gamma[c];
    sum_dxhat += dxhat;
    sum_dxhat_xhat += dxhat * xhat;
  }
  const float inv_cols = 1.0f / static_cast<float>(cols);
  const float a = block_sum(sum_dxhat) * inv_cols;
  const float b = block_sum(sum_dxhat_xhat) * inv_cols;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float xhat = (xr[c] - mean[r]) * rstd[r];
    store(dx, r * cols + c, rstd[r] * (dyr[c] * gamma[c] - a - xhat * b), accumulate);
  }
}

__global__ void layernorm_partial_kernel(const float* x, const float* dy, const float* mean,
                                         const float* rstd, std::int64_t rows, std::int64_t cols,
                                         float* partial_gamma, float* partial_beta) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const std::int64_t chunk = blockIdx.x;
  const std::int64_t end = min64(rows, (chunk + 1) * kRowsPerChunk);
  float g = 0;
  float b = 0;
  for (std::int64_t r = chunk * kRowsPerChunk; r < end; ++r) {
    const float d = dy[r * cols + c];
    g += d * (x[r * cols + c] - mean[r]) * rstd[r];
    b += d;
  }
  partial_gamma[chunk * cols + c] = g;
  partial_beta[chunk * cols + c] = b;
}

// --- softmax -----------------------------------------------------------------------------------

__global__ void softmax_forward_kernel(const float* x, float* y, std::int64_t cols,
                                       std::int64_t queries, bool causal) {
  const std::int64_t r = blockIdx.x;
  const float* xr = x + r * cols;
  float* yr = y + r * cols;
  const std::int64_t visible = causal ? min64(cols, r % queries + cols - queries + 1) : cols;
  float max = -INFINITY;
  for (std::int64_t c = threadIdx.x; c < visible; c += blockDim.x) max = fmaxf(max, xr[c]);
  max = block_max(max);
  float sum = 0;
  for (std::int64_t c = threadIdx.x; c < visible; c += blockDim.x) sum += expf(xr[c] - max);
  const float inv = 1.0f / block_sum(sum);
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    yr[c] = c < visible ? expf(xr[c] - max) * inv : 0.0f;
  }
}

__global__ void softmax_backward_kernel(const float* y, const float* dy, float* dx,
                                        std::int64_t cols, bool accumulate) {
  const std::int64_t r = blockIdx.x;
  const float* yr = y + r * cols;
  const float* dyr = dy + r * cols;
  float dot = 0;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) dot += yr[c] * dyr[c];
  dot = block_sum(dot);
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    store(dx, r * cols + c, yr[c] * (dyr[c] - dot), accumulate);
  }
}

// --- embedding ---------------------------------------------------------------------------------

__global__ void next_occurrence_kernel(const std::int32_t* ids, std::int64_t tokens,
                                       std::int32_t* next) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  std::int32_t found = -1;
  for (std::int64_t u = t + 1; u < tokens; ++u) {
    if (ids[u] == ids[t]) {
      found = static_cast<std::int32_t>(u);
      break;
    }
  }
  next[t] = found;
}

// One block per token; only the first token of each id does work: it sums the gradients of all
// tokens with that id, in token order, into the table row.
__global__ void embedding_table_kernel(const std::int32_t* ids, const float* dy,
                                       const std::int32_t* next, float* dtable, std::int64_t dim,
                                       std::int64_t vocab) {
  const std::int64_t t = blockIdx.x;
  const std::int32_t id = ids[t];
  if (id < 0 || id >= vocab) return;
  int earlier = 0;
  for (std::int64_t u = threadIdx.x; u < t; u += blockDim.x) earlier |= ids[u] == id ? 1 : 0;
  if (__syncthreads_or(earlier)) return;
  for (std::int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    float sum = 0;
    for (std::int64_t u = t; u >= 0; u = next[u]) sum += dy[u * dim + c];
    dtable[static_cast<std::int64_t>(id) * dim + c] += sum;
  }
}

__global__ void embedding_positions_kernel(const float* dy, float* dpositions, std::int64_t tokens,
                                           std::int64_t seq, std::int64_t dim) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= seq * dim) return;
  const std::int64_t p = i / dim;
  const std::int64_t c = i % dim;
  float sum = 0;
  for (std::int64_t t = p; t < tokens; t += seq) sum += dy[t * dim + c];
  dpositions[p * dim + c] += sum;
}

// --- cross entropy -----------------------------------------------------------------------------

__global__ void cross_entropy_rows_kernel(const float* logits, const std::int32_t* targets,
                                          float* lse_out, float* row_loss, std::int64_t vocab) {
  const std::int64_t r = blockIdx.x;
  const float* lr = logits + r * vocab;
  float max = -INFINITY;
  for (std::int64_t c = threadIdx.x; c < vocab; c += blockDim.x) max = fmaxf(max, lr[c]);
  max = block_max(max);
  float sum = 0;
  for (std::int64_t c = threadIdx.x; c < vocab; c += blockDim.x) sum += expf(lr[c] - max);
  const float lse = max + logf(block_sum(sum));
  if (threadIdx.x != 0) return;
  if (lse_out != nullptr) lse_out[r] = lse;
  const std::int32_t t = targets[r];
  row_loss[r] = lse - (t >= 0 && t < vocab ? lr[t] : 0.0f);
}

__global__ void mean_kernel(const float* values, std::int64_t count, float* out) {
  float sum = 0;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += values[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) out[0] = sum / static_cast<float>(count);
}

}  // namespace

cudaError_t add(const float* a, const float* b, float* y, std::int64_t n, cudaStream_t stream) {
  return elementwise(n, stream, [=] __device__(std::int64_t i) { y[i] = a[i] + b[i]; });
}

cudaError_t copy_gradient(const float* dy, float* g, std::int64_t n, bool accumulate,
                          cudaStream_t stream) {
  return elementwise(n, stream, [=] __device__(std::int64_t i) { store(g, i, dy[i], accumulate); });
}

cudaError_t gelu_forward(const float* x, float* y, std::int64_t n, cudaStream_t stream) {
  return elementwise(n, stream, [=] __device__(std::int64_t i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + kGeluCubic * v * v * v)));
  });
}

cudaError_t gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n,
                          bool accumulate, cudaStream_t stream) {
  return elementwise(n, stream, [=] __device__(std::int64_t i) {
    const float v = x[i];
    const float t = tanhf(kSqrt2OverPi * (v + kGeluCubic * v * v * v));
    const float dt = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
    store(dx, i, dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * dt), accumulate);
  });
}

cudaError_t relu_forward(const float* x, float* y, std::int64_t n, cudaStream_t stream) {
  return elementwise(n, stream, [=] __device__(std::int64_t i) { y[i] = x[i] > 0 ? x[i] : 0.0f; });
}

cudaError_t relu_backward(const float* y, const float* dy, float* dx, std::int64_t n,
                          bool accumulate, cudaStream_t stream) {
  return elementwise(n, stream, [=] __device__(std::int64_t i) {
    store(dx, i, y[i] > 0 ? dy[i] : 0.0f, accumulate);
  });
}

cudaError_t dropout_forward(const float* x, float* y, std::uint8_t* mask, std::int64_t n,
                            std::uint64_t seed, std::uint32_t threshold, float scale,
                            cudaStream_t stream) {
  return elementwise(n, stream, [=] __device__(std::int64_t i) {
    const bool keep = dropout_keep(seed, static_cast<std::uint64_t>(i), threshold);
    if (mask != nullptr) mask[i] = keep ? 1 : 0;
    y[i] = keep ? x[i] * scale : 0.0f;
  });
}

cudaError_t dropout_backward(const std::uint8_t* mask, const float* dy, float* dx, std::int64_t n,
                             float scale, bool accumulate, cudaStream_t stream) {
  return elementwise(n, stream, [=] __device__(std::int64_t i) {
    store(dx, i, mask[i] != 0 ? dy[i] * scale : 0.0f, accumulate);
  });
}

cudaError_t sgd(float* param, const float* grad, std::int64_t n, float learning_rate,
                cudaStream_t stream) {
  return elementwise(n, stream,
                     [=] __device__(std::int64_t i) { param[i] -= learning_rate * grad[i]; });
}

cudaError_t add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
                     cudaStream_t stream) {
  return elementwise(rows * cols, stream,
                     [=] __device__(std::int64_t i) { y[i] += bias[i % cols]; });
}

cudaError_t column_sum(const float* x, std::int64_t rows, std::int64_t cols, float* partial,
                       float* out, bool accumulate, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  column_partial_kernel<<<chunk_grid(rows, cols), kThreads, 0, stream>>>(x, rows, cols, partial);
  column_final_kernel<<<static_cast<unsigned>((cols + kThreads - 1) / kThreads), kThreads, 0,
                        stream>>>(partial, column_chunks(rows), cols, out, accumulate);
  return cudaGetLastError();
}

cudaError_t layernorm_forward(const float* x, const float* gamma, const float* beta, float* y,
                              float* mean, float* rstd, std::int64_t rows, std::int64_t cols,
                              float eps, cudaStream_t stream) {
  if (rows > 0) {
    layernorm_forward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, gamma, beta, y, mean, rstd, cols, eps);
  }
  return cudaGetLastError();
}

cudaError_t layernorm_backward(const float* x, const float* gamma, const float* dy,
                               const float* mean, const float* rstd, float* dx, bool accumulate_dx,
                               float* dgamma, bool accumulate_dgamma, float* dbeta,
                               bool accumulate_dbeta, float* partial, std::int64_t rows,
                               std::int64_t cols, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (dx != nullptr) {
    layernorm_dx_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, gamma, dy, mean, rstd, dx, accumulate_dx, cols);
  }
  if (dgamma == nullptr && dbeta == nullptr) return cudaGetLastError();
  const std::int64_t chunks = column_chunks(rows);
  float* partial_gamma = partial;
  float* partial_beta = partial + chunks * cols;
  layernorm_partial_kernel<<<chunk_grid(rows, cols), kThreads, 0, stream>>>(
      x, dy, mean, rstd, rows, cols, partial_gamma, partial_beta);
  const auto blocks = static_cast<unsigned>((cols + kThreads - 1) / kThreads);
  if (dgamma != nullptr) {
    column_final_kernel<<<blocks, kThreads, 0, stream>>>(partial_gamma, chunks, cols, dgamma,
                                                         accumulate_dgamma);
  }
  if (dbeta != nullptr) {
    column_final_kernel<<<blocks, kThreads, 0, stream>>>(partial_beta, chunks, cols, dbeta,
                                                         accumulate_dbeta);
  }
  return cudaGetLastError();
}

cudaError_t softmax_forward(const float* x, float* y, std::int64_t rows, std::int64_t cols,
                            std::int64_t queries, bool causal, cudaStream_t stream) {
  if (rows > 0) {
    softmax_forward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, y, cols,
                                                                                 queries, causal);
  }
  return cudaGetLastError();
}

cudaError_t softmax_backward(const float* y, const float* dy, float* dx, std::int64_t rows,
                             std::int64_t cols, bool accumulate, cudaStream_t stream) {
  if (rows > 0) {
    softmax_backward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(y, dy, dx, cols,
                                                                                  accumulate);
  }
  return cudaGetLastError();
}

cudaError_t embedding_forward(const std::int32_t* ids, const float* table, const float* positions,
                              float* y, std::int64_t tokens, std::int64_t seq, std::int64_t dim,
                              std::int64_t vocab, cudaStream_t stream) {
  return elementwise(tokens * dim, stream, [=] __device__(std::int64_t i) {
    const std::int64_t t = i / dim;
    const std::int64_t c = i % dim;
    const std::int32_t id = ids[t];
    float value = id >= 0 && id < vocab ? table[static_cast<std::int64_t>(id) * dim + c] : 0.0f;
    if (positions != nullptr) value += positions[(t % seq) * dim + c];
    y[i] = value;
  });
}

cudaError_t embedding_backward(const std::int32_t* ids, const float* dy, float* dtable,
                               bool accumulate_table, float* dpositions, bool accumulate_positions,
                               std::int32_t* next, std::int64_t tokens, std::int64_t seq,
                               std::int64_t dim, std::int64_t vocab, std::int64_t position_rows,
                               cudaStream_t stream) {
  if (dtable != nullptr) {
    if (!accumulate_table) {
      cudaMemsetAsync(dtable, 0, static_cast<std::size_t>(vocab * dim) * sizeof(float), stream);
    }
    next_occurrence_kernel<<<grid_for(tokens), kThreads, 0, stream>>>(ids, tokens, next);
    embedding_table_kernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        ids, dy, next, dtable, dim, vocab);
  }
  if (dpositions != nullptr) {
    if (!accumulate_positions) {
      cudaMemsetAsync(dpositions, 0, static_cast<std::size_t>(position_rows * dim) * sizeof(float),
                      stream);
    }
    embedding_positions_kernel<<<grid_for(seq * dim), kThreads, 0, stream>>>(dy, dpositions, tokens,
                                                                             seq, dim);
  }
  return cudaGetLastError();
}

cudaError_t cross_entropy_forward(const float* logits, const std::int32_t* targets, float* lse,
                                  float* row_loss, float* loss, std::int64_t rows,
                                  std::int64_t vocab, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  cross_entropy_rows_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, targets, lse, row_loss, vocab);
  mean_kernel<<<1, 1024, 0, stream>>>(row_loss, rows, loss);
  return cudaGetLastError();
}

cudaError_t cross_entropy_backward(const float* logits, const std::int32_t* targets,
                                   const float* lse, const float* dloss, float* dlogits,
                                   std::int64_t rows, std::int64_t vocab, bool accumulate,
                                   cudaStream_t stream) {
  const float inv_rows = 1.0f / static_cast<float>(rows);
  return elementwise(rows * vocab, stream, [=] __device__(std::int64_t i) {
    const std::int64_t r = i / vocab;
    const std::int64_t c = i % vocab;
    const float seed = dloss != nullptr ? dloss[0] : 1.0f;
    const float onehot = c == targets[r] ? 1.0f : 0.0f;
    store(dlogits, i, (expf(logits[i] - lse[r]) - onehot) * (seed * inv_rows), accumulate);
  });
}

cudaError_t transpose(const float* x, float* y, std::int64_t batch, std::int64_t rows,
                      std::int64_t cols, bool backward, bool accumulate, cudaStream_t stream) {
  // Forward: y[b, c, r] = x[b, r, c]. Backward: x is dy [b, c, r], y is dx [b, r, c].
  return elementwise(batch * rows * cols, stream, [=] __device__(std::int64_t i) {
    const std::int64_t b = i / (rows * cols);
    const std::int64_t rest = i % (rows * cols);
    if (!backward) {
      const std::int64_t c = rest / rows;
      const std::int64_t r = rest % rows;
      y[i] = x[b * rows * cols + r * cols + c];
      return;
    }
    const std::int64_t r = rest / cols;
    const std::int64_t c = rest % cols;
    store(y, i, x[b * rows * cols + c * rows + r], accumulate);
  });
}

}  // namespace ckpt::cuda
