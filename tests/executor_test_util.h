// Test helpers shared by the memory-plan and executor tests: schedules that recompute (written
// here, independent of every planner, and checked with simulate() by the tests that use them) and
// a random forward-graph generator with views, in-place ops, saved state and workspace.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ckpt/graph.h"
#include "ckpt/schedule.h"
#include "ckpt/training_graph.h"

namespace ckpt::testing {

// A value or op with the fields the tests set (the rest default), without designated initializers
// that leave members out (-Wmissing-field-initializers).
inline Value make_value(std::string name, std::int64_t bytes, ValueId alias_of = kNoId) {
  Value value;
  value.name = std::move(name);
  value.bytes = bytes;
  value.alias_of = alias_of;
  return value;
}

inline Op make_op(std::string name, std::string kind, std::vector<ValueId> inputs,
                  std::vector<ValueId> outputs, double fwd_time_us = 0, double bwd_time_us = 0) {
  Op op;
  op.name = std::move(name);
  op.kind = std::move(kind);
  op.inputs = std::move(inputs);
  op.outputs = std::move(outputs);
  op.fwd_time_us = fwd_time_us;
  op.bwd_time_us = bwd_time_us;
  return op;
}

// A forward node is kept when `keep_node[n]` is true: its outputs stay live from the forward pass
// to their last use. Every other forward value is freed after its last forward use and recomputed,
// from kept and resident values, before the backward node that reads it. With
// `forget_after_each_backward`, values recomputed for one backward node are recomputed again for
// the next (the most compute, the least memory); otherwise they stay until their last use.
// A view and its base (same storage, same version) are kept together.
inline Schedule recompute_schedule(const TrainingGraph& graph, std::vector<bool> keep_node,
                                   bool forget_after_each_backward) {
  Schedule schedule;
  const auto num_values = static_cast<std::size_t>(graph.num_values());
  // Values of one storage and version (a view and its base) are kept together: recomputing the
  // base of a kept view would need the storage the view holds.
  std::map<std::pair<ValueId, int>, bool> group_kept;
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const NodeId producer = graph.value(v).producer;
    if (graph.is_resident(v) || producer == kNoId || producer >= graph.num_forward_nodes())
      continue;
    group_kept[{graph.storage_root(v), graph.value(v).version}] |= keep_node[producer];
  }
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const NodeId producer = graph.value(v).producer;
    if (graph.is_resident(v) || producer == kNoId || producer >= graph.num_forward_nodes())
      continue;
    if (group_kept[{graph.storage_root(v), graph.value(v).version}]) keep_node[producer] = true;
  }
  std::vector<char> available(num_values, 0);  // live from the forward pass (kept, not killed)
  for (NodeId n = 0; n < graph.num_forward_nodes(); ++n) {
    schedule.steps.push_back(Step::compute(n, Phase::kForward));
    const Node& node = graph.node(n);
    for (ValueId out : node.outputs) available[static_cast<std::size_t>(out)] = keep_node[n];
    for (ValueId killed : node.kills) available[static_cast<std::size_t>(killed)] = 0;
  }
  std::vector<char> recomputed(num_values, 0);
  auto ensure = [&](auto&& self, ValueId v) -> void {
    const auto index = static_cast<std::size_t>(v);
    const TValueKind kind = graph.value(v).kind;
    if (graph.is_resident(v) || kind == TValueKind::kGradient) return;
    if (available[index] || recomputed[index]) return;
    const NodeId producer = graph.value(v).producer;
    const Node& node = graph.node(producer);
    for (ValueId in : node.inputs) self(self, in);
    schedule.steps.push_back(Step::compute(producer, Phase::kRecompute));
    for (ValueId out : node.outputs) recomputed[static_cast<std::size_t>(out)] = 1;
    for (ValueId killed : node.kills) {
      recomputed[static_cast<std::size_t>(killed)] = 0;
      available[static_cast<std::size_t>(killed)] = 0;
    }
  };
  for (NodeId n = graph.num_forward_nodes(); n < graph.num_nodes(); ++n) {
    if (forget_after_each_backward) std::fill(recomputed.begin(), recomputed.end(), 0);
    const Node& node = graph.node(n);
    for (ValueId in : node.inputs) ensure(ensure, in);
    for (ValueId acc : node.accumulates) ensure(ensure, acc);
    schedule.steps.push_back(Step::compute(n, Phase::kBackward));
  }
  insert_frees_after_last_use(graph, schedule);
  return schedule;
}

// Keeps every `period`-th forward node (period 1 keeps all: store-all with the same frees).
inline std::vector<bool> keep_every(const TrainingGraph& graph, int period) {
  std::vector<bool> keep(static_cast<std::size_t>(graph.num_forward_nodes()), false);
  for (int n = 0; n < graph.num_forward_nodes(); ++n) keep[n] = period > 0 && n % period == 0;
  return keep;
}

// A random forward graph of `num_ops` ops over a few params and inputs: plain ops with one to
// three inputs, views (0-time backward: the gradient passes through), in-place ops on values
// nothing else reads (from single-output ops), two-output ops, saved state, workspace and random
// (dropout-like) ops.
inline Graph random_graph(std::uint32_t seed, int num_ops) {
  std::mt19937 rng(seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  GraphBuilder b("random" + std::to_string(seed));
  std::vector<ValueId> usable;      // values later ops may read
  std::vector<char> read_or_saved;  // per value id: some op read it (so it may not be killed)
  std::vector<char> plain;          // per value id: an op's own storage (not a view, not in place)
  auto track = [&](ValueId v) {
    read_or_saved.resize(static_cast<std::size_t>(v) + 1, 0);
    plain.resize(static_cast<std::size_t>(v) + 1, 0);
    usable.push_back(v);
  };
  track(b.add_input("x", 64L * uniform(1, 64)));
  for (int p = 0; p < 3; ++p) track(b.add_param("w" + std::to_string(p), 64L * uniform(1, 16)));
  auto value_bytes = [&] { return 64L * uniform(1, 256) + uniform(0, 3) * 4; };
  ValueId last = usable.front();
  for (int i = 0; i < num_ops; ++i) {
    const std::string name = "op" + std::to_string(i);
    const int choice = uniform(0, 9);
    const ValueId fresh = last;
    if (choice == 0 && fresh > 3) {  // a view of the newest value
      const ValueId view = b.add_value(make_value(name, 0, fresh));
      b.add_op(make_op(name, "view", {fresh}, {view}));
      track(view);
      read_or_saved[fresh] = 1;
      last = view;
      continue;
    }
    if (choice == 1 && plain[fresh] && !read_or_saved[fresh]) {  // in place on it
      const ValueId out = b.add_value(make_value(name, 0, fresh));
      Op relu = make_op(name, "relu_", {fresh}, {out}, 1, 1);
      relu.saved = {out};
      relu.in_place = true;
      b.add_op(std::move(relu));
      usable.erase(std::find(usable.begin(), usable.end(), fresh));
      track(out);
      last = out;
      continue;
    }
    Op op = make_op(name, "op", {}, {}, uniform(1, 9), uniform(1, 9));
    op.inputs.push_back(last);
    const int extra = uniform(0, 2);
    for (int e = 0; e < extra; ++e) {
      const ValueId in = usable[static_cast<std::size_t>(uniform(0, int(usable.size()) - 1))];
      if (std::find(op.inputs.begin(), op.inputs.end(), in) == op.inputs.end()) {
        op.inputs.push_back(in);
      }
    }
    for (ValueId in : op.inputs) {
      read_or_saved[in] = 1;
      if (uniform(0, 1) == 1) op.saved.push_back(in);
    }
    const int outputs = uniform(0, 5) == 0 ? 2 : 1;
    for (int o = 0; o < outputs; ++o) {
      const ValueId out = b.add_value(make_value(name + (o == 0 ? "" : ".b"), value_bytes()));
      op.outputs.push_back(out);
      const bool saved = uniform(0, 2) == 0;
      if (saved) op.saved.push_back(out);
      track(out);
      read_or_saved[out] = saved ? 1 : 0;
      // Recomputing a two-output op would rewrite both: never overwrite one in place.
      plain[out] = outputs == 1 ? 1 : 0;
    }
    if (uniform(0, 3) == 0) op.saved_other_bytes = 16L * uniform(1, 64);
    if (uniform(0, 3) == 0) op.fwd_workspace_bytes = 100L * uniform(1, 50);
    if (uniform(0, 3) == 0) op.bwd_workspace_bytes = 100L * uniform(1, 50);
    op.random = uniform(0, 4) == 0;
    last = op.outputs.front();
    b.add_op(std::move(op));
  }
  // The loss reads the newest value and one more.
  const ValueId other = usable[static_cast<std::size_t>(uniform(0, int(usable.size()) - 1))];
  std::vector<ValueId> inputs = {last};
  if (other != last) inputs.push_back(other);
  b.add_simple_op("loss", "loss", inputs, 4, 1, 1, inputs);
  return std::move(b).build();
}

}  // namespace ckpt::testing
