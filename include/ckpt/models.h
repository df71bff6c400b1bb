// Forward graphs of two models built from the built-in op kinds (ckpt/executor_ops.h), with shapes,
// fp32 dtypes, saved sets matching what each backward kernel reads, and attributes: an MLP and a
// GPT-2-style decoder. Times are nominal (from FLOP counts) until measured ones replace them
// (ckpt/executor.h: measure_op_times, with_op_times).
#pragma once

#include <cstdint>
#include <vector>

#include "ckpt/graph.h"

namespace ckpt {

// Declared in ckpt/executor.h.
class ResidentState;

// Sizes of build_mlp's network (fp32, int32 targets).
struct MlpOptions {
  std::int64_t batch = 64;
  std::int64_t input_features = 784;
  std::vector<std::int64_t> hidden_features = {1024, 1024, 1024, 1024};
  std::int64_t classes = 10;
  double dropout = 0.0;       // after each hidden ReLU; 0 adds no dropout op
  bool in_place_relu = true;  // ReLU overwrites its input (an in-place op, like relu_)
};

// x[batch, in] -> (linear -> relu [-> dropout]) per hidden layer -> linear -> cross_entropy with
// int32 class targets[batch].
Graph build_mlp(const MlpOptions& options);

// GPT-2 small's architecture at any size: learned token and position embeddings, pre-LayerNorm
// blocks (attention, then a 4x GELU MLP, each in a residual), a final LayerNorm, the LM head tied
// to the token embedding, dropout after the embeddings, on the attention probabilities and on each
// residual branch. Attention is plain batched GEMMs (bmm) over head-strided slices of the fused
// qkv projection and a causally masked softmax: no fused or flash attention, no copies.
struct Gpt2Options {
  std::int64_t layers = 12;
  std::int64_t d_model = 768;
  std::int64_t heads = 12;
  std::int64_t seq = 512;
  std::int64_t batch = 8;
  std::int64_t vocab = 50257;
  std::int64_t positions = 1024;  // rows of the position table, >= seq
  double dropout = 0.1;           // 0 adds no dropout op
  double layernorm_eps = 1e-5;
};

// Throws ckpt::Error (kUsage) for sizes that do not fit together (d_model not divisible by heads,
// seq above positions, a non-positive size).
Graph build_gpt2(const Gpt2Options& options);

// Fills a graph's inputs and parameters deterministically from `seed`: weights and embeddings
// N(0, 0.02), layernorm gains 1, biases and layernorm shifts 0, float inputs N(0, 1), int32 inputs
// (token ids, targets) uniform over the rows of the table or the classes they index.
void initialize_model_state(const Graph& graph, ResidentState& state, std::uint64_t seed);

}  // namespace ckpt
