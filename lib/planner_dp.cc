// The chain DP (a Rotor-style recursion over blocks with keep modes and exact bytes). C(s, t, hold)
// is kept as its Pareto frontier of (peak bytes, time) points, computed bottom-up over span
// lengths; every option combines measured piece figures with sub-frontiers by shifting, taking
// maxima with constants and adding two frontiers, and the frontier of C(0, n-1) is the strategy's
// whole trade-off. Each point records the option that made it, so a plan for any budget is
// rebuilt top-down by looking each sub-call up at its exact remaining bytes.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <memory>

#include "planner_internal.h"

namespace ckpt::planning {

namespace {

constexpr std::int64_t kInfeasible = std::numeric_limits<std::int64_t>::max();

// Ties in time closer than this (relative) are one time: sums taken in different orders differ
// in the last bits, and such twins would only clutter a frontier.
bool strictly_less_time(double a, double b) { return a < b - 1e-12 * std::max(1.0, std::abs(b)); }

// The last point with peak <= budget (a point without any compute step always qualifies).
const DpPoint* lookup(const std::vector<DpPoint>& frontier, std::int64_t budget) {
  auto it = std::upper_bound(
      frontier.begin(), frontier.end(), budget,
      [](std::int64_t value, const DpPoint& point) { return value < point.peak_bytes; });
  if (it == frontier.begin()) {
    if (!frontier.empty() && frontier.front().peak_bytes < 0) return &frontier.front();
    return nullptr;
  }
  return &*(it - 1);
}

// True when the frontier already has a point with peak <= `peak` and time <= `time`: an option
// whose cheapest point could only be that cheap from that peak on adds nothing.
bool covered(const std::vector<DpPoint>& frontier, std::int64_t peak, double time) {
  const DpPoint* best = lookup(frontier, peak);
  return best != nullptr && !strictly_less_time(time, best->time_us);
}

// Collects an option's points (ascending peak) into a pending list, leaving out those the
// frontier so far dominates.
class Offer {
 public:
  Offer(const std::vector<DpPoint>& frontier, std::vector<DpPoint>& out, double time_cap)
      : frontier_(frontier), out_(out), time_cap_(time_cap) {}
  void operator()(std::int64_t peak, double time, std::int32_t choice) {
    if (time > time_cap_) return;
    while (cursor_ < frontier_.size() && frontier_[cursor_].peak_bytes <= peak) ++cursor_;
    if (cursor_ > 0 && !strictly_less_time(time, frontier_[cursor_ - 1].time_us)) return;
    out_.push_back({peak, time, choice});
  }
  // After a call at some peak: true when the frontier already reaches `least_time` at that peak,
  // so that no point of this option at a higher peak (none is faster than least_time) can count.
  bool exhausted(double least_time) const {
    return cursor_ > 0 && !strictly_less_time(least_time, frontier_[cursor_ - 1].time_us);
  }

 private:
  const std::vector<DpPoint>& frontier_;
  std::vector<DpPoint>& out_;
  double time_cap_;
  std::size_t cursor_ = 0;
};

// The index of the last point with peak <= `peak`, or 0 when there is none: where a walk over
// the frontier under a constant floor starts.
std::size_t last_at_most(const std::vector<DpPoint>& frontier, std::int64_t peak) {
  auto it = std::upper_bound(
      frontier.begin(), frontier.end(), peak,
      [](std::int64_t value, const DpPoint& point) { return value < point.peak_bytes; });
  return it == frontier.begin() ? 0 : static_cast<std::size_t>(it - frontier.begin()) - 1;
}

// The index of the first point whose time is at most `max_time` (times descend along a frontier),
// or the frontier's size when there is none: points before it are too slow for a capped solve.
std::size_t first_within(const std::vector<DpPoint>& frontier, double max_time) {
  return static_cast<std::size_t>(
      std::partition_point(frontier.begin(), frontier.end(),
                           [&](const DpPoint& point) { return point.time_us > max_time; }) -
      frontier.begin());
}

std::int64_t shifted_min(std::int64_t min_peak, std::int64_t shift) {
  return min_peak == kInfeasible ? kInfeasible : add_bytes(min_peak, shift);
}

// True when `a` goes before `b` in a frontier under construction: lower peak, then lower time,
// then the preferred option (kAll before kCheckpoint, smaller mode or split first).
bool point_before(const DpPoint& a, const DpPoint& b) {
  if (a.peak_bytes != b.peak_bytes) return a.peak_bytes < b.peak_bytes;
  if (a.time_us != b.time_us) return a.time_us < b.time_us;
  return a.choice > b.choice;
}

// Merges an option's points (ascending peak) into the frontier built so far, keeping the
// Pareto-optimal points: O(|frontier| + |points|) instead of a sort of all candidates.
void merge_into(std::vector<DpPoint>& frontier, const std::vector<DpPoint>& points,
                std::vector<DpPoint>& scratch) {
  if (points.empty()) return;
  scratch.clear();
  // An option's points ascend in peak, but several may share one (a sub-frontier's cheap end
  // collapsing onto a constant): the cheapest of equal peaks replaces the others.
  auto keep = [&](const DpPoint& point) {
    if (!scratch.empty() && !strictly_less_time(point.time_us, scratch.back().time_us)) return;
    if (!scratch.empty() && scratch.back().peak_bytes == point.peak_bytes) scratch.pop_back();
    scratch.push_back(point);
  };
  std::size_t i = 0;
  std::size_t k = 0;
  while (i < frontier.size() || k < points.size()) {
    if (k == points.size() || (i < frontier.size() && !point_before(points[k], frontier[i]))) {
      keep(frontier[i++]);
    } else {
      keep(points[k++]);
    }
  }
  frontier.swap(scratch);
}

}  // namespace

// Lower bounds on what blocks add to the time of any tree of the class, for the bounded exact
// DP (docs/algorithms.md, "The bounded exact DP"). A tree's time is the sum of its kAll nodes'
// (one per block) and of its sweeps'. A block's kAll is either on the first forward pass (a
// first-run kAll), or the block is swept on the first pass and its kAll is a rerun. Per block, as
// prefix sums (sum[t + 1] - sum[s] for blocks s..t):
//   least:  the least of (first-run kAll) and (first-pass sweep + rerun kAll);
//   first:  the least first-pass sweep time;
//   rerun:  the least rerun kAll time;
//   extra:  for block i < n-1 whose next block's rerun kAll always reads x_i, what making x_i
//           again costs over its least rerun kAll (inside a recomputed span, x_i is not live at
//           the start, so block i either runs a kAll that outputs x_i or is swept again).
struct TimeBounds {
  std::vector<double> least, first, rerun, extra;
  static double span(const std::vector<double>& sum, int s, int t) {
    return t < s ? 0 : sum[static_cast<std::size_t>(t) + 1] - sum[static_cast<std::size_t>(s)];
  }
  // The memory at the turn of the first pass (docs/algorithms.md, "The turn of the first
  // pass"): for C(s, t) inside a left part, a lower bound on the time of everything outside it,
  // its blocks' first-pass sweeps excluded: before[s] + after[t] - offset (infinite: no tree).
  std::vector<double> before, after;
  double offset = 0;
  // For C(s, n-1): what the blocks before s hold stays live while it runs, so with its point's
  // peak p they hold at most B - p, and they take at least prefix[s] - mu (B - p): a point whose
  // time plus mu p exceeds ceiling - prefix[s] + mu B is of no use.
  // For C(s, t) inside a left part whose sweep starts at a <= s, the same holds for the blocks
  // before a, and blocks a..s-1 take at least their sweep, rerun kAll and extra:
  // in_sweep[s] = min over a of prefix[a] plus those.
  std::vector<double> prefix, in_sweep;
  double mu = 0;
  double lower_bound = 0;  // of any tree's time: the relaxation at mu
};

namespace {

// True when every valid rerun kAll of the block reads its input x_{i-1}: its backward piece does
// (recomputation included), or its forward piece computes a node that does.
bool rerun_reads_input(const ChainModel& model, int b, PieceWriter& writer) {
  const BlockModel& block = model.blocks[static_cast<std::size_t>(b)];
  if (block.approximate || block.input.empty()) return false;  // not worth proving
  const TrainingGraph& graph = *model.graph;
  std::vector<Step> steps;
  for (std::size_t m = 0; m < block.modes.size(); ++m) {
    const Mode& mode = block.modes[m];
    for (int context = 0; context < 4; ++context) {
      const AllTerms terms =
          mode_terms(block, mode, /*first_run=*/false, (context & 2) != 0, (context & 1) != 0);
      if (!terms.valid || mode.reads_input) continue;
      PieceSpec spec;
      spec.block = b;
      spec.mode = static_cast<int>(m);
      spec.consume_input = terms.consume_input;
      spec.output_needed = terms.output_needed;
      steps.clear();
      writer.append(spec, steps);
      bool reads = false;
      for (const Step& step : steps) {
        if (!step.is_compute()) continue;
        for (ValueId v : graph.node(step.node).inputs) {
          reads =
              reads || std::find(block.input.begin(), block.input.end(), v) != block.input.end();
        }
      }
      if (!reads) return false;
    }
  }
  return true;
}

// The turn of the first pass: the first step of the last block's backward, when everything
// the first pass keeps for later is live at once (docs/algorithms.md, "The turn of the first
// pass"). The first pass gives every block a type: kAll'd there (kKept), or swept, starting a
// sweep (kStarts) or continuing the one before (kContinues). At the turn a kept block holds at
// least its modes' least kept bytes; boundary x_i is live unless blocks i and i+1 are in one
// sweep: a sweep's input waits for its left part, and otherwise x_i is live when all first-run
// modes of a kept block i read it or all of a kept block i+1's do. A tree's time is at
// least the sum of its blocks' least times by type (first-run kAll; first-pass sweep and rerun
// kAll) plus, inside a sweep, the cost of making each x_i again (`extra`). With the live bytes
// at most the budget B, for every mu >= 0: time >= min over types of (time + mu * live) - mu B,
// a Lagrangian relaxation whose minimum is a shortest path over the blocks.
void turn_bound(const ChainModel& model, std::int64_t budget_bytes,
                const std::vector<double>& first_all, const std::vector<double>& first_sweep,
                const std::vector<double>& rerun_all, const std::vector<double>& extra,
                const std::vector<std::int64_t>& least_kept,
                const std::vector<char>& all_read_input, const std::vector<char>& all_read_output,
                TimeBounds& bounds) {
  constexpr double kNone = std::numeric_limits<double>::infinity();
  const int n = model.num_blocks();
  if (n < 2) return;
  enum Type { kKept, kStarts, kContinues };
  const auto at = [](int i) { return static_cast<std::size_t>(i); };
  std::vector<double> boundary(at(n), 0);  // x_i, i < n-1
  for (int i = 0; i + 1 < n; ++i) {
    boundary[at(i)] = static_cast<double>(
        std::min(model.blocks[at(i)].output_bytes, model.blocks[at(i + 1)].input_bytes));
  }
  const double input = static_cast<double>(model.blocks[0].input_bytes);
  const BlockModel& last = model.blocks[at(n - 1)];
  auto node = [&](int i, int type, double mu) {
    if (type == kKept) {
      if (!std::isfinite(first_all[at(i)])) return kNone;
      return first_all[at(i)] + mu * static_cast<double>(least_kept[at(i)]);
    }
    return i + 1 == n ? kNone : first_sweep[at(i)] + rerun_all[at(i)];
  };
  auto edge = [&](int i, int from, int to, double mu) {  // x_i, from block i to block i+1
    if (to == kContinues) return from == kKept ? kNone : extra[at(i)];
    const bool live =
        to == kStarts || all_read_input[at(i + 1)] || (from == kKept && all_read_output[at(i)]);
    return live ? mu * boundary[at(i)] : 0.0;
  };
  auto start = [&](int type, double mu) {
    if (type == kContinues) return kNone;
    return type == kStarts || all_read_input[0] ? mu * input : 0.0;
  };
  const double end_bytes = all_read_output[at(n - 1)] ? static_cast<double>(last.output_bytes) : 0;
  std::vector<std::array<double, 3>> forward(at(n));
  auto solve_forward = [&](double mu) {
    for (int type = 0; type < 3; ++type) forward[0][at(type)] = node(0, type, mu) + start(type, mu);
    for (int i = 1; i < n; ++i) {
      for (int to = 0; to < 3; ++to) {
        double best = kNone;
        for (int from = 0; from < 3; ++from) {
          best = std::min(best, forward[at(i - 1)][at(from)] + edge(i - 1, from, to, mu));
        }
        forward[at(i)][at(to)] = best + node(i, to, mu);
      }
    }
    return forward[at(n - 1)][kKept] + mu * end_bytes - mu * static_cast<double>(budget_bytes);
  };
  // The bound is concave in mu: a doubling grid, then a golden-section search around its best.
  double best_mu = 0;
  double best = solve_forward(0);
  double mu = 1e-12;
  for (int k = 0; k < 64; ++k, mu *= 2) {
    const double value = solve_forward(mu);
    if (value > best) {
      best = value;
      best_mu = mu;
    }
  }
  double lo = best_mu / 2, hi = best_mu * 2;
  constexpr double kGolden = 0.6180339887498949;
  for (int k = 0; k < 40 && best_mu > 0; ++k) {
    const double a = hi - kGolden * (hi - lo), b = lo + kGolden * (hi - lo);
    if (solve_forward(a) >= solve_forward(b)) {
      hi = b;
    } else {
      lo = a;
    }
  }
  if (best_mu > 0 && solve_forward((lo + hi) / 2) > best) best_mu = (lo + hi) / 2;
  if (!(best > -kNone)) return;
  bounds.lower_bound = best;
  mu = best_mu;
  solve_forward(mu);
  // after[t]: the least of everything after block t when block t is swept (x_t and on).
  std::vector<std::array<double, 2>> backward(at(n));  // [kept, swept]
  backward[at(n - 1)] = {mu * end_bytes, kNone};
  for (int i = n - 2; i >= 0; --i) {
    for (int from = 0; from < 2; ++from) {
      double best_next = kNone;
      for (int to = 0; to < 3; ++to) {
        best_next =
            std::min(best_next, edge(i, from == 0 ? kKept : kStarts, to, mu) + node(i + 1, to, mu) +
                                    backward[at(i + 1)][to == kKept ? 0 : 1]);
      }
      backward[at(i)][at(from)] = best_next;
    }
  }
  bounds.before.assign(at(n), kNone);
  bounds.after.assign(at(n), kNone);
  for (int i = 0; i < n; ++i) {
    const double swept = node(i, kStarts, mu);
    if (std::isfinite(swept)) {
      bounds.before[at(i)] = std::min(forward[at(i)][kStarts], forward[at(i)][kContinues]) - swept;
    }
    bounds.after[at(i)] = backward[at(i)][1];
  }
  bounds.offset = mu * static_cast<double>(budget_bytes);
  bounds.mu = mu;
  bounds.prefix.assign(at(n), 0);
  bounds.in_sweep.assign(at(n), 0);
  for (int i = 1; i < n; ++i) {
    const std::array<double, 3>& f = forward[at(i - 1)];
    bounds.prefix[at(i)] = std::min({f[0], f[1], f[2]});
    bounds.in_sweep[at(i)] =
        std::min(bounds.prefix[at(i)],
                 bounds.in_sweep[at(i - 1)] + node(i - 1, kStarts, mu) + extra[at(i - 1)]);
  }
}

TimeBounds compute_time_bounds(const ChainModel& model, std::int64_t budget_bytes) {
  constexpr double kNone = std::numeric_limits<double>::infinity();
  const int n = model.num_blocks();
  std::vector<double> first_all(n, kNone), rerun_all(n, kNone), rerun_out(n, kNone),
      first_sweep(n, kNone), rerun_sweep(n, kNone);
  // Of the modes a first-run kAll can use: the least kept bytes, and whether all read x_{i-1}
  // (x_i).
  std::vector<std::int64_t> least_kept(n, std::numeric_limits<std::int64_t>::max());
  std::vector<char> all_read_input(n, 1), all_read_output(n, 1);
  for (int b = 0; b < n; ++b) {
    const BlockModel& block = model.blocks[static_cast<std::size_t>(b)];
    const auto i = static_cast<std::size_t>(b);
    for (const Mode& mode : block.modes) {
      bool first_run_valid = false;
      for (int context = 0; context < 8; ++context) {
        const bool first = (context & 4) != 0;
        const AllTerms terms =
            mode_terms(block, mode, first, (context & 2) != 0, (context & 1) != 0);
        if (!terms.valid) continue;
        first_run_valid = first_run_valid || first;
        double& least = first ? first_all[i] : rerun_all[i];
        least = std::min(least, terms.time_us);
        if (!first && terms.output_needed) rerun_out[i] = std::min(rerun_out[i], terms.time_us);
      }
      if (!first_run_valid) continue;
      least_kept[i] = std::min(least_kept[i], mode.kept_bytes);
      all_read_input[i] = static_cast<char>(all_read_input[i] && mode.reads_input);
      all_read_output[i] = static_cast<char>(all_read_output[i] && mode.reads_output);
    }
    for (int consume = 0; consume < 2; ++consume) {
      if (block.no_save_first[consume].valid) {
        first_sweep[i] = std::min(first_sweep[i], block.no_save_first[consume].time_us);
      }
      if (block.no_save_rerun[consume].valid) {
        rerun_sweep[i] = std::min(rerun_sweep[i], block.no_save_rerun[consume].time_us);
      }
    }
  }
  // A value a block has no piece for is never part of a tree: 0 keeps every bound a bound.
  auto finite = [](double x) { return std::isfinite(x) ? x : 0.0; };
  TimeBounds bounds;
  for (auto* sum : {&bounds.least, &bounds.first, &bounds.rerun, &bounds.extra}) sum->push_back(0);
  PieceWriter writer(model);
  std::vector<double> extra(n, 0);
  for (int b = 0; b < n; ++b) {
    const auto i = static_cast<std::size_t>(b);
    const double least = std::min(first_all[i], first_sweep[i] + rerun_all[i]);
    if (b + 1 < n && rerun_reads_input(model, b + 1, writer)) {
      extra[i] = finite(
          std::max(0.0, std::min(rerun_out[i], rerun_sweep[i] + rerun_all[i]) - rerun_all[i]));
    }
    bounds.least.push_back(bounds.least.back() + finite(least));
    bounds.first.push_back(bounds.first.back() + finite(first_sweep[i]));
    bounds.rerun.push_back(bounds.rerun.back() + finite(rerun_all[i]));
    bounds.extra.push_back(bounds.extra.back() + extra[i]);
  }
  turn_bound(model, budget_bytes, first_all, first_sweep, rerun_all, extra, least_kept,
             all_read_input, all_read_output, bounds);
  return bounds;
}

// The least time any C(s, t) can take, and the most a tree that contains it may spend in it
// and still cost at most the ceiling (with a relative tolerance for sums taken in different
// orders). Below the first pass (t < n-1) C(s, t)'s blocks were swept on the first pass and
// their kAll nodes are reruns inside it. `loose` leaves out the memory at the turn (which makes
// the cap grow again with t when C(s, t) drops many bytes): the loose excess only grows with t.
double least_time_of(const TimeBounds& bounds, int n, int s, int t) {
  if (t + 1 == n) return TimeBounds::span(bounds.least, s, t);
  return TimeBounds::span(bounds.rerun, s, t) + TimeBounds::span(bounds.extra, s, t - 1);
}

double time_cap_of(const TimeBounds& bounds, int n, double ceiling, int s, int t,
                   bool loose = false) {
  double outside =
      TimeBounds::span(bounds.least, 0, s - 1) + TimeBounds::span(bounds.least, t + 1, n - 1);
  if (t + 1 < n && !loose && !bounds.before.empty()) {
    // C(s, t) is inside a left part: blocks s..t were swept on the first pass, in one sweep.
    outside = std::max(outside, bounds.before[static_cast<std::size_t>(s)] +
                                    bounds.after[static_cast<std::size_t>(t)] - bounds.offset);
  }
  const double cap = ceiling + 1e-9 * std::max(1.0, std::abs(ceiling)) - outside;
  return t + 1 == n ? cap : cap - TimeBounds::span(bounds.first, s, t);
}

}  // namespace

std::shared_ptr<const TimeBounds> bounded_time_bounds(const ChainModel& model,
                                                      std::int64_t budget_bytes) {
  return std::make_shared<const TimeBounds>(compute_time_bounds(model, budget_bytes));
}

double time_lower_bound(const ChainModel& model, const TimeBounds& bounds) {
  const int n = model.num_blocks();
  return n == 0 ? 0 : std::max(least_time_of(bounds, n, 0, n - 1), bounds.lower_bound);
}

double bounded_dp_work(const ChainModel& model, std::int64_t budget_bytes, double time_ceiling_us) {
  return bounded_dp_work(model, compute_time_bounds(model, budget_bytes), time_ceiling_us);
}

double bounded_dp_work(const ChainModel& model, const TimeBounds& bounds, double time_ceiling_us) {
  // Mirrors ChainDp's bounded solve: C(s, n-1) for every s, with a split for every left part
  // that can be in a tree within the ceiling, and every such C(s, t), with all splits.
  const int n = model.num_blocks();
  if (n == 0 ||
      least_time_of(bounds, n, 0, n - 1) > time_cap_of(bounds, n, time_ceiling_us, 0, n - 1)) {
    return 0;
  }
  double work = 0;
  int end = 0;  // first block past the longest loosely fitting C(s, t), t < n-1
  for (int s = 0; s < n; ++s) {
    end = std::max(end, s);
    while (end < n - 1 && least_time_of(bounds, n, s, end) <=
                              time_cap_of(bounds, n, time_ceiling_us, s, end, /*loose=*/true)) {
      ++end;
    }
    work += 1;
    for (int t = s; t < end; ++t) {
      if (least_time_of(bounds, n, s, t) <= time_cap_of(bounds, n, time_ceiling_us, s, t)) {
        work += 1 + (t - s + 1);
      }
    }
  }
  return work;
}

ChainDp::ChainDp(const ChainModel& model, const DpOptions& options)
    : model_(model), options_(options), n_(model.num_blocks()) {
  prune_modes_per_context();
  partition_into_macros();
  if (macro_of_.empty()) {
    states_ = static_cast<std::size_t>(n_) * static_cast<std::size_t>(n_);
  } else {
    std::size_t inner = 0;
    for (int s = 0; s < n_; ++s) {
      inner_offset_.push_back(inner);
      inner += static_cast<std::size_t>(
          macro_end_[static_cast<std::size_t>(macro_of_[static_cast<std::size_t>(s)])] - s + 1);
    }
    const auto macros = macro_start_.size();
    inner_states_ = inner;
    states_ = inner + static_cast<std::size_t>(n_) + macros * macros;
  }
  if (std::isfinite(options_.time_ceiling_us) && macro_of_.empty() &&
      options_.optimistic_points == 0) {
    bounded_ = true;
    const std::shared_ptr<const TimeBounds> shared =
        options_.time_bounds ? options_.time_bounds
                             : bounded_time_bounds(model_, options_.cap_bytes);
    const TimeBounds& bounds = *shared;
    bounded_mu_ = bounds.mu;
    // Per s: C(s, n-1), and C(s, t) for t below its reach (the only ones ever asked for: the
    // reach never falls as s grows), stored compactly.
    bounded_reach_.assign(static_cast<std::size_t>(n_), 0);
    bounded_offset_.assign(static_cast<std::size_t>(n_), 0);
    std::size_t entries = static_cast<std::size_t>(n_);
    for (int s = 0, end = 0; s < n_; ++s) {
      end = std::max(end, s);
      while (end + 1 < n_ &&
             least_time_of(bounds, n_, s, end) <=
                 time_cap_of(bounds, n_, options_.time_ceiling_us, s, end, /*loose=*/true)) {
        ++end;
      }
      bounded_reach_[static_cast<std::size_t>(s)] = end;
      bounded_offset_[static_cast<std::size_t>(s)] = entries;
      entries += static_cast<std::size_t>(end - s);
    }
    states_ = entries;  // state() is bounded_entry() from here on
    bounded_least_.resize(entries);
    bounded_cap_.resize(entries);
    bounded_point_limit_.assign(entries, std::numeric_limits<double>::infinity());
    const double tolerance = 1e-9 * std::max(1.0, std::abs(options_.time_ceiling_us));
    for (int s = 0; s < n_; ++s) {
      auto fill = [&](int t) {
        const std::size_t e = bounded_entry(s, t);
        bounded_least_[e] = least_time_of(bounds, n_, s, t);
        bounded_cap_[e] = time_cap_of(bounds, n_, options_.time_ceiling_us, s, t);
        if (bounds.prefix.empty()) return;
        bounded_point_limit_[e] =
            t + 1 == n_ ? options_.time_ceiling_us + tolerance -
                              bounds.prefix[static_cast<std::size_t>(s)] + bounds.offset
                        : options_.time_ceiling_us + tolerance -
                              bounds.in_sweep[static_cast<std::size_t>(s)] -
                              TimeBounds::span(bounds.first, s, t) -
                              TimeBounds::span(bounds.least, t + 1, n_ - 1) + bounds.offset;
      };
      for (int t = s; t < bounded_reach_[static_cast<std::size_t>(s)]; ++t) fill(t);
      fill(n_ - 1);
    }
  }
  slot_.assign(2 * states_, -1);
  if (!bounded_) number_block_sequences();  // bounded: nothing is shared
  const auto start = std::chrono::steady_clock::now();
  int reported_tenth = 0;
  if (bounded_) {
    // Only C(s, n-1) and C(s, t) below s's reach, which grows with s: for each t, the s above
    // some s0(t). A sub-problem needs only sub-problems with a larger s or a smaller t.
    int low = 0;  // the least s whose reach is past t
    for (int t = 0; t < n_ && !gave_up_; ++t) {
      while (low < t && bounded_reach_[static_cast<std::size_t>(low)] <= t) ++low;
      for (int s = t; s >= (t + 1 == n_ ? 0 : low); --s) {
        if (!computed(s, t)) continue;
        solve(s, t, false);
        if (held_input_[static_cast<std::size_t>(s)] != 0) solve(s, t, true);
      }
      gave_up_ = stored_points_ > options_.max_points;
    }
    candidates_ = {};
    scratch_ = {};
    return;
  }
  for (int span = 0; span < n_; ++span) {
    for (int s = 0; s + span < n_; ++s) {
      if (!computed(s, s + span)) continue;
      solve(s, s + span, false);
      if (held_input_[static_cast<std::size_t>(s)] != 0) solve(s, s + span, true);
    }
    if (stored_points_ > options_.max_points) {
      gave_up_ = true;
      break;
    }
    const int tenth = (span + 1) * 10 / n_;
    if (options_.progress && n_ >= 64 && tenth > reported_tenth) {
      reported_tenth = tenth;
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      options_.progress(fmt::format("planner: DP spans {}/{} done, {} frontier points ({:.0f} ms)",
                                    span + 1, n_, stored_points_, ms));
    }
  }
  candidates_ = {};
  scratch_ = {};
}

void ChainDp::partition_into_macros() {
  // Two macros of one block each are no coarser than the blocks: short chains are always exact.
  if (n_ <= std::max(options_.max_single_level_blocks, 3)) return;
  // About sqrt(n) macros of about sqrt(n) blocks: O(n^1.5) sub-problems instead of O(n^2). Up to
  // 400 blocks half as many macros, twice as long: more of the chain is solved exactly inside
  // them, for tens of milliseconds (on random 96-block chains the mean gap to the exact DP went
  // from 1.7% to 1.2%, the worst at 25% of store-all from 7.5% to 5.1%); at 1000 blocks that
  // would cost seconds for no clear gain.
  const double per_root = n_ <= 400 ? 0.5 : 1.0;
  const int macros = std::max(2, static_cast<int>(std::lround(per_root * std::sqrt(n_))));
  macro_of_.assign(static_cast<std::size_t>(n_), 0);
  for (int m = 0; m < macros; ++m) {
    const int first = static_cast<int>(static_cast<std::int64_t>(m) * n_ / macros);
    const int end = static_cast<int>(static_cast<std::int64_t>(m + 1) * n_ / macros);
    macro_start_.push_back(first);
    macro_end_.push_back(end - 1);
    for (int b = first; b < end; ++b) macro_of_[static_cast<std::size_t>(b)] = m;
  }
  // Storing through a macro: every block keeps its store-all mode, then blocks switch to their
  // least mode one by one, the most bytes saved per microsecond added first.
  through_.resize(static_cast<std::size_t>(macros));
  for (int m = 0; m < macros; ++m) {
    std::vector<int> modes;
    struct Switch {
      int block;
      int mode;
      double time_per_byte;
    };
    std::vector<Switch> switches;
    for (int b = macro_start_[static_cast<std::size_t>(m)];
         b <= macro_end_[static_cast<std::size_t>(m)]; ++b) {
      const BlockModel& block = model_.blocks[static_cast<std::size_t>(b)];
      const int keep = block.store_all_mode >= 0 ? block.store_all_mode : block.min_mode;
      modes.push_back(keep);
      if (block.min_mode < 0 || block.min_mode == keep) continue;
      const AllTerms kept = mode_terms(block, block.modes[static_cast<std::size_t>(keep)],
                                       /*first_run=*/true, /*hold=*/false, /*has_sub=*/true);
      const AllTerms least =
          mode_terms(block, block.modes[static_cast<std::size_t>(block.min_mode)],
                     /*first_run=*/true, /*hold=*/false, /*has_sub=*/true);
      if (!kept.valid || !least.valid || least.held_bytes >= kept.held_bytes) continue;
      switches.push_back({b, block.min_mode,
                          (least.time_us - kept.time_us) /
                              static_cast<double>(kept.held_bytes - least.held_bytes)});
    }
    std::stable_sort(switches.begin(), switches.end(), [](const Switch& a, const Switch& b) {
      return a.time_per_byte < b.time_per_byte;
    });
    auto& combos = through_[static_cast<std::size_t>(m)];
    combos.push_back(modes);
    for (const Switch& change : switches) {
      modes[static_cast<std::size_t>(change.block - macro_start_[static_cast<std::size_t>(m)])] =
          change.mode;
      combos.push_back(modes);
    }
  }
}

std::size_t ChainDp::state(int s, int t) const {
  if (bounded_) return bounded_entry(s, t);
  const auto us = static_cast<std::size_t>(s);
  if (macro_of_.empty()) return us * static_cast<std::size_t>(n_) + static_cast<std::size_t>(t);
  const int ms = macro_of_[us];
  const int mt = macro_of_[static_cast<std::size_t>(t)];
  if (ms == mt) return inner_offset_[us] + static_cast<std::size_t>(t - s);
  if (t + 1 == n_) return inner_states_ + us;  // the first forward pass
  assert(outer(s, t));
  return inner_states_ + static_cast<std::size_t>(n_) +
         static_cast<std::size_t>(ms) * macro_start_.size() + static_cast<std::size_t>(mt);
}

bool ChainDp::outer(int s, int t) const {
  if (macro_of_.empty()) return false;
  const int ms = macro_of_[static_cast<std::size_t>(s)];
  const int mt = macro_of_[static_cast<std::size_t>(t)];
  return ms < mt && s == macro_start_[static_cast<std::size_t>(ms)] &&
         t == macro_end_[static_cast<std::size_t>(mt)];
}

bool ChainDp::computed(int s, int t) const {
  // Bounded: only sub-problems that can be part of a tree within the ceiling (the first pass
  // always, so that the root has a frontier, empty or not).
  if (bounded_) {
    return t + 1 == n_ ||
           (t < bounded_reach_[static_cast<std::size_t>(s)] &&
            bounded_least_[bounded_entry(s, t)] <= bounded_cap_[bounded_entry(s, t)]);
  }
  if (macro_of_.empty() || t + 1 == n_) return true;  // the first forward pass stays fine
  return macro_of_[static_cast<std::size_t>(s)] == macro_of_[static_cast<std::size_t>(t)] ||
         outer(s, t);
}

bool ChainDp::stores_through(int s, int t) const { return outer(s, t) && t + 1 != n_; }

void ChainDp::number_block_sequences() {
  // Blocks measured alike (repeated layers) make alike sub-problems: C(s, t) depends only on
  // the models of blocks s..t and on whether t is the last block. A trie over the blocks'
  // classes numbers each distinct sequence once. (Outer sub-problems of the two-level DP are
  // few and are not shared.)
  sequence_.assign(states_, -1);
  std::map<std::pair<int, int>, int> trie;
  for (int s = 0; s < n_; ++s) {
    int id = 0;
    for (int t = s; t < n_; ++t) {
      if (!macro_of_.empty() &&
          macro_of_[static_cast<std::size_t>(t)] != macro_of_[static_cast<std::size_t>(s)]) {
        break;
      }
      const int block_class = model_.blocks[static_cast<std::size_t>(t)].same_as;
      const auto [it, inserted] =
          trie.emplace(std::make_pair(id, block_class), static_cast<int>(trie.size()) + 1);
      id = it->second;
      sequence_[state(s, t)] = id;
    }
  }
}

AllTerms ChainDp::through_terms(int macro, int t, bool hold, int combo) const {
  // kAll nodes for every block of the macro with the combo's modes, inside C(., t): each one's
  // pieces run while the ones before it hold their bytes.
  AllTerms through;
  through.before_peak = kNoPeak;
  std::int64_t held = 0;
  bool h = hold;
  const std::vector<int>& modes =
      through_[static_cast<std::size_t>(macro)][static_cast<std::size_t>(combo)];
  const int first = macro_start_[static_cast<std::size_t>(macro)];
  for (std::size_t i = 0; i < modes.size(); ++i) {
    const AllTerms terms = all_terms(model_, first + static_cast<int>(i), t, h, modes[i]);
    if (!terms.valid) return {};
    through.before_peak = std::max({through.before_peak, add_bytes(terms.before_peak, held),
                                    add_bytes(terms.after_peak, held)});
    held += terms.held_bytes;
    through.time_us += terms.time_us;
    h = terms.sub_hold;
  }
  through.valid = true;
  through.after_peak = kNoPeak;
  through.held_bytes = held;
  through.sub_hold = h;
  return through;
}

void ChainDp::solve(int s, int t, bool hold) {
  if (hold && hold_insensitive_[static_cast<std::size_t>(s)]) {
    // Keeping x_{s-1} costs nothing extra in any piece of block s: the same frontier.
    slot_[index(true, s, t)] = slot_[index(false, s, t)];
    return;
  }
  const int sequence = bounded_ ? -1 : sequence_[state(s, t)];
  // Bounded: caps depend on where the sub-problem is, so alike sub-problems are not shared.
  const std::int64_t key =
      sequence >= 0
          ? (static_cast<std::int64_t>(sequence) * 2 + (t + 1 == n_ ? 1 : 0)) * 2 + (hold ? 1 : 0)
          : -1 - static_cast<std::int64_t>(index(hold, s, t));
  const auto [known, inserted] = shared_.emplace(key, static_cast<int>(pool_.size()));
  slot_[index(hold, s, t)] = known->second;
  if (!inserted) return;
  pool_.emplace_back();
  pool_min_peak_.push_back(kInfeasible);
  std::vector<DpPoint>& result = pool_.back();
  candidates_.clear();
  std::int64_t min_peak = kInfeasible;
  // Bounded: a point costing more than the cap is of no use.
  time_cap_us_ =
      bounded_ ? bounded_cap_[bounded_entry(s, t)] : std::numeric_limits<double>::infinity();
  if (stores_through(s, t)) {
    const int macro = macro_of_[static_cast<std::size_t>(s)];
    const int next = macro_end_[static_cast<std::size_t>(macro)] + 1;
    for (std::size_t c = 0; c < through_[static_cast<std::size_t>(macro)].size(); ++c) {
      const AllTerms terms = through_terms(macro, t, hold, static_cast<int>(c));
      if (terms.valid) {
        offer_all(result, terms, next, t, static_cast<std::int32_t>(c), min_peak);
      }
    }
    SweepTerms sweep = sweep_terms(model_, s, s + 1, t);
    int swept_to = s + 1;
    for (int m = macro + 1; m <= macro_of_[static_cast<std::size_t>(t)]; ++m) {
      const int split = macro_start_[static_cast<std::size_t>(m)];
      for (; swept_to < split && sweep.valid; ++swept_to) extend_sweep(sweep, s, swept_to, t);
      if (!sweep.valid) break;
      offer_checkpoint(result, s, split, t, hold, sweep, min_peak);
    }
  } else {
    // kAll: forward s keeping a mode, C(s+1, t), backward s. With delta_t known, a mode is
    // only worth trying if no other has a lower-or-equal floor, held bytes and time here.
    all_terms_.clear();
    for (int m : context_modes(s, t, hold)) {
      const AllTerms terms = all_terms(model_, s, t, hold, m);
      if (terms.valid) all_terms_.emplace_back(m, terms);
    }
    const bool has_sub = s < t;
    // Bounded: C(s+1, t) may not fit where C(s, t) does (it leaves block s's bytes to the
    // blocks outside to drop); then no tree within the ceiling keeps block s here.
    if (has_sub && !computed(s + 1, t)) all_terms_.clear();
    auto floor_of = [](const AllTerms& terms) {
      return std::max(terms.before_peak, terms.after_peak);
    };
    auto beats = [&](const AllTerms& a, const AllTerms& b) {
      return floor_of(a) <= floor_of(b) && a.time_us <= b.time_us &&
             (!has_sub || (a.held_bytes <= b.held_bytes && (!a.sub_hold || b.sub_hold)));
    };
    for (std::size_t x = 0; x < all_terms_.size(); ++x) {
      const AllTerms& terms = all_terms_[x].second;
      bool beaten = false;
      for (std::size_t y = 0; y < all_terms_.size() && !beaten; ++y) {
        if (y == x || !beats(all_terms_[y].second, terms)) continue;
        beaten = !beats(terms, all_terms_[y].second) || y < x;  // equal twins: keep the first
      }
      if (!beaten) {
        offer_all(result, terms, s + 1, t, static_cast<std::int32_t>(all_terms_[x].first),
                  min_peak);
      }
    }
    SweepTerms sweep = s < t ? sweep_terms(model_, s, s + 1, t) : SweepTerms{};
    for (int split = s + 1; split <= t && sweep.valid; ++split) {
      if (split > s + 1) extend_sweep(sweep, s, split - 1, t);
      if (!sweep.valid) break;  // a longer sweep repeats the invalid piece
      if (bounded_) {
        // Past the left parts that fit loosely (leaving out the memory at the turn) none can fit:
        // that excess only grows with the split. An option whose least time is over the cap
        // adds nothing.
        if (split - 1 >= bounded_reach_[static_cast<std::size_t>(s)]) break;
        if (!computed(split, t) || !computed(s, split - 1)) continue;
        if (sweep.time_us + bounded_least_[bounded_entry(split, t)] +
                bounded_least_[bounded_entry(s, split - 1)] >
            time_cap_us_) {
          continue;
        }
      }
      if (!bounded_ && (!computed(split, t) || !computed(s, split - 1))) continue;
      offer_checkpoint(result, s, split, t, hold, sweep, min_peak);
    }
  }
  flush(result, true);
  if (bounded_) {
    // Points that leave the blocks before s too little memory for what they would then cost.
    const double limit = bounded_point_limit_[bounded_entry(s, t)];
    std::erase_if(result, [&](const DpPoint& point) {
      return point.time_us + bounded_mu_ * static_cast<double>(point.peak_bytes) > limit;
    });
  }
  if (options_.optimistic_points > 0) {
    thin_optimistically(result);
  } else if (two_level()) {
    thin(result);
  }
  pool_min_peak_.back() = min_peak;
  result.shrink_to_fit();
  stored_points_ += result.size();
}

void ChainDp::offer_all(std::vector<DpPoint>& result, const AllTerms& terms, int next, int t,
                        std::int32_t choice, std::int64_t& min_peak) {
  const std::int64_t cap = options_.cap_bytes;
  const std::int64_t floor = std::max(terms.before_peak, terms.after_peak);
  Offer offer(result, candidates_, time_cap_us_);
  if (next > t) {
    min_peak = std::min(min_peak, floor);
    if (floor <= cap) offer(floor, terms.time_us, choice);
    flush(result, false);
    return;
  }
  const std::size_t sub = index(terms.sub_hold, next, t);
  const std::int64_t sub_min = shifted_min(min_peak_at(sub), terms.held_bytes);
  if (sub_min == kInfeasible) return;
  min_peak = std::min(min_peak, std::max(floor, sub_min));
  const std::vector<DpPoint>& sub_frontier = frontier_at(sub);
  if (sub_frontier.empty() ||
      covered(result, std::max(floor, sub_min), terms.time_us + sub_frontier.back().time_us)) {
    return;
  }
  // Sub-points that fit under the floor all give the floor: only the cheapest of them counts.
  std::size_t start = last_at_most(sub_frontier, floor - terms.held_bytes);
  if (bounded_) start = std::max(start, first_within(sub_frontier, time_cap_us_ - terms.time_us));
  for (std::size_t j = start; j < sub_frontier.size(); ++j) {
    const DpPoint& point = sub_frontier[j];
    const std::int64_t peak = std::max(floor, add_bytes(point.peak_bytes, terms.held_bytes));
    if (peak > cap) break;
    offer(peak, terms.time_us + point.time_us, choice);
  }
  flush(result, false);
}

void ChainDp::extend_sweep(SweepTerms& sweep, int s, int k, int t) const {
  // The sweep through blocks s..k-1 extended by block k, which consumes its input.
  const BlockModel& block = model_.blocks[static_cast<std::size_t>(k)];
  const Piece& piece = t + 1 == n_ ? block.no_save_first[1] : block.no_save_rerun[1];
  if (!piece.valid) {
    sweep.valid = false;
    return;
  }
  const std::int64_t held = model_.blocks[static_cast<std::size_t>(t)].gradients_in_bytes +
                            model_.blocks[static_cast<std::size_t>(s)].input_bytes;
  sweep.peak = std::max(sweep.peak, add_bytes(piece.peak_bytes, held));
  sweep.time_us += piece.time_us;
}

void ChainDp::offer_checkpoint(std::vector<DpPoint>& result, int s, int split, int t, bool hold,
                               const SweepTerms& sweep, std::int64_t& min_peak) {
  // kCheckpoint: forward s..split-1 without saving, C(split, t) holding x_{split-1}, then
  // C(s, split-1).
  const std::int64_t cap = options_.cap_bytes;
  const std::int64_t input = model_.blocks[static_cast<std::size_t>(s)].input_bytes;
  const std::size_t later = index(false, split, t);
  const std::size_t earlier = index(hold, s, split - 1);
  const std::int64_t later_min = shifted_min(min_peak_at(later), input);
  const std::int64_t earlier_min = min_peak_at(earlier);
  if (later_min == kInfeasible || earlier_min == kInfeasible) return;
  const std::int64_t corner = std::max({sweep.peak, later_min, earlier_min});
  min_peak = std::min(min_peak, corner);
  if (sweep.peak > cap) return;
  // Both frontiers are monotone step functions of memory: walk their breakpoints together.
  const std::vector<DpPoint>& a = frontier_at(later);
  const std::vector<DpPoint>& b = frontier_at(earlier);
  if (a.empty() || b.empty()) return;
  const double least_time = sweep.time_us + a.back().time_us + b.back().time_us;
  if (covered(result, corner, least_time)) return;
  const auto choice = static_cast<std::int32_t>(s - split);  // relative: shared sub-problems
  Offer offer(result, candidates_, time_cap_us_);
  std::size_t i = last_at_most(a, sweep.peak - input);
  std::size_t k = last_at_most(b, sweep.peak);
  if (bounded_) {
    // Points of one side too slow even with the other side's fastest are never offered.
    i = std::max(i, first_within(a, time_cap_us_ - sweep.time_us - b.back().time_us));
    k = std::max(k, first_within(b, time_cap_us_ - sweep.time_us - a.back().time_us));
    if (i == a.size() || k == b.size()) return;
  }
  for (;;) {
    const std::int64_t pa = add_bytes(a[i].peak_bytes, input);
    const std::int64_t pb = b[k].peak_bytes;
    const std::int64_t peak = std::max({sweep.peak, pa, pb});
    if (peak > cap) break;
    offer(peak, sweep.time_us + a[i].time_us + b[k].time_us, choice);
    if (offer.exhausted(least_time)) break;
    const std::int64_t next_a =
        i + 1 < a.size() ? add_bytes(a[i + 1].peak_bytes, input) : kInfeasible;
    const std::int64_t next_b = k + 1 < b.size() ? b[k + 1].peak_bytes : kInfeasible;
    if (next_a == kInfeasible && next_b == kInfeasible) break;
    const std::int64_t next = std::min(next_a, next_b);
    if (next_a == next) ++i;
    if (next_b == next) ++k;
  }
  flush(result, false);
}

void ChainDp::thin(std::vector<DpPoint>& frontier) const {
  // Long chains only: at most about max_frontier_points points (by default n/4 within 128..256:
  // longer chains have wider frontiers; on the 1000-op chain 64 points cost 1.8% at 80% of
  // store-all and 250 points 0.2%, for 0.3 s more), evenly spread in memory. Every point kept is
  // exact; the first (least memory) and last (least time) always stay, so the least budget is
  // unchanged and a budget between two kept points pays the lower one's time.
  const std::size_t limit = static_cast<std::size_t>(options_.max_frontier_points > 0
                                                         ? std::max(2, options_.max_frontier_points)
                                                         : std::clamp(n_ / 4, 128, 256));
  if (frontier.size() <= limit) return;
  const std::int64_t low = frontier.front().peak_bytes;
  const std::int64_t high = frontier.back().peak_bytes;
  const double step = static_cast<double>(high - low) / static_cast<double>(limit - 1);
  std::vector<DpPoint> kept;
  kept.reserve(limit + 1);
  kept.push_back(frontier.front());
  for (std::size_t i = 1; i + 1 < frontier.size(); ++i) {
    // The cheapest point of each memory step: the last one before the next step starts.
    const auto bucket = [&](std::int64_t peak) {
      return static_cast<std::int64_t>(static_cast<double>(peak - low) / step);
    };
    if (bucket(frontier[i + 1].peak_bytes) != bucket(frontier[i].peak_bytes)) {
      kept.push_back(frontier[i]);
    }
  }
  kept.push_back(frontier.back());
  frontier.swap(kept);
}

void ChainDp::thin_optimistically(std::vector<DpPoint>& frontier) const {
  // Runs of points in equal memory steps become one point: the run's first peak (its least) with
  // its last time (its least). That point dominates the run, so the result is a lower bound.
  const std::size_t limit = static_cast<std::size_t>(std::max(2, options_.optimistic_points));
  if (frontier.size() <= limit) return;
  const std::int64_t low = frontier.front().peak_bytes;
  const std::int64_t high = frontier.back().peak_bytes;
  const double step = static_cast<double>(high - low) / static_cast<double>(limit);
  const auto bucket = [&](std::int64_t peak) {
    return std::min(static_cast<std::int64_t>(limit) - 1,
                    static_cast<std::int64_t>(static_cast<double>(peak - low) / step));
  };
  std::vector<DpPoint> merged;
  merged.reserve(limit);
  for (const DpPoint& point : frontier) {
    if (!merged.empty() && bucket(point.peak_bytes) == bucket(merged.back().peak_bytes)) {
      merged.back().time_us = point.time_us;  // same step: keep the first peak, the last time
    } else {
      merged.push_back(point);
    }
  }
  frontier.swap(merged);
}

void ChainDp::flush(std::vector<DpPoint>& frontier, bool always) {
  // Merging copies the frontier: wait until enough points are pending (they are checked against
  // the frontier as of the last merge, so waiting admits a few dominated ones, which the merge
  // drops).
  if (candidates_.empty() || (!always && candidates_.size() < frontier.size() / 2 + 32)) return;
  std::sort(candidates_.begin(), candidates_.end(), point_before);
  merge_into(frontier, candidates_, scratch_);
  candidates_.clear();
}

const std::vector<int>& ChainDp::context_modes(int s, int t, bool hold) const {
  const bool first = t + 1 == n_;
  const bool has_sub = s < t;
  return context_modes_[static_cast<std::size_t>(s) * 8 + (first ? 4 : 0) + (hold ? 2 : 0) +
                        (has_sub ? 1 : 0)];
}

void ChainDp::prune_modes_per_context() {
  // A block whose every mode has the same figures whether or not the caller keeps x_{s-1} (its
  // backward reads x_{s-1} last, in its last step) has C(s, t, hold) = C(s, t, !hold) for every
  // t: the kAll options are equal, and so by induction are the kCheckpoint options.
  hold_insensitive_.assign(static_cast<std::size_t>(n_), 1);
  for (int s = 0; s < n_; ++s) {
    const BlockModel& block = model_.blocks[static_cast<std::size_t>(s)];
    for (const Mode& mode : block.modes) {
      for (int context = 0; context < 4; ++context) {
        const bool first = (context & 2) != 0;
        const bool has_sub = (context & 1) != 0;
        const AllTerms kept = mode_terms(block, mode, first, /*hold=*/true, has_sub);
        const AllTerms freed = mode_terms(block, mode, first, /*hold=*/false, has_sub);
        const bool same =
            kept.valid == freed.valid &&
            (!kept.valid ||
             (kept.before_peak == freed.before_peak && kept.after_peak == freed.after_peak &&
              kept.held_bytes == freed.held_bytes && kept.sub_hold == freed.sub_hold &&
              kept.time_us == freed.time_us));
        if (!same) hold_insensitive_[static_cast<std::size_t>(s)] = 0;
      }
    }
  }
  // C(s, t, true) is only ever asked for by a kAll of block s-1 whose mode's backward reads its
  // output x_{s-1} (kCheckpoint passes its own hold to C(s, split-1), and the root holds
  // nothing): for every other s it is not solved.
  held_input_.assign(static_cast<std::size_t>(n_), 0);
  for (int s = 1; s < n_; ++s) {
    for (const Mode& mode : model_.blocks[static_cast<std::size_t>(s) - 1].modes) {
      if (mode.reads_output) held_input_[static_cast<std::size_t>(s)] = 1;
    }
  }
  // A mode another one beats in this context on every figure the DP combines adds no point.
  context_modes_.resize(static_cast<std::size_t>(n_) * 8);
  for (int s = 0; s < n_; ++s) {
    const BlockModel& block = model_.blocks[static_cast<std::size_t>(s)];
    for (int context = 0; context < 8; ++context) {
      const bool first = (context & 4) != 0;
      const bool hold = (context & 2) != 0;
      const bool has_sub = (context & 1) != 0;
      std::vector<AllTerms> terms;
      for (const Mode& mode : block.modes) {
        terms.push_back(mode_terms(block, mode, first, hold, has_sub));
      }
      auto beats = [&](const AllTerms& a, const AllTerms& b) {
        return a.before_peak <= b.before_peak && a.after_peak <= b.after_peak &&
               a.time_us <= b.time_us &&
               (!has_sub || (a.held_bytes <= b.held_bytes && (!a.sub_hold || b.sub_hold)));
      };
      std::vector<int>& kept =
          context_modes_[static_cast<std::size_t>(s) * 8 + static_cast<std::size_t>(context)];
      for (std::size_t m = 0; m < terms.size(); ++m) {
        if (!terms[m].valid) continue;
        bool beaten = false;
        for (std::size_t o = 0; o < terms.size() && !beaten; ++o) {
          if (o == m || !terms[o].valid || !beats(terms[o], terms[m])) continue;
          // Equal twins: keep the lower index.
          beaten = !beats(terms[m], terms[o]) || o < m;
        }
        if (!beaten) kept.push_back(static_cast<int>(m));
      }
    }
  }
}

Tree ChainDp::reconstruct(std::int64_t budget_bytes) const {
  Tree tree;
  if (n_ == 0) return tree;
  tree.root = rebuild(tree, false, 0, n_ - 1, budget_bytes);
  return tree;
}

int ChainDp::rebuild(Tree& tree, bool hold, int s, int t, std::int64_t budget_bytes) const {
  const DpPoint* point = lookup(at(hold, s, t), budget_bytes);
  if (point == nullptr) return -1;
  // Sub-calls are looked up at what the chosen point leaves them, not at the whole budget:
  // the cheapest sub-point within that is exactly as cheap as the one the point was built from.
  const std::int64_t peak = point->peak_bytes;
  TreeNode node;
  node.s = s;
  node.t = t;
  node.hold = hold;
  if (point->choice >= 0 && stores_through(s, t)) {
    return rebuild_through(tree, hold, s, t, *point);
  }
  if (point->choice >= 0) {
    node.kind = TreeNode::Kind::kAll;
    node.mode = point->choice;
    if (s < t) {
      const AllTerms terms = all_terms(model_, s, t, hold, node.mode);
      node.first = rebuild(tree, terms.sub_hold, s + 1, t, peak - terms.held_bytes);
      assert(node.first >= 0);
    }
  } else {
    node.kind = TreeNode::Kind::kCheckpoint;
    node.split = s - point->choice;
    const std::int64_t input = model_.blocks[static_cast<std::size_t>(s)].input_bytes;
    node.first = rebuild(tree, false, node.split, t, peak - input);
    node.second = rebuild(tree, hold, s, node.split - 1, peak);
    assert(node.first >= 0 && node.second >= 0);
  }
  tree.nodes.push_back(node);
  return static_cast<int>(tree.nodes.size()) - 1;
}

int ChainDp::rebuild_through(Tree& tree, bool hold, int s, int t, const DpPoint& point) const {
  const int macro = macro_of_[static_cast<std::size_t>(s)];
  const std::vector<int>& modes =
      through_[static_cast<std::size_t>(macro)][static_cast<std::size_t>(point.choice)];
  // The holds and held bytes along the chain, then the sub-call, then the kAll nodes inside out.
  std::vector<bool> holds;
  std::int64_t held = 0;
  bool h = hold;
  for (std::size_t i = 0; i < modes.size(); ++i) {
    holds.push_back(h);
    const AllTerms terms = all_terms(model_, s + static_cast<int>(i), t, h, modes[i]);
    held += terms.held_bytes;
    h = terms.sub_hold;
  }
  int child = rebuild(tree, h, s + static_cast<int>(modes.size()), t, point.peak_bytes - held);
  assert(child >= 0);
  for (std::size_t i = modes.size(); i-- > 0;) {
    TreeNode node;
    node.kind = TreeNode::Kind::kAll;
    node.s = s + static_cast<int>(i);
    node.t = t;
    node.hold = holds[i];
    node.mode = modes[i];
    node.first = child;
    tree.nodes.push_back(node);
    child = static_cast<int>(tree.nodes.size()) - 1;
  }
  return child;
}

}  // namespace ckpt::planning
