// Block decomposition: cuts a training graph into a chain of blocks, each a run of consecutive
// forward nodes whose only charged link to the rest of the forward pass is one boundary storage
// (the block's output), with the backward nodes that differentiate it. The planners work on this
// chain (docs/algorithms.md, "The block chain"). Internal to the library.
#pragma once

#include <cstdint>
#include <vector>

#include "ckpt/training_graph.h"

namespace ckpt::planning {

struct Block {
  // Forward nodes [first_forward, end_forward) and backward nodes [first_backward, end_backward),
  // both in id order. A block always has at least one forward node unless the graph has none; its
  // backward run may be empty (nothing in it is differentiated).
  NodeId first_forward = 0;
  NodeId end_forward = 0;
  NodeId first_backward = 0;
  NodeId end_backward = 0;
  // The boundary storage x_i later blocks read, and the values of it (produced in this block) that
  // any later node reads. kNoId / empty when nothing charged crosses (and for the last block).
  ValueId output_root = kNoId;
  std::vector<ValueId> output;
  // delta_i: charged values made by later blocks' backward runs that this block's backward run or
  // an earlier block's reads; live when this block's backward run starts. Ascending ids.
  std::vector<ValueId> gradients_in;
};

// Where a backward node goes among the blocks its reads allow. kWithItsOp: the block of the op it
// differentiates (its neighbour's in a joint graph). kEarliest: a node that reads forward values
// goes to the earliest block they allow, so that a backward node reading only a block's input
// boundary (a convolution's weight and input gradients) runs in the previous block's backward,
// after that boundary is recomputed there, and the boundary need not be held through the later
// block's backward; gradient-only nodes stay with their ops. Neither class of schedules
// contains the other; the optimal planner solves both when they differ.
enum class BackwardPlacement : std::uint8_t { kWithItsOp, kEarliest };

struct BlockChain {
  std::vector<Block> blocks;
  // Per node (forward and backward): index of its block.
  std::vector<int> block_of_node;
  // Per value: the node that first outputs it, or kNoId for values no node outputs (inputs).
  std::vector<NodeId> producer;
  // Per value: its storage is pinned (see below). Pinned values live from their first computation
  // to the end of the schedule and are never dropped, so they cross cuts freely.
  std::vector<char> pinned;
  // Values of pinned storages made by forward nodes, ascending.
  std::vector<ValueId> pinned_values;
  // Cut positions the crossing rule accepted but the backward rules forced to merge away.
  int merged_cuts = 0;
  BackwardPlacement placement = BackwardPlacement::kWithItsOp;

  bool is_pinned(ValueId v) const { return pinned[static_cast<std::size_t>(v)] != 0; }
};

// Small storages that live across many otherwise valid cuts (the labels the loss reads, an
// attention mask every layer reads) are pinned first: a storage is pinned when, at two or more
// positions, it is one of only two crossing and at most 1/8 the size of the other, and it is
// never overwritten in place. Cuts after forward node p are then taken where (a) exactly one
// charged storage made by nodes <= p is read by forward nodes > p (or none is), later nodes never
// overwrite it in place, and it differs from the previous cut's; then cuts are removed until (b)
// every backward node reads forward values of one block besides that block's input and output
// boundaries and (c) the backward nodes form contiguous runs in reverse block order. One block is
// the worst case.
//
// `placement`: see BackwardPlacement.
BlockChain decompose_into_blocks(const TrainingGraph& graph,
                                 BackwardPlacement placement = BackwardPlacement::kWithItsOp);

// Merges consecutive blocks so that at most `max_blocks` remain (for chains too long for the DP):
// within evenly spaced windows of forward time, keeps the cut with the smallest boundary storage.
// The result is a valid chain.
BlockChain coarsen_chain(const TrainingGraph& graph, const BlockChain& chain, int max_blocks);

}  // namespace ckpt::planning
