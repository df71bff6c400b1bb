// Random forward graphs for property tests: chains and DAGs built with GraphBuilder and derived,
// with random bytes, times and saved sets, in-place and view ops, side-effecting and random ops,
// multi-output ops, saved state and workspace. Every graph it returns passes validation and its
// store-all schedule passes the simulator. Header-only so any test can include it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "ckpt/graph.h"
#include "ckpt/schedule.h"
#include "ckpt/simulator.h"
#include "ckpt/training_graph.h"

namespace ckpt::testing {

struct RandomGraphOptions {
  int num_ops = 8;
  // Chain: each op reads the previous op's (first) output. DAG: each op reads one or two live
  // values, biased towards recent ones, so that some cuts are crossed by several storages.
  bool chain = true;
  double in_place_probability = 0.12;
  double view_probability = 0.10;
  double side_effect_probability = 0.06;
  double random_probability = 0.10;
  double multi_output_probability = 0.12;
  double saved_state_probability = 0.10;
  double workspace_probability = 0.20;
  double non_differentiable_probability = 0.04;
  double param_probability = 0.5;  // an op also reads a parameter (so gradients flow)
  std::int64_t max_bytes = 64;
  double max_time_us = 10;
};

namespace detail {

inline std::int64_t random_bytes(std::mt19937& rng, std::int64_t max_bytes) {
  return std::uniform_int_distribution<std::int64_t>(1, max_bytes)(rng);
}

inline double random_time(std::mt19937& rng, double max_time_us) {
  // Integral times keep sums exact, so tests can compare costs with ==.
  return static_cast<double>(
      std::uniform_int_distribution<int>(0, static_cast<int>(max_time_us))(rng));
}

inline bool chance(std::mt19937& rng, double p) {
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

}  // namespace detail

// One random forward graph. Values read later are never overwritten in place, nor saved when an
// in-place op later overwrites them, so plain backpropagation is always a valid schedule.
inline Graph random_forward_graph(std::mt19937& rng, const RandomGraphOptions& options,
                                  const std::string& name = "random") {
  using detail::chance;
  using detail::random_bytes;
  using detail::random_time;
  GraphBuilder b(name);
  const ValueId x = b.add_input("x", random_bytes(rng, options.max_bytes));
  std::vector<ValueId> params;
  for (int i = 0; i < 3; ++i) {
    params.push_back(b.add_param("w" + std::to_string(i), random_bytes(rng, options.max_bytes)));
  }
  // Values ops may read: not overwritten in place. `viewed` marks values with views (never
  // overwritten: the views would go stale); `saved` marks values a backward reads.
  std::vector<ValueId> live = {x};
  std::vector<char> viewed(1024, 0), saved(1024, 0), overwritable(1024, 0);
  auto mark = [](std::vector<char>& flags, ValueId v) {
    if (static_cast<std::size_t>(v) >= flags.size())
      flags.resize(static_cast<std::size_t>(v) * 2 + 1);
    flags[static_cast<std::size_t>(v)] = 1;
  };
  auto flag = [](const std::vector<char>& flags, ValueId v) {
    return static_cast<std::size_t>(v) < flags.size() && flags[static_cast<std::size_t>(v)] != 0;
  };
  ValueId last = x;
  for (int o = 0; o < options.num_ops; ++o) {
    const std::string op_name = "op" + std::to_string(o);
    const bool last_op = o + 1 == options.num_ops;
    // Inputs.
    std::vector<ValueId> inputs;
    if (options.chain || live.size() == 1) {
      inputs.push_back(last);
    } else {
      const int count = chance(rng, 0.4) ? 2 : 1;
      for (int k = 0; k < count; ++k) {
        // Biased to recent values: pick from the last few live values.
        const std::size_t window = std::min<std::size_t>(live.size(), 4);
        const std::size_t pick =
            live.size() - 1 - std::uniform_int_distribution<std::size_t>(0, window - 1)(rng);
        const ValueId v = live[pick];
        if (std::find(inputs.begin(), inputs.end(), v) == inputs.end()) inputs.push_back(v);
      }
    }
    // In place: overwrite the (single activation) input when nothing else will need it.
    const ValueId target = inputs.front();
    const bool can_overwrite = !last_op && inputs.size() == 1 && target != x &&
                               flag(overwritable, target) && !flag(viewed, target) &&
                               !flag(saved, target) && (options.chain || target == live.back());
    if (can_overwrite && chance(rng, options.in_place_probability)) {
      const ValueId out = b.add_value(Value{.name = op_name, .bytes = 0, .alias_of = target});
      Op op{.name = op_name,
            .kind = "relu_",
            .inputs = {target},
            .outputs = {out},
            .fwd_time_us = random_time(rng, options.max_time_us),
            .bwd_time_us = random_time(rng, options.max_time_us) + 1,
            .saved = chance(rng, 0.6) ? std::vector<ValueId>{out} : std::vector<ValueId>{},
            .side_effecting = chance(rng, options.side_effect_probability),
            .in_place = true};
      for (ValueId s : op.saved) mark(saved, s);
      b.add_op(op);
      std::erase(live, target);
      live.push_back(out);
      mark(overwritable, out);
      last = out;
      continue;
    }
    // A view: no memory, no time, gradient passed through.
    if (!last_op && inputs.size() == 1 && target != x && chance(rng, options.view_probability)) {
      const ValueId out = b.add_value(Value{.name = op_name, .bytes = 0, .alias_of = target});
      b.add_op(Op{.name = op_name, .kind = "view", .inputs = {target}, .outputs = {out}});
      mark(viewed, target);
      live.push_back(out);
      last = out;
      continue;
    }
    if (!last_op && chance(rng, options.param_probability)) {
      inputs.push_back(params[std::uniform_int_distribution<std::size_t>(0, 2)(rng)]);
    }
    if (o == 0) inputs.push_back(params[0]);  // gradients flow from the first op on
    Op op;
    op.name = op_name;
    op.kind = "op";
    op.inputs = inputs;
    op.fwd_time_us = random_time(rng, options.max_time_us);
    op.bwd_time_us = random_time(rng, options.max_time_us);
    const int outputs = !last_op && chance(rng, options.multi_output_probability) ? 2 : 1;
    for (int k = 0; k < outputs; ++k) {
      const std::int64_t bytes = last_op ? 4 : random_bytes(rng, options.max_bytes);
      op.outputs.push_back(
          b.add_value(Value{.name = op_name + (k == 0 ? "" : ".aux"), .bytes = bytes}));
    }
    for (ValueId in : inputs) {
      if (chance(rng, 0.5)) op.saved.push_back(in);
    }
    for (ValueId out : op.outputs) {
      if (chance(rng, 0.4)) op.saved.push_back(out);
    }
    for (ValueId s : op.saved) mark(saved, s);
    if (chance(rng, options.saved_state_probability)) {
      op.saved_other_bytes = random_bytes(rng, options.max_bytes / 2 + 1);
    }
    if (chance(rng, options.workspace_probability)) {
      op.fwd_workspace_bytes = random_bytes(rng, options.max_bytes);
      op.bwd_workspace_bytes = random_bytes(rng, options.max_bytes);
    }
    op.side_effecting = chance(rng, options.side_effect_probability);
    op.random = chance(rng, options.random_probability);
    op.differentiable = last_op || !chance(rng, options.non_differentiable_probability);
    b.add_op(op);
    for (ValueId out : op.outputs) {
      live.push_back(out);
      mark(overwritable, out);
    }
    // The second output of a multi-output op is read by a later op now and then.
    last = op.outputs.front();
  }
  b.set_loss(last);
  return std::move(b).build();
}

// A derived training graph whose store-all schedule the simulator accepts.
inline TrainingGraph random_training_graph(std::mt19937& rng, const RandomGraphOptions& options,
                                           const std::string& name = "random") {
  for (;;) {
    TrainingGraph graph = derive_training_graph(random_forward_graph(rng, options, name));
    if (simulate(graph, store_all_schedule(graph)).valid) return graph;
  }
}

// The same graph read as a joint graph (derived() == false), as the Checkmate reader makes it.
inline TrainingGraph as_joint_graph(const TrainingGraph& graph) {
  return TrainingGraph(graph.name(), graph.values(), graph.nodes(), /*derived=*/false);
}

}  // namespace ckpt::testing
