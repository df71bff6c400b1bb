// The per-block primitives of the planner: for each block, the keep/drop groups of its internal
// storages, the keep modes worth considering (all of them up to 2^max_exhaustive_groups, a greedy
// family above), and for each mode the forward and backward pieces measured on MemoryTracker. The
// same code writes a piece's steps for the emitter, so what was measured is what is emitted.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <utility>

#include "memory_tracker.h"
#include "planner_internal.h"
#include "planner_pieces.h"

namespace ckpt::planning {

namespace {

// Fills a block's boundaries, groups and free riders.
void describe_block(const TrainingGraph& graph, const BlockChain& chain, int index,
                    const BlockAnalyzer& analyzer, BlockModel& block) {
  const Block& source = chain.blocks[static_cast<std::size_t>(index)];
  block.first_forward = source.first_forward;
  block.end_forward = source.end_forward;
  block.first_backward = source.first_backward;
  block.end_backward = source.end_backward;
  block.output = source.output;
  block.output_root = source.output_root;
  block.gradients_in = source.gradients_in;
  if (index > 0) {
    const Block& previous = chain.blocks[static_cast<std::size_t>(index - 1)];
    block.input = previous.output;
    block.input_root = previous.output_root;
    block.gradients_out = previous.gradients_in;
  }
  // Values the block's nodes read (forward or backward), to leave out values nothing reads.
  std::vector<char> read(static_cast<std::size_t>(graph.num_values()), 0);
  auto note_reads = [&](NodeId n) {
    for (ValueId v : graph.node(n).inputs) read[static_cast<std::size_t>(v)] = 1;
    for (ValueId v : graph.node(n).accumulates) read[static_cast<std::size_t>(v)] = 1;
  };
  for (NodeId n = block.first_forward; n < block.end_forward; ++n) note_reads(n);
  for (NodeId n = block.first_backward; n < block.end_backward; ++n) note_reads(n);
  std::vector<char> backward_read(static_cast<std::size_t>(graph.num_values()), 0);
  for (NodeId n = block.first_backward; n < block.end_backward; ++n) {
    for (ValueId v : graph.node(n).inputs) backward_read[static_cast<std::size_t>(v)] = 1;
    for (ValueId v : graph.node(n).accumulates) backward_read[static_cast<std::size_t>(v)] = 1;
  }
  // Classes: (storage root, version) of the values made here that survive the forward.
  std::map<std::pair<ValueId, int>, int> class_of;
  std::vector<std::vector<ValueId>> class_values;
  std::vector<int> class_parent;
  std::vector<char> is_output(static_cast<std::size_t>(graph.num_values()), 0);
  for (ValueId v : block.output) is_output[static_cast<std::size_t>(v)] = 1;
  auto find = [&](int c) {
    while (class_parent[static_cast<std::size_t>(c)] != c) {
      c = class_parent[static_cast<std::size_t>(c)] =
          class_parent[static_cast<std::size_t>(class_parent[static_cast<std::size_t>(c)])];
    }
    return c;
  };
  for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
    int first_class = -1;
    for (ValueId out : graph.node(n).outputs) {
      if (graph.is_resident(out) || analyzer.killed(out) || chain.is_pinned(out)) continue;
      if (chain.producer[static_cast<std::size_t>(out)] != n) continue;
      if (is_output[static_cast<std::size_t>(out)] != 0) continue;
      if (read[static_cast<std::size_t>(out)] == 0) continue;
      const ValueId root = graph.storage_root(out);
      if ((block.input_root != kNoId && root == block.input_root) ||
          (block.output_root != kNoId && root == block.output_root)) {
        block.free_riders.push_back(out);
        continue;
      }
      const auto key = std::make_pair(root, graph.value(out).version);
      auto [it, inserted] = class_of.emplace(key, static_cast<int>(class_values.size()));
      if (inserted) {
        class_values.emplace_back();
        class_parent.push_back(it->second);
      }
      class_values[static_cast<std::size_t>(it->second)].push_back(out);
      // One node's outputs are kept or recomputed together.
      if (first_class < 0) {
        first_class = it->second;
      } else {
        class_parent[static_cast<std::size_t>(find(it->second))] = find(first_class);
      }
    }
  }
  std::sort(block.free_riders.begin(), block.free_riders.end());
  std::map<int, int> group_of_class_root;
  for (std::size_t c = 0; c < class_values.size(); ++c) {
    const int root = find(static_cast<int>(c));
    auto [it, inserted] = group_of_class_root.emplace(root, static_cast<int>(block.groups.size()));
    if (inserted) block.groups.emplace_back();
    Group& group = block.groups[static_cast<std::size_t>(it->second)];
    group.values.insert(group.values.end(), class_values[c].begin(), class_values[c].end());
  }
  for (Group& group : block.groups) {
    std::sort(group.values.begin(), group.values.end());
    std::vector<ValueId> roots;
    for (ValueId v : group.values) {
      roots.push_back(graph.storage_root(v));
      if (backward_read[static_cast<std::size_t>(v)] != 0) {
        group.read_by_backward = true;
        const NodeId producer = chain.producer[static_cast<std::size_t>(v)];
        if (graph.node(producer).side_effecting) group.forced = true;
      }
    }
    std::sort(roots.begin(), roots.end());
    roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
    for (ValueId r : roots) group.bytes += graph.storage_bytes(r);
  }
}

bool time_le(double a, double b) { return a <= b + 1e-9 * std::max(1.0, std::abs(b)); }

// True when mode `a` is at least as good as `b` in every context the DP can use it in.
bool dominates(const BlockModel& block, const Mode& a, const Mode& b, bool last_block) {
  for (int first = 0; first < 2; ++first) {
    if (!first && last_block) continue;
    for (int hold = 0; hold < 2; ++hold) {
      for (int has_sub = 0; has_sub < 2; ++has_sub) {
        if (first && has_sub == static_cast<int>(last_block)) continue;
        const AllTerms tb = mode_terms(block, b, first != 0, hold != 0, has_sub != 0);
        if (!tb.valid) continue;
        const AllTerms ta = mode_terms(block, a, first != 0, hold != 0, has_sub != 0);
        if (!ta.valid) return false;
        if (ta.before_peak > tb.before_peak || ta.after_peak > tb.after_peak) return false;
        if (!time_le(ta.time_us, tb.time_us)) return false;
        if (has_sub && (ta.held_bytes > tb.held_bytes || (ta.sub_hold && !tb.sub_hold))) {
          return false;
        }
      }
    }
  }
  return true;
}

// Measures the modes of one block.
class ModeSearch {
 public:
  ModeSearch(const TrainingGraph& graph, const BlockChain& chain, PieceKit& kit,
             BlockAnalyzer& analyzer, BlockModel& block, int index)
      : graph_(graph),
        kit_(kit),
        analyzer_(analyzer),
        block_(block),
        last_block_(index + 1 == static_cast<int>(chain.blocks.size())) {
    // Pinned values live when the block's pieces run: in its first computation those made
    // before it; in every later piece all of them.
    for (ValueId v : chain.pinned_values) {
      const int made_in =
          chain
              .block_of_node[static_cast<std::size_t>(chain.producer[static_cast<std::size_t>(v)])];
      if (made_in < index) pinned_before_.push_back(v);
      if (made_in <= index) pinned_through_.push_back(v);
      pinned_all_.push_back(v);
    }
    pinned_through_bytes_ = kit_.bytes_of(pinned_through_);
    pinned_all_bytes_ = kit_.bytes_of(pinned_all_);
  }

  std::int64_t pinned_before_bytes() { return kit_.bytes_of(pinned_before_); }
  std::int64_t pinned_all_bytes() const { return pinned_all_bytes_; }

  // Measures the pieces of keeping `kept`; false when the mode is invalid or keeps a group for
  // nothing.
  bool measure_mode(const std::vector<int>& kept, Mode& mode) {
    const ModeAnalysis analysis = analyzer_.analyze(kept);
    if (!analysis.valid || analysis.useless_keep) return false;
    mode.kept = kept;
    mode.reads_input = analysis.reads_input;
    mode.reads_output = analysis.reads_output;
    mode.recomputed_nodes = static_cast<int>(analysis.recompute.size());
    mode.backward[static_cast<int>(BackwardVariant::kInputKept)] =
        backward(analysis, BackwardVariant::kInputKept);
    if (!mode.backward[0].valid) return false;
    if (analysis.reads_input) {
      mode.backward[static_cast<int>(BackwardVariant::kInputReleased)] =
          backward(analysis, BackwardVariant::kInputReleased);
    } else {
      mode.backward[static_cast<int>(BackwardVariant::kInputAbsent)] =
          backward(analysis, BackwardVariant::kInputAbsent);
    }
    for (int consume = 0; consume < 2; ++consume) {
      if (consume && analysis.reads_input) continue;
      mode.forward_first[consume] = forward(&analysis, true, consume != 0, true);
      if (last_block_) continue;
      for (int out = 0; out < 2; ++out) {
        if (!out && analysis.reads_output) continue;
        mode.forward_rerun[consume][out] = forward(&analysis, false, consume != 0, out != 0);
      }
    }
    mode.kept_bytes = mode.forward_first[0].end_bytes - block_.input_bytes - block_.output_bytes;
    return mode.forward_first[0].valid;
  }

  void measure_no_save() {
    for (int consume = 0; consume < 2; ++consume) {
      block_.no_save_first[consume] = forward(nullptr, true, consume != 0, true);
      if (!last_block_) block_.no_save_rerun[consume] = forward(nullptr, false, consume != 0, true);
    }
  }

  // Exhaustive search over the free groups, or the greedy family above the limit.
  void search(int max_exhaustive, bool all_modes, bool prune) {
    prune_ = prune;
    std::vector<int> forced;
    std::vector<int> free;
    std::vector<char> relevant = relevant_groups();
    for (std::size_t g = 0; g < block_.groups.size(); ++g) {
      if (!relevant[g]) continue;
      (block_.groups[g].forced ? forced : free).push_back(static_cast<int>(g));
    }
    block_.candidate_groups = static_cast<int>(free.size());
    std::vector<int> store_all = forced;
    for (int g : free) {
      if (block_.groups[static_cast<std::size_t>(g)].read_by_backward) store_all.push_back(g);
    }
    std::sort(store_all.begin(), store_all.end());
    if (all_modes && static_cast<int>(free.size()) <= max_exhaustive) {
      const std::uint64_t count = std::uint64_t{1} << free.size();
      for (std::uint64_t mask = 0; mask < count; ++mask) {
        std::vector<int> kept = forced;
        for (std::size_t i = 0; i < free.size(); ++i) {
          if ((mask >> i) & 1U) kept.push_back(free[i]);
        }
        std::sort(kept.begin(), kept.end());
        add(kept, /*check_duplicate=*/false);
      }
    } else {
      block_.approximate = all_modes;
      add(store_all);
      add(forced);
      if (all_modes) greedy(store_all, forced);
    }
    finish(store_all);
  }

 private:
  Piece forward(const ModeAnalysis* analysis, bool first_run, bool consume, bool output_needed) {
    BlockAnalyzer::PieceParts parts =
        analyzer_.forward_parts(analysis, first_run, consume, output_needed);
    if (!parts.valid) return {};
    return measure(parts, first_run);
  }

  Piece backward(const ModeAnalysis& analysis, BackwardVariant variant) {
    BlockAnalyzer::PieceParts parts = analyzer_.backward_parts(analysis, variant);
    if (!parts.valid) return {};
    return measure(parts, /*first_run=*/false);
  }

  // Measures with the pinned values of the context live; end_bytes leaves them out (the DP
  // counts them in every piece's peak, never as something a caller holds).
  Piece measure(BlockAnalyzer::PieceParts& parts, bool first_run) {
    steps_.clear();
    kit_.build(parts.computes, parts.live_at_start, parts.keep, steps_);
    const std::vector<ValueId>& pinned = first_run ? pinned_before_ : pinned_all_;
    parts.live_at_start.insert(parts.live_at_start.end(), pinned.begin(), pinned.end());
    Piece piece = kit_.measure(steps_, parts.live_at_start);
    piece.end_bytes -= first_run ? pinned_through_bytes_ : pinned_all_bytes_;
    return piece;
  }

  // Groups the backward reads, or that a recomputation of what it reads could read.
  std::vector<char> relevant_groups() {
    std::vector<int> none;
    const ModeAnalysis all_dropped = analyzer_.analyze(none);
    std::vector<char> relevant(block_.groups.size(), 0);
    std::vector<char> read(static_cast<std::size_t>(graph_.num_values()), 0);
    for (NodeId n : all_dropped.recompute) {
      for (ValueId v : graph_.node(n).inputs) read[static_cast<std::size_t>(v)] = 1;
      for (ValueId v : graph_.node(n).accumulates) read[static_cast<std::size_t>(v)] = 1;
    }
    for (std::size_t g = 0; g < block_.groups.size(); ++g) {
      const Group& group = block_.groups[g];
      relevant[g] = group.read_by_backward ||
                    std::any_of(group.values.begin(), group.values.end(),
                                [&](ValueId v) { return read[static_cast<std::size_t>(v)] != 0; });
    }
    return relevant;
  }

  void add(const std::vector<int>& kept, bool check_duplicate = true) {
    if (check_duplicate && find(kept) != nullptr) return;
    Mode mode;
    if (measure_mode(kept, mode)) candidates_.push_back(std::move(mode));
  }

  // Drops groups from the store-all mode in the order of least recomputation time per byte.
  void greedy(const std::vector<int>& store_all, const std::vector<int>& forced) {
    const Mode* base = find(store_all);
    if (base == nullptr) return;
    const double base_time = base->backward[0].time_us;
    struct Drop {
      int group;
      double time_per_byte;
    };
    std::vector<Drop> drops;
    for (int g : store_all) {
      if (std::find(forced.begin(), forced.end(), g) != forced.end()) continue;
      std::vector<int> kept;
      for (int k : store_all) {
        if (k != g) kept.push_back(k);
      }
      Mode mode;
      if (!measure_mode(kept, mode)) continue;
      const double extra = mode.backward[0].time_us - base_time;
      const double bytes = static_cast<double>(block_.groups[static_cast<std::size_t>(g)].bytes);
      drops.push_back({g, extra / std::max(bytes, 1.0)});
    }
    std::stable_sort(drops.begin(), drops.end(), [](const Drop& a, const Drop& b) {
      return a.time_per_byte < b.time_per_byte;
    });
    std::vector<int> kept = store_all;
    for (const Drop& drop : drops) {
      std::vector<int> next;
      for (int k : kept) {
        if (k != drop.group) next.push_back(k);
      }
      Mode mode;
      if (!measure_mode(next, mode)) continue;
      kept = std::move(next);
      candidates_.push_back(std::move(mode));
    }
  }

  const Mode* find(const std::vector<int>& kept) const {
    for (const Mode& mode : candidates_) {
      if (mode.kept == kept) return &mode;
    }
    return nullptr;
  }

  // Keeps the modes no other mode dominates, plus the store-all and the least mode.
  void finish(const std::vector<int>& store_all) {
    int least = -1;
    for (std::size_t m = 0; m < candidates_.size(); ++m) {
      const Mode& mode = candidates_[m];
      if (least < 0) {
        least = static_cast<int>(m);
        continue;
      }
      const Mode& best = candidates_[static_cast<std::size_t>(least)];
      const auto key = [](const Mode& x) {
        return std::make_tuple(x.kept_bytes, x.backward[0].peak_bytes, x.backward[0].time_us);
      };
      if (key(mode) < key(best)) least = static_cast<int>(m);
    }
    std::vector<int> front;
    for (std::size_t m = 0; m < candidates_.size(); ++m) {
      const Mode& mode = candidates_[m];
      if (!prune_) {
        front.push_back(static_cast<int>(m));
        continue;
      }
      bool dominated = false;
      for (int f : front) {
        if (dominates(block_, candidates_[static_cast<std::size_t>(f)], mode, last_block_)) {
          dominated = true;
          break;
        }
      }
      if (dominated) continue;
      std::erase_if(front, [&](int f) {
        return dominates(block_, mode, candidates_[static_cast<std::size_t>(f)], last_block_);
      });
      front.push_back(static_cast<int>(m));
    }
    const Mode* store_all_mode = find(store_all);
    for (std::size_t m = 0; m < candidates_.size(); ++m) {
      const bool pinned = &candidates_[m] == store_all_mode || static_cast<int>(m) == least;
      if (pinned && std::find(front.begin(), front.end(), static_cast<int>(m)) == front.end()) {
        front.push_back(static_cast<int>(m));
      }
    }
    std::sort(front.begin(), front.end());
    for (int f : front) {
      const bool is_store_all = &candidates_[static_cast<std::size_t>(f)] == store_all_mode;
      const bool is_least = f == least;
      block_.modes.push_back(std::move(candidates_[static_cast<std::size_t>(f)]));
      const int index = static_cast<int>(block_.modes.size()) - 1;
      if (is_store_all) block_.store_all_mode = index;
      if (is_least) block_.min_mode = index;
    }
    candidates_.clear();
  }

  const TrainingGraph& graph_;
  PieceKit& kit_;
  BlockAnalyzer& analyzer_;
  BlockModel& block_;
  bool last_block_;
  std::vector<ValueId> pinned_before_, pinned_through_, pinned_all_;
  std::int64_t pinned_through_bytes_ = 0;
  std::int64_t pinned_all_bytes_ = 0;
  std::vector<Mode> candidates_;
  std::vector<Step> steps_;
  bool prune_ = true;
};

// A canonical description of everything a block's pieces depend on: its nodes in order (times,
// workspace, flags) and the values they touch as local ids, with their storage bytes, storage and
// version relations and roles, plus the bytes of the pinned values live around it. Two blocks
// with equal signatures measure exactly the same (repeated layers: measured once).
class SignatureWriter {
 public:
  SignatureWriter(const TrainingGraph& graph, const BlockChain& chain)
      : graph_(graph),
        chain_(chain),
        local_(static_cast<std::size_t>(graph.num_values()), -1),
        root_local_(static_cast<std::size_t>(graph.num_values()), -1),
        role_(static_cast<std::size_t>(graph.num_values()), 0) {}

  std::vector<std::int64_t> write(const BlockModel& block, bool last_block,
                                  std::int64_t pinned_before_bytes, std::int64_t pinned_all_bytes) {
    out_.clear();
    out_.push_back(last_block ? 1 : 0);
    out_.push_back(pinned_before_bytes);
    out_.push_back(pinned_all_bytes);
    mark_roles(block.input, 1);
    mark_roles(block.output, 2);
    mark_roles(block.gradients_in, 4);
    mark_roles(block.gradients_out, 8);
    for (const auto* list :
         {&block.input, &block.output, &block.gradients_in, &block.gradients_out}) {
      out_.push_back(-1);
      for (ValueId v : *list) out_.push_back(id(v, block));
    }
    auto node = [&](NodeId n) {
      const Node& node = graph_.node(n);
      out_.push_back(-2);
      out_.push_back(static_cast<std::int64_t>(node.phase));
      out_.push_back(std::bit_cast<std::int64_t>(node.time_us));
      out_.push_back(node.workspace_bytes);
      out_.push_back(node.side_effecting ? 1 : 0);
      for (const auto* list : {&node.inputs, &node.outputs, &node.accumulates, &node.kills}) {
        out_.push_back(-3);
        for (ValueId v : *list) out_.push_back(id(v, block));
      }
    };
    for (NodeId n = block.first_forward; n < block.end_forward; ++n) node(n);
    for (NodeId n = block.first_backward; n < block.end_backward; ++n) node(n);
    for (ValueId v : touched_) {
      local_[static_cast<std::size_t>(v)] = -1;
      role_[static_cast<std::size_t>(v)] = 0;
    }
    for (ValueId r : touched_roots_) root_local_[static_cast<std::size_t>(r)] = -1;
    touched_.clear();
    touched_roots_.clear();
    next_local_ = 0;
    next_root_ = 0;
    return out_;
  }

 private:
  void mark_roles(const std::vector<ValueId>& values, int role) {
    for (ValueId v : values) {
      role_[static_cast<std::size_t>(v)] =
          static_cast<char>(role_[static_cast<std::size_t>(v)] | role);
      touched_.push_back(v);
    }
  }

  // The local id of a value; its description is written where it is first seen.
  std::int64_t id(ValueId v, const BlockModel& block) {
    auto& local = local_[static_cast<std::size_t>(v)];
    if (local >= 0) return local;
    local = next_local_++;
    touched_.push_back(v);
    const ValueId root = graph_.storage_root(v);
    auto& root_local = root_local_[static_cast<std::size_t>(root)];
    const bool new_root = root_local < 0;
    if (new_root) {
      root_local = next_root_++;
      touched_roots_.push_back(root);
    }
    const NodeId producer = chain_.producer[static_cast<std::size_t>(v)];
    const bool made_here = producer >= block.first_forward && producer < block.end_forward;
    out_.push_back(-4);
    out_.push_back(root_local);
    out_.push_back(new_root ? graph_.storage_bytes(v) : -1);
    out_.push_back(graph_.is_resident(v) ? 1 : 0);
    out_.push_back(graph_.value(v).version);
    out_.push_back(role_[static_cast<std::size_t>(v)]);
    out_.push_back(chain_.is_pinned(v) ? 1 : 0);
    out_.push_back(made_here ? producer - block.first_forward : -1);
    return local;
  }

  const TrainingGraph& graph_;
  const BlockChain& chain_;
  std::vector<int> local_;
  std::vector<int> root_local_;
  std::vector<char> role_;
  std::vector<ValueId> touched_;
  std::vector<ValueId> touched_roots_;
  std::vector<std::int64_t> out_;
  int next_local_ = 0;
  int next_root_ = 0;
};

}  // namespace

bool ChainModel::approximate() const {
  return std::any_of(blocks.begin(), blocks.end(),
                     [](const BlockModel& block) { return block.approximate; });
}

AllTerms mode_terms(const BlockModel& block, const Mode& mode, bool first_run, bool hold,
                    bool has_sub) {
  AllTerms terms;
  terms.consume_input = !hold && !mode.reads_input;
  terms.output_needed = has_sub || mode.reads_output;
  const int consume = terms.consume_input ? 1 : 0;
  const Piece& forward = first_run ? mode.forward_first[consume]
                                   : mode.forward_rerun[consume][terms.output_needed ? 1 : 0];
  if (!forward.valid) return terms;
  terms.variant = terms.consume_input ? BackwardVariant::kInputAbsent
                  : hold              ? BackwardVariant::kInputKept
                                      : BackwardVariant::kInputReleased;
  const Piece& backward = mode.backward[static_cast<int>(terms.variant)];
  if (!backward.valid) return terms;
  terms.valid = true;
  terms.before_peak = forward.peak_bytes;
  terms.held_bytes = has_sub ? forward.end_bytes - block.output_bytes : 0;
  terms.sub_hold = mode.reads_output;
  terms.after_peak = backward.peak_bytes;
  terms.time_us = forward.time_us + backward.time_us;
  return terms;
}

ChainModel build_chain_model(const TrainingGraph& graph, BlockChain chain,
                             const ModelOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  ChainModel model;
  model.graph = &graph;
  model.chain = std::move(chain);
  const int num_blocks = static_cast<int>(model.chain.blocks.size());
  model.blocks.resize(static_cast<std::size_t>(num_blocks));
  PieceKit kit(graph, model.chain);
  BlockAnalyzer analyzer(graph, model.chain);
  SignatureWriter signatures(graph, model.chain);
  std::map<std::vector<std::int64_t>, int> measured;  // signature -> first block measured
  int total_modes = 0;
  int approximate_blocks = 0;
  for (int b = 0; b < num_blocks; ++b) {
    BlockModel& block = model.blocks[static_cast<std::size_t>(b)];
    describe_block(graph, model.chain, b, analyzer, block);
    block.input_bytes = kit.bytes_of(block.input);
    block.output_bytes = kit.bytes_of(block.output);
    block.gradients_in_bytes = kit.bytes_of(block.gradients_in);
    ModeSearch search(graph, model.chain, kit, analyzer, block, b);
    std::vector<std::int64_t> signature = signatures.write(
        block, b + 1 == num_blocks, search.pinned_before_bytes(), search.pinned_all_bytes());
    const auto [seen, inserted] = measured.emplace(std::move(signature), b);
    block.same_as = seen->second;
    if (!inserted) {
      const BlockModel& same = model.blocks[static_cast<std::size_t>(seen->second)];
      block.no_save_first[0] = same.no_save_first[0];
      block.no_save_first[1] = same.no_save_first[1];
      block.no_save_rerun[0] = same.no_save_rerun[0];
      block.no_save_rerun[1] = same.no_save_rerun[1];
      block.modes = same.modes;
      block.store_all_mode = same.store_all_mode;
      block.min_mode = same.min_mode;
      block.candidate_groups = same.candidate_groups;
      block.approximate = same.approximate;
    } else {
      analyzer.enter(block);
      search.measure_no_save();
      search.search(options.max_exhaustive_groups, options.all_modes, options.prune_dominated);
      analyzer.leave();
    }
    total_modes += static_cast<int>(block.modes.size());
    if (block.approximate) ++approximate_blocks;
  }
  if (options.progress) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    options.progress(fmt::format(
        "planner: {} blocks, {} keep modes kept after pruning, {} block(s) searched greedily "
        "({:.1f} ms)",
        num_blocks, total_modes, approximate_blocks, ms));
  }
  return model;
}

ChainModel relaxed_model(const ChainModel& model) {
  ChainModel relaxed = model;
  const TrainingGraph& graph = *model.graph;
  PieceKit kit(graph, model.chain);
  for (BlockModel& block : relaxed.blocks) {
    if (!block.approximate) continue;
    Mode mode;
    // Forward pieces: keeping nothing is a lower bound of keeping anything (every step holds a
    // subset of the same values), and a rerun of the output alone of rerunning more.
    mode.forward_first[0] = block.no_save_first[0];
    mode.forward_first[1] = block.no_save_first[1];
    for (int consume = 0; consume < 2; ++consume) {
      mode.forward_rerun[consume][1] = block.no_save_rerun[consume];
      Piece& nothing = mode.forward_rerun[consume][0];
      nothing.valid = true;
      nothing.end_bytes = consume ? 0 : block.input_bytes;
    }
    // Backward piece: no recomputation, and no step below what its own node reads and writes
    // (with the input boundary, and the pinned values, which every backward piece holds).
    for (int variant = 0; variant < 3; ++variant) {
      Piece& piece = mode.backward[variant];
      piece.valid = true;
      piece.time_us = 0;
      for (NodeId n = block.first_backward; n < block.end_backward; ++n) {
        const Node& node = graph.node(n);
        std::vector<ValueId> live = node.inputs;
        live.insert(live.end(), node.accumulates.begin(), node.accumulates.end());
        live.insert(live.end(), model.chain.pinned_values.begin(), model.chain.pinned_values.end());
        if (variant == static_cast<int>(BackwardVariant::kInputKept)) {
          live.insert(live.end(), block.input.begin(), block.input.end());
        }
        const Piece step = kit.measure({Step::compute(n, Phase::kBackward)}, live);
        piece.peak_bytes = std::max(piece.peak_bytes, step.valid ? step.peak_bytes : 0);
        piece.time_us += node.time_us;
      }
    }
    block.modes.push_back(std::move(mode));
  }
  return relaxed;
}

struct PieceWriter::Impl {
  explicit Impl(const ChainModel& m)
      : model(m), kit(*m.graph, m.chain), analyzer(*m.graph, m.chain) {}
  const ChainModel& model;
  PieceKit kit;
  BlockAnalyzer analyzer;
};

PieceWriter::PieceWriter(const ChainModel& model) : impl_(std::make_unique<Impl>(model)) {}
PieceWriter::~PieceWriter() = default;

void PieceWriter::append(const PieceSpec& spec, std::vector<Step>& steps) {
  const BlockModel& block = impl_->model.blocks[static_cast<std::size_t>(spec.block)];
  BlockAnalyzer& analyzer = impl_->analyzer;
  analyzer.enter(block);
  ModeAnalysis analysis;
  if (spec.mode >= 0)
    analysis = analyzer.analyze(block.modes[static_cast<std::size_t>(spec.mode)].kept);
  const BlockAnalyzer::PieceParts parts =
      spec.kind == PieceSpec::Kind::kForward
          ? analyzer.forward_parts(spec.mode >= 0 ? &analysis : nullptr, spec.first_run,
                                   spec.consume_input, spec.output_needed)
          : analyzer.backward_parts(analysis, spec.variant);
  analyzer.leave();
  assert(parts.valid);
  impl_->kit.build(parts.computes, parts.live_at_start, parts.keep, steps);
}

}  // namespace ckpt::planning
