// The planner's pieces of schedule: PieceKit writes a primitive's steps (computes in order, frees
// after last use) and measures them on MemoryTracker; BlockAnalyzer knows the roles of a block's
// values and turns a keep mode into the recomputation its backward needs and into each piece's
// computes, live-at-start and keep sets. Used by the mode search and the emitter alike, so what
// the DP combines is what the schedule does. Internal to the library.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <vector>

#include "chain.h"
#include "ckpt/schedule.h"
#include "ckpt/training_graph.h"
#include "memory_tracker.h"
#include "planner_internal.h"

namespace ckpt::planning {

// What a value made by the block's forward nodes is to the block.
enum class Role : std::uint8_t {
  kOther,      // not made here
  kInternal,   // made here, dropped unless its group is kept (or overwritten in place)
  kGroup,      // member of a keep/drop group
  kFreeRider,  // shares the input or output boundary's storage: free while that lives
  kOutput,     // x_i
  kPinned,     // a pinned storage's value: live from its first computation to the end
};

// What keeping a set of groups implies for the backward piece.
struct ModeAnalysis {
  bool valid = false;
  bool useless_keep = false;         // a kept group nothing reads
  std::vector<NodeId> recompute;     // ascending
  std::vector<ValueId> kept_values;  // ascending: what the forward piece leaves live besides x
  bool reads_input = false;
  bool reads_output = false;
};

// Builds pieces with frees after last use and measures them on one reused MemoryTracker.
class PieceKit {
 public:
  PieceKit(const TrainingGraph& graph, const BlockChain& chain)
      : graph_(graph),
        tracker_(graph),
        last_read_(static_cast<std::size_t>(graph.num_values()), -1),
        keep_(static_cast<std::size_t>(graph.num_values()), 0),
        freed_(static_cast<std::size_t>(graph.num_values()), 0),
        pinned_(chain.pinned) {}

  // Appends computes in order, each followed by frees of the values it touched that nothing
  // later in the piece reads and that are not in `keep`. Values in `live_at_start` that nothing
  // reads and that are not kept are freed before the first compute.
  void build(const std::vector<Step>& computes, const std::vector<ValueId>& live_at_start,
             const std::vector<ValueId>& keep, std::vector<Step>& out) {
    for (ValueId v : keep) mark(keep_, v);
    for (std::size_t i = 0; i < computes.size(); ++i) {
      const Node& node = graph_.node(computes[i].node);
      for (ValueId v : node.inputs) set_last_read(v, static_cast<int>(i));
      for (ValueId v : node.accumulates) set_last_read(v, static_cast<int>(i));
    }
    frees_.clear();
    for (ValueId v : live_at_start) {
      if (droppable(v) && last_read_[static_cast<std::size_t>(v)] < 0) frees_.push_back(v);
    }
    flush_frees(out);
    for (std::size_t i = 0; i < computes.size(); ++i) {
      out.push_back(computes[i]);
      const Node& node = graph_.node(computes[i].node);
      auto consider = [&](ValueId v) {
        if (!droppable(v)) return;
        if (last_read_[static_cast<std::size_t>(v)] > static_cast<int>(i)) return;
        if (std::find(node.kills.begin(), node.kills.end(), v) != node.kills.end()) return;
        frees_.push_back(v);
      };
      for (ValueId v : node.outputs) consider(v);
      for (ValueId v : node.inputs) consider(v);
      for (ValueId v : node.accumulates) consider(v);
      flush_frees(out);
    }
    for (ValueId v : touched_) {
      last_read_[static_cast<std::size_t>(v)] = -1;
      keep_[static_cast<std::size_t>(v)] = 0;
      freed_[static_cast<std::size_t>(v)] = 0;
    }
    touched_.clear();
  }

  // Runs `steps` from `live_at_start` on the tracker. Recomputing a side-effecting node or any
  // step the tracker refuses makes the piece invalid.
  Piece measure(const std::vector<Step>& steps, const std::vector<ValueId>& live_at_start) {
    Piece piece;
    piece.valid = true;
    for (ValueId v : live_at_start) {
      tracker_.assume_live(v);
      live_list_.push_back(v);
    }
    for (const Step& step : steps) {
      if (!step.is_compute()) {
        if (!tracker_.check_free(step.value).empty()) {
          piece.valid = false;
          break;
        }
        tracker_.free(step.value);
        continue;
      }
      const Node& node = graph_.node(step.node);
      if (step.phase == Phase::kRecompute && node.side_effecting) {
        piece.valid = false;
        break;
      }
      if (!tracker_.check_compute(step.node).empty()) {
        piece.valid = false;
        break;
      }
      piece.peak_bytes = std::max(piece.peak_bytes, tracker_.compute(step.node));
      piece.time_us += node.time_us;
      ++piece.computes;
      for (ValueId out : node.outputs) live_list_.push_back(out);
    }
    piece.end_bytes = tracker_.live_bytes();
    for (ValueId v : live_list_) {
      if (!graph_.is_resident(v) && tracker_.is_live(v)) tracker_.free(v);
    }
    live_list_.clear();
    assert(tracker_.live_bytes() == 0);
    return piece;
  }

  // Charged bytes of a set of values held together.
  std::int64_t bytes_of(const std::vector<ValueId>& values) {
    const Piece piece = measure({}, values);
    return piece.end_bytes;
  }

 private:
  bool droppable(ValueId v) {
    const auto i = static_cast<std::size_t>(v);
    return !graph_.is_resident(v) && keep_[i] == 0 && freed_[i] == 0 && pinned_[i] == 0;
  }
  void mark(std::vector<char>& flags, ValueId v) {
    flags[static_cast<std::size_t>(v)] = 1;
    touched_.push_back(v);
  }
  void set_last_read(ValueId v, int index) {
    last_read_[static_cast<std::size_t>(v)] = index;
    touched_.push_back(v);
  }
  void flush_frees(std::vector<Step>& out) {
    std::sort(frees_.begin(), frees_.end());
    frees_.erase(std::unique(frees_.begin(), frees_.end()), frees_.end());
    for (ValueId v : frees_) {
      out.push_back(Step::free(v));
      mark(freed_, v);
    }
    frees_.clear();
  }

  const TrainingGraph& graph_;
  MemoryTracker tracker_;
  std::vector<int> last_read_;
  std::vector<char> keep_;
  std::vector<char> freed_;
  std::vector<char> pinned_;  // never freed
  std::vector<ValueId> touched_;
  std::vector<ValueId> frees_;
  std::vector<ValueId> live_list_;
};

// Per-block analysis: roles of the values the block makes, the recomputation a mode implies, and
// the steps of its pieces.
class BlockAnalyzer {
 public:
  BlockAnalyzer(const TrainingGraph& graph, const BlockChain& chain)
      : graph_(graph),
        chain_(chain),
        role_(static_cast<std::size_t>(graph.num_values()), Role::kOther),
        group_of_(static_cast<std::size_t>(graph.num_values()), -1),
        killed_(static_cast<std::size_t>(graph.num_values()), 0),
        need_stamp_(static_cast<std::size_t>(graph.num_values()), 0),
        used_stamp_(static_cast<std::size_t>(graph.num_values()), 0) {
    for (const Node& node : graph.nodes()) {
      for (ValueId k : node.kills) killed_[static_cast<std::size_t>(k)] = 1;
    }
  }

  bool killed(ValueId v) const { return killed_[static_cast<std::size_t>(v)] != 0; }

  // Marks the roles of the block's values. `block.groups` and `free_riders` must be filled.
  void enter(const BlockModel& block) {
    leave();
    block_ = &block;
    for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
      for (ValueId out : graph_.node(n).outputs) {
        if (graph_.is_resident(out)) continue;
        set_role(out, Role::kInternal);
      }
    }
    for (std::size_t g = 0; g < block.groups.size(); ++g) {
      for (ValueId v : block.groups[g].values) {
        set_role(v, Role::kGroup);
        group_of_[static_cast<std::size_t>(v)] = static_cast<int>(g);
      }
    }
    for (ValueId v : block.free_riders) set_role(v, Role::kFreeRider);
    for (ValueId v : block.output) set_role(v, Role::kOutput);
    for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
      for (ValueId out : graph_.node(n).outputs) {
        if (chain_.is_pinned(out)) set_role(out, Role::kPinned);
      }
    }
  }

  void leave() {
    for (ValueId v : marked_) {
      role_[static_cast<std::size_t>(v)] = Role::kOther;
      group_of_[static_cast<std::size_t>(v)] = -1;
    }
    marked_.clear();
    block_ = nullptr;
  }

  Role role(ValueId v) const { return role_[static_cast<std::size_t>(v)]; }
  bool made_here(ValueId v) const { return role(v) != Role::kOther; }

  ModeAnalysis analyze(const std::vector<int>& kept_groups) {
    const BlockModel& block = *block_;
    ModeAnalysis result;
    kept_flag_.assign(block.groups.size(), 0);
    for (int g : kept_groups) kept_flag_[static_cast<std::size_t>(g)] = 1;
    const int epoch = next_epoch();
    auto available = [&](ValueId v) {
      switch (role(v)) {
        case Role::kOther:
        case Role::kFreeRider:
        case Role::kOutput:
        case Role::kPinned:
          return true;
        case Role::kInternal:
          return false;
        case Role::kGroup:
          return kept_flag_[static_cast<std::size_t>(group_of_[static_cast<std::size_t>(v)])] !=
                     0 &&
                 !killed(v);
      }
      return false;
    };
    auto need = [&](ValueId v) {
      if (made_here(v) && !available(v)) need_stamp_[static_cast<std::size_t>(v)] = epoch;
    };
    for (NodeId n = block.first_backward; n < block.end_backward; ++n) {
      for (ValueId v : graph_.node(n).inputs) need(v);
      for (ValueId v : graph_.node(n).accumulates) need(v);
    }
    for (NodeId n = block.end_forward - 1; n >= block.first_forward; --n) {
      const Node& node = graph_.node(n);
      const bool needed = std::any_of(node.outputs.begin(), node.outputs.end(), [&](ValueId v) {
        return need_stamp_[static_cast<std::size_t>(v)] == epoch;
      });
      if (!needed) continue;
      result.recompute.push_back(n);
      for (ValueId v : node.inputs) need(v);
      for (ValueId v : node.accumulates) need(v);
    }
    std::reverse(result.recompute.begin(), result.recompute.end());
    result.valid = std::none_of(result.recompute.begin(), result.recompute.end(),
                                [&](NodeId n) { return graph_.node(n).side_effecting; });
    // What the backward piece reads.
    used_.clear();
    auto use = [&](ValueId v) {
      auto& stamp = used_stamp_[static_cast<std::size_t>(v)];
      if (stamp == epoch) return;
      stamp = epoch;
      used_.push_back(v);
    };
    for (NodeId n : result.recompute) {
      for (ValueId v : graph_.node(n).inputs) use(v);
      for (ValueId v : graph_.node(n).accumulates) use(v);
    }
    for (NodeId n = block.first_backward; n < block.end_backward; ++n) {
      for (ValueId v : graph_.node(n).inputs) use(v);
      for (ValueId v : graph_.node(n).accumulates) use(v);
    }
    for (int g : kept_groups) {
      const Group& group = block.groups[static_cast<std::size_t>(g)];
      bool any = false;
      for (ValueId v : group.values) {
        if (used_stamp_[static_cast<std::size_t>(v)] != epoch || killed(v)) continue;
        result.kept_values.push_back(v);
        any = true;
      }
      if (!any) result.useless_keep = true;
    }
    for (ValueId v : block.free_riders) {
      if (used_stamp_[static_cast<std::size_t>(v)] == epoch) result.kept_values.push_back(v);
    }
    std::sort(result.kept_values.begin(), result.kept_values.end());
    for (ValueId v : used_) {
      if (graph_.is_resident(v)) continue;
      const ValueId root = graph_.storage_root(v);
      if (block.input_root != kNoId && root == block.input_root) result.reads_input = true;
      if (block.output_root != kNoId && root == block.output_root) result.reads_output = true;
    }
    return result;
  }

  // Nodes of the block's forward that make `targets` from the input (ascending).
  std::vector<NodeId> forward_closure(const std::vector<ValueId>& targets) {
    const BlockModel& block = *block_;
    const int epoch = next_epoch();
    std::vector<NodeId> nodes;
    // Pinned values are live from their first computation on: never made again.
    auto need = [&](ValueId v) {
      if (made_here(v) && role(v) != Role::kPinned)
        need_stamp_[static_cast<std::size_t>(v)] = epoch;
    };
    for (ValueId v : targets) need(v);
    for (NodeId n = block.end_forward - 1; n >= block.first_forward; --n) {
      const Node& node = graph_.node(n);
      const bool needed = std::any_of(node.outputs.begin(), node.outputs.end(), [&](ValueId v) {
        return need_stamp_[static_cast<std::size_t>(v)] == epoch;
      });
      if (!needed) continue;
      nodes.push_back(n);
      for (ValueId v : node.inputs) need(v);
      for (ValueId v : node.accumulates) need(v);
    }
    std::reverse(nodes.begin(), nodes.end());
    return nodes;
  }

  // The compute steps, live-at-start set and keep set of a piece.
  struct PieceParts {
    bool valid = true;
    std::vector<Step> computes;
    std::vector<ValueId> live_at_start;
    std::vector<ValueId> keep;
  };

  PieceParts forward_parts(const ModeAnalysis* mode, bool first_run, bool consume_input,
                           bool output_needed) {
    const BlockModel& block = *block_;
    PieceParts parts;
    parts.live_at_start = block.input;
    std::vector<ValueId> targets;
    if (mode != nullptr) targets = mode->kept_values;
    if (first_run || output_needed) {
      targets.insert(targets.end(), block.output.begin(), block.output.end());
    }
    parts.keep = targets;
    if (!consume_input) parts.keep.insert(parts.keep.end(), block.input.begin(), block.input.end());
    if (first_run) {
      for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
        parts.computes.push_back(Step::compute(n, Phase::kForward));
      }
      return parts;
    }
    for (NodeId n : forward_closure(targets)) {
      if (graph_.node(n).side_effecting) parts.valid = false;
      parts.computes.push_back(Step::compute(n, Phase::kRecompute));
    }
    return parts;
  }

  PieceParts backward_parts(const ModeAnalysis& mode, BackwardVariant variant) {
    const BlockModel& block = *block_;
    PieceParts parts;
    parts.valid = mode.valid;
    parts.live_at_start = mode.kept_values;
    if (variant != BackwardVariant::kInputAbsent) {
      parts.live_at_start.insert(parts.live_at_start.end(), block.input.begin(), block.input.end());
    }
    if (mode.reads_output) {
      parts.live_at_start.insert(parts.live_at_start.end(), block.output.begin(),
                                 block.output.end());
    }
    parts.live_at_start.insert(parts.live_at_start.end(), block.gradients_in.begin(),
                               block.gradients_in.end());
    parts.keep = block.gradients_out;
    if (variant == BackwardVariant::kInputKept) {
      parts.keep.insert(parts.keep.end(), block.input.begin(), block.input.end());
    }
    for (NodeId n : mode.recompute) parts.computes.push_back(Step::compute(n, Phase::kRecompute));
    for (NodeId n = block.first_backward; n < block.end_backward; ++n) {
      parts.computes.push_back(Step::compute(n, Phase::kBackward));
    }
    return parts;
  }

 private:
  void set_role(ValueId v, Role r) {
    auto& current = role_[static_cast<std::size_t>(v)];
    if (current == Role::kOther) marked_.push_back(v);
    current = r;
  }
  int next_epoch() { return ++epoch_; }

  const TrainingGraph& graph_;
  const BlockChain& chain_;
  const BlockModel* block_ = nullptr;
  std::vector<Role> role_;
  std::vector<int> group_of_;
  std::vector<char> killed_;
  std::vector<int> need_stamp_;
  std::vector<int> used_stamp_;
  std::vector<ValueId> marked_;
  std::vector<ValueId> used_;
  std::vector<char> kept_flag_;
  int epoch_ = 0;
};

}  // namespace ckpt::planning
