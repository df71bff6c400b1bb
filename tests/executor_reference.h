// Naive double-precision forward passes of the MLP and GPT-2 models (ckpt/models.h), written from
// the architectures, not from the graphs or kernels: the executor's fp32 loss is checked against
// them. Parameters come by name; dropout draws the same counter-based mask (ckpt/kernel_random.h)
// from the seed the executor reports for each dropout op.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ckpt/kernel_random.h"
#include "ckpt/models.h"

namespace ckpt::testing {

using Tensor = std::vector<double>;
using NamedTensors = std::map<std::string, Tensor>;
// The seed the executor used for the dropout op of this name.
using SeedOf = std::function<std::uint64_t(const std::string& op_name)>;

// y[rows, out] = x[rows, in] W[out, in]^T + b
inline Tensor ref_linear(const Tensor& x, const Tensor& w, const Tensor* b, std::int64_t rows,
                         std::int64_t in, std::int64_t out) {
  Tensor y(static_cast<std::size_t>(rows * out), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t o = 0; o < out; ++o) {
      double sum = b != nullptr ? (*b)[o] : 0.0;
      for (std::int64_t i = 0; i < in; ++i) sum += x[r * in + i] * w[o * in + i];
      y[r * out + o] = sum;
    }
  }
  return y;
}

inline void ref_dropout(Tensor& x, double p, std::uint64_t seed) {
  if (p <= 0) return;
  const std::uint32_t threshold = dropout_threshold(p);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = dropout_keep(seed, i, threshold) ? x[i] / (1.0 - p) : 0.0;
  }
}

inline double ref_cross_entropy(const Tensor& logits, const std::vector<std::int32_t>& targets,
                                std::int64_t rows, std::int64_t classes) {
  double total = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    double max = logits[r * classes];
    for (std::int64_t c = 0; c < classes; ++c) max = std::max(max, logits[r * classes + c]);
    double sum = 0;
    for (std::int64_t c = 0; c < classes; ++c) sum += std::exp(logits[r * classes + c] - max);
    total += max + std::log(sum) - logits[r * classes + targets[r]];
  }
  return total / static_cast<double>(rows);
}

inline double mlp_reference_loss(const MlpOptions& o, const NamedTensors& p, const Tensor& x,
                                 const std::vector<std::int32_t>& targets, const SeedOf& seed_of) {
  Tensor h = x;
  std::int64_t width = o.input_features;
  for (std::size_t l = 0; l < o.hidden_features.size(); ++l) {
    const std::string name = fmt::format("fc{}", l);
    const std::int64_t out = o.hidden_features[l];
    h = ref_linear(h, p.at(name + ".weight"), &p.at(name + ".bias"), o.batch, width, out);
    for (double& v : h) v = std::max(v, 0.0);
    if (o.dropout > 0) ref_dropout(h, o.dropout, seed_of(name + ".dropout"));
    width = out;
  }
  const Tensor logits =
      ref_linear(h, p.at("head.weight"), &p.at("head.bias"), o.batch, width, o.classes);
  return ref_cross_entropy(logits, targets, o.batch, o.classes);
}

inline Tensor ref_layernorm(const Tensor& x, const Tensor& g, const Tensor& b, std::int64_t rows,
                            std::int64_t cols, double eps) {
  Tensor y(x.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    double mean = 0;
    for (std::int64_t c = 0; c < cols; ++c) mean += x[r * cols + c];
    mean /= static_cast<double>(cols);
    double var = 0;
    for (std::int64_t c = 0; c < cols; ++c) var += std::pow(x[r * cols + c] - mean, 2);
    const double rstd = 1.0 / std::sqrt(var / static_cast<double>(cols) + eps);
    for (std::int64_t c = 0; c < cols; ++c) {
      y[r * cols + c] = (x[r * cols + c] - mean) * rstd * g[c] + b[c];
    }
  }
  return y;
}

inline double gpt2_reference_loss(const Gpt2Options& o, const NamedTensors& p,
                                  const std::vector<std::int32_t>& ids,
                                  const std::vector<std::int32_t>& targets, const SeedOf& seed_of) {
  const std::int64_t B = o.batch, T = o.seq, C = o.d_model, H = o.heads, D = C / H, V = o.vocab;
  const std::int64_t rows = B * T;
  const Tensor& wte = p.at("wte");
  const Tensor& wpe = p.at("wpe");
  Tensor x(static_cast<std::size_t>(rows * C));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < C; ++c) {
      x[r * C + c] = wte[ids[r] * C + c] + wpe[(r % T) * C + c];
    }
  }
  ref_dropout(x, o.dropout, o.dropout > 0 ? seed_of("embedding.dropout") : 0);
  for (std::int64_t l = 0; l < o.layers; ++l) {
    const std::string n = fmt::format("h{}", l);
    auto P = [&](const std::string& suffix) -> const Tensor& { return p.at(n + suffix); };
    const Tensor a = ref_layernorm(x, P(".ln_1.weight"), P(".ln_1.bias"), rows, C, o.layernorm_eps);
    const Tensor qkv =
        ref_linear(a, P(".attn.c_attn.weight"), &P(".attn.c_attn.bias"), rows, C, 3 * C);
    // Causal attention per (batch, head), probabilities dropped out as one [B, H, T, T] tensor.
    Tensor probs(static_cast<std::size_t>(B * H * T * T), 0.0);
    for (std::int64_t b = 0; b < B; ++b) {
      for (std::int64_t h = 0; h < H; ++h) {
        for (std::int64_t i = 0; i < T; ++i) {
          double* row = &probs[((b * H + h) * T + i) * T];
          double max = -1e300;
          for (std::int64_t j = 0; j <= i; ++j) {
            double s = 0;
            for (std::int64_t d = 0; d < D; ++d) {
              s += qkv[(b * T + i) * 3 * C + h * D + d] * qkv[(b * T + j) * 3 * C + C + h * D + d];
            }
            row[j] = s / std::sqrt(static_cast<double>(D));
            max = std::max(max, row[j]);
          }
          double sum = 0;
          for (std::int64_t j = 0; j <= i; ++j) sum += (row[j] = std::exp(row[j] - max));
          for (std::int64_t j = 0; j <= i; ++j) row[j] /= sum;
        }
      }
    }
    ref_dropout(probs, o.dropout, o.dropout > 0 ? seed_of(n + ".attn.attn_dropout") : 0);
    Tensor y(static_cast<std::size_t>(rows * C), 0.0);
    for (std::int64_t b = 0; b < B; ++b) {
      for (std::int64_t h = 0; h < H; ++h) {
        for (std::int64_t i = 0; i < T; ++i) {
          for (std::int64_t d = 0; d < D; ++d) {
            double s = 0;
            for (std::int64_t j = 0; j < T; ++j) {
              s += probs[((b * H + h) * T + i) * T + j] *
                   qkv[(b * T + j) * 3 * C + 2 * C + h * D + d];
            }
            y[(b * T + i) * C + h * D + d] = s;
          }
        }
      }
    }
    Tensor attn = ref_linear(y, P(".attn.c_proj.weight"), &P(".attn.c_proj.bias"), rows, C, C);
    ref_dropout(attn, o.dropout, o.dropout > 0 ? seed_of(n + ".attn.resid_dropout") : 0);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += attn[i];
    const Tensor m = ref_layernorm(x, P(".ln_2.weight"), P(".ln_2.bias"), rows, C, o.layernorm_eps);
    Tensor f = ref_linear(m, P(".mlp.c_fc.weight"), &P(".mlp.c_fc.bias"), rows, C, 4 * C);
    for (double& v : f) {
      v = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    }
    Tensor down = ref_linear(f, P(".mlp.c_proj.weight"), &P(".mlp.c_proj.bias"), rows, 4 * C, C);
    ref_dropout(down, o.dropout, o.dropout > 0 ? seed_of(n + ".mlp.dropout") : 0);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += down[i];
  }
  const Tensor final_norm =
      ref_layernorm(x, p.at("ln_f.weight"), p.at("ln_f.bias"), rows, C, o.layernorm_eps);
  const Tensor logits = ref_linear(final_norm, wte, nullptr, rows, C, V);
  return ref_cross_entropy(logits, targets, rows, V);
}

}  // namespace ckpt::testing
