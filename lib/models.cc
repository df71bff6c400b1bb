// The MLP and GPT-2 forward graphs, and the deterministic initial state they train from. Each op
// saves exactly what its backward kernel reads (docs/executor.md), so the planner charges the
// memory the executor really keeps.
#include "ckpt/models.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "ckpt/error.h"
#include "ckpt/executor.h"
#include "ckpt/executor_ops.h"
#include "ckpt/kernel_random.h"

namespace ckpt {

namespace {

using Shape = std::vector<std::int64_t>;

// Nominal times until measured ones replace them: 1 us per 10 MFLOP for GEMMs, 1 us per 1 MB moved
// for memory-bound ops; backward twice the forward.
constexpr double kFlopsPerUs = 1e7;
constexpr double kBytesPerUs = 1e6;

// GraphBuilder with shapes: every value gets a shape, a dtype and bytes that agree.
class ModelBuilder {
 public:
  explicit ModelBuilder(std::string name) : builder_(std::move(name)) {}

  ValueId input(std::string name, Shape shape, std::string dtype) {
    const std::int64_t bytes = element_count(shape) * 4;
    return builder_.add_value(Value{.name = std::move(name),
                                    .bytes = bytes,
                                    .kind = ValueKind::kInput,
                                    .shape = std::move(shape),
                                    .dtype = std::move(dtype)});
  }
  ValueId param(std::string name, Shape shape) {
    const std::int64_t bytes = element_count(shape) * 4;
    return builder_.add_value(Value{.name = std::move(name),
                                    .bytes = bytes,
                                    .kind = ValueKind::kParam,
                                    .shape = std::move(shape),
                                    .dtype = "float32"});
  }
  ValueId activation(std::string name, Shape shape, ValueId alias_of = kNoId) {
    const std::int64_t bytes = alias_of == kNoId ? element_count(shape) * 4 : 0;
    return builder_.add_value(Value{.name = std::move(name),
                                    .bytes = bytes,
                                    .kind = ValueKind::kActivation,
                                    .shape = std::move(shape),
                                    .dtype = "float32",
                                    .alias_of = alias_of});
  }

  // Adds an op producing one new activation of `shape`; `saved` may name the output as kNoId.
  ValueId op(std::string name, std::string_view kind, std::vector<ValueId> inputs, Shape shape,
             std::vector<ValueId> saved, double fwd_time_us,
             std::map<std::string, double> attributes = {}, std::int64_t saved_other_bytes = 0,
             bool random = false) {
    const ValueId out = activation(name, std::move(shape));
    for (ValueId& id : saved) {
      if (id == kNoId) id = out;
    }
    builder_.add_op(Op{.name = std::move(name),
                       .kind = std::string(kind),
                       .inputs = std::move(inputs),
                       .outputs = {out},
                       .fwd_time_us = fwd_time_us,
                       .bwd_time_us = 2 * fwd_time_us,
                       .saved = std::move(saved),
                       .saved_other_bytes = saved_other_bytes,
                       .random = random,
                       .attributes = std::move(attributes)});
    return out;
  }

  // An op whose output is `alias` of its input (a view, or an in-place result).
  ValueId alias_op(std::string name, std::string_view kind, ValueId of, Shape shape, bool in_place,
                   double fwd_time_us) {
    const ValueId out = activation(name, std::move(shape), of);
    Op op;
    op.name = std::move(name);
    op.kind = std::string(kind);
    op.inputs = {of};
    op.outputs = {out};
    if (in_place) {
      // relu_: its backward reads the output and takes time (so the gradient is not passed
      // through as a view; it is a new buffer).
      op.in_place = true;
      op.fwd_time_us = fwd_time_us;
      op.bwd_time_us = 2 * fwd_time_us;
      op.saved = {out};
    }
    builder_.add_op(std::move(op));
    return out;
  }

  Graph build(ValueId loss) && {
    builder_.set_loss(loss);
    return std::move(builder_).build();
  }

 private:
  GraphBuilder builder_;
};

double gemm_us(std::int64_t m, std::int64_t n, std::int64_t k) {
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) /
         kFlopsPerUs;
}
double memory_us(std::int64_t elements) {
  return 3.0 * 4.0 * static_cast<double>(elements) / kBytesPerUs;
}

void require_positive(std::int64_t value, const char* name) {
  if (value > 0) return;
  throw Error(ErrorKind::kUsage, fmt::format("model size {} = {} must be positive", name, value));
}

std::map<std::string, double> dropout_attributes(double p) { return {{"p", p}}; }

// Attributes are doubles; sizes convert exactly below 2^53.
double num(std::int64_t value) { return static_cast<double>(value); }

}  // namespace

Graph build_mlp(const MlpOptions& options) {
  require_positive(options.batch, "batch");
  require_positive(options.input_features, "input_features");
  require_positive(options.classes, "classes");
  if (options.dropout < 0 || options.dropout >= 1) {
    throw Error(ErrorKind::kUsage, fmt::format("mlp dropout {} is not in [0, 1)", options.dropout));
  }
  const std::int64_t batch = options.batch;
  ModelBuilder b("mlp");
  const ValueId x = b.input("x", {batch, options.input_features}, "float32");
  const ValueId targets = b.input("targets", {batch}, "int32");
  ValueId h = x;
  std::int64_t width = options.input_features;
  auto linear = [&](const std::string& name, ValueId in, std::int64_t out_features) {
    const ValueId w = b.param(name + ".weight", {out_features, width});
    const ValueId bias = b.param(name + ".bias", {out_features});
    const ValueId y = b.op(name, ops::kLinear, {in, w, bias}, {batch, out_features}, {in},
                           gemm_us(batch, out_features, width));
    width = out_features;
    return y;
  };
  for (std::size_t l = 0; l < options.hidden_features.size(); ++l) {
    require_positive(options.hidden_features[l], "hidden_features");
    const std::string prefix = fmt::format("fc{}", l);
    h = linear(prefix, h, options.hidden_features[l]);
    const Shape shape = {batch, width};
    if (options.in_place_relu) {
      h = b.alias_op(prefix + ".relu_", ops::kRelu, h, shape, /*in_place=*/true,
                     memory_us(batch * width));
    } else {
      h = b.op(prefix + ".relu", ops::kRelu, {h}, shape, {kNoId}, memory_us(batch * width));
    }
    if (options.dropout > 0) {
      h = b.op(prefix + ".dropout", ops::kDropout, {h}, shape, {}, memory_us(batch * width),
               dropout_attributes(options.dropout), batch * width, /*random=*/true);
    }
  }
  const ValueId logits = linear("head", h, options.classes);
  const ValueId loss = b.op("loss", ops::kCrossEntropy, {logits, targets}, {1}, {logits},
                            memory_us(batch * options.classes), {}, batch * 4);
  return std::move(b).build(loss);
}

Graph build_gpt2(const Gpt2Options& o) {
  require_positive(o.layers, "layers");
  require_positive(o.d_model, "d_model");
  require_positive(o.heads, "heads");
  require_positive(o.seq, "seq");
  require_positive(o.batch, "batch");
  require_positive(o.vocab, "vocab");
  if (o.d_model % o.heads != 0) {
    throw Error(ErrorKind::kUsage,
                fmt::format("gpt2: d_model {} is not divisible by heads {}", o.d_model, o.heads));
  }
  if (o.seq > o.positions) {
    throw Error(ErrorKind::kUsage,
                fmt::format("gpt2: seq {} exceeds the {} position embeddings", o.seq, o.positions));
  }
  if (o.dropout < 0 || o.dropout >= 1) {
    throw Error(ErrorKind::kUsage, fmt::format("gpt2 dropout {} is not in [0, 1)", o.dropout));
  }
  const std::int64_t B = o.batch, T = o.seq, C = o.d_model, H = o.heads, D = C / H, V = o.vocab;
  const std::int64_t rows = B * T;
  const Shape btc = {B, T, C};
  ModelBuilder b(fmt::format("gpt2-L{}-d{}-h{}-b{}x{}", o.layers, C, H, B, T));
  const ValueId ids = b.input("ids", {B, T}, "int32");
  const ValueId targets = b.input("targets", {rows}, "int32");
  const ValueId wte = b.param("wte", {V, C});
  const ValueId wpe = b.param("wpe", {o.positions, C});

  auto dropout = [&](const std::string& name, ValueId in, const Shape& shape) {
    if (o.dropout <= 0) return in;
    const std::int64_t elements = element_count(shape);
    return b.op(name, ops::kDropout, {in}, shape, {}, memory_us(elements),
                dropout_attributes(o.dropout), elements, /*random=*/true);
  };
  auto layernorm = [&](const std::string& name, ValueId in) {
    const ValueId gain = b.param(name + ".weight", {C});
    const ValueId shift = b.param(name + ".bias", {C});
    return b.op(name, ops::kLayerNorm, {in, gain, shift}, btc, {in}, memory_us(rows * C),
                {{"eps", o.layernorm_eps}}, rows * 8);
  };
  auto linear = [&](const std::string& name, ValueId in, std::int64_t in_features,
                    std::int64_t out_features) {
    const ValueId w = b.param(name + ".weight", {out_features, in_features});
    const ValueId bias = b.param(name + ".bias", {out_features});
    return b.op(name, ops::kLinear, {in, w, bias}, {B, T, out_features}, {in},
                gemm_us(rows, out_features, in_features));
  };

  ValueId x = b.op("embedding", ops::kEmbedding, {ids, wte, wpe}, btc, {}, memory_us(rows * C));
  x = dropout("embedding.dropout", x, btc);
  for (std::int64_t l = 0; l < o.layers; ++l) {
    const std::string p = fmt::format("h{}", l);
    // Attention: q, k and v are head-strided slices of qkv [B, T, 3C]; head h of q starts at
    // column h*D, of k at C + h*D, of v at 2C + h*D.
    const ValueId a = layernorm(p + ".ln_1", x);
    const ValueId qkv = linear(p + ".attn.c_attn", a, C, 3 * C);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    const ValueId scores = b.op(p + ".attn.scores", ops::kBmm, {qkv, qkv}, {B, H, T, T}, {qkv},
                                B * H * gemm_us(T, T, D),
                                {{"batch", num(B)},
                                 {"heads", num(H)},
                                 {"m", num(T)},
                                 {"n", num(T)},
                                 {"k", num(D)},
                                 {"trans_b", 1},
                                 {"alpha", scale},
                                 {"a_ld", num(3 * C)},
                                 {"a_head_stride", num(D)},
                                 {"a_batch_stride", num(T * 3 * C)},
                                 {"b_offset", num(C)},
                                 {"b_ld", num(3 * C)},
                                 {"b_head_stride", num(D)},
                                 {"b_batch_stride", num(T * 3 * C)}});
    const ValueId probs = b.op(p + ".attn.softmax", ops::kSoftmax, {scores}, {B, H, T, T}, {kNoId},
                               memory_us(B * H * T * T), {{"causal", 1}});
    const ValueId dropped = dropout(p + ".attn.attn_dropout", probs, {B, H, T, T});
    const ValueId y = b.op(p + ".attn.context", ops::kBmm, {dropped, qkv}, btc, {dropped, qkv},
                           B * H * gemm_us(T, D, T),
                           {{"batch", num(B)},
                            {"heads", num(H)},
                            {"m", num(T)},
                            {"n", num(D)},
                            {"k", num(T)},
                            {"b_offset", num(2 * C)},
                            {"b_ld", num(3 * C)},
                            {"b_head_stride", num(D)},
                            {"b_batch_stride", num(T * 3 * C)},
                            {"c_ld", num(C)},
                            {"c_head_stride", num(D)},
                            {"c_batch_stride", num(T * C)}});
    const ValueId proj = linear(p + ".attn.c_proj", y, C, C);
    const ValueId attn_out = dropout(p + ".attn.resid_dropout", proj, btc);
    x = b.op(p + ".attn.residual", ops::kAdd, {x, attn_out}, btc, {}, memory_us(rows * C));
    // MLP.
    const ValueId m = layernorm(p + ".ln_2", x);
    const ValueId fc = linear(p + ".mlp.c_fc", m, C, 4 * C);
    const ValueId act =
        b.op(p + ".mlp.gelu", ops::kGelu, {fc}, {B, T, 4 * C}, {fc}, memory_us(rows * 4 * C));
    const ValueId down = linear(p + ".mlp.c_proj", act, 4 * C, C);
    const ValueId mlp_out = dropout(p + ".mlp.dropout", down, btc);
    x = b.op(p + ".mlp.residual", ops::kAdd, {x, mlp_out}, btc, {}, memory_us(rows * C));
  }
  const ValueId final_norm = layernorm("ln_f", x);
  // The LM head is tied: logits = ln_f(x) wte^T, with no bias.
  const ValueId logits = b.op("lm_head", ops::kLinear, {final_norm, wte}, {B, T, V}, {final_norm},
                              gemm_us(rows, V, C));
  const ValueId flat = b.alias_op("lm_head.flatten", ops::kView, logits, {rows, V},
                                  /*in_place=*/false, 0);
  const ValueId loss = b.op("loss", ops::kCrossEntropy, {flat, targets}, {1}, {flat},
                            memory_us(rows * V), {}, rows * 4);
  return std::move(b).build(loss);
}

// ---------------------------------------------------------------------------------------------
// Initial state

namespace {

// Uniform in [0, 1) from 53 hashed bits.
double uniform01(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return static_cast<double>(mix64(mix64(seed ^ mix64(stream)) + index) >> 11) * 0x1.0p-53;
}

float normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t index, double stddev) {
  // Box-Muller on two hashed uniforms; 1 - u keeps the logarithm finite.
  const double u1 = 1.0 - uniform01(seed, stream, 2 * index);
  const double u2 = uniform01(seed, stream, 2 * index + 1);
  return static_cast<float>(stddev * std::sqrt(-2.0 * std::log(u1)) *
                            std::cos(6.283185307179586 * u2));
}

enum class Init { kNormalWeight, kOne, kZero, kNormalInput, kIndex };

// How a resident value is initialised, from the ops that read it.
Init init_of(const Graph& graph, ValueId v, std::int64_t& index_range) {
  const Value& value = graph.value(v);
  if (value.dtype == "int32") {
    index_range = 1;
    for (const Op& op : graph.ops()) {
      if (op.kind == ops::kEmbedding && op.inputs[0] == v) {
        index_range = graph.value(op.inputs[1]).shape.at(0);
      }
      if (op.kind == ops::kCrossEntropy && op.inputs[1] == v) {
        index_range = graph.value(op.inputs[0]).shape.back();
      }
    }
    return Init::kIndex;
  }
  if (value.kind == ValueKind::kInput) return Init::kNormalInput;
  for (const Op& op : graph.ops()) {
    for (std::size_t i = 0; i < op.inputs.size(); ++i) {
      if (op.inputs[i] != v) continue;
      if (op.kind == ops::kLayerNorm) return i == 1 ? Init::kOne : Init::kZero;
      if (op.kind == ops::kLinear && i == 2) return Init::kZero;
    }
  }
  return Init::kNormalWeight;
}

}  // namespace

void initialize_model_state(const Graph& graph, ResidentState& state, std::uint64_t seed) {
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const Value& value = graph.value(v);
    if (value.kind == ValueKind::kActivation || value.alias_of != kNoId) continue;
    const std::int64_t count = element_count(value.shape);
    std::int64_t range = 1;
    const Init init = init_of(graph, v, range);
    const auto stream = static_cast<std::uint64_t>(v);
    if (init == Init::kIndex) {
      std::vector<std::int32_t> host(static_cast<std::size_t>(count));
      for (std::int64_t i = 0; i < count; ++i) {
        const double u = uniform01(seed, stream, static_cast<std::uint64_t>(i));
        host[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(
            std::min<std::int64_t>(range - 1, static_cast<std::int64_t>(u * range)));
      }
      state.upload(v, host.data(), count * 4);
      continue;
    }
    std::vector<float> host(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
      const auto index = static_cast<std::uint64_t>(i);
      float x = 0;
      switch (init) {
        case Init::kNormalWeight:
          x = normal(seed, stream, index, 0.02);
          break;
        case Init::kNormalInput:
          x = normal(seed, stream, index, 1.0);
          break;
        case Init::kOne:
          x = 1;
          break;
        case Init::kZero:
        case Init::kIndex:
          x = 0;
          break;
      }
      host[static_cast<std::size_t>(i)] = x;
    }
    state.upload(v, host.data(), count * 4);
  }
}

}  // namespace ckpt
