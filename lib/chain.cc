// Block decomposition of a training graph. A sweep over the forward order counts, for every cut
// position, the charged storages that cross it (made before, read by a forward node after); cuts
// with one crossing storage (or none) are candidates. The backward rules are then checked by
// giving every backward node the interval of blocks its forward reads allow and assigning blocks
// greedily along the backward order; a conflict names a span of blocks, whose inner cuts are
// removed, and the check runs again until none is left.
//
// Boost.Graph's articulation points were considered for proposing cuts: every valid boundary is
// an articulation value of the undirected forward graph, but not every articulation value is a
// valid boundary (the rule is about the execution order and about storages, not values), so the
// O(nodes + edges) crossing sweep below is both the proposal and the check.
#include "chain.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <numeric>

namespace ckpt::planning {

namespace {

constexpr int kNoBlock = -1;

// Facts about the graph that do not depend on where the cuts are.
struct GraphFacts {
  std::vector<NodeId> producer;  // per value
  std::vector<char> killed;      // per value: some node kills it (an in-place write)
  std::vector<char> pinned;      // per storage root
  int num_forward = 0;

  bool is_pinned_root(ValueId root) const { return pinned[static_cast<std::size_t>(root)] != 0; }
};

GraphFacts collect_facts(const TrainingGraph& graph) {
  GraphFacts facts;
  facts.num_forward = graph.num_forward_nodes();
  facts.producer.assign(static_cast<std::size_t>(graph.num_values()), kNoId);
  facts.killed.assign(static_cast<std::size_t>(graph.num_values()), 0);
  facts.pinned.assign(static_cast<std::size_t>(graph.num_values()), 0);
  for (NodeId n = 0; n < graph.num_nodes(); ++n) {
    const Node& node = graph.node(n);
    for (ValueId out : node.outputs) {
      auto& producer = facts.producer[static_cast<std::size_t>(out)];
      if (producer == kNoId) producer = n;
    }
    for (ValueId k : node.kills) facts.killed[static_cast<std::size_t>(k)] = 1;
  }
  return facts;
}

bool is_forward_value(const GraphFacts& facts, ValueId v) {
  const NodeId p = facts.producer[static_cast<std::size_t>(v)];
  return p != kNoId && p < facts.num_forward;
}

// A candidate cut after forward node `position`, with the storage crossing it.
struct Cut {
  NodeId position = 0;
  ValueId root = kNoId;  // kNoId: nothing charged crosses
};

// Per storage root: the forward interval in which it crosses cuts.
struct StorageIntervals {
  std::vector<NodeId> first_made;
  std::vector<NodeId> last_forward_read;
  std::vector<NodeId> last_kill;

  bool crosses_anything(std::size_t r) const {
    return first_made[r] != std::numeric_limits<NodeId>::max() &&
           last_forward_read[r] > first_made[r];
  }
};

StorageIntervals storage_intervals(const TrainingGraph& graph, const GraphFacts& facts) {
  const auto num_values = static_cast<std::size_t>(graph.num_values());
  StorageIntervals iv;
  iv.first_made.assign(num_values, std::numeric_limits<NodeId>::max());
  iv.last_forward_read.assign(num_values, -1);
  iv.last_kill.assign(num_values, -1);
  for (NodeId n = 0; n < facts.num_forward; ++n) {
    const Node& node = graph.node(n);
    for (ValueId out : node.outputs) {
      if (graph.is_resident(out)) continue;
      auto& first = iv.first_made[static_cast<std::size_t>(graph.storage_root(out))];
      first = std::min(first, n);
    }
    auto note_read = [&](ValueId v) {
      if (graph.is_resident(v) || !is_forward_value(facts, v)) return;
      auto& last = iv.last_forward_read[static_cast<std::size_t>(graph.storage_root(v))];
      last = std::max(last, n);
    };
    for (ValueId in : node.inputs) note_read(in);
    for (ValueId acc : node.accumulates) note_read(acc);
    for (ValueId k : node.kills) {
      if (graph.is_resident(k)) continue;
      auto& last = iv.last_kill[static_cast<std::size_t>(graph.storage_root(k))];
      last = std::max(last, n);
    }
  }
  return iv;
}

// Pins small storages that alone stand between many positions and a valid cut.
void choose_pinned(const TrainingGraph& graph, const StorageIntervals& iv, GraphFacts& facts) {
  const int num_forward = facts.num_forward;
  const auto num_values = static_cast<std::size_t>(graph.num_values());
  // Storages starting / ending at each position (ending = last read; crossing p means
  // first_made <= p < last_forward_read).
  std::vector<std::vector<ValueId>> starts(static_cast<std::size_t>(num_forward) + 1);
  std::vector<std::vector<ValueId>> ends(static_cast<std::size_t>(num_forward) + 1);
  for (std::size_t r = 0; r < num_values; ++r) {
    if (!iv.crosses_anything(r)) continue;
    starts[static_cast<std::size_t>(iv.first_made[r])].push_back(static_cast<ValueId>(r));
    ends[static_cast<std::size_t>(iv.last_forward_read[r])].push_back(static_cast<ValueId>(r));
  }
  constexpr int kMaxRounds = 8;
  for (int round = 0; round < kMaxRounds; ++round) {
    std::vector<int> votes(num_values, 0);
    std::vector<ValueId> active;  // crossing, not pinned; ascending
    for (NodeId p = 0; p + 1 < num_forward; ++p) {
      for (ValueId r : ends[static_cast<std::size_t>(p)]) std::erase(active, r);
      for (ValueId r : starts[static_cast<std::size_t>(p)]) {
        if (!facts.is_pinned_root(r))
          active.insert(std::lower_bound(active.begin(), active.end(), r), r);
      }
      if (active.size() != 2) continue;
      const ValueId a = active[0];
      const ValueId b = active[1];
      const auto span = [&](ValueId r) {
        return iv.last_forward_read[static_cast<std::size_t>(r)] -
               iv.first_made[static_cast<std::size_t>(r)];
      };
      const ValueId longer = span(a) >= span(b) ? a : b;
      const ValueId other = longer == a ? b : a;
      // Pinning pays only when the pinned storage is small beside what it blocks.
      if (graph.storage_bytes(longer) * 8 > graph.storage_bytes(other)) continue;
      votes[static_cast<std::size_t>(longer)] += 1;
    }
    ValueId best = kNoId;
    for (std::size_t r = 0; r < num_values; ++r) {
      if (votes[r] < 2 || iv.last_kill[r] >= 0) continue;
      if (best == kNoId || votes[r] > votes[static_cast<std::size_t>(best)]) {
        best = static_cast<ValueId>(r);
      }
    }
    if (best == kNoId) return;
    facts.pinned[static_cast<std::size_t>(best)] = 1;
  }
}

// Cuts that satisfy the crossing rule (a), the in-place rule and the distinct-storage rule.
std::vector<Cut> candidate_cuts(const TrainingGraph& graph, const GraphFacts& facts,
                                const StorageIntervals& iv) {
  const int num_forward = facts.num_forward;
  if (num_forward <= 1) return {};
  const auto num_values = static_cast<std::size_t>(graph.num_values());
  // count[p]: storages crossing the cut after node p; root_sum[p] names the storage when one does.
  std::vector<int> count(static_cast<std::size_t>(num_forward) + 1, 0);
  std::vector<std::int64_t> root_sum(static_cast<std::size_t>(num_forward) + 1, 0);
  for (std::size_t r = 0; r < num_values; ++r) {
    if (!iv.crosses_anything(r) || facts.is_pinned_root(static_cast<ValueId>(r))) continue;
    count[static_cast<std::size_t>(iv.first_made[r])] += 1;
    count[static_cast<std::size_t>(iv.last_forward_read[r])] -= 1;
    root_sum[static_cast<std::size_t>(iv.first_made[r])] += static_cast<std::int64_t>(r);
    root_sum[static_cast<std::size_t>(iv.last_forward_read[r])] -= static_cast<std::int64_t>(r);
  }
  std::vector<Cut> cuts;
  int running = 0;
  std::int64_t running_sum = 0;
  for (NodeId p = 0; p + 1 < num_forward; ++p) {
    running += count[static_cast<std::size_t>(p)];
    running_sum += root_sum[static_cast<std::size_t>(p)];
    if (running > 1) continue;
    const ValueId root = running == 1 ? static_cast<ValueId>(running_sum) : kNoId;
    // The next block may not overwrite the boundary in place: its old version is what the
    // blocks before it hand over, and what their recomputations would need again.
    if (root != kNoId && iv.last_kill[static_cast<std::size_t>(root)] > p) continue;
    // Two cuts crossed by the same storage would make a block whose output shares its input's
    // storage; keep the first. (The storage crosses every position between them, so any cut
    // between them is crossed by it too.)
    if (root != kNoId && !cuts.empty() && cuts.back().root == root) continue;
    cuts.push_back({p, root});
  }
  return cuts;
}

// Builds the chain for a set of cuts. Returns an empty optional-like result through `conflict`:
// when the backward rules fail, [conflict_first, conflict_last] is a span of blocks to merge.
struct BuildResult {
  BlockChain chain;
  int conflict_first = kNoBlock;
  int conflict_last = kNoBlock;
};

BuildResult build_chain(const TrainingGraph& graph, const GraphFacts& facts,
                        const std::vector<Cut>& cuts, BackwardPlacement placement) {
  BuildResult result;
  BlockChain& chain = result.chain;
  const int num_forward = facts.num_forward;
  const int num_nodes = graph.num_nodes();
  const int num_blocks = static_cast<int>(cuts.size()) + 1;
  chain.producer = facts.producer;
  chain.pinned.assign(static_cast<std::size_t>(graph.num_values()), 0);
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    if (graph.is_resident(v) || !facts.is_pinned_root(graph.storage_root(v))) continue;
    chain.pinned[static_cast<std::size_t>(v)] = 1;
    if (is_forward_value(facts, v)) chain.pinned_values.push_back(v);
  }
  chain.block_of_node.assign(static_cast<std::size_t>(num_nodes), 0);
  chain.blocks.resize(static_cast<std::size_t>(num_blocks));
  for (int b = 0; b < num_blocks; ++b) {
    Block& block = chain.blocks[static_cast<std::size_t>(b)];
    block.first_forward = b == 0 ? 0 : cuts[static_cast<std::size_t>(b - 1)].position + 1;
    block.end_forward =
        b + 1 == num_blocks ? num_forward : cuts[static_cast<std::size_t>(b)].position + 1;
    if (b + 1 < num_blocks) block.output_root = cuts[static_cast<std::size_t>(b)].root;
    for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
      chain.block_of_node[static_cast<std::size_t>(n)] = b;
    }
  }
  // Boundary values: values of the crossing storage, made in the block, not overwritten in
  // place, read by some node after the block's forward nodes.
  std::vector<int> boundary_of(static_cast<std::size_t>(graph.num_values()), kNoBlock);
  for (int b = 0; b + 1 < num_blocks; ++b) {
    Block& block = chain.blocks[static_cast<std::size_t>(b)];
    if (block.output_root == kNoId) continue;
    for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
      for (ValueId out : graph.node(n).outputs) {
        if (graph.is_resident(out) || graph.storage_root(out) != block.output_root) continue;
        if (facts.killed[static_cast<std::size_t>(out)] != 0) continue;
        if (facts.producer[static_cast<std::size_t>(out)] != n) continue;
        const auto& readers = graph.consumers(out);
        const bool read_later = std::any_of(readers.begin(), readers.end(),
                                            [&](NodeId r) { return r >= block.end_forward; });
        if (!read_later) continue;
        block.output.push_back(out);
        boundary_of[static_cast<std::size_t>(out)] = b;
      }
    }
    std::sort(block.output.begin(), block.output.end());
  }
  // Rule (b): the blocks each backward node may belong to.
  const int num_backward = num_nodes - num_forward;
  std::vector<int> low(static_cast<std::size_t>(num_backward), 0);
  std::vector<int> high(static_cast<std::size_t>(num_backward), num_blocks - 1);
  std::vector<char> reads_forward(static_cast<std::size_t>(num_backward), 0);
  for (NodeId n = num_forward; n < num_nodes; ++n) {
    const Node& node = graph.node(n);
    int lo = 0;
    int hi = num_blocks - 1;
    int max_low = 0;
    int min_high = num_blocks - 1;
    auto constrain = [&](ValueId v) {
      if (graph.is_resident(v) || !is_forward_value(facts, v) || chain.is_pinned(v)) return;
      const int made_in =
          chain
              .block_of_node[static_cast<std::size_t>(facts.producer[static_cast<std::size_t>(v)])];
      const int boundary = boundary_of[static_cast<std::size_t>(v)];
      const int a = made_in;
      const int b = boundary != kNoBlock ? made_in + 1 : made_in;
      reads_forward[static_cast<std::size_t>(n - num_forward)] = 1;
      lo = std::max(lo, a);
      hi = std::min(hi, b);
      max_low = std::max(max_low, a);
      min_high = std::min(min_high, b);
    };
    for (ValueId in : node.inputs) constrain(in);
    for (ValueId acc : node.accumulates) constrain(acc);
    if (lo > hi) {
      result.conflict_first = min_high;
      result.conflict_last = max_low;
      return result;
    }
    low[static_cast<std::size_t>(n - num_forward)] = lo;
    high[static_cast<std::size_t>(n - num_forward)] = hi;
  }
  // Rule (c): non-increasing blocks along the backward order. Each node goes to the block it
  // prefers (for a derived graph, the block of the op it differentiates; otherwise its
  // neighbour's) as far as its interval, its predecessor and the nodes after it allow: a node
  // must stay at or above every later node's lowest block.
  std::vector<int> later_low(static_cast<std::size_t>(num_backward) + 1, 0);
  for (int i = num_backward - 1; i >= 0; --i) {
    later_low[static_cast<std::size_t>(i)] =
        std::max(later_low[static_cast<std::size_t>(i) + 1], low[static_cast<std::size_t>(i)]);
  }
  int current = num_blocks - 1;
  for (NodeId n = num_forward; n < num_nodes; ++n) {
    const auto i = static_cast<std::size_t>(n - num_forward);
    const int ceiling = std::min(high[i], current);
    int preferred = current;
    const NodeId source = graph.node(n).source_id;
    if (graph.derived() && source >= 0 && source < num_forward) {
      preferred = chain.block_of_node[static_cast<std::size_t>(source)];
    }
    // A node reading forward values goes to the earliest block they allow; one reading none
    // (a gradient-only node) stays with its op.
    if (placement == BackwardPlacement::kEarliest && reads_forward[i] != 0) {
      preferred = std::min(preferred, low[i]);
    }
    const int assigned = std::max(later_low[i], std::min(preferred, ceiling));
    if (assigned > ceiling) {
      result.conflict_first = ceiling;
      result.conflict_last = later_low[i];
      return result;
    }
    chain.block_of_node[static_cast<std::size_t>(n)] = assigned;
    current = assigned;
  }
  // Backward runs: contiguous, highest block first.
  for (int b = 0; b < num_blocks; ++b) {
    Block& block = chain.blocks[static_cast<std::size_t>(b)];
    block.first_backward = num_nodes;
    block.end_backward = num_nodes;
  }
  {
    NodeId n = num_forward;
    for (int b = num_blocks - 1; b >= 0; --b) {
      Block& block = chain.blocks[static_cast<std::size_t>(b)];
      block.first_backward = n;
      while (n < num_nodes && chain.block_of_node[static_cast<std::size_t>(n)] == b) ++n;
      block.end_backward = n;
    }
  }
  // delta_i: backward-made charged values read by a block at or before i, made after it.
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    const NodeId p = facts.producer[static_cast<std::size_t>(v)];
    if (p == kNoId || p < num_forward || graph.is_resident(v)) continue;
    const int made_in = chain.block_of_node[static_cast<std::size_t>(p)];
    int last_reader = made_in;
    for (NodeId r : graph.consumers(v)) {
      if (r < num_forward) continue;
      last_reader = std::min(last_reader, chain.block_of_node[static_cast<std::size_t>(r)]);
    }
    for (int b = last_reader; b < made_in; ++b) {
      chain.blocks[static_cast<std::size_t>(b)].gradients_in.push_back(v);
    }
  }
  return result;
}

// Removes the cuts between blocks first..last (inclusive span of blocks).
void merge_span(std::vector<Cut>& cuts, int first, int last) {
  assert(first < last);
  cuts.erase(cuts.begin() + first, cuts.begin() + last);
}

}  // namespace

BlockChain decompose_into_blocks(const TrainingGraph& graph, BackwardPlacement placement) {
  GraphFacts facts = collect_facts(graph);
  const StorageIntervals intervals = storage_intervals(graph, facts);
  choose_pinned(graph, intervals, facts);
  std::vector<Cut> cuts = candidate_cuts(graph, facts, intervals);
  int merged = 0;
  for (;;) {
    BuildResult built = build_chain(graph, facts, cuts, placement);
    if (built.conflict_first == kNoBlock) {
      built.chain.merged_cuts = merged;
      built.chain.placement = placement;
      return std::move(built.chain);
    }
    const std::size_t before = cuts.size();
    merge_span(cuts, built.conflict_first, built.conflict_last);
    merged += static_cast<int>(before - cuts.size());
  }
}

BlockChain coarsen_chain(const TrainingGraph& graph, const BlockChain& chain, int max_blocks) {
  const int num_blocks = static_cast<int>(chain.blocks.size());
  if (num_blocks <= max_blocks || max_blocks < 1) return chain;
  GraphFacts facts = collect_facts(graph);
  for (ValueId v : chain.pinned_values) {
    facts.pinned[static_cast<std::size_t>(graph.storage_root(v))] = 1;
  }
  // Forward time before each cut, to space the kept cuts evenly in compute.
  std::vector<double> time_before_cut(static_cast<std::size_t>(num_blocks - 1), 0.0);
  double total = 0;
  for (int b = 0; b < num_blocks; ++b) {
    const Block& block = chain.blocks[static_cast<std::size_t>(b)];
    for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
      total += graph.node(n).time_us + 1e-9;  // zero-time blocks still advance
    }
    if (b + 1 < num_blocks) time_before_cut[static_cast<std::size_t>(b)] = total;
  }
  std::vector<Cut> kept;
  int next_cut = 0;
  for (int w = 1; w < max_blocks; ++w) {
    const double window_end = total * w / max_blocks;
    int best = -1;
    std::int64_t best_bytes = std::numeric_limits<std::int64_t>::max();
    for (int c = next_cut;
         c < num_blocks - 1 && time_before_cut[static_cast<std::size_t>(c)] <= window_end; ++c) {
      const ValueId root = chain.blocks[static_cast<std::size_t>(c)].output_root;
      const std::int64_t bytes = root == kNoId ? 0 : graph.storage_bytes(root);
      if (bytes <= best_bytes) {
        best_bytes = bytes;
        best = c;
      }
    }
    if (best < 0) continue;
    const Block& block = chain.blocks[static_cast<std::size_t>(best)];
    kept.push_back({block.end_forward - 1, block.output_root});
    next_cut = best + 1;
  }
  BuildResult built = build_chain(graph, facts, kept, chain.placement);
  // Removing cuts from a valid chain cannot break the backward rules.
  assert(built.conflict_first == kNoBlock);
  built.chain.merged_cuts = chain.merged_cuts + (num_blocks - 1 - static_cast<int>(kept.size()));
  built.chain.placement = chain.placement;
  return std::move(built.chain);
}

}  // namespace ckpt::planning
