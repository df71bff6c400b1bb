// The planner pass: given a training graph and a budget in bytes, return the schedule with the
// least compute whose simulated peak fits the budget. The optimal strategy is an exact dynamic
// program over a chain of blocks (docs/algorithms.md); the baselines are the strategies users
// compare it with. Not fitting the budget is a result (feasible = false, with the least budget
// the strategy can meet), not an error.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ckpt/schedule.h"
#include "ckpt/training_graph.h"

namespace ckpt {

// A planner: the optimal DP, or one of the baselines it is compared with (docs/algorithms.md).
enum class Strategy : std::uint8_t {
  kOptimal,        // exact DP: least compute under the budget
  kStoreAll,       // plain backpropagation, no recompute
  kMemoryMinimal,  // keep only resident values; recompute everything from them when needed
  kChenSqrt,       // Chen et al. 2016: ~sqrt(n) segments, boundaries at articulation values
  kChenGreedy,     // Chen et al. 2016: greedy segments under the budget
  kUniform,        // equal-length segments, like torch.utils.checkpoint.checkpoint_sequential
};

// The names ckpt-plan's --strategy takes ("optimal", "store-all", ...) and back.
std::string_view to_string(Strategy strategy);
std::optional<Strategy> strategy_from_string(std::string_view name);
// Every strategy, in the order reports list them.
const std::vector<Strategy>& all_strategies();

// What to plan for: the strategy, the budget and the planners' knobs.
struct PlanOptions {
  Strategy strategy = Strategy::kOptimal;
  // Charged bytes (activations, gradients, saved state, workspace) the schedule may hold at once.
  std::int64_t budget_bytes = std::numeric_limits<std::int64_t>::max();
  // kUniform: number of segments; 0 picks round(sqrt(number of blocks)).
  int segments = 0;
  // kOptimal: a block with more keep/drop candidate groups than this (more than 2^this keep
  // modes) is searched greedily (docs/algorithms.md; the plan then has exact = false and its
  // note bounds what an exhaustive search could save). 0..24.
  int max_exhaustive_block_values = 16;
  // kOptimal: chains of up to this many blocks are solved by the exact DP, longer ones by the
  // bounded exact DP within max_bounded_work, else by the two-level DP (docs/algorithms.md, "Exact
  // and approximate"; the plan then has exact = false).
  // The exact DP's time grows as the cube of the blocks. 0..2048 (chains of up to 3 blocks are
  // always solved exactly).
  int max_exact_blocks = 96;
  // kOptimal, longer chains: the plan is made exact by the bounded exact DP (the exact DP
  // restricted to trees under a time ceiling, deepened from a lower bound; docs/algorithms.md,
  // "The bounded exact DP") as long as its solves, together, try at most this many (first block,
  // split, last block) combinations (each solve's count is known before it runs); past it the
  // plan is two-level. 0: never. From 10 ns to 2 us each on the dev machine (the 1000-op
  // synthetic chain is exact in 0.06-0.5 s at 95% to 20% of store-all). In plan_sweep() the
  // budgets share this limit, in order.
  double max_bounded_work = 2e6;
  // ... and it gives up (the plan stays two-level) once one solve's frontiers would hold more
  // than this many bytes (24 per point), whatever the work limit. At least 1 MiB.
  std::int64_t max_bounded_bytes = std::int64_t{4} << 30;
  // Called with one line of progress on long solves (ckpt-plan --verbose); may be empty.
  std::function<void(std::string_view)> progress;
};

// One block of the chain the planners work on: forward nodes between two articulation values.
struct BlockSummary {
  std::vector<NodeId> forward_nodes;
  ValueId output = kNoId;     // the articulation value ending the block (kNoId for the last)
  std::vector<ValueId> kept;  // internal values the plan keeps from its forward to its backward
  bool checkpointed = false;  // output kept across a recompute segment
  int recomputations = 0;     // times its forward runs again in the plan
  std::string explanation;    // why (ckpt-plan --explain)
};

// A planner's result; every number is the simulator's for `schedule`.
struct Plan {
  Strategy strategy = Strategy::kOptimal;
  bool feasible = false;  // peak_bytes <= budget_bytes
  bool exact = true;      // false when an approximation was used (see note)
  std::int64_t budget_bytes = 0;
  std::int64_t peak_bytes = 0;  // simulated peak of `schedule`
  // The least budget this strategy can meet on this graph. For an optimal plan on a chain of more
  // than 300 blocks that meets its budget, the least of what the planner built (the two-level
  // DP's sub-class or, for one budget on the bounded path, nothing but store-all and the
  // baselines), which can be higher; when the budget is not met, always the least of the whole
  // class (docs/algorithms.md, "Exact and approximate", "The bounded exact DP").
  std::int64_t min_feasible_bytes = 0;
  double compute_time_us = 0;
  double baseline_time_us = 0;  // store-all's compute time
  double overhead() const {
    return baseline_time_us > 0 ? compute_time_us / baseline_time_us - 1 : 0;
  }
  double plan_ms = 0;  // wall time of planning
  // When feasible: the plan. Otherwise: the strategy's least-memory schedule.
  Schedule schedule;
  std::vector<BlockSummary> blocks;
  std::string note;  // approximation gap, fallbacks, ...
};

// Plans `graph` with options.strategy under options.budget_bytes. Never throws for an unmet budget.
Plan plan(const TrainingGraph& graph, const PlanOptions& options);

// Plans options.strategy at each of `budgets_bytes` (options.budget_bytes is ignored) sharing
// one decomposition and, for the optimal strategy, one DP: the plans plan() returns for each
// budget (for an exact plan the same cost, and the same schedule where the exact DP made it), at
// a fraction of the time, except that on long chains the budgets share options.max_bounded_work,
// the largest budgets first, so a plan that plan() would make exact may stay two-level. Plans
// are returned in the order of the budgets; each plan_ms is the time from the call's start to
// that plan's end (largest budgets first).
std::vector<Plan> plan_sweep(const TrainingGraph& graph, const PlanOptions& options,
                             const std::vector<std::int64_t>& budgets_bytes);

// A point of the memory/compute trade-off: the least compute at a peak of at most peak_bytes.
struct FrontierPoint {
  std::int64_t peak_bytes = 0;
  double compute_time_us = 0;
};

// The optimal strategy's whole Pareto frontier, from the minimum feasible budget to store-all,
// ascending in peak_bytes and strictly descending in compute time.
std::vector<FrontierPoint> pareto_frontier(const TrainingGraph& graph, const PlanOptions& options);

// A proven lower bound on the least compute time of the optimal planner's class of schedules at
// options.budget_bytes, to measure how far an approximate plan (Plan::exact false) can be from
// that optimum: the exact DP over the whole chain, however long, with every frontier merged into
// about `points` optimistic points (docs/algorithms.md, "A lower bound"). Its time grows as the
// cube of the blocks (seconds at 1000); more points give a tighter, slower bound. Empty when no
// schedule of the class meets the budget or when the chain was coarsened (more than 2048
// blocks). Throws ckpt::Error (kUsage) for bad options or points < 2.
std::optional<double> compute_time_lower_bound(const TrainingGraph& graph,
                                               const PlanOptions& options, int points = 16);

}  // namespace ckpt
