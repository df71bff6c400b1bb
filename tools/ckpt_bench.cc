// ckpt-bench: planner speed and plan quality on graph files and on a synthetic 1000-op chain.
// For each graph it prints the optimal planner's time for one budget (median of --runs runs), the
// time of a 32-budget sweep (plan_sweep) and of the whole frontier (pareto_frontier), the DP's
// frontier points and the growth of the process's peak RSS, and a quality table: every strategy's
// overhead at 80/60/40/25% of the store-all peak and at the optimal strategy's least budget ("—"
// where the strategy cannot meet it). With --gap N it measures instead what the two-level DP (the
// approximation for chains longer than PlanOptions::max_exact_blocks) loses against the exact DP,
// on random chains of N ops (seeds 1..--seeds) at 80/60/40/25% and at the exact least budget;
// the exact plan comes from the full exact DP, or with --bounded from the bounded exact DP (the
// same optimum, tested, in a fraction of the time). With --exact-chain N it solves the synthetic
// chain of N ops exactly by the bounded exact DP, without its work and memory limits, and prints
// what that costs against the two-level plan. Markdown output.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ckpt/error.h"
#include "ckpt/formats.h"
#include "ckpt/graph.h"
#include "ckpt/planner.h"
#include "ckpt/simulator.h"
#include "ckpt/training_graph.h"

namespace {

using namespace ckpt;

struct BenchOptions {
  int runs = 5;
  bool quality = true;
  bool synthetic_chain = true;
  int gap_ops = 0;  // > 0: the two-level DP's gap on random chains of this many ops
  int gap_seeds = 5;
  bool gap_bounded = false;  // --gap: the exact plan by the bounded exact DP, not the full one
  int bound_points = 0;      // > 0: also a proven lower bound (compute_time_lower_bound)
  int bound_chain_ops = 0;   // > 0: the bound for the synthetic chain of this many ops
  int exact_chain_ops = 0;   // > 0: the synthetic chain of this many ops by the bounded exact DP
  std::vector<int> percents = {80, 60, 40, 25};  // --exact-chain: budgets, % of store-all
  std::vector<std::string> graph_paths;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

double elapsed_ms(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // KiB on Linux
}

// A chain of `ops` ops with random sizes (1..64 MiB) and times (10..500 us); linear-like ops save
// their input, activation-like ops their output, as in a real network.
TrainingGraph synthetic_chain(int ops, unsigned seed = 2026) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int64_t> mib(1, 64);
  std::uniform_real_distribution<double> us(10, 500);
  GraphBuilder b(fmt::format("chain{}", ops));
  ValueId x = b.add_input("x", mib(rng) << 20);
  const ValueId w = b.add_param("w", 4 << 20);
  for (int i = 0; i < ops; ++i) {
    const bool linear = i % 2 == 0;
    std::vector<ValueId> inputs = {x};
    if (linear) inputs.push_back(w);
    x = b.add_simple_op(fmt::format("op{}", i), linear ? "linear" : "gelu", inputs,
                        i + 1 == ops ? 4 : mib(rng) << 20, us(rng), us(rng),
                        linear ? std::vector<ValueId>{x} : std::vector<ValueId>{kNoId});
  }
  return derive_training_graph(std::move(b).build());
}

Plan plan_at(const TrainingGraph& graph, Strategy strategy, std::int64_t budget_bytes) {
  PlanOptions options;
  options.strategy = strategy;
  options.budget_bytes = budget_bytes;
  return plan(graph, options);
}

// The frontier points of one DP solve, from the planner's "DP kept N frontier points" or
// "bounded exact DP under ...: W combinations, N frontier points" progress line; -1 for others.
long dp_points(const std::string_view line) {
  constexpr std::string_view kKept = "planner: DP kept ";
  constexpr std::string_view kBounded = "planner: bounded exact DP under ";
  if (line.substr(0, kKept.size()) == kKept) {
    return std::atol(std::string(line.substr(kKept.size())).c_str());
  }
  if (line.substr(0, kBounded.size()) != kBounded) return -1;
  const std::size_t points = line.find(" frontier points");
  const std::size_t comma = line.rfind(", ", points);
  if (points == std::string_view::npos || comma == std::string_view::npos) return -1;
  return std::atol(std::string(line.substr(comma + 2, points - comma - 2)).c_str());
}

void bench_graph(const std::string& label, const TrainingGraph& graph,
                 const BenchOptions& options) {
  const long rss_before = peak_rss_kib();
  const std::int64_t store_all = simulate(graph, store_all_schedule(graph)).peak_bytes;
  const std::int64_t budget = store_all * 40 / 100;
  std::vector<double> one_budget;
  Plan last;
  long points = -1;
  for (int r = 0; r < options.runs; ++r) {
    PlanOptions plan_options;
    plan_options.budget_bytes = budget;
    points = -1;  // the largest solve's
    plan_options.progress = [&](std::string_view line) {
      points = std::max(points, dp_points(line));
    };
    one_budget.push_back(elapsed_ms([&] { last = plan(graph, plan_options); }));
  }
  std::vector<FrontierPoint> frontier;
  const double frontier_ms = elapsed_ms([&] { frontier = pareto_frontier(graph, PlanOptions{}); });
  const std::int64_t least = frontier.empty() ? store_all : frontier.front().peak_bytes;
  std::vector<std::int64_t> budgets;
  for (int i = 0; i < 32; ++i) budgets.push_back(least + (store_all - least) * i / 31);
  std::vector<Plan> sweep;
  const double sweep_ms = elapsed_ms([&] { sweep = plan_sweep(graph, PlanOptions{}, budgets); });
  const auto exact =
      std::count_if(sweep.begin(), sweep.end(), [](const Plan& p) { return p.exact; });
  fmt::print("| {} | {} | {} | {:.1f} | {:.0f} ({}/32 exact) | {:.0f} | {} | {} | {} | {} |\n",
             label, graph.num_nodes(), last.blocks.size(), median(one_budget), sweep_ms, exact,
             frontier_ms, frontier.size(), points, last.exact ? "exact" : "approx.",
             (peak_rss_kib() - rss_before) / 1024);
  std::fflush(stdout);
}

void quality_table(const std::string& label, const TrainingGraph& graph) {
  const std::int64_t store_all = simulate(graph, store_all_schedule(graph)).peak_bytes;
  const std::int64_t least = plan_at(graph, Strategy::kOptimal, 0).min_feasible_bytes;
  struct Column {
    std::string name;
    std::int64_t budget;
  };
  std::vector<Column> columns;
  for (int percent : {80, 60, 40, 25}) {
    columns.push_back({fmt::format("{}%", percent), store_all * percent / 100});
  }
  columns.push_back({fmt::format("least ({:.1f}%)", 100.0 * static_cast<double>(least) /
                                                        static_cast<double>(store_all)),
                     least});
  fmt::print("\n{} (store-all peak {} bytes)\n\n| strategy |", label, store_all);
  for (const Column& c : columns) fmt::print(" {} |", c.name);
  fmt::print("\n|---|");
  for (std::size_t i = 0; i < columns.size(); ++i) fmt::print("---|");
  fmt::print("\n");
  for (Strategy strategy : all_strategies()) {
    fmt::print("| {} |", to_string(strategy));
    for (const Column& c : columns) {
      const Plan p = plan_at(graph, strategy, c.budget);
      if (!p.feasible) {
        fmt::print(" — |");
      } else {
        fmt::print(" {:+.1f}% |", 100 * p.overhead());
      }
    }
    fmt::print("\n");
    std::fflush(stdout);
  }
}

// The two-level DP against the exact DP on random chains: overheads, the gap (extra compute
// time of the two-level plan over the exact plan) and the solve times.
int gap_table(const BenchOptions& options) {
  fmt::print(
      "Two-level DP vs exact DP{} on random {}-op chains (blocks = ops)\n\n"
      "| seed | budget | exact overhead | two-level overhead | gap | exact (ms) | two-level (ms) "
      "|{}\n"
      "|---|---|---|---|---|---|---|{}\n",
      options.gap_bounded ? " (the bounded exact DP)" : "", options.gap_ops,
      options.bound_points > 0 ? " lower bound |" : "", options.bound_points > 0 ? "---|" : "");
  double worst = 0, sum = 0;
  int count = 0, zero = 0;
  for (int seed = 1; seed <= options.gap_seeds; ++seed) {
    const TrainingGraph graph = synthetic_chain(options.gap_ops, static_cast<unsigned>(seed));
    const std::int64_t store_all = simulate(graph, store_all_schedule(graph)).peak_bytes;
    PlanOptions exact;
    if (options.gap_bounded) {
      // The bounded exact DP (exact without the O(n^3) of every split).
      exact.max_exact_blocks = 0;
      exact.max_bounded_work = std::numeric_limits<double>::infinity();
    } else {
      exact.max_exact_blocks = 2048;
    }
    PlanOptions two_level;
    two_level.max_exact_blocks = 0;
    two_level.max_bounded_work = 0;
    exact.budget_bytes = 0;
    const std::int64_t least = plan(graph, exact).min_feasible_bytes;
    std::vector<std::pair<std::string, std::int64_t>> budgets;
    for (int percent : {80, 60, 40, 25}) {
      if (store_all * percent / 100 >= least) {
        budgets.emplace_back(fmt::format("{}%", percent), store_all * percent / 100);
      }
    }
    budgets.emplace_back(fmt::format("least ({:.1f}%)", 100.0 * static_cast<double>(least) /
                                                            static_cast<double>(store_all)),
                         least);
    for (const auto& [name, budget] : budgets) {
      exact.budget_bytes = two_level.budget_bytes = budget;
      Plan a, b;
      const double exact_ms = elapsed_ms([&] { a = plan(graph, exact); });
      const double two_level_ms = elapsed_ms([&] { b = plan(graph, two_level); });
      if (!a.exact || b.exact) {
        throw Error(ErrorKind::kUsage, "ckpt-bench --gap: the chain did not get both solvers");
      }
      std::string bound_text;
      if (options.bound_points > 0) {
        const std::optional<double> bound =
            compute_time_lower_bound(graph, exact, options.bound_points);
        if (bound && *bound > a.compute_time_us + 1e-6) {
          throw Error(ErrorKind::kUsage, "ckpt-bench --gap: the lower bound exceeds the optimum");
        }
        bound_text = bound
                         ? fmt::format(" {:+.1f}% |", 100 * (*bound / graph.baseline_time_us() - 1))
                         : std::string(" none |");
      }
      std::string gap = "infeasible";
      if (b.feasible) {
        const double g = b.compute_time_us / a.compute_time_us - 1;
        worst = std::max(worst, g);
        sum += g;
        ++count;
        zero += g <= 1e-12;
        gap = fmt::format("{:+.2f}%", 100 * g);
      }
      fmt::print("| {} | {} | {:+.1f}% | {} | {} | {:.0f} | {:.0f} |{}\n", seed, name,
                 100 * a.overhead(),
                 b.feasible ? fmt::format("{:+.1f}%", 100 * b.overhead()) : std::string("—"), gap,
                 exact_ms, two_level_ms, bound_text);
      std::fflush(stdout);
    }
  }
  fmt::print("\nGap over {} feasible budgets: worst {:+.2f}%, mean {:+.2f}%, none at {}.\n", count,
             100 * worst, count > 0 ? 100 * sum / count : 0.0, zero);
  return 0;
}

// The optimal strategy's plan on the synthetic chain against a proven lower bound on the class's
// optimum (compute_time_lower_bound): how far the approximate plan can be from it, at most.
int bound_table(const BenchOptions& options) {
  const int points = options.bound_points > 0 ? options.bound_points : 16;
  const TrainingGraph graph = synthetic_chain(options.bound_chain_ops);
  const std::int64_t store_all = simulate(graph, store_all_schedule(graph)).peak_bytes;
  PlanOptions plan_options;
  plan_options.budget_bytes = 0;
  const std::int64_t least = plan(graph, plan_options).min_feasible_bytes;
  fmt::print(
      "Synthetic {}-op chain: the optimal strategy's plan against a lower bound ({} points)\n\n"
      "| budget | plan | overhead | lower bound | proven gap (at most) | plan (ms) | bound (ms) | "
      "bound peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|\n",
      options.bound_chain_ops, points);
  std::vector<std::pair<std::string, std::int64_t>> budgets;
  for (int percent : {80, 60, 40, 25}) {
    budgets.emplace_back(fmt::format("{}%", percent), store_all * percent / 100);
  }
  budgets.emplace_back(fmt::format("least ({:.1f}%)", 100.0 * static_cast<double>(least) /
                                                          static_cast<double>(store_all)),
                       least);
  for (const auto& [name, budget] : budgets) {
    plan_options.budget_bytes = budget;
    Plan p;
    const double plan_ms = elapsed_ms([&] { p = plan(graph, plan_options); });
    std::optional<double> bound;
    const double bound_ms =
        elapsed_ms([&] { bound = compute_time_lower_bound(graph, plan_options, points); });
    const double base = graph.baseline_time_us();
    fmt::print("| {} | {} | {:+.1f}% | {} | {} | {:.0f} | {:.0f} | {} |\n", name,
               p.exact ? "exact" : "approx.", 100 * p.overhead(),
               bound ? fmt::format("{:+.1f}%", 100 * (*bound / base - 1)) : std::string("none"),
               bound && p.feasible ? fmt::format("{:.2f}%", 100 * (p.compute_time_us / *bound - 1))
                                   : std::string("—"),
               plan_ms, bound_ms, peak_rss_kib() / 1024);
    std::fflush(stdout);
  }
  return 0;
}

// The synthetic chain solved exactly by the bounded exact DP, without its work and memory limits,
// against the two-level plan: what an exact plan of a long chain costs.
int exact_chain_table(const BenchOptions& options) {
  const TrainingGraph graph = synthetic_chain(options.exact_chain_ops);
  const std::int64_t store_all = simulate(graph, store_all_schedule(graph)).peak_bytes;
  fmt::print(
      "Synthetic {}-op chain: the bounded exact DP without limits against the two-level plan, "
      "and plan() with its default options\n\n"
      "| budget | two-level overhead | exact overhead | combinations (both chains) | frontier "
      "points (largest solve) | two-level (ms) | exact (ms) | default plan (ms) | peak RSS (MiB) "
      "|\n"
      "|---|---|---|---|---|---|---|---|---|\n",
      options.exact_chain_ops);
  for (int percent : options.percents) {
    PlanOptions two_level;
    two_level.budget_bytes = store_all * percent / 100;
    two_level.max_bounded_work = 0;
    PlanOptions exact = two_level;
    exact.max_bounded_work = std::numeric_limits<double>::infinity();
    exact.max_bounded_bytes = std::numeric_limits<std::int64_t>::max();
    double work = 0;
    long points = 0;
    exact.progress = [&](std::string_view line) {
      // "planner: bounded exact DP under T us (lower bound L us): W combinations, P frontier
      // points, M ms"
      constexpr std::string_view kUnder = "planner: bounded exact DP under ";
      if (line.substr(0, kUnder.size()) != kUnder) return;
      const std::size_t colon = line.find(": ", kUnder.size());
      if (colon == std::string_view::npos) return;
      work += std::strtod(std::string(line.substr(colon + 2)).c_str(), nullptr);
      points = std::max(points, dp_points(line));
    };
    PlanOptions defaults;
    defaults.budget_bytes = two_level.budget_bytes;
    Plan a, b, c;
    const double two_level_ms = elapsed_ms([&] { a = plan(graph, two_level); });
    const double exact_ms = elapsed_ms([&] { b = plan(graph, exact); });
    const double default_ms = elapsed_ms([&] { c = plan(graph, defaults); });
    if (!b.exact || !a.feasible || !b.feasible) {
      throw Error(ErrorKind::kUsage, "ckpt-bench --exact-chain: the chain did not get both plans");
    }
    fmt::print("| {}% | {:+.2f}% | {:+.2f}% | {:.3g} | {} | {:.0f} | {:.0f} | {:.0f} ({}) | {} |\n",
               percent, 100 * a.overhead(), 100 * b.overhead(), work, points, two_level_ms,
               exact_ms, default_ms,
               c.exact ? "exact" : fmt::format("two-level, {:+.2f}%", 100 * c.overhead()),
               peak_rss_kib() / 1024);
    std::fflush(stdout);
  }
  return 0;
}

int run(const BenchOptions& options) {
  if (options.exact_chain_ops > 0) return exact_chain_table(options);
  if (options.bound_chain_ops > 0) return bound_table(options);
  if (options.gap_ops > 0) return gap_table(options);
  std::vector<std::pair<std::string, TrainingGraph>> graphs;
  for (const std::string& path : options.graph_paths) {
    const std::size_t slash = path.find_last_of('/');
    graphs.emplace_back(slash == std::string::npos ? path : path.substr(slash + 1),
                        load_graph(path).training);
  }
  if (options.synthetic_chain) graphs.emplace_back("synthetic chain", synthetic_chain(1000));
  fmt::print("peak RSS at start: {} MiB\n\n", peak_rss_kib() / 1024);
  fmt::print(
      "| graph | nodes | blocks | 40% budget (ms, median of {}) | 32-budget sweep (ms) | "
      "frontier (ms) | frontier points | DP points at 40% (largest solve) | solution | peak RSS "
      "growth (MiB) |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n",
      options.runs);
  for (const auto& [label, graph] : graphs) bench_graph(label, graph, options);
  if (options.quality) {
    for (const auto& [label, graph] : graphs) quality_table(label, graph);
  }
  return 0;
}

BenchOptions parse(int argc, char** argv) {
  BenchOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--runs" && i + 1 < argc) {
      options.runs = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--no-quality") {
      options.quality = false;
    } else if (arg == "--bounded") {
      options.gap_bounded = true;
    } else if (arg == "--gap" && i + 1 < argc) {
      options.gap_ops = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--bound" && i + 1 < argc) {
      options.bound_points = std::max(2, std::atoi(argv[++i]));
    } else if (arg == "--bound-chain" && i + 1 < argc) {
      options.bound_chain_ops = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--exact-chain" && i + 1 < argc) {
      options.exact_chain_ops = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--percents" && i + 1 < argc) {
      options.percents.clear();
      std::string list = argv[++i];
      for (std::size_t at = 0; at < list.size();) {
        const std::size_t comma = std::min(list.find(',', at), list.size());
        options.percents.push_back(std::atoi(list.substr(at, comma - at).c_str()));
        at = comma + 1;
      }
    } else if (arg == "--seeds" && i + 1 < argc) {
      options.gap_seeds = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--no-chain") {
      options.synthetic_chain = false;
    } else if (arg == "--help" || arg == "-h") {
      fmt::print(
          "usage: ckpt-bench [--runs N] [--no-quality] [--no-chain] GRAPH.json...\n"
          "       ckpt-bench --gap OPS [--seeds N] [--bounded] [--bound POINTS]\n"
          "       ckpt-bench --bound-chain OPS [--bound POINTS]\n"
          "       ckpt-bench --exact-chain OPS [--percents 80,60,40,25]\n");
      std::exit(0);
    } else {
      options.graph_paths.emplace_back(arg);
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const ckpt::Error& error) {
    std::fprintf(stderr, "ckpt-bench: %s\n", error.what());
    return 1;
  }
}
