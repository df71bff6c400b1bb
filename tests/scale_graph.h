// A generator of large, realistic forward graphs for the scale test (tests/scale_test.cc): a
// transformer-like stack — pre-LayerNorm blocks with attention (QKV projection, scores, causal
// softmax, dropout, context, output projection) and a GELU MLP, each in a residual — followed by
// a plain chain (an MLP head of linear and in-place ReLU layers) and a cross-entropy loss. Sizes
// follow GPT-2 small's per-layer shapes, so the store-all peak of a 100,000-op graph is terabytes:
// only the planner's arithmetic, not any allocation, sees those bytes. Deterministic.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/graph.h"

namespace ckpt::testing {

struct ScaleGraphOptions {
  int target_ops = 100000;  // the graph has exactly this many ops (at least 64)
  // Share of the ops in the transformer part; the rest is the chain part.
  double transformer_fraction = 0.8;
  std::int64_t batch = 8, seq = 512, d_model = 768, heads = 12, vocab = 50257;
};

namespace scale_detail {

class Builder {
 public:
  explicit Builder(const std::string& name) : builder_(name) {}

  ValueId input(const std::string& name, std::int64_t bytes) {
    return builder_.add_input(name, bytes);
  }
  ValueId param(const std::string& name, std::int64_t bytes) {
    return builder_.add_param(name, bytes);
  }
  // One op producing one activation; `saved` may name kNoId for the output.
  ValueId op(const std::string& name, const std::string& kind, std::vector<ValueId> inputs,
             std::int64_t bytes, double fwd_time_us, std::vector<ValueId> saved = {},
             std::int64_t saved_other_bytes = 0, bool random = false) {
    Value value;
    value.name = name;
    value.bytes = bytes;
    value.kind = ValueKind::kActivation;
    const ValueId out = builder_.add_value(std::move(value));
    Op o;
    o.name = name;
    o.kind = kind;
    o.inputs = std::move(inputs);
    o.outputs = {out};
    o.fwd_time_us = fwd_time_us;
    o.bwd_time_us = 2 * fwd_time_us;
    for (ValueId& s : saved) s = s == kNoId ? out : s;
    o.saved = std::move(saved);
    o.saved_other_bytes = saved_other_bytes;
    o.random = random;
    if (random) o.attributes["p"] = 0.1;
    builder_.add_op(std::move(o));
    ++ops_;
    return out;
  }
  // An in-place op: the output aliases `input` and takes over its storage.
  ValueId in_place(const std::string& name, const std::string& kind, ValueId input,
                   double fwd_time_us) {
    Value value;
    value.name = name;
    value.bytes = 0;
    value.kind = ValueKind::kActivation;
    value.alias_of = input;
    const ValueId out = builder_.add_value(std::move(value));
    Op o;
    o.name = name;
    o.kind = kind;
    o.inputs = {input};
    o.outputs = {out};
    o.fwd_time_us = fwd_time_us;
    o.bwd_time_us = fwd_time_us;
    o.saved = {out};
    o.in_place = true;
    builder_.add_op(std::move(o));
    ++ops_;
    return out;
  }
  int ops() const { return ops_; }
  Graph build() && { return std::move(builder_).build(); }

 private:
  GraphBuilder builder_;
  int ops_ = 0;
};

}  // namespace scale_detail

inline constexpr int kScaleOpsPerLayer = 15;

inline Graph make_scale_graph(const ScaleGraphOptions& options) {
  const int target = std::max(options.target_ops, 64);
  const std::int64_t f = 4;  // float32
  const std::int64_t b = options.batch, t = options.seq, d = options.d_model, h = options.heads;
  const std::int64_t act = b * t * d * f, scores = b * h * t * t * f;
  // Per-op time: a nominal 1 us per 10 MB touched keeps times proportional to sizes.
  auto us = [](std::int64_t bytes) { return 1.0 + static_cast<double>(bytes) / 1e7; };

  scale_detail::Builder g(fmt::format("scale{}", target));
  const ValueId tokens = g.input("tokens", b * t * 4);
  const ValueId targets = g.input("targets", b * t * 4);
  const ValueId wte = g.param("wte", options.vocab * d * f);
  ValueId x = g.op("embed", "embedding", {tokens, wte}, act, us(act));
  // Ops besides the layers: embed, the chain's projection in, and the loss.
  const int layers =
      std::max(1, static_cast<int>(options.transformer_fraction * target) / kScaleOpsPerLayer);
  for (int l = 0; l < layers; ++l) {
    const std::string p = fmt::format("l{}.", l);
    const ValueId g1 = g.param(p + "ln1.w", 2 * d * f);
    const ValueId wqkv = g.param(p + "attn.qkv.w", 3 * d * d * f);
    const ValueId wo = g.param(p + "attn.proj.w", d * d * f);
    const ValueId g2 = g.param(p + "ln2.w", 2 * d * f);
    const ValueId w1 = g.param(p + "mlp.fc.w", 4 * d * d * f);
    const ValueId w2 = g.param(p + "mlp.proj.w", 4 * d * d * f);
    const ValueId ln1 = g.op(p + "ln1", "layernorm", {x, g1}, act, us(act), {x}, b * t * 8);
    const ValueId qkv = g.op(p + "qkv", "linear", {ln1, wqkv}, 3 * act, us(3 * act), {ln1});
    const ValueId sc = g.op(p + "scores", "bmm", {qkv, qkv}, scores, us(scores), {qkv});
    const ValueId pr = g.op(p + "softmax", "softmax", {sc}, scores, us(scores), {kNoId});
    const ValueId pd =
        g.op(p + "attn.drop", "dropout", {pr}, scores, us(scores), {}, scores / 4, /*random=*/true);
    const ValueId ctx = g.op(p + "context", "bmm", {pd, qkv}, act, us(scores), {pd, qkv});
    const ValueId proj = g.op(p + "proj", "linear", {ctx, wo}, act, us(act), {ctx});
    const ValueId ad = g.op(p + "proj.drop", "dropout", {proj}, act, us(act), {}, act / 4, true);
    const ValueId h1 = g.op(p + "residual1", "add", {x, ad}, act, us(act));
    const ValueId ln2 = g.op(p + "ln2", "layernorm", {h1, g2}, act, us(act), {h1}, b * t * 8);
    const ValueId fc = g.op(p + "fc", "linear", {ln2, w1}, 4 * act, us(4 * act), {ln2});
    const ValueId ge = g.op(p + "gelu", "gelu", {fc}, 4 * act, us(4 * act), {fc});
    const ValueId fp = g.op(p + "mlp.proj", "linear", {ge, w2}, act, us(act), {ge});
    const ValueId md = g.op(p + "mlp.drop", "dropout", {fp}, act, us(act), {}, act / 4, true);
    x = g.op(p + "residual2", "add", {h1, md}, act, us(act));
  }
  // The chain part: linear, then an in-place ReLU, until one op is left for the loss.
  const std::int64_t hidden = b * t * 1024 * f;
  for (int c = 0; g.ops() < target - 1; ++c) {
    const std::string p = fmt::format("head{}.", c);
    if (g.ops() + 2 <= target - 1) {
      const ValueId w = g.param(p + "w", 1024 * 1024 * f);
      x = g.op(p + "linear", "linear", {x, w}, hidden, us(hidden), {x});
      x = g.in_place(p + "relu_", "relu_", x, us(hidden));
    } else {
      x = g.op(p + "tanh", "tanh", {x}, hidden, us(hidden), {kNoId});
    }
  }
  g.op("loss", "cross_entropy", {x, targets}, 4, us(hidden), {x}, b * t * 4);
  return std::move(g).build();
}

}  // namespace ckpt::testing
