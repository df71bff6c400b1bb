// The planner pass, top to bottom: decompose the graph into a block chain, measure every block's
// primitives, then either solve the chain DP (optimal) or build a baseline's choice tree, emit the
// tree as a schedule, check it with the simulator, and describe every block for --explain.
#include "ckpt/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <utility>

#include "chain.h"
#include "ckpt/budget.h"
#include "ckpt/error.h"
#include "ckpt/simulator.h"
#include "planner_internal.h"

namespace ckpt {

namespace {

using planning::ChainDp;
using planning::ChainModel;
using planning::summarize_blocks;
using planning::Tree;

constexpr std::array<std::pair<Strategy, std::string_view>, 6> kStrategyNames = {{
    {Strategy::kOptimal, "optimal"},
    {Strategy::kStoreAll, "store-all"},
    {Strategy::kMemoryMinimal, "memory-minimal"},
    {Strategy::kChenSqrt, "chen-sqrt"},
    {Strategy::kChenGreedy, "chen-greedy"},
    {Strategy::kUniform, "uniform"},
}};

[[noreturn]] void invariant_broken(const std::string& what) {
  std::fprintf(stderr, "ckpt: planner invariant broken: %s\n", what.c_str());
  std::abort();
}

void check_options(const PlanOptions& options) {
  if (options.budget_bytes < 0) {
    throw Error(ErrorKind::kUsage, fmt::format("plan: budget_bytes {} is negative; give the bytes "
                                               "the schedule may hold (0 or more)",
                                               options.budget_bytes));
  }
  if (options.segments < 0) {
    throw Error(ErrorKind::kUsage,
                fmt::format("plan: segments {} is negative; use 0 for round(sqrt(blocks))",
                            options.segments));
  }
  if (options.max_exhaustive_block_values < 0 || options.max_exhaustive_block_values > 24) {
    throw Error(ErrorKind::kUsage,
                fmt::format("plan: max_exhaustive_block_values {} is outside 0..24 (2^24 keep "
                            "modes per block is already hours of search)",
                            options.max_exhaustive_block_values));
  }
  if (options.max_exact_blocks < 0 || options.max_exact_blocks > 2048) {
    throw Error(ErrorKind::kUsage,
                fmt::format("plan: max_exact_blocks {} is outside 0..2048 (longer chains are "
                            "coarsened to 2048 blocks first)",
                            options.max_exact_blocks));
  }
  if (!(options.max_bounded_work >= 0)) {
    throw Error(ErrorKind::kUsage,
                fmt::format("plan: max_bounded_work {} is not a non-negative number of "
                            "combinations (0 turns the bounded exact DP off)",
                            options.max_bounded_work));
  }
  if (options.max_bounded_bytes < (std::int64_t{1} << 20)) {
    throw Error(ErrorKind::kUsage,
                fmt::format("plan: max_bounded_bytes {} is below 1 MiB; give the memory the "
                            "bounded exact DP's frontiers may take (default 4 GiB)",
                            options.max_bounded_bytes));
  }
}

// Everything the strategies share: the store-all reference and the measured chain.
struct Setup {
  Schedule store_all;
  SimulationResult store_all_result;
  ChainModel model;
  std::string note;
};

// Above this many blocks even the two-level DP is too slow: the chain is coarsened to this many
// first (docs/algorithms.md, "Exact and approximate").
constexpr int kMaxDpBlocks = 2048;

// Measures `chain` into setup.model (coarsening it first when it is too long for the DP).
void build_model(const TrainingGraph& graph, const PlanOptions& options, bool all_modes,
                 planning::BlockChain chain, Setup& setup) {
  if (static_cast<int>(chain.blocks.size()) > kMaxDpBlocks) {
    const int fine = static_cast<int>(chain.blocks.size());
    chain = planning::coarsen_chain(graph, chain, kMaxDpBlocks);
    setup.note = fmt::format(
        "approximate: the chain's {} blocks were merged into {} (cuts kept where the boundary is "
        "smallest), the most the planners take.",
        fine, chain.blocks.size());
  }
  planning::ModelOptions model_options;
  model_options.max_exhaustive_groups = options.max_exhaustive_block_values;
  model_options.all_modes = all_modes;
  model_options.progress = options.progress;
  setup.model = planning::build_chain_model(graph, std::move(chain), model_options);
}

void report_chain(const TrainingGraph& graph, const PlanOptions& options,
                  const planning::BlockChain& chain) {
  if (!options.progress) return;
  options.progress(fmt::format(
      "planner: {} forward nodes cut into {} blocks ({} cuts merged by the backward rules, {} "
      "pinned values; backward nodes placed {})",
      graph.num_forward_nodes(), chain.blocks.size(), chain.merged_cuts, chain.pinned_values.size(),
      chain.placement == planning::BackwardPlacement::kEarliest ? "in the earliest block they may"
                                                                : "with their ops"));
}

Setup prepare(const TrainingGraph& graph, const PlanOptions& options, bool all_modes) {
  Setup setup;
  setup.store_all = store_all_schedule(graph);
  setup.store_all_result = simulate(graph, setup.store_all);
  if (!setup.store_all_result.valid) {
    throw Error(ErrorKind::kValidation,
                fmt::format("graph \"{}\": even plain backpropagation (store-all) is not a valid "
                            "schedule: {}; check the graph's saved values and in-place ops",
                            graph.name(), setup.store_all_result.error));
  }
  planning::BlockChain chain = planning::decompose_into_blocks(graph);
  report_chain(graph, options, chain);
  build_model(graph, options, all_modes, std::move(chain), setup);
  return setup;
}

// The optimal strategy's second class of schedules (planning::BackwardPlacement): the chain with
// backward nodes placed in the earliest block they may go to, when that chain differs from the
// first. Not for coarsened chains (already approximate; the second solve would double the time).
std::optional<Setup> prepare_earliest(const TrainingGraph& graph, const PlanOptions& options,
                                      const Setup& first) {
  if (!first.note.empty()) return std::nullopt;
  planning::BlockChain chain =
      planning::decompose_into_blocks(graph, planning::BackwardPlacement::kEarliest);
  if (chain.block_of_node == first.model.chain.block_of_node) return std::nullopt;
  report_chain(graph, options, chain);
  std::optional<Setup> setup(std::in_place);
  setup->store_all = first.store_all;
  setup->store_all_result = first.store_all_result;
  build_model(graph, options, /*all_modes=*/true, std::move(chain), *setup);
  return setup;
}

// The better of two optimal plans for the same budget: one that fits over one that does not, then
// the cheaper (the first on a tie); if neither fits, the one needing less memory. The least
// budget is the least of both.
Plan better_plan(Plan first, Plan second) {
  const std::int64_t least = std::min(first.min_feasible_bytes, second.min_feasible_bytes);
  const bool exact = first.exact && second.exact;
  const bool first_fits = first.peak_bytes <= first.budget_bytes;
  const bool second_fits = second.peak_bytes <= second.budget_bytes;
  bool take_second = false;
  if (first_fits != second_fits) {
    take_second = second_fits;
  } else if (first_fits) {
    take_second = second.compute_time_us < first.compute_time_us - 1e-9;
  } else {
    take_second = second.peak_bytes < first.peak_bytes;
  }
  Plan result = take_second ? std::move(second) : std::move(first);
  result.min_feasible_bytes = least;
  result.exact = exact;
  return result;
}

// Emits a tree, checks it against the simulator and fills the plan.
void finish_with_tree(const TrainingGraph& graph, const ChainModel& model, const Tree& tree,
                      Plan& result) {
  const planning::TreeValue value = planning::evaluate_tree(model, tree);
  if (!value.valid) invariant_broken("a strategy produced an invalid choice tree");
  result.schedule = planning::emit_tree(model, tree);
  const SimulationResult simulated = simulate(graph, result.schedule);
  if (!simulated.valid) {
    invariant_broken(fmt::format("graph \"{}\": emitted schedule rejected by the simulator: {}",
                                 graph.name(), simulated.error));
  }
  if (simulated.peak_bytes != value.peak_bytes) {
    invariant_broken(fmt::format("graph \"{}\": predicted peak {} bytes, simulated {} bytes",
                                 graph.name(), value.peak_bytes, simulated.peak_bytes));
  }
  result.peak_bytes = simulated.peak_bytes;
  result.compute_time_us = simulated.compute_time_us;
  result.blocks = summarize_blocks(graph, model, &tree);
}

void finish_store_all(const TrainingGraph& graph, const Setup& setup, Plan& result) {
  result.schedule = setup.store_all;
  result.peak_bytes = setup.store_all_result.peak_bytes;
  result.compute_time_us = setup.store_all_result.compute_time_us;
  result.blocks = summarize_blocks(graph, setup.model, nullptr);
}

std::string approximation_note(const ChainModel& model, int max_exhaustive) {
  int approximate = 0;
  int largest = 0;
  for (const planning::BlockModel& block : model.blocks) {
    if (!block.approximate) continue;
    ++approximate;
    largest = std::max(largest, block.candidate_groups);
  }
  if (approximate == 0) return {};
  return fmt::format(
      "approximate: {} block(s) have more than 2^{} keep/drop choices (up to 2^{}); their modes "
      "were searched greedily (store all, keep only what must be kept, and dropping groups in "
      "order of least recomputation time per byte).",
      approximate, max_exhaustive, largest);
}

void append_note(std::string& note, const std::string& more) {
  if (more.empty()) return;
  if (!note.empty()) note += ' ';
  note += more;
}

// The cheapest of several trees at the budget, or the least-peak one when none fits.
const Tree* pick_tree(const ChainModel& model, const std::vector<Tree>& trees,
                      std::int64_t budget_bytes) {
  const Tree* best = nullptr;
  planning::TreeValue best_value;
  bool best_fits = false;
  for (const Tree& tree : trees) {
    const planning::TreeValue value = planning::evaluate_tree(model, tree);
    if (!value.valid) continue;
    const bool fits = value.peak_bytes <= budget_bytes;
    bool better = best == nullptr;
    if (!better && fits && !best_fits) better = true;
    if (!better && fits == best_fits) {
      better = fits ? value.time_us < best_value.time_us
                    : value.peak_bytes < best_value.peak_bytes ||
                          (value.peak_bytes == best_value.peak_bytes &&
                           value.time_us < best_value.time_us);
    }
    if (better) {
      best = &tree;
      best_value = value;
      best_fits = fits;
    }
  }
  return best;
}

// Every baseline's trees: the two-level DP searches a sub-class that need not contain them, so
// the optimal strategy also considers them directly and stays no worse than any of them.
std::vector<Tree> baseline_trees(const ChainModel& model) {
  const int n = model.num_blocks();
  std::vector<Tree> trees;
  trees.push_back(planning::memory_minimal_tree(model));
  trees.push_back(planning::segment_tree(model, planning::chen_sqrt_segments(model)));
  trees.push_back(planning::segment_tree(
      model,
      planning::uniform_segments(n, std::max(1, static_cast<int>(std::lround(std::sqrt(n)))))));
  for (std::int64_t threshold : planning::chen_thresholds(model)) {
    trees.push_back(
        planning::segment_tree(model, planning::chen_greedy_segments(model, threshold)));
  }
  return trees;
}

std::string two_level_note(const ChainModel& model, const ChainDp& dp) {
  return fmt::format(
      "approximate: the chain has {} blocks, too many for the exact DP's O(n^3) combinations; "
      "the two-level DP cut it into {} macro-blocks and splits sub-problems that span macros "
      "only at macro boundaries (docs/algorithms.md, \"Long chains\"). The plan is also compared "
      "with every baseline and is never worse than any of them.",
      model.num_blocks(), dp.macros());
}

// The optimal strategy's solve, shared by the budgets planned from it: the DP with frontiers
// capped at `cap_bytes`, and for a two-level DP the baselines' trees.
struct OptimalSolve {
  std::optional<ChainDp> dp;
  planning::DpOptions dp_options;
  std::vector<Tree> baselines;
  std::int64_t least_bytes = 0;  // over the DP, the baselines and store-all
  // Two-level only, once computed: the class's least peak, and trees for budgets near it.
  std::optional<planning::LeastPeakSolver> least_peak;
  // Greedy mode search only: the DP over the relaxed model, a lower bound of the exhaustive one.
  std::optional<ChainModel> relaxed_model;
  std::optional<ChainDp> relaxed_dp;
};

// The two-level DP's sub-class need not reach the class's least peak. The least-peak DP
// (planning::LeastPeakSolver, O(n^3) with small constants: ~30 ms at 300 blocks, ~1.3 s at 1000)
// finds it; it runs with every two-level solve up to this many blocks, and above it only when a
// budget is below everything else's least peak (so an infeasible budget still reports the true
// minimum, and a budget between the two gets a plan).
constexpr int kLeastPeakAlwaysBlocks = 300;

void solve_least_peak(const Setup& setup, OptimalSolve& solve) {
  if (solve.least_peak) return;
  solve.least_peak.emplace(setup.model);
  solve.least_bytes = std::min(solve.least_bytes, solve.least_peak->least_peak());
}

OptimalSolve solve_optimal(const Setup& setup, const PlanOptions& options, std::int64_t cap_bytes) {
  OptimalSolve solve;
  solve.dp_options.progress = options.progress;
  solve.dp_options.cap_bytes = cap_bytes;
  solve.dp_options.max_single_level_blocks = options.max_exact_blocks;
  solve.dp.emplace(setup.model, solve.dp_options);
  if (solve.dp->two_level()) solve.baselines = baseline_trees(setup.model);
  solve.least_bytes = std::min(solve.dp->min_peak(), setup.store_all_result.peak_bytes);
  for (const Tree& tree : solve.baselines) {
    const planning::TreeValue value = planning::evaluate_tree(setup.model, tree);
    if (value.valid) solve.least_bytes = std::min(solve.least_bytes, value.peak_bytes);
  }
  if (solve.dp->two_level() && setup.model.num_blocks() <= kLeastPeakAlwaysBlocks) {
    solve_least_peak(setup, solve);
  }
  return solve;
}

// The bound on what an exhaustive mode search could save at this budget: the DP over the relaxed
// model (docs/algorithms.md, "Exact and approximate") never costs more than the exhaustive one.
std::string gap_note(const Setup& setup, OptimalSolve& solve, std::int64_t budget_bytes,
                     const Plan& result) {
  if (!solve.relaxed_dp) {
    solve.relaxed_model.emplace(planning::relaxed_model(setup.model));
    planning::DpOptions options = solve.dp_options;
    options.progress = nullptr;
    options.cap_bytes = std::max(options.cap_bytes, budget_bytes);
    solve.relaxed_dp.emplace(*solve.relaxed_model, options);
  }
  const std::vector<planning::DpPoint>& frontier = solve.relaxed_dp->frontier();
  auto it =
      std::upper_bound(frontier.begin(), frontier.end(), budget_bytes,
                       [](std::int64_t b, const planning::DpPoint& p) { return b < p.peak_bytes; });
  if (it == frontier.begin()) return {};
  const double gap = std::max(0.0, result.compute_time_us - (it - 1)->time_us);
  return fmt::format(
      "At this budget an exhaustive search of those blocks' modes could save at most {:.4g} us "
      "({:.3g}% of this plan's compute time).",
      gap, result.compute_time_us > 0 ? 100 * gap / result.compute_time_us : 0.0);
}

double elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Long chains: the bounded exact DP (docs/algorithms.md, "The bounded exact DP") over one or
// both classes of schedules (the two backward placements). The optimum lies between the classes'
// lower bound (planning::time_lower_bound, or `above`: a ceiling already searched in vain) and
// `ceiling_us` (the time of a tree known to meet the budget), and the DP's work grows with its
// ceiling, so it searches under ceilings rising from the bound, and at last `ceiling_us`: with
// `whole` (the ceiling is a close plan's) a quarter, half and three quarters of the way (none
// after a search from the bound failed); without it (a far ceiling), 0.15% above the bound, then
// 1.25 times as far above it each time. Under each, every class is solved exactly up to that
// ceiling, a later class only up to the time found so far (it need only beat it); the first
// ceiling under which a tree turns up gives the optimum.
//
// Limits: the solves together may try at most options.max_bounded_work combinations (each
// solve's count is known before it runs); with `whole`, the search does not start unless all its
// solves would fit; without it, the search stops once solves that found nothing have stored
// kFutilePointsPerBlock frontier points per block: the optimum is then far above the bound, and
// each further ceiling costs more. A solve also stops at max_bounded_bytes of frontiers
// (`gave_up`). `ran` is false when a limit stopped the search (`above` then says how far it got);
// otherwise trees[k] is class k's tree if it is the best found (a later class's only if strictly
// cheaper or equal), each none when no tree of its class costs at most its ceiling.
struct BoundedSolve {
  bool ran = false;
  bool gave_up = false;
  std::vector<std::optional<Tree>> trees;
  double work = 0;   // combinations tried (estimated before each solve)
  double above = 0;  // the highest ceiling under which no class has a tree
};

// Frontier points per block that solves finding nothing may store before a search under a far
// ceiling stops: about what the two-level DP stores, which is what the search is to save.
constexpr std::size_t kFutilePointsPerBlock = 400;

BoundedSolve bounded_search(const std::vector<const ChainModel*>& models, double ceiling_us,
                            const PlanOptions& options, bool whole, double above = 0) {
  BoundedSolve search;
  search.trees.resize(models.size());
  search.above = above;
  if (!(options.max_bounded_work > 0) || !(ceiling_us < std::numeric_limits<double>::infinity())) {
    return search;
  }
  auto over_limit = [&](double work, double under) {
    if (search.work + work <= options.max_bounded_work) return false;
    if (options.progress) {
      options.progress(fmt::format(
          "planner: the bounded exact DP would try {:.3g} combinations under {:.6g} us (with "
          "{:.3g} tried, more than {:.3g}); the plan stays two-level",
          work, under, search.work, options.max_bounded_work));
    }
    return true;
  };
  // The bounds do not depend on the ceiling: once per class for the whole search.
  std::vector<std::shared_ptr<const planning::TimeBounds>> bounds;
  for (const ChainModel* model : models) {
    bounds.push_back(planning::bounded_time_bounds(*model, options.budget_bytes));
  }
  double least = std::max(above, 0.0);
  if (above <= 0) {
    least = std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < models.size(); ++k) {
      least = std::min(least, planning::time_lower_bound(*models[k], *bounds[k]));
    }
  }
  std::vector<double> ceilings;
  if (whole) {
    // A close ceiling: a quarter, half and three quarters of the way (unless a search from the
    // bound already failed: then the optimum is near the ceiling), then the ceiling, and only
    // if all those solves fit the limit.
    for (const double fraction : {0.25, 0.5, 0.75}) {
      const double under = least + fraction * (ceiling_us - least);
      if (above <= 0 && under > least * 1.0015) ceilings.push_back(under);
    }
    ceilings.push_back(ceiling_us);
    double work = 0;
    for (const double under : ceilings) {
      for (std::size_t k = 0; k < models.size(); ++k) {
        work += planning::bounded_dp_work(*models[k], *bounds[k], under);
      }
    }
    if (over_limit(work, ceiling_us)) return search;
  } else {
    for (double step = 0.0015; least * (1 + step) < ceiling_us; step *= 1.25) {
      ceilings.push_back(least * (1 + step));
    }
    ceilings.push_back(ceiling_us);
  }
  std::size_t futile_points = 0;
  const std::size_t max_futile_points =
      kFutilePointsPerBlock * static_cast<std::size_t>(models.front()->num_blocks());
  for (const double under : ceilings) {
    double best = under;
    bool found = false;
    std::size_t points = 0;
    for (std::size_t k = 0; k < models.size(); ++k) {
      const ChainModel& model = *models[k];
      search.trees[k].reset();
      const double work = planning::bounded_dp_work(model, *bounds[k], best);
      if (over_limit(work, best)) return search;
      search.work += work;
      if (work == 0) continue;  // even the least-time tree costs more
      const auto start = std::chrono::steady_clock::now();
      planning::DpOptions dp_options;
      dp_options.cap_bytes = options.budget_bytes;
      dp_options.max_single_level_blocks = std::numeric_limits<int>::max();
      dp_options.time_ceiling_us = best;
      dp_options.time_bounds = bounds[k];
      // The work estimate does not bound the frontiers' sizes: their memory has its own limit.
      dp_options.max_points =
          static_cast<std::size_t>(options.max_bounded_bytes) / sizeof(planning::DpPoint);
      const ChainDp dp(model, dp_options);
      if (dp.gave_up()) {
        if (options.progress) {
          options.progress(fmt::format(
              "planner: the bounded exact DP stopped at {} frontier points ({}, more than "
              "max_bounded_bytes) after {:.0f} ms; the plan stays two-level",
              dp.stored_points(),
              format_bytes(
                  static_cast<std::int64_t>(dp.stored_points() * sizeof(planning::DpPoint))),
              elapsed_ms(start)));
        }
        search.gave_up = true;
        return search;
      }
      points += dp.stored_points();
      Tree tree = dp.reconstruct(options.budget_bytes);
      if (options.progress) {
        options.progress(
            fmt::format("planner: bounded exact DP under {:.6g} us (lower bound {:.6g} us): {:.3g} "
                        "combinations, {} frontier points, {:.0f} ms{}",
                        best, least, work, dp.stored_points(), elapsed_ms(start),
                        tree.root < 0 ? "; no tree" : ""));
      }
      if (tree.root < 0) continue;
      const planning::TreeValue value = planning::evaluate_tree(model, tree);
      if (!value.valid || value.peak_bytes > options.budget_bytes ||
          value.time_us > best * (1 + 1e-9)) {
        invariant_broken("the bounded exact DP's plan breaks its budget or its ceiling");
      }
      best = std::min(best, value.time_us);
      search.trees[k] = std::move(tree);
      found = true;
    }
    if (found) {
      search.ran = true;
      return search;
    }
    search.above = under;
    futile_points += points;
    if (!whole && futile_points > max_futile_points && under < ceiling_us) {
      if (options.progress) {
        options.progress(fmt::format(
            "planner: the bounded exact DP found nothing under {:.6g} us ({} frontier points "
            "spent); the optimum is far above its lower bound, the plan comes from the "
            "two-level DP",
            under, futile_points));
      }
      return search;
    }
  }
  search.ran = true;
  return search;
}

BoundedSolve bounded_exact_tree(const ChainModel& model, const Tree& known, double ceiling_us,
                                const PlanOptions& options, double above) {
  const double known_us = planning::evaluate_tree(model, known).time_us;
  const double ceiling = std::min(known_us, ceiling_us);
  BoundedSolve solve = bounded_search({&model}, ceiling, options, /*whole=*/true, above);
  // Only a ceiling below the known tree's time can leave nothing: that tree is in the class.
  if (solve.ran && !solve.trees.front() && ceiling >= known_us) {
    invariant_broken("the bounded exact DP lost the plan it was bounded by");
  }
  return solve;
}

// The time of the cheapest tree a two-level solve already has that meets the budget (its DP's and
// the baselines'; infinity if none): a ceiling for the other class's bounded exact DP, which need
// only beat it.
double known_time_at(const Setup& setup, const OptimalSolve& solve, std::int64_t budget_bytes) {
  constexpr double kNone = std::numeric_limits<double>::infinity();
  if (!solve.dp->two_level() || budget_bytes >= setup.store_all_result.peak_bytes) return kNone;
  std::vector<Tree> trees = {solve.dp->reconstruct(budget_bytes)};
  trees.insert(trees.end(), solve.baselines.begin(), solve.baselines.end());
  double best = kNone;
  for (const Tree& tree : trees) {
    if (tree.root < 0) continue;
    const planning::TreeValue value = planning::evaluate_tree(setup.model, tree);
    if (value.valid && value.peak_bytes <= budget_bytes) best = std::min(best, value.time_us);
  }
  return best;
}

// `ceiling_us`: the time of a plan already found at this budget (of the other class of
// schedules), which this class need only beat. Returns the bounded exact DP's work (0 if none).
double plan_optimal_from(const TrainingGraph& graph, const PlanOptions& options, const Setup& setup,
                         OptimalSolve& solve, Plan& result,
                         double ceiling_us = std::numeric_limits<double>::infinity(),
                         double above = 0) {
  const ChainModel& model = setup.model;
  const std::int64_t store_all_peak = setup.store_all_result.peak_bytes;
  // Notes after the plan: a two-level solve may still be made exact by the bounded DP.
  bool two_level = solve.dp->two_level();
  auto finish_notes = [&] {
    result.exact = !two_level && !model.approximate() && setup.note.empty();
    append_note(result.note, setup.note);
    if (two_level) append_note(result.note, two_level_note(model, *solve.dp));
    append_note(result.note, approximation_note(model, options.max_exhaustive_block_values));
  };
  if (solve.dp->two_level() && options.budget_bytes < solve.least_bytes) {
    solve_least_peak(setup, solve);
  }
  result.min_feasible_bytes = solve.least_bytes;
  // Nothing beats plain backpropagation's time.
  if (options.budget_bytes >= store_all_peak) {
    two_level = false;  // exact whatever the DP: plain backpropagation is the cheapest schedule
    finish_notes();
    finish_store_all(graph, setup, result);
    return 0;
  }
  std::vector<Tree> trees = {solve.dp->reconstruct(options.budget_bytes)};  // first: wins ties
  const std::int64_t dp_least = solve.dp->min_peak();
  if (trees.front().root < 0 && dp_least != std::numeric_limits<std::int64_t>::max()) {
    // The DP cannot meet the budget: its least-memory schedule, at exactly its least budget.
    if (solve.dp_options.cap_bytes < dp_least) {
      solve.dp_options.cap_bytes = dp_least;
      solve.dp.emplace(model, solve.dp_options);
    }
    trees.front() = solve.dp->reconstruct(dp_least);
  }
  trees.insert(trees.end(), solve.baselines.begin(), solve.baselines.end());
  if (solve.least_peak) trees.push_back(solve.least_peak->tree(options.budget_bytes));
  if (options.progress) {
    options.progress(fmt::format("planner: DP kept {} frontier points; emitting the plan",
                                 solve.dp->stored_points()));
  }
  const Tree* tree = pick_tree(model, trees, options.budget_bytes);
  const std::int64_t tree_peak =
      tree != nullptr ? planning::evaluate_tree(model, *tree).peak_bytes : store_all_peak;
  if (tree == nullptr || (tree_peak > options.budget_bytes && store_all_peak < tree_peak)) {
    // Nothing fits and store-all needs the least: with the class's least peak known (the
    // least-peak DP), that is the exact answer on the two-level path too.
    if (solve.least_peak) two_level = false;
    finish_notes();
    finish_store_all(graph, setup, result);
    return 0;
  }
  BoundedSolve bounded;
  if (two_level) {
    // Over budget: the cheapest plan at the class's least budget, as the exact DP gives.
    PlanOptions at = options;
    if (tree_peak > at.budget_bytes && solve.least_peak &&
        tree_peak == solve.least_peak->least_peak()) {
      at.budget_bytes = tree_peak;
    }
    if (tree_peak <= at.budget_bytes) {
      bounded = bounded_exact_tree(model, *tree, ceiling_us, at, above);
      if (bounded.ran) two_level = false;
      if (bounded.ran && bounded.trees.front()) tree = &*bounded.trees.front();
    }
  }
  finish_notes();
  if (bounded.ran) {
    append_note(result.note,
                bounded.trees.front()
                    ? "The bounded exact DP solved this chain exactly (it is longer than the "
                      "exact DP's limit; the search was restricted to what could beat the "
                      "two-level plan, docs/algorithms.md, \"The bounded exact DP\")."
                    : "no schedule of this class beats the other class's plan at this budget "
                      "(bounded exact DP); this one is the two-level plan.");
  }
  finish_with_tree(graph, model, *tree, result);
  if (result.peak_bytes <= options.budget_bytes && model.approximate() && !solve.dp->two_level()) {
    append_note(result.note, gap_note(setup, solve, options.budget_bytes, result));
  }
  return bounded.work;
}

void plan_baseline(const TrainingGraph& graph, const PlanOptions& options, const Setup& setup,
                   Plan& result) {
  const ChainModel& model = setup.model;
  const int n = model.num_blocks();
  std::vector<Tree> trees;
  switch (options.strategy) {
    case Strategy::kMemoryMinimal:
      trees.push_back(planning::memory_minimal_tree(model));
      break;
    case Strategy::kChenSqrt:
      trees.push_back(planning::segment_tree(model, planning::chen_sqrt_segments(model)));
      break;
    case Strategy::kUniform: {
      const int segments = options.segments > 0
                               ? options.segments
                               : std::max(1, static_cast<int>(std::lround(std::sqrt(n))));
      trees.push_back(planning::segment_tree(model, planning::uniform_segments(n, segments)));
      break;
    }
    case Strategy::kChenGreedy:
      for (std::int64_t threshold : planning::chen_thresholds(model)) {
        trees.push_back(
            planning::segment_tree(model, planning::chen_greedy_segments(model, threshold)));
      }
      break;
    default:
      break;
  }
  const Tree* tree = pick_tree(model, trees, options.budget_bytes);
  if (tree == nullptr) invariant_broken("a baseline produced no valid schedule");
  finish_with_tree(graph, model, *tree, result);
  append_note(result.note, setup.note);
  result.exact = setup.note.empty();
  if (options.strategy == Strategy::kChenGreedy) {
    // The least budget greedy can meet is the least peak over its thresholds.
    std::int64_t least = std::numeric_limits<std::int64_t>::max();
    for (const Tree& candidate : trees) {
      const planning::TreeValue value = planning::evaluate_tree(model, candidate);
      if (value.valid) least = std::min(least, value.peak_bytes);
    }
    result.min_feasible_bytes = least;
  } else {
    result.min_feasible_bytes = result.peak_bytes;
  }
}

Plan empty_plan(const TrainingGraph& graph, const PlanOptions& options) {
  Plan result;
  result.strategy = options.strategy;
  result.budget_bytes = options.budget_bytes;
  result.baseline_time_us = graph.baseline_time_us();
  return result;
}

// A chain longer than max_exact_blocks (not coarsened), one budget: the bounded exact DP over both
// classes under ceilings from their lower bound up to `known` (a tree of one of them meets the
// budget in that time). `least` is the least budget to report. With one budget to plan, `known`
// is the best baseline tree's time and no two-level DP runs (`known` infinite: computed here);
// in a sweep it is the best of the two-level plans. `plan` is empty when it does not apply (no
// tree meets the budget: the two-level path knows the least budget), or when its work or memory
// limit stopped it.
struct DirectSolve {
  std::optional<Plan> plan;
  bool gave_up = false;
  double work = 0;
  double above = 0;    // BoundedSolve::above
  bool tried = false;  // a tree was known to meet the budget and the search started
};

DirectSolve plan_directly(const TrainingGraph& graph, const PlanOptions& options,
                          const Setup& setup, const std::optional<Setup>& earliest,
                          double known = std::numeric_limits<double>::infinity(),
                          std::int64_t least = -1, double above = 0) {
  DirectSolve direct;
  const bool far = least < 0;  // the ceiling is a baseline's, likely far above the optimum
  if (!(options.max_bounded_work > 0) || setup.model.num_blocks() <= options.max_exact_blocks ||
      !setup.note.empty() || options.budget_bytes >= setup.store_all_result.peak_bytes) {
    return direct;
  }
  std::vector<const Setup*> setups = {&setup};
  if (earliest) setups.push_back(&*earliest);
  std::vector<const ChainModel*> models;
  for (const Setup* one : setups) models.push_back(&one->model);
  if (least < 0) {
    least = setup.store_all_result.peak_bytes;
    for (const Setup* one : setups) {
      for (const Tree& tree : baseline_trees(one->model)) {
        const planning::TreeValue value = planning::evaluate_tree(one->model, tree);
        if (!value.valid) continue;
        least = std::min(least, value.peak_bytes);
        if (value.peak_bytes <= options.budget_bytes) known = std::min(known, value.time_us);
      }
    }
    // The least budget: exact from the least-peak DP where it is cheap, otherwise the least peak
    // of the schedules built (store-all and the baselines), which the class may undercut.
    if (std::isfinite(known) && setup.model.num_blocks() <= kLeastPeakAlwaysBlocks) {
      for (const Setup* one : setups) {
        least = std::min(least, planning::LeastPeakSolver(one->model).least_peak());
      }
    }
  }
  if (!(known < std::numeric_limits<double>::infinity())) return direct;
  direct.tried = true;
  const BoundedSolve search = bounded_search(models, known, options, /*whole=*/!far, above);
  direct.work = search.work;
  direct.gave_up = search.gave_up;
  direct.above = search.above;
  if (!search.ran) return direct;
  std::optional<Plan> best;
  for (std::size_t k = 0; k < setups.size(); ++k) {
    if (!search.trees[k]) continue;
    const Setup& one = *setups[k];
    Plan plan = empty_plan(graph, options);
    append_note(plan.note, approximation_note(one.model, options.max_exhaustive_block_values));
    append_note(plan.note,
                "The bounded exact DP solved this chain exactly (it is longer than the exact "
                "DP's limit; the search was restricted to what could beat a plan already known, "
                "docs/algorithms.md, \"The bounded exact DP\").");
    finish_with_tree(graph, one.model, *search.trees[k], plan);
    plan.min_feasible_bytes = least;
    best = best ? better_plan(std::move(*best), std::move(plan)) : std::move(plan);
  }
  // A known tree meets the budget at the last ceiling: some class has a tree under it.
  if (!best) invariant_broken("the bounded exact DP lost the plan it was bounded by");
  // Exact over both classes only if neither searched its modes greedily.
  for (const ChainModel* model : models) best->exact = best->exact && !model->approximate();
  direct.plan = std::move(best);
  return direct;
}

}  // namespace

std::string_view to_string(Strategy strategy) {
  for (const auto& [known, name] : kStrategyNames) {
    if (known == strategy) return name;
  }
  return "unknown";
}

std::optional<Strategy> strategy_from_string(std::string_view name) {
  for (const auto& [strategy, known] : kStrategyNames) {
    if (known == name) return strategy;
  }
  return std::nullopt;
}

const std::vector<Strategy>& all_strategies() {
  static const std::vector<Strategy> strategies = [] {
    std::vector<Strategy> list;
    for (const auto& [strategy, name] : kStrategyNames) list.push_back(strategy);
    return list;
  }();
  return strategies;
}

Plan plan(const TrainingGraph& graph, const PlanOptions& options) {
  // One budget is a sweep of one: the same DP, capped at the budget.
  return plan_sweep(graph, options, {options.budget_bytes}).front();
}

std::vector<Plan> plan_sweep(const TrainingGraph& graph, const PlanOptions& options,
                             const std::vector<std::int64_t>& budgets_bytes) {
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t budget : budgets_bytes) {
    PlanOptions one = options;
    one.budget_bytes = budget;
    check_options(one);
  }
  check_options(options);
  const Setup setup = prepare(graph, options, /*all_modes=*/options.strategy == Strategy::kOptimal);
  std::optional<OptimalSolve> solve;
  std::optional<Setup> earliest;
  std::optional<OptimalSolve> earliest_solve;
  // The bounded exact DP's work limit is for the whole sweep: its budgets share it, the most
  // generous first (their optimal trees are the shallowest, so they cost the least).
  double bounded_work_left = options.max_bounded_work;
  double searched_above = 0;  // no tree of either class is cheaper (one budget only)
  if (options.strategy == Strategy::kOptimal) {
    earliest = prepare_earliest(graph, options, setup);
    if (budgets_bytes.size() == 1) {
      // One budget on a long chain: the bounded exact DP straight away, without the two-level DP.
      PlanOptions one = options;
      one.budget_bytes = budgets_bytes.front();
      DirectSolve direct = plan_directly(graph, one, setup, earliest);
      if (direct.plan) {
        direct.plan->feasible = true;
        direct.plan->plan_ms = elapsed_ms(start);
        return {std::move(*direct.plan)};
      }
      // The two-level plans below start the search where this one stopped.
      bounded_work_left = direct.gave_up ? 0 : bounded_work_left - direct.work;
      searched_above = direct.above;
    }
    // One DP for every budget, its frontiers capped at the largest budget store-all exceeds.
    std::int64_t cap = -2;
    for (std::int64_t budget : budgets_bytes) {
      if (budget < setup.store_all_result.peak_bytes) cap = std::max(cap, budget);
    }
    solve.emplace(solve_optimal(setup, options, cap));
    if (earliest) earliest_solve.emplace(solve_optimal(*earliest, options, cap));
  }
  std::vector<Plan> plans(budgets_bytes.size());
  std::vector<std::size_t> order(budgets_bytes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return budgets_bytes[a] > budgets_bytes[b];
  });
  for (std::size_t index : order) {
    const std::int64_t budget = budgets_bytes[index];
    PlanOptions one = options;
    one.budget_bytes = budget;
    Plan result = empty_plan(graph, one);
    bool bounded_done = false;  // the bounded exact DP has had its try at this budget
    switch (options.strategy) {
      case Strategy::kOptimal:
        if (solve->dp->two_level()) {
          // Both classes searched together under the better two-level plan, as for one budget.
          double known = known_time_at(setup, *solve, budget);
          std::int64_t least = solve->least_bytes;
          if (earliest) {
            known = std::min(known, known_time_at(*earliest, *earliest_solve, budget));
            least = std::min(least, earliest_solve->least_bytes);
          }
          one.max_bounded_work = bounded_work_left;
          DirectSolve direct =
              plan_directly(graph, one, setup, earliest, known, least, searched_above);
          bounded_work_left = direct.gave_up ? 0 : bounded_work_left - direct.work;
          if (direct.plan) {
            result = std::move(*direct.plan);
            break;
          }
          // Stopped by a limit: the classes one at a time would be too.
          bounded_done = direct.tried;
        }
        one.max_bounded_work = bounded_done ? 0 : bounded_work_left;
        // The first class need only beat the second's two-level plan: the better of the two is
        // the answer, and the second is then solved under the first's plan.
        bounded_work_left -=
            plan_optimal_from(graph, one, setup, *solve, result,
                              earliest ? known_time_at(*earliest, *earliest_solve, budget)
                                       : std::numeric_limits<double>::infinity(),
                              searched_above);
        if (earliest) {
          Plan other = empty_plan(graph, one);
          one.max_bounded_work = bounded_done ? 0 : bounded_work_left;
          bounded_work_left -= plan_optimal_from(graph, one, *earliest, *earliest_solve, other,
                                                 result.peak_bytes <= result.budget_bytes
                                                     ? result.compute_time_us
                                                     : std::numeric_limits<double>::infinity(),
                                                 searched_above);
          result = better_plan(std::move(result), std::move(other));
        }
        break;
      case Strategy::kStoreAll:
        finish_store_all(graph, setup, result);
        result.min_feasible_bytes = result.peak_bytes;
        break;
      default:
        plan_baseline(graph, one, setup, result);
        break;
    }
    result.feasible = result.peak_bytes <= result.budget_bytes;
    result.plan_ms = elapsed_ms(start);
    plans[index] = std::move(result);
  }
  return plans;
}

std::vector<FrontierPoint> pareto_frontier(const TrainingGraph& graph, const PlanOptions& options) {
  check_options(options);
  Setup setup = prepare(graph, options, /*all_modes=*/true);
  planning::DpOptions dp_options;
  dp_options.progress = options.progress;
  dp_options.max_single_level_blocks = options.max_exact_blocks;
  // Plain backpropagation is a point of its own: plan() returns it at any budget it fits; so
  // are the baselines' schedules when the DP is two-level (plan() considers them too), and the
  // points of the second class of schedules (prepare_earliest).
  const FrontierPoint store_all{setup.store_all_result.peak_bytes,
                                setup.store_all_result.compute_time_us};
  std::vector<FrontierPoint> candidates = {store_all};
  auto add_points = [&](const Setup& one) {
    const ChainDp dp(one.model, dp_options);
    for (const planning::DpPoint& point : dp.frontier()) {
      candidates.push_back({point.peak_bytes, point.time_us});
    }
    if (dp.two_level()) {
      std::vector<Tree> trees = baseline_trees(one.model);
      trees.push_back(planning::LeastPeakSolver(one.model).tree(0));
      for (const Tree& tree : trees) {
        const planning::TreeValue value = planning::evaluate_tree(one.model, tree);
        if (value.valid) candidates.push_back({value.peak_bytes, value.time_us});
      }
    }
  };
  add_points(setup);
  if (const std::optional<Setup> earliest = prepare_earliest(graph, options, setup)) {
    add_points(*earliest);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const FrontierPoint& a, const FrontierPoint& b) {
                     if (a.peak_bytes != b.peak_bytes) return a.peak_bytes < b.peak_bytes;
                     return a.compute_time_us < b.compute_time_us;
                   });
  std::vector<FrontierPoint> points;
  for (const FrontierPoint& point : candidates) {
    if (!points.empty() && point.compute_time_us >= points.back().compute_time_us) continue;
    points.push_back(point);
  }
  return points;
}

std::optional<double> compute_time_lower_bound(const TrainingGraph& graph,
                                               const PlanOptions& options, int points) {
  check_options(options);
  if (points < 2) {
    throw Error(ErrorKind::kUsage,
                fmt::format("compute_time_lower_bound: points {} is below 2", points));
  }
  const Setup setup = prepare(graph, options, /*all_modes=*/true);
  if (!setup.note.empty()) return std::nullopt;  // the bound would be the coarsened chain's
  // Nothing is faster than plain backpropagation.
  if (options.budget_bytes >= setup.store_all_result.peak_bytes) {
    return setup.store_all_result.compute_time_us;
  }
  std::optional<double> bound;
  auto bound_over = [&](const Setup& one) {
    planning::DpOptions dp_options;
    dp_options.cap_bytes = options.budget_bytes;
    dp_options.max_single_level_blocks = std::numeric_limits<int>::max();
    dp_options.optimistic_points = points;
    dp_options.progress = options.progress;
    // Greedy mode search: the relaxed model's modes are at least as good as every real one.
    std::optional<ChainModel> relaxed;
    if (one.model.approximate()) relaxed.emplace(planning::relaxed_model(one.model));
    const ChainDp dp(relaxed ? *relaxed : one.model, dp_options);
    const std::vector<planning::DpPoint>& frontier = dp.frontier();
    auto it = std::upper_bound(
        frontier.begin(), frontier.end(), options.budget_bytes,
        [](std::int64_t budget, const planning::DpPoint& p) { return budget < p.peak_bytes; });
    if (it == frontier.begin()) return;
    const double time_us = (it - 1)->time_us;
    bound = bound ? std::min(*bound, time_us) : time_us;
  };
  bound_over(setup);
  if (const std::optional<Setup> earliest = prepare_earliest(graph, options, setup)) {
    bound_over(*earliest);
  }
  return bound;
}

}  // namespace ckpt
