// Gradient checks of every built-in CPU kernel: each op runs alone on host buffers, its backward
// (with L = sum(w * y) as the loss) is compared with central differences of the forward, and the
// accumulate flag is checked to add rather than overwrite.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "ckpt/cpu_backend.h"
#include "ckpt/executor.h"
#include "ckpt/executor_ops.h"
#include "ckpt/graph.h"

namespace ckpt {
namespace {

using Shape = std::vector<std::int64_t>;

// One op over inputs given as data; a tiny graph holds the shapes and attributes.
struct OpCase {
  std::string kind = {};
  std::vector<Shape> input_shapes = {};
  std::vector<bool> int_input = {};          // int32 (ids, targets) rather than float32
  std::vector<std::int32_t> int_range = {};  // exclusive upper bound of int inputs
  std::vector<int> same_as = {};             // -1, or an earlier input position it repeats
  Shape output_shape = {};
  std::map<std::string, double> attributes = {};
  std::int64_t saved_other_bytes = 0;
  bool output_aliases_input = false;  // view
};

class OpHarness {
 public:
  explicit OpHarness(const OpCase& c) : case_(c) {
    register_cpu_kernels(kernels_);
    GraphBuilder b("op");
    std::vector<ValueId> inputs;
    for (std::size_t i = 0; i < c.input_shapes.size(); ++i) {
      if (c.same_as.size() > i && c.same_as[i] >= 0) {
        inputs.push_back(inputs[static_cast<std::size_t>(c.same_as[i])]);
        continue;
      }
      const bool is_int = c.int_input.size() > i && c.int_input[i];
      Value value;
      value.name = "in" + std::to_string(i);
      value.bytes = element_count(c.input_shapes[i]) * 4;
      value.kind = ValueKind::kParam;
      value.shape = c.input_shapes[i];
      value.dtype = is_int ? "int32" : "float32";
      inputs.push_back(b.add_value(value));
    }
    Value output;
    output.name = "out";
    output.bytes = c.output_aliases_input ? 0 : element_count(c.output_shape) * 4;
    output.shape = c.output_shape;
    output.dtype = "float32";
    output.alias_of = c.output_aliases_input ? inputs[0] : kNoId;
    const ValueId out = b.add_value(output);
    Op op;
    op.name = "op";
    op.kind = c.kind;
    op.inputs = inputs;
    op.outputs = {out};
    op.attributes = c.attributes;
    op.saved_other_bytes = c.saved_other_bytes;
    b.add_op(op);
    graph_ = std::move(b).build();

    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    data_.resize(c.input_shapes.size());
    for (std::size_t i = 0; i < c.input_shapes.size(); ++i) {
      data_[i].resize(static_cast<std::size_t>(element_count(c.input_shapes[i])));
      for (float& x : data_[i]) {
        if (c.int_input.size() > i && c.int_input[i]) {
          const std::int32_t id =
              std::uniform_int_distribution<std::int32_t>(0, c.int_range[i] - 1)(rng);
          std::memcpy(&x, &id, 4);
        } else {
          x = normal(rng);
        }
      }
    }
    const std::int64_t out_count = element_count(c.output_shape);
    out_.resize(static_cast<std::size_t>(out_count));
    weights_.resize(static_cast<std::size_t>(out_count));
    for (float& w : weights_) w = normal(rng);
    saved_.resize(static_cast<std::size_t>(c.saved_other_bytes));
  }

  // L = sum(w * y) in double after a forward on the current data.
  double loss() {
    KernelContext ctx = context(Phase::kForward);
    kernels_.find(case_.kind)->forward(ctx);
    const float* y = output_pointer();
    double total = 0;
    for (std::size_t i = 0; i < weights_.size(); ++i) total += double(weights_[i]) * y[i];
    return total;
  }

  // Analytic gradients of every float input (one buffer per distinct input); `accumulate_into`
  // pre-fills them and sets the accumulate flags.
  std::vector<std::vector<float>> gradients(const std::vector<std::vector<float>>* prefill) {
    loss();  // forward: fills the output and the saved state
    std::vector<std::vector<float>> grads(data_.size());
    KernelContext ctx = context(Phase::kBackward);
    ctx.grad_outputs = {weights_.data()};
    for (std::size_t i = 0; i < data_.size(); ++i) {
      const int repeats = repeated(i);
      if (repeats >= 0) {
        ctx.grad_inputs.push_back(ctx.grad_inputs[static_cast<std::size_t>(repeats)]);
        ctx.accumulate.push_back(1);
        continue;
      }
      if (is_int(i)) {
        ctx.grad_inputs.push_back(nullptr);
        ctx.accumulate.push_back(0);
        continue;
      }
      grads[i].assign(data_[i].size(), 0.0f);
      if (prefill != nullptr) grads[i] = (*prefill)[i];
      ctx.grad_inputs.push_back(grads[i].data());
      ctx.accumulate.push_back(prefill != nullptr ? 1 : 0);
    }
    kernels_.find(case_.kind)->backward(ctx);
    return grads;
  }

  // Checks analytic against central differences on a sample of every float input's elements.
  void check(double tolerance = 2e-2) {
    const auto analytic = gradients(nullptr);
    for (std::size_t i = 0; i < data_.size(); ++i) {
      if (is_int(i) || repeated(i) >= 0) continue;
      const std::size_t count = data_[i].size();
      const std::size_t stride = std::max<std::size_t>(1, count / 23);
      for (std::size_t e = 0; e < count; e += stride) {
        const float saved = data_[i][e];
        if (std::abs(saved) < 0.05f) continue;  // too close to relu's kink for a difference
        const float eps = 1e-2f * std::max(1.0f, std::abs(saved));
        data_[i][e] = saved + eps;
        const double plus = loss();
        data_[i][e] = saved - eps;
        const double minus = loss();
        data_[i][e] = saved;
        const double numeric = (plus - minus) / (2.0 * eps);
        const double got = analytic[i][e];
        EXPECT_NEAR(got, numeric, tolerance * std::max(1.0, std::abs(numeric)))
            << case_.kind << " input " << i << " element " << e;
      }
    }
    // Accumulating adds the same gradient onto what is there (a GEMM adds term by term onto
    // the old value, so the rounding differs slightly from 2x).
    const auto twice = gradients(&analytic);
    for (std::size_t i = 0; i < data_.size(); ++i) {
      for (std::size_t e = 0; e < analytic[i].size(); ++e) {
        ASSERT_NEAR(twice[i][e], 2 * analytic[i][e], 1e-5 * std::max(1.0f, std::abs(twice[i][e])))
            << case_.kind << " input " << i;
      }
    }
  }

 private:
  bool is_int(std::size_t i) const { return case_.int_input.size() > i && case_.int_input[i]; }
  int repeated(std::size_t i) const { return case_.same_as.size() > i ? case_.same_as[i] : -1; }
  float* output_pointer() { return case_.output_aliases_input ? data_[0].data() : out_.data(); }

  KernelContext context(Phase phase) {
    KernelContext ctx;
    ctx.graph = &graph_;
    ctx.op = &graph_.op(0);
    ctx.op_id = 0;
    ctx.phase = phase;
    for (std::size_t i = 0; i < data_.size(); ++i) {
      const int r = repeated(i);
      ctx.inputs.push_back(data_[r >= 0 ? static_cast<std::size_t>(r) : i].data());
    }
    ctx.outputs = {output_pointer()};
    ctx.saved_state = saved_.empty() ? nullptr : saved_.data();
    ctx.saved_state_bytes = static_cast<std::int64_t>(saved_.size());
    ctx.seed = 1234;
    return ctx;
  }

  OpCase case_;
  KernelRegistry kernels_;
  Graph graph_;
  std::vector<std::vector<float>> data_;
  std::vector<float> out_, weights_;
  std::vector<std::uint8_t> saved_;
};

TEST(CpuOpsTest, LinearWithBias) {
  OpHarness({.kind = "linear", .input_shapes = {{2, 3, 5}, {4, 5}, {4}}, .output_shape = {2, 3, 4}})
      .check();
}

TEST(CpuOpsTest, LinearWithoutBias) {
  OpHarness({.kind = "linear", .input_shapes = {{6, 5}, {7, 5}}, .output_shape = {6, 7}}).check();
}

// GPT-2's two attention GEMMs on a fused qkv [B=2, T=3, 3C] with C=4, two heads of D=2.
TEST(CpuOpsTest, BmmAttentionScoresOnHeadStridedSlicesOfOneInput) {
  OpHarness({.kind = "bmm",
             .input_shapes = {{2, 3, 12}, {2, 3, 12}},
             .same_as = {-1, 0},
             .output_shape = {2, 2, 3, 3},
             .attributes = {{"batch", 2},
                            {"heads", 2},
                            {"m", 3},
                            {"n", 3},
                            {"k", 2},
                            {"trans_b", 1},
                            {"alpha", 0.7},
                            {"a_ld", 12},
                            {"a_head_stride", 2},
                            {"a_batch_stride", 36},
                            {"b_offset", 4},
                            {"b_ld", 12},
                            {"b_head_stride", 2},
                            {"b_batch_stride", 36}}})
      .check();
}

TEST(CpuOpsTest, BmmAttentionContextWritesHeadsInterleaved) {
  OpHarness({.kind = "bmm",
             .input_shapes = {{2, 2, 3, 3}, {2, 3, 12}},
             .output_shape = {2, 3, 4},
             .attributes = {{"batch", 2},
                            {"heads", 2},
                            {"m", 3},
                            {"n", 2},
                            {"k", 3},
                            {"b_offset", 8},
                            {"b_ld", 12},
                            {"b_head_stride", 2},
                            {"b_batch_stride", 36},
                            {"c_ld", 4},
                            {"c_head_stride", 2},
                            {"c_batch_stride", 12}}})
      .check();
}

TEST(CpuOpsTest, BmmTransposedA) {
  OpHarness({.kind = "bmm",
             .input_shapes = {{3, 4, 2}, {3, 4, 5}},
             .output_shape = {3, 2, 5},
             .attributes = {{"batch", 3}, {"m", 2}, {"n", 5}, {"k", 4}, {"trans_a", 1}}})
      .check();
}

TEST(CpuOpsTest, Elementwise) {
  OpHarness({.kind = "add", .input_shapes = {{3, 4}, {3, 4}}, .output_shape = {3, 4}}).check();
  OpHarness({.kind = "gelu", .input_shapes = {{3, 4}}, .output_shape = {3, 4}}).check();
  OpHarness({.kind = "relu", .input_shapes = {{3, 4}}, .output_shape = {3, 4}}).check();
  OpHarness({.kind = "transpose", .input_shapes = {{2, 3, 4}}, .output_shape = {2, 4, 3}}).check();
}

TEST(CpuOpsTest, LayerNorm) {
  OpHarness({.kind = "layernorm",
             .input_shapes = {{2, 3, 6}, {6}, {6}},
             .output_shape = {2, 3, 6},
             .attributes = {{"eps", 1e-5}},
             .saved_other_bytes = 2 * 6 * 4})
      .check();
}

TEST(CpuOpsTest, CausalSoftmax) {
  OpHarness({.kind = "softmax",
             .input_shapes = {{2, 2, 4, 4}},
             .output_shape = {2, 2, 4, 4},
             .attributes = {{"causal", 1}}})
      .check();
  OpHarness({.kind = "softmax", .input_shapes = {{3, 5}}, .output_shape = {3, 5}}).check();
}

TEST(CpuOpsTest, EmbeddingWithPositions) {
  OpHarness({.kind = "embedding",
             .input_shapes = {{2, 3}, {5, 4}, {6, 4}},
             .int_input = {true, false, false},
             .int_range = {5, 0, 0},
             .output_shape = {2, 3, 4}})
      .check();
}

TEST(CpuOpsTest, CrossEntropy) {
  OpHarness({.kind = "cross_entropy",
             .input_shapes = {{6, 7}, {6}},
             .int_input = {false, true},
             .int_range = {0, 7},
             .output_shape = {1},
             .saved_other_bytes = 6 * 4})
      .check();
}

TEST(CpuOpsTest, DropoutWithAFixedSeed) {
  OpHarness({.kind = "dropout",
             .input_shapes = {{8, 16}},
             .output_shape = {8, 16},
             .attributes = {{"p", 0.25}},
             .saved_other_bytes = 8 * 16})
      .check();
}

TEST(CpuOpsTest, ViewSharesTheInputsBuffer) {
  OpHarness({.kind = "view",
             .input_shapes = {{2, 6}},
             .output_shape = {3, 4},
             .output_aliases_input = true})
      .check();
}

}  // namespace
}  // namespace ckpt
