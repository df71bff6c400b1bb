// The planner's internal model, shared by its passes: the block chain annotated with each block's
// measured primitives (forward without saving, forward saving a keep mode, backward), the choice
// trees every strategy builds, and the functions that evaluate and emit them. Every byte figure
// here was measured by MemoryTracker on the primitive's own steps; the DP and the baselines only
// add and compare them (docs/algorithms.md). Internal to the library.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chain.h"
#include "ckpt/planner.h"
#include "ckpt/schedule.h"
#include "ckpt/training_graph.h"

namespace ckpt::planning {

// Peak of a piece with no compute step: it adds nothing to a schedule's peak.
inline constexpr std::int64_t kNoPeak = -1;

inline std::int64_t add_bytes(std::int64_t peak, std::int64_t bytes) {
  return peak < 0 ? peak : peak + bytes;
}

// A measured sub-schedule.
struct Piece {
  bool valid = false;
  std::int64_t peak_bytes = kNoPeak;  // worst compute step, its preconditions included
  std::int64_t end_bytes = 0;         // charged bytes live when it ends
  double time_us = 0;                 // compute time of its steps
  int computes = 0;                   // compute steps (recomputations, for a rerun or backward)
};

// A unit of the keep/drop choice: the internal storages of a block that must be kept or dropped
// together (one node writes them all, so recomputing one rewrites the others).
struct Group {
  std::vector<ValueId> values;  // non-overwritten values of those storages made in the block
  std::int64_t bytes = 0;
  bool read_by_backward = false;
  bool forced = false;  // the backward needs it and only a side-effecting node can make it
};

// How the block's input boundary fares in its backward piece.
enum class BackwardVariant : std::uint8_t {
  kInputKept,      // live at the start and at the end (the caller needs it afterwards)
  kInputReleased,  // live at the start, freed after its last read
  kInputAbsent,    // already freed (nothing in the backward piece reads it)
};

// A keep mode K of one block with its measured primitives.
struct Mode {
  std::vector<int> kept;        // group indices, ascending
  std::int64_t kept_bytes = 0;  // bytes K holds between the forward and the backward piece
  bool reads_input = false;     // the backward piece (recomputation included) reads x_{i-1}
  bool reads_output = false;    // ... reads x_i
  int recomputed_nodes = 0;     // forward nodes its backward piece recomputes
  Piece forward_first[2];       // [consume input]: first computation of the block, keeping K
  Piece forward_rerun[2][2];    // [consume input][output needed]
  Piece backward[3];            // by BackwardVariant
};

struct BlockModel {
  NodeId first_forward = 0, end_forward = 0, first_backward = 0, end_backward = 0;
  std::vector<ValueId> input;   // x_{i-1}
  std::vector<ValueId> output;  // x_i
  ValueId input_root = kNoId, output_root = kNoId;
  std::vector<ValueId> gradients_in;   // delta_i
  std::vector<ValueId> gradients_out;  // delta_{i-1}
  std::int64_t input_bytes = 0, output_bytes = 0, gradients_in_bytes = 0;
  std::vector<Group> groups;
  // Values of the input or output storage made here that cost nothing while that boundary lives.
  std::vector<ValueId> free_riders;
  // Forward without saving: [consume input].
  Piece no_save_first[2];
  Piece no_save_rerun[2];
  std::vector<Mode> modes;
  int store_all_mode = -1;   // keeps everything its backward reads (no recomputation)
  int min_mode = -1;         // keeps the least
  int candidate_groups = 0;  // groups the search chose among
  int same_as = -1;          // the first block measured exactly alike (itself if none before)
  bool approximate = false;  // modes were searched greedily, not exhaustively
};

struct ChainModel {
  const TrainingGraph* graph = nullptr;
  BlockChain chain;
  std::vector<BlockModel> blocks;
  int num_blocks() const { return static_cast<int>(blocks.size()); }
  bool approximate() const;
};

struct ModelOptions {
  int max_exhaustive_groups = 16;
  // Baselines need only the store-all and the least mode; the optimal strategy needs them all.
  bool all_modes = true;
  // Drop modes another mode beats in every context (tests turn it off to check that it is sound).
  bool prune_dominated = true;
  std::function<void(std::string_view)> progress;
};

// Measures every block's primitives and keep modes on the chain. Throws nothing.
ChainModel build_chain_model(const TrainingGraph& graph, BlockChain chain,
                             const ModelOptions& options);

// One primitive of a block, as the emitter asks for its steps.
struct PieceSpec {
  enum class Kind : std::uint8_t { kForward, kBackward };
  Kind kind = Kind::kForward;
  int block = 0;
  int mode = -1;  // -1: forward without saving
  bool first_run = false;
  bool consume_input = false;
  bool output_needed = true;
  BackwardVariant variant = BackwardVariant::kInputKept;
};
// A copy of the model in which every block whose modes were searched greedily also has a
// fictitious mode at least as good as any of its real modes in every context (lower bounds of
// its pieces' peaks and times, measured on MemoryTracker). The DP over it bounds from below what
// the exhaustive search would find. Never emitted: the fictitious mode has no steps.
ChainModel relaxed_model(const ChainModel& model);

// Writes the steps of pieces, exactly those their figures were measured on.
class PieceWriter {
 public:
  explicit PieceWriter(const ChainModel& model);
  ~PieceWriter();
  PieceWriter(const PieceWriter&) = delete;
  PieceWriter& operator=(const PieceWriter&) = delete;
  void append(const PieceSpec& spec, std::vector<Step>& steps);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Choice trees: the class of schedules every strategy is expressed in. ----
//
// C(s, t, hold): starting with x_{s-1} and delta_t live, process blocks s..t and end with
// delta_{s-1} live (and x_{s-1} too when `hold`). Runs are first computations when t is the
// last block, recomputations otherwise.
struct TreeNode {
  enum class Kind : std::uint8_t {
    kAll,         // forward s keeping `mode`, then C(s+1, t), then backward s
    kCheckpoint,  // forward s..split-1 without saving, C(split, t), then C(s, split-1)
  };
  Kind kind = Kind::kAll;
  int s = 0, t = 0;
  bool hold = false;
  int mode = -1;    // kAll
  int split = -1;   // kCheckpoint
  int first = -1;   // kAll: C(s+1, t) or -1 when s == t; kCheckpoint: C(split, t)
  int second = -1;  // kCheckpoint: C(s, split-1)
};

struct Tree {
  std::vector<TreeNode> nodes;
  int root = -1;
};

// The figures of one kAll option, as the DP and the evaluator combine them.
struct AllTerms {
  bool valid = false;
  std::int64_t before_peak = kNoPeak;  // forward piece, delta_t included
  std::int64_t held_bytes = 0;         // live besides x_s while C(s+1, t) runs
  bool sub_hold = false;               // C(s+1, t) must keep x_s
  std::int64_t after_peak = kNoPeak;   // backward piece
  double time_us = 0;
  bool consume_input = false;
  bool output_needed = true;
  BackwardVariant variant = BackwardVariant::kInputKept;
};
// A mode's figures in a context, delta_t left out (the DP adds it).
AllTerms mode_terms(const BlockModel& block, const Mode& mode, bool first_run, bool hold,
                    bool has_sub);
AllTerms all_terms(const ChainModel& model, int s, int t, bool hold, int mode);

// The forward sweep of a kCheckpoint option: blocks s..split-1 without saving.
struct SweepTerms {
  bool valid = false;
  std::int64_t peak = kNoPeak;  // delta_t included
  double time_us = 0;
};
SweepTerms sweep_terms(const ChainModel& model, int s, int split, int t);

struct TreeValue {
  bool valid = false;
  std::int64_t peak_bytes = kNoPeak;
  double time_us = 0;
};
TreeValue evaluate_tree(const ChainModel& model, const Tree& tree);
// The value of the subtree at `index` (for builders that check a part before using it).
TreeValue evaluate_subtree(const ChainModel& model, const Tree& tree, int index);
// The schedule of a valid tree.
Schedule emit_tree(const ChainModel& model, const Tree& tree);

// Per block: times its forward runs again (reruns and recomputation in its backward), the mode
// its backward used, and whether its output was held across a recomputed segment.
struct TreeUsage {
  std::vector<int> mode;  // -1 if not found (invalid tree)
  std::vector<int> reruns;
  std::vector<char> checkpointed;
};
TreeUsage tree_usage(const ChainModel& model, const Tree& tree);

// ---- Block summaries (planner_explain.cc). ----

// What each block of a plan keeps, whether its output is a checkpoint, how often its forward runs
// again, and one line on why. `tree` null: the store-all schedule (every block keeps what its
// backward reads).
std::vector<BlockSummary> summarize_blocks(const TrainingGraph& graph, const ChainModel& model,
                                           const Tree* tree);

// ---- Baselines (planner_baselines.cc), each a tree of the same class. ----

// Keeps only what no recomputation can rebuild: recursively sweeps to the last block of every
// range and recomputes the rest from the range's input (quadratic time, least memory).
Tree memory_minimal_tree(const ChainModel& model);

// The least peak of the whole class and trees that fit a budget (planner_least.cc), for chains
// the two-level DP solves: so that the least budget a plan reports is the class's, and budgets
// below the sub-class's least get a plan. O(n^3) time and O(n^2) memory to build; a tree is
// O(n^2). least_peak() is INT64_MAX when the class has no tree (tree() then has root -1).
class LeastPeakSolver {
 public:
  explicit LeastPeakSolver(const ChainModel& model);
  std::int64_t least_peak() const;
  // A tree whose peak is at most max(budget_bytes, least_peak()), chosen greedily top-down by
  // estimated time; never costlier than the least-peak tree itself.
  Tree tree(std::int64_t budget_bytes) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};
// Checkpoints the input of each segment (ascending first blocks, starting at 0), stores
// everything inside a segment while it is recomputed; the last segment is never recomputed, and
// neither is a segment whose recomputation would repeat a side effect.
Tree segment_tree(const ChainModel& model, const std::vector<int>& segment_starts);
// k segments of about equal block counts (torch checkpoint_sequential).
std::vector<int> uniform_segments(int num_blocks, int segments);
// About sqrt(n) segments of about equal stored bytes (Chen et al. 2016).
std::vector<int> chen_sqrt_segments(const ChainModel& model);
// Chen's greedy segmentation for a threshold: blocks accumulate into a segment until the bytes
// it stores pass the threshold. Candidate thresholds to search come from chen_thresholds.
std::vector<int> chen_greedy_segments(const ChainModel& model, std::int64_t threshold_bytes);
std::vector<std::int64_t> chen_thresholds(const ChainModel& model);

// ---- The chain DP (planner_dp.cc). ----

// The bounded exact DP's lower bounds for one budget (planner_dp.cc): per-block times and the
// relaxation of the memory at the turn of the first pass.
struct TimeBounds;

struct DpOptions {
  // Frontier points above this are dropped: planning for one budget needs none of them.
  std::int64_t cap_bytes = std::numeric_limits<std::int64_t>::max();
  std::function<void(std::string_view)> progress;
  // Longer chains are solved by the two-level DP (docs/algorithms.md, "Long chains").
  int max_single_level_blocks = 96;
  // Two-level DP only: frontiers are thinned to about this many points; 0: clamp(n/4, 128, 256).
  int max_frontier_points = 0;
  // > 0: a lower bound instead of a plan. Every frontier is thinned to about this many points
  // by merging runs of points into their ideal corner (the run's least peak with its least time),
  // which dominates them; the operations that combine frontiers are monotone, so the root
  // frontier then lies on or below the class's true one. reconstruct() must not be used.
  int optimistic_points = 0;
  // Single-level only, finite: the time of a schedule of the class known to meet the one budget
  // the DP is solved for. Every sub-problem and point that could only be part of a costlier tree
  // is skipped (docs/algorithms.md, "The bounded exact DP"), so reconstruct() at that budget
  // still returns the class's optimum; frontier() and min_peak() are no longer the class's.
  double time_ceiling_us = std::numeric_limits<double>::infinity();
  // Bounded only: stop (gave_up()) once the frontiers hold more points than this (24 bytes each).
  std::size_t max_points = std::numeric_limits<std::size_t>::max();
  // Bounded only: bounded_time_bounds(model, cap_bytes), when the caller has it (it does not
  // depend on the ceiling); empty: computed here.
  std::shared_ptr<const TimeBounds> time_bounds;
};

// The bounded exact DP's lower bounds for one budget (TimeBounds, above): they do not depend on
// the ceiling, so a search under several ceilings computes them once.
std::shared_ptr<const TimeBounds> bounded_time_bounds(const ChainModel& model,
                                                      std::int64_t budget_bytes);
// The bounded exact DP's work for a ceiling: the (s, split, t) combinations it would try
// (sub-problems it solves and their splits), for deciding whether to run it. 0 when even the
// least-time schedule of the class costs more than the ceiling.
double bounded_dp_work(const ChainModel& model, const TimeBounds& bounds, double time_ceiling_us);
double bounded_dp_work(const ChainModel& model, std::int64_t budget_bytes, double time_ceiling_us);
// A lower bound on the time of any tree of the class that meets the budget: the least time of
// every block, raised by the memory at the turn of the first pass (docs/algorithms.md, "The
// turn of the first pass"). Where the bounded exact DP starts its search.
double time_lower_bound(const ChainModel& model, const TimeBounds& bounds);

// A frontier point of C(s, t, hold): the least time at a peak of peak_bytes, and the option that
// achieves it (>= 0: kAll with that mode; < 0: kCheckpoint with split = s - choice).
struct DpPoint {
  std::int64_t peak_bytes = 0;
  double time_us = 0;
  std::int32_t choice = 0;
};

class ChainDp {
 public:
  ChainDp(const ChainModel& model, const DpOptions& options);

  // The frontier of C(0, n-1): ascending peak, strictly descending time.
  const std::vector<DpPoint>& frontier() const { return at(false, 0, n_ - 1); }
  // The least peak of any schedule of the class; INT64_MAX when there is none.
  std::int64_t min_peak() const { return min_peak_at(index(false, 0, n_ - 1)); }
  // The tree of the cheapest point whose peak is at most budget_bytes (root -1 if none).
  Tree reconstruct(std::int64_t budget_bytes) const;
  std::size_t stored_points() const { return stored_points_; }
  // True when the chain was too long for the single-level DP: the frontier is then the optimum
  // of a sub-class (splits of long sub-problems only at macro boundaries).
  bool two_level() const { return !macro_of_.empty(); }
  int macros() const { return static_cast<int>(macro_start_.size()); }
  // True when the solve stopped at DpOptions::max_points: nothing else may then be used.
  bool gave_up() const { return gave_up_; }

 private:
  // The slot of a sub-problem the DP computes. Single-level: every (s, t). Two-level: only those
  // inside a macro, on the first forward pass and between macro boundaries, numbered compactly
  // (O(n^1.5) of them instead of n^2). Bounded: only C(s, n-1) and C(s, t) below s's reach.
  std::size_t state(int s, int t) const;
  std::size_t index(bool hold, int s, int t) const {
    return static_cast<std::size_t>(hold) * states_ + state(s, t);
  }
  const std::vector<DpPoint>& at(bool hold, int s, int t) const {
    return frontier_at(index(hold, s, t));
  }
  const std::vector<DpPoint>& frontier_at(std::size_t i) const {
    return pool_[static_cast<std::size_t>(slot_[i])];
  }
  std::int64_t min_peak_at(std::size_t i) const {
    return pool_min_peak_[static_cast<std::size_t>(slot_[i])];
  }
  void number_block_sequences();
  void solve(int s, int t, bool hold);
  void offer_all(std::vector<DpPoint>& result, const AllTerms& terms, int next, int t,
                 std::int32_t choice, std::int64_t& min_peak);
  void offer_checkpoint(std::vector<DpPoint>& result, int s, int split, int t, bool hold,
                        const SweepTerms& sweep, std::int64_t& min_peak);
  void extend_sweep(SweepTerms& sweep, int s, int k, int t) const;
  void flush(std::vector<DpPoint>& frontier, bool always);
  void thin(std::vector<DpPoint>& frontier) const;
  void thin_optimistically(std::vector<DpPoint>& frontier) const;
  void partition_into_macros();
  bool outer(int s, int t) const;
  bool computed(int s, int t) const;
  bool stores_through(int s, int t) const;
  AllTerms through_terms(int macro, int t, bool hold, int combo) const;
  int rebuild_through(Tree& tree, bool hold, int s, int t, const DpPoint& point) const;
  void prune_modes_per_context();
  const std::vector<int>& context_modes(int s, int t, bool hold) const;
  int rebuild(Tree& tree, bool hold, int s, int t, std::int64_t budget_bytes) const;

  const ChainModel& model_;
  DpOptions options_;
  int n_ = 0;
  // Frontiers are stored once per distinct sub-problem (pool_) and shared by every (s, t, hold)
  // whose blocks are measured alike (slot_).
  std::vector<std::vector<DpPoint>> pool_;
  std::vector<std::int64_t> pool_min_peak_;
  std::vector<int> slot_;
  std::vector<int> sequence_;  // per state: id of the sequence of block classes s..t, or -1
  std::size_t states_ = 0;     // sub-problems per value of hold
  std::vector<std::size_t> inner_offset_;  // two-level: first state of each s inside its macro
  std::size_t inner_states_ = 0;
  std::unordered_map<std::int64_t, int> shared_;
  // Two-level DP only: macro of each block, each macro's first and last block, and per macro the
  // mode assignments for storing through it.
  std::vector<int> macro_of_;
  std::vector<int> macro_start_;
  std::vector<int> macro_end_;
  std::vector<std::vector<std::vector<int>>> through_;
  std::vector<DpPoint> candidates_;
  std::vector<DpPoint> scratch_;
  std::vector<std::pair<int, AllTerms>> all_terms_;
  // Per block and context (first run, hold, has a sub-call): the modes worth trying.
  std::vector<std::vector<int>> context_modes_;
  std::vector<char> hold_insensitive_;  // per block: C(s, t, true) is C(s, t, false)
  std::vector<char> held_input_;        // per block: some caller may ask for C(s, t, true)
  std::size_t stored_points_ = 0;
  bool gave_up_ = false;
  // The bounded exact DP (time_ceiling_us finite).
  bool bounded_ = false;
  // Per s: C(s, t) with t >= bounded_reach_[s] never fit (t < n-1). Per C(s, n-1) and C(s, t)
  // below the reach (bounded_entry): the least time it can take, the most a useful point of it
  // may take, and the limit on a useful point's time + bounded_mu_ * peak.
  std::vector<int> bounded_reach_;
  std::vector<std::size_t> bounded_offset_;  // per s: where its C(s, t), t < reach, start
  std::vector<double> bounded_least_;
  std::vector<double> bounded_cap_;
  std::vector<double> bounded_point_limit_;
  double bounded_mu_ = 0;
  std::size_t bounded_entry(int s, int t) const {
    return t + 1 == n_
               ? static_cast<std::size_t>(s)
               : bounded_offset_[static_cast<std::size_t>(s)] + static_cast<std::size_t>(t - s);
  }
  double time_cap_us_ = std::numeric_limits<double>::infinity();  // of the one being solved
};

}  // namespace ckpt::planning
