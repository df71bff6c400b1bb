// Choice trees: the figures of their two options, their evaluation (peak and time from the
// measured pieces, by the same formulas the DP uses) and their emission as a schedule.
#include <algorithm>
#include <cassert>

#include "planner_internal.h"

namespace ckpt::planning {

namespace {

bool first_run(const ChainModel& model, int t) { return t + 1 == model.num_blocks(); }

const BlockModel& block_at(const ChainModel& model, int b) {
  return model.blocks[static_cast<std::size_t>(b)];
}

TreeValue evaluate_node(const ChainModel& model, const Tree& tree, int index) {
  if (index < 0) return {};
  const TreeNode& node = tree.nodes[static_cast<std::size_t>(index)];
  TreeValue value;
  if (node.kind == TreeNode::Kind::kAll) {
    const AllTerms terms = all_terms(model, node.s, node.t, node.hold, node.mode);
    if (!terms.valid) return {};
    value.peak_bytes = std::max(terms.before_peak, terms.after_peak);
    value.time_us = terms.time_us;
    if (node.s < node.t) {
      const TreeValue sub = evaluate_node(model, tree, node.first);
      const TreeNode& child = tree.nodes[static_cast<std::size_t>(node.first)];
      if (!sub.valid || child.s != node.s + 1 || child.t != node.t ||
          child.hold != terms.sub_hold) {
        return {};
      }
      value.peak_bytes = std::max(value.peak_bytes, add_bytes(sub.peak_bytes, terms.held_bytes));
      value.time_us += sub.time_us;
    }
    value.valid = true;
    return value;
  }
  const SweepTerms sweep = sweep_terms(model, node.s, node.split, node.t);
  if (!sweep.valid || node.first < 0 || node.second < 0) return {};
  const TreeValue later = evaluate_node(model, tree, node.first);
  const TreeValue earlier = evaluate_node(model, tree, node.second);
  const TreeNode& later_node = tree.nodes[static_cast<std::size_t>(node.first)];
  const TreeNode& earlier_node = tree.nodes[static_cast<std::size_t>(node.second)];
  if (!later.valid || !earlier.valid) return {};
  if (later_node.s != node.split || later_node.t != node.t || later_node.hold) return {};
  if (earlier_node.s != node.s || earlier_node.t != node.split - 1 ||
      earlier_node.hold != node.hold) {
    return {};
  }
  value.valid = true;
  value.peak_bytes =
      std::max({sweep.peak, add_bytes(later.peak_bytes, block_at(model, node.s).input_bytes),
                earlier.peak_bytes});
  value.time_us = sweep.time_us + later.time_us + earlier.time_us;
  return value;
}

void emit_node(const ChainModel& model, const Tree& tree, int index, PieceWriter& writer,
               std::vector<Step>& steps) {
  const TreeNode& node = tree.nodes[static_cast<std::size_t>(index)];
  const bool first = first_run(model, node.t);
  if (node.kind == TreeNode::Kind::kAll) {
    const AllTerms terms = all_terms(model, node.s, node.t, node.hold, node.mode);
    assert(terms.valid);
    writer.append({.kind = PieceSpec::Kind::kForward,
                   .block = node.s,
                   .mode = node.mode,
                   .first_run = first,
                   .consume_input = terms.consume_input,
                   .output_needed = terms.output_needed},
                  steps);
    if (node.s < node.t) emit_node(model, tree, node.first, writer, steps);
    writer.append({.kind = PieceSpec::Kind::kBackward,
                   .block = node.s,
                   .mode = node.mode,
                   .variant = terms.variant},
                  steps);
    return;
  }
  for (int k = node.s; k < node.split; ++k) {
    writer.append({.kind = PieceSpec::Kind::kForward,
                   .block = k,
                   .mode = -1,
                   .first_run = first,
                   .consume_input = k > node.s,
                   .output_needed = true},
                  steps);
  }
  emit_node(model, tree, node.first, writer, steps);
  emit_node(model, tree, node.second, writer, steps);
}

void usage_of(const ChainModel& model, const Tree& tree, int index, TreeUsage& usage) {
  if (index < 0) return;
  const TreeNode& node = tree.nodes[static_cast<std::size_t>(index)];
  const bool rerun = !first_run(model, node.t);
  if (node.kind == TreeNode::Kind::kAll) {
    const auto s = static_cast<std::size_t>(node.s);
    usage.mode[s] = node.mode;
    const Mode& mode = block_at(model, node.s).modes[static_cast<std::size_t>(node.mode)];
    if (rerun) ++usage.reruns[s];
    if (mode.recomputed_nodes > 0) ++usage.reruns[s];
    usage_of(model, tree, node.first, usage);
    return;
  }
  usage.checkpointed[static_cast<std::size_t>(node.split - 1)] = 1;
  if (rerun) {
    for (int k = node.s; k < node.split; ++k) ++usage.reruns[static_cast<std::size_t>(k)];
  }
  usage_of(model, tree, node.first, usage);
  usage_of(model, tree, node.second, usage);
}

}  // namespace

AllTerms all_terms(const ChainModel& model, int s, int t, bool hold, int mode) {
  const BlockModel& block = block_at(model, s);
  AllTerms terms = mode_terms(block, block.modes[static_cast<std::size_t>(mode)],
                              first_run(model, t), hold, s < t);
  terms.before_peak = add_bytes(terms.before_peak, block_at(model, t).gradients_in_bytes);
  return terms;
}

SweepTerms sweep_terms(const ChainModel& model, int s, int split, int t) {
  SweepTerms sweep;
  const bool first = first_run(model, t);
  const std::int64_t gradients = block_at(model, t).gradients_in_bytes;
  const std::int64_t input = block_at(model, s).input_bytes;
  for (int k = s; k < split; ++k) {
    const BlockModel& block = block_at(model, k);
    const int consume = k > s ? 1 : 0;
    const Piece& piece = first ? block.no_save_first[consume] : block.no_save_rerun[consume];
    if (!piece.valid) return {};
    const std::int64_t held = k > s ? gradients + input : gradients;
    sweep.peak = std::max(sweep.peak, add_bytes(piece.peak_bytes, held));
    sweep.time_us += piece.time_us;
  }
  sweep.valid = true;
  return sweep;
}

TreeValue evaluate_tree(const ChainModel& model, const Tree& tree) {
  return evaluate_node(model, tree, tree.root);
}

TreeValue evaluate_subtree(const ChainModel& model, const Tree& tree, int index) {
  return evaluate_node(model, tree, index);
}

Schedule emit_tree(const ChainModel& model, const Tree& tree) {
  Schedule schedule;
  PieceWriter writer(model);
  emit_node(model, tree, tree.root, writer, schedule.steps);
  return schedule;
}

TreeUsage tree_usage(const ChainModel& model, const Tree& tree) {
  TreeUsage usage;
  const auto n = static_cast<std::size_t>(model.num_blocks());
  usage.mode.assign(n, -1);
  usage.reruns.assign(n, 0);
  usage.checkpointed.assign(n, 0);
  usage_of(model, tree, tree.root, usage);
  return usage;
}

}  // namespace ckpt::planning
