// ckpt-plan, top to bottom: parse the options (CLI11), load the graph, resolve the budget against
// the store-all peak, plan, check the plan with the simulator, then print the report and write the
// requested files. Files are written atomically and only when planning succeeded, so a failed run
// leaves nothing half-written. Every failure becomes a message on `err` and an exit code.
#include "ckpt/cli.h"
// Implements run_plan_cli.

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ckpt/budget.h"
#include "ckpt/dot.h"
#include "ckpt/error.h"
#include "ckpt/formats.h"
#include "ckpt/planner.h"
#include "ckpt/plot.h"
#include "ckpt/report.h"
#include "ckpt/schedule.h"
#include "ckpt/simulator.h"

namespace ckpt {

namespace {

constexpr int kDefaultSweepSamples = 16;

struct CliOptions {
  std::string graph_path;
  std::string budget;
  bool budget_given = false;  // without --budget: the store-all peak
  std::string strategy = "optimal";
  std::string format = "table";
  std::string dot_path;
  std::string schedule_path;
  std::string plot_path;
  int sweep_samples = kDefaultSweepSamples;
  bool sweep = false;
  bool verbose = false;
  bool explain = false;
  int max_exact_blocks = PlanOptions{}.max_exact_blocks;
  double max_bounded_work = PlanOptions{}.max_bounded_work;
  std::string bounded_memory;  // empty: PlanOptions' default
};

constexpr std::string_view kFooter = R"(Exit codes:
  0  planned (or --help)
  1  bad option, unreadable or invalid graph file, output file not writable
  2  the budget is below the least the strategy can meet (the minimum is printed)
  3  internal error: the plan failed the simulator's check (please report it)

Examples:
  ckpt-plan examples/graphs/gpt2.json --budget 40%
  ckpt-plan model.json --budget 2.5GiB --strategy chen-sqrt --format json
  ckpt-plan model.json --sweep 8 --plot tradeoff.svg --dot plan.dot)";

std::string strategy_names() {
  std::string names;
  for (Strategy strategy : all_strategies()) {
    if (!names.empty()) names += ", ";
    names += to_string(strategy);
  }
  return names;
}

bool is_count(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// argv[1..] in the reversed order CLI11's vector parse takes. A bare "--sweep" whose next argument
// is not a count becomes "--sweep=16": CLI11 would otherwise take the next argument (the graph
// path, say) as N.
std::vector<std::string> arguments_for_cli11(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool bare_sweep = arg == "--sweep" && (i + 1 == argc || !is_count(argv[i + 1]));
    args.emplace_back(bare_sweep ? fmt::format("--sweep={}", kDefaultSweepSamples)
                                 : std::string(arg));
  }
  std::reverse(args.begin(), args.end());
  return args;
}

// Fills `options` from argv. Returns an exit code when parsing ends the run (--help, an error).
std::optional<int> parse_arguments(int argc, const char* const* argv, CliOptions& options,
                                   std::ostream& out, std::ostream& err) {
  CLI::App app(
      "Plans gradient checkpointing for one training step of a graph: which activations "
      "to keep and which to recompute so that the step fits a memory budget.",
      "ckpt-plan");
  app.footer(std::string(kFooter));
  app.get_formatter()->column_width(28);
  app.add_option("GRAPH", options.graph_path,
                 "Graph file: native ckpt-graph/1 (forward or joint), Checkmate node-link, or "
                 "ckpt-profile/1")
      ->required()
      ->type_name("FILE");
  CLI::Option* budget =
      app.add_option("--budget,-b", options.budget,
                     "Memory budget: bytes (123456789), units B KB MB GB TB (x1000) or KiB MiB GiB "
                     "TiB (x1024), decimals floored (2.5GiB), or a share of the store-all peak "
                     "(40%). Default: the store-all peak")
          ->type_name("SIZE");
  app.add_option("--strategy,-s", options.strategy,
                 "Planner: " + strategy_names() + " (default optimal)")
      ->type_name("NAME");
  app.add_option("--format,-f", options.format, "Output on stdout: table (default) or json")
      ->type_name("FORMAT");
  app.add_option("--dot", options.dot_path,
                 "Write a Graphviz DOT view of the plan (forward graph coloured by plan) to FILE")
      ->type_name("FILE");
  app.add_option("--schedule", options.schedule_path, "Write the schedule as JSON to FILE")
      ->type_name("FILE");
  CLI::Option* sweep =
      app.add_option("--sweep", options.sweep_samples,
                     "Show the optimal memory/compute frontier at N budgets (default 16) from the "
                     "minimum feasible budget to store-all")
          ->expected(0, 1)
          ->default_str(std::to_string(kDefaultSweepSamples))
          ->type_name("[N]");
  app.add_option("--plot", options.plot_path,
                 "Write an SVG of overhead vs peak: the optimal frontier and every baseline")
      ->type_name("FILE.svg");
  app.add_option("--exact-blocks", options.max_exact_blocks,
                 "Solve chains of up to N blocks exactly, longer ones by the two-level DP "
                 "(default 96; time grows as N^3; 0..2048)")
      ->check(CLI::Range(0, 2048))
      ->type_name("N");
  app.add_option("--bounded-work", options.max_bounded_work,
                 "Longer chains: plan exactly with the bounded exact DP while its solves try at "
                 "most N combinations in all (default 2e6, about 2 s at most; 0: never)")
      ->check(
          [](const std::string& text) -> std::string {
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (text.empty() || *end != '\0' || !(value >= 0)) {
              return "'" + text +
                     "' is not a non-negative number of combinations (e.g. 2e6, the default; 0 "
                     "turns the bounded exact DP off)";
            }
            return {};
          },
          "N >= 0")
      ->type_name("N");
  app.add_option("--bounded-memory", options.bounded_memory,
                 "The most the bounded exact DP's frontiers may hold before it gives up and the "
                 "plan stays two-level (default 4GiB)")
      ->type_name("SIZE");
  app.add_flag("--verbose,-v", options.verbose, "Print progress to stderr");
  app.add_flag("--explain", options.explain,
               "Explain block by block why values are kept or recomputed");
  try {
    app.parse(arguments_for_cli11(argc, argv));
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? kExitOk : kExitInputError;
  }
  options.sweep = sweep->count() > 0;
  options.budget_given = budget->count() > 0;
  return std::nullopt;
}

// The option values CLI11 cannot check, checked: the strategy and the budget's syntax (a
// percentage is resolved once the graph's store-all peak is known).
struct CheckedOptions {
  Strategy strategy = Strategy::kOptimal;
  std::optional<BudgetSpec> budget;  // unset: the store-all peak
  std::int64_t max_bounded_bytes = PlanOptions{}.max_bounded_bytes;
};

// Checks names, ranges and the budget's syntax before any file is read, so a typo fails fast.
// Throws ckpt::Error (kUsage).
CheckedOptions check_options(const CliOptions& options) {
  const std::optional<Strategy> strategy = strategy_from_string(options.strategy);
  if (!strategy) {
    throw Error(ErrorKind::kUsage, fmt::format("--strategy \"{}\": unknown strategy; valid: {}",
                                               options.strategy, strategy_names()));
  }
  if (options.format != "table" && options.format != "json") {
    throw Error(ErrorKind::kUsage,
                fmt::format("--format \"{}\": unknown format; valid: table, json", options.format));
  }
  if (options.sweep && options.sweep_samples < 2) {
    throw Error(ErrorKind::kUsage,
                fmt::format("--sweep {}: the number of budgets must be at least 2 (default {})",
                            options.sweep_samples, kDefaultSweepSamples));
  }
  CheckedOptions checked;
  checked.strategy = *strategy;
  // An explicitly empty --budget "" is a syntax error, not the default.
  if (options.budget_given) checked.budget = parse_budget(options.budget);
  if (!options.bounded_memory.empty()) {
    const BudgetSpec memory = parse_budget(options.bounded_memory, "--bounded-memory");
    if (memory.kind != BudgetSpec::Kind::kBytes) {
      throw Error(ErrorKind::kUsage,
                  fmt::format("--bounded-memory {}: give bytes (e.g. 4GiB, 16GB), not a share of "
                              "the store-all peak",
                              options.bounded_memory));
    }
    if (memory.bytes < (std::int64_t{1} << 20)) {
      throw Error(ErrorKind::kUsage,
                  fmt::format("--bounded-memory {}: give at least 1MiB (default 4GiB)",
                              options.bounded_memory));
    }
    checked.max_bounded_bytes = memory.bytes;
  }
  return checked;
}

class PlanCommand {
 public:
  PlanCommand(CliOptions options, CheckedOptions checked, std::ostream& out, std::ostream& err)
      : options_(std::move(options)), checked_(std::move(checked)), out_(out), err_(err) {}

  int run() {
    const LoadedGraph loaded = load_graph(options_.graph_path);
    const TrainingGraph& graph = loaded.training;
    log(fmt::format("loaded {} ({}, {}): {} forward + {} backward nodes, {} values",
                    options_.graph_path, to_string(loaded.format),
                    graph.derived() ? "forward graph" : "joint graph", graph.num_forward_nodes(),
                    graph.num_nodes() - graph.num_forward_nodes(), graph.num_values()));

    const SimulationResult store_all = simulate(graph, store_all_schedule(graph));
    if (!store_all.valid) {
      return internal_error(fmt::format("the store-all schedule of {} fails the simulator: {}",
                                        options_.graph_path, store_all.error));
    }
    const std::int64_t budget_bytes = checked_.budget
                                          ? resolve_budget(*checked_.budget, store_all.peak_bytes)
                                          : store_all.peak_bytes;
    log(fmt::format("store-all peak {} bytes; budget {} bytes", store_all.peak_bytes,
                    budget_bytes));

    PlanOptions plan_options = planner_options(checked_.strategy, budget_bytes);
    PlanReport report = make_report(graph, plan(graph, plan_options), store_all.peak_bytes);
    log(fmt::format("planned in {:.3f} ms", report.plan.plan_ms));
    if (std::string why = check_report(report); !why.empty()) return internal_error(why);

    if (!report.plan.feasible) return report_infeasible(graph, report);
    return report_plan(graph, report);
  }

 private:
  // Exit status 2, with the least feasible budget on stderr (table) or in the JSON object.
  int report_infeasible(const TrainingGraph& graph, const PlanReport& report) const {
    if (options_.format == "json") {
      ReportOptions report_options;
      report_options.explain = options_.explain;
      fmt::print(out_, "{}", render_json(graph, report, report_options));
      return kExitInfeasible;
    }
    const Plan& plan = report.plan;
    fmt::print(err_,
               "ckpt-plan: budget {} ({} bytes) is below what the {} strategy needs for graph "
               "\"{}\" ({}).\n"
               "ckpt-plan: minimum feasible budget: {} bytes ({}); rerun with --budget {} or "
               "more.\n",
               format_bytes(plan.budget_bytes), plan.budget_bytes, to_string(plan.strategy),
               graph.name(), options_.graph_path, plan.min_feasible_bytes,
               format_bytes(plan.min_feasible_bytes), plan.min_feasible_bytes);
    return kExitInfeasible;
  }

  // Renders every output first, then writes the files (atomically, each), then prints the
  // report: nothing is written unless everything could be computed.
  int report_plan(const TrainingGraph& graph, const PlanReport& report) const {
    std::vector<FrontierPoint> frontier;
    if (options_.sweep || !options_.plot_path.empty()) {
      frontier =
          pareto_frontier(graph, planner_options(Strategy::kOptimal, report.plan.budget_bytes));
    }
    const std::vector<SweepPoint> sweep =
        sample_frontier(frontier, graph.baseline_time_us(), options_.sweep_samples);

    std::vector<std::pair<std::string, std::string>> files;  // path, contents
    if (!options_.schedule_path.empty()) {
      files.emplace_back(options_.schedule_path, render_schedule_json(graph, report));
    }
    if (!options_.dot_path.empty()) {
      files.emplace_back(options_.dot_path, render_dot(graph, report.plan));
    }
    if (!options_.plot_path.empty()) {
      files.emplace_back(options_.plot_path, render_plot_svg(plot_data(graph, frontier, sweep)));
    }
    ReportOptions report_options;
    report_options.explain = options_.explain;
    if (options_.sweep) report_options.sweep = sweep;
    const std::string text = options_.format == "json"
                                 ? render_json(graph, report, report_options)
                                 : render_table(graph, report, report_options);

    for (const auto& [path, contents] : files) write_text_file(path, contents);
    fmt::print(out_, "{}", text);
    return kExitOk;
  }

  void log(std::string_view line) const {
    if (options_.verbose) fmt::print(err_, "ckpt-plan: {}\n", line);
  }

  PlanOptions planner_options(Strategy strategy, std::int64_t budget_bytes) const {
    PlanOptions plan_options;
    plan_options.strategy = strategy;
    plan_options.budget_bytes = budget_bytes;
    plan_options.max_exact_blocks = options_.max_exact_blocks;
    plan_options.max_bounded_work = options_.max_bounded_work;
    plan_options.max_bounded_bytes = checked_.max_bounded_bytes;
    if (options_.verbose) {
      plan_options.progress = [this](std::string_view line) { log(line); };
    }
    return plan_options;
  }

  // Empty when the simulator agrees with the plan; otherwise what disagrees.
  static std::string check_report(const PlanReport& report) {
    const Plan& plan = report.plan;
    if (!report.simulation.valid) {
      return fmt::format("the {} planner produced a schedule the simulator rejects: {}",
                         to_string(plan.strategy), report.simulation.error);
    }
    if (report.simulation.peak_bytes != plan.peak_bytes) {
      return fmt::format("the {} planner predicted a peak of {} bytes; the simulator measures {}",
                         to_string(plan.strategy), plan.peak_bytes, report.simulation.peak_bytes);
    }
    if (plan.feasible != (plan.peak_bytes <= plan.budget_bytes)) {
      return fmt::format(
          "the {} planner says feasible={} for a peak of {} bytes under a budget "
          "of {} bytes",
          to_string(plan.strategy), plan.feasible, plan.peak_bytes, plan.budget_bytes);
    }
    return "";
  }

  int internal_error(std::string_view why) const {
    fmt::print(err_, "ckpt-plan: internal error: {}; please report this with the graph file\n",
               why);
    return kExitInternal;
  }

  // The optimal frontier as a step line, and each baseline planned at the sweep budgets (the
  // points where it fits, each distinct point once).
  PlotData plot_data(const TrainingGraph& graph, const std::vector<FrontierPoint>& frontier,
                     const std::vector<SweepPoint>& sweep) const {
    const double baseline = graph.baseline_time_us();
    PlotData data;
    data.title = fmt::format("{}: recompute overhead vs peak memory", graph.name());
    PlotSeries optimal{.name = "optimal (frontier)", .points = {}, .step_line = true};
    for (const FrontierPoint& point : frontier) {
      optimal.points.push_back(
          {point.peak_bytes, overhead_fraction(point.compute_time_us, baseline)});
    }
    data.series.push_back(std::move(optimal));
    for (Strategy strategy : all_strategies()) {
      if (strategy == Strategy::kOptimal) continue;
      log(fmt::format("plot: planning {} at {} budgets", to_string(strategy), sweep.size()));
      PlotSeries series{.name = std::string(to_string(strategy)), .points = {}, .step_line = false};
      for (const SweepPoint& row : sweep) {
        const Plan baseline_plan = plan(graph, planner_options(strategy, row.budget_bytes));
        if (!baseline_plan.feasible) continue;
        const PlotPoint point{baseline_plan.peak_bytes,
                              overhead_fraction(baseline_plan.compute_time_us, baseline)};
        const bool seen =
            std::any_of(series.points.begin(), series.points.end(), [&](const PlotPoint& p) {
              return p.peak_bytes == point.peak_bytes && p.overhead == point.overhead;
            });
        if (!seen) series.points.push_back(point);
      }
      data.series.push_back(std::move(series));
    }
    return data;
  }

  CliOptions options_;
  CheckedOptions checked_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace

int run_plan_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CliOptions options;
  if (std::optional<int> code = parse_arguments(argc, argv, options, out, err)) return *code;
  try {
    CheckedOptions checked = check_options(options);
    return PlanCommand(std::move(options), std::move(checked), out, err).run();
  } catch (const Error& e) {
    fmt::print(err, "ckpt-plan: error: {}\n", e.what());
    return kExitInputError;
  } catch (const std::exception& e) {
    fmt::print(err, "ckpt-plan: internal error: {}\n", e.what());
    return kExitInternal;
  }
}

}  // namespace ckpt
