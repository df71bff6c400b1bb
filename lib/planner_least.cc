// The least peak of the whole class, for chains the frontier DP solves only approximately (the
// two-level DP): a DP over the same sub-problems C(s, t, hold) and the same options, but keeping
// one number per sub-problem (its least peak, M) instead of a frontier. Its options combine
// sub-peaks by max and +, which are monotone, so every M is exact; among options of equal peak
// the cheaper tree is kept, and T is that tree's time. O(n^2) sub-problems with O(M + n) options
// each, every option O(1).
//
// A tree for a budget B >= M(root) is then built top-down: at each sub-problem, among the options
// whose peak (from the sub-problems' M) fits what is left of B, the one with the least estimated
// time (its own time plus the sub-problems' T) is taken, and each sub-problem gets the bytes the
// option leaves it. The least-peak option always fits with estimate T, and by induction a
// sub-problem built this way never costs more than its estimate, so the tree costs at most
// T(root): the least-peak tree's time, usually much less when B leaves slack.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "planner_internal.h"

namespace ckpt::planning {

namespace {

constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();

struct Least {
  std::int64_t peak = kNone;  // kNone: no tree of the class
  double time_us = 0;
  // >= 0: kAll with this mode; < 0: kCheckpoint with split -choice (a split is always >= 1).
  std::int32_t choice = 0;
};

class LeastPeakDp {
 public:
  explicit LeastPeakDp(const ChainModel& model)
      : model_(model),
        n_(model.num_blocks()),
        table_(2 * static_cast<std::size_t>(n_) * static_cast<std::size_t>(n_)),
        later_(static_cast<std::size_t>(n_) * static_cast<std::size_t>(n_)) {
    // The forward-without-saving pieces, compact (the DP's inner loop reads one per split).
    for (int variant = 0; variant < 4; ++variant) {
      const bool first = variant >= 2;
      const int consume = variant % 2;
      for (const BlockModel& block : model.blocks) {
        const Piece& piece = first ? block.no_save_first[consume] : block.no_save_rerun[consume];
        sweep_[static_cast<std::size_t>(variant)].push_back(
            {piece.valid, piece.peak_bytes, piece.time_us});
      }
    }
    for (int length = 0; length < n_; ++length) {
      for (int s = 0; s + length < n_; ++s) {
        for (bool hold : {false, true}) solve(s, s + length, hold);
      }
    }
  }

  std::int64_t least_peak() const { return n_ == 0 ? kNone : at(false, 0, n_ - 1).peak; }

  Tree tree(std::int64_t budget_bytes) const {
    Tree tree;
    if (least_peak() == kNone) return tree;
    tree.root = build(tree, false, 0, n_ - 1, std::max(budget_bytes, least_peak()));
    return tree;
  }

 private:
  const Least& at(bool hold, int s, int t) const { return table_[index(hold, s, t)]; }
  std::size_t index(bool hold, int s, int t) const {
    return (static_cast<std::size_t>(hold) * static_cast<std::size_t>(n_) +
            static_cast<std::size_t>(s)) *
               static_cast<std::size_t>(n_) +
           static_cast<std::size_t>(t);
  }

  // Calls visit(choice, peak, time) for every option of C(s, t, hold) with the sub-problems'
  // least peaks and their trees' times; choice >= 0 is kAll with that mode, < 0 kCheckpoint with
  // split -choice. Splits stop once the sweep alone peaks above bound() (it only grows with the
  // split).
  template <typename Bound, typename Visit>
  void for_each_option(bool hold, int s, int t, const Bound& bound, const Visit& visit) const {
    const BlockModel& block = model_.blocks[static_cast<std::size_t>(s)];
    for (int mode = 0; mode < static_cast<int>(block.modes.size()); ++mode) {
      const AllTerms terms = all_terms(model_, s, t, hold, mode);
      if (!terms.valid) continue;
      std::int64_t peak = std::max(terms.before_peak, terms.after_peak);
      double time_us = terms.time_us;
      if (s < t) {
        const Least& sub = at(terms.sub_hold, s + 1, t);
        if (sub.peak == kNone) continue;
        peak = std::max(peak, add_bytes(sub.peak, terms.held_bytes));
        time_us += sub.time_us;
      }
      visit(mode, peak, time_us);
    }
    // kCheckpoint(s, split): the sweep over s..split-1 grows one block per split (the figures of
    // sweep_terms, accumulated).
    const bool first = t + 1 == n_;
    const std::int64_t gradients = model_.blocks[static_cast<std::size_t>(t)].gradients_in_bytes;
    const std::int64_t input = block.input_bytes;
    std::int64_t sweep_peak = kNoPeak;
    double sweep_time = 0;
    // C(split, t, false) for every split, contiguous: the column of t in later_.
    const Least* later_column = &later_[static_cast<std::size_t>(t) * static_cast<std::size_t>(n_)];
    const Least* earlier_row = &table_[index(hold, s, s)];
    for (int split = s + 1; split <= t; ++split) {
      const int k = split - 1;
      const SweepPiece& piece =
          sweep_[static_cast<std::size_t>(first) * 2 + (k > s ? 1 : 0)][static_cast<std::size_t>(k)];
      if (!piece.valid) break;
      sweep_peak =
          std::max(sweep_peak, add_bytes(piece.peak, k > s ? gradients + input : gradients));
      if (sweep_peak > bound()) break;
      sweep_time += piece.time_us;
      const Least& later = later_column[split];
      const Least& earlier = earlier_row[k - s];
      if (later.peak == kNone || earlier.peak == kNone) continue;
      visit(-split, std::max({sweep_peak, add_bytes(later.peak, input), earlier.peak}),
            sweep_time + later.time_us + earlier.time_us);
    }
  }

  void solve(int s, int t, bool hold) {
    Least best;
    for_each_option(
        hold, s, t, [&] { return best.peak; },
        [&](std::int32_t choice, std::int64_t peak, double time_us) {
          if (peak < best.peak || (peak == best.peak && time_us < best.time_us)) {
            best = {peak, time_us, choice};
          }
        });
    table_[index(hold, s, t)] = best;
    if (!hold) later_[static_cast<std::size_t>(t) * static_cast<std::size_t>(n_) + s] = best;
  }

  // The option of C(s, t, hold) to build under `budget` (>= its M): the least estimated time
  // among those whose peak, from the sub-problems' least peaks, fits.
  std::int32_t pick(bool hold, int s, int t, std::int64_t budget) const {
    std::int32_t choice = 0;
    double estimate = std::numeric_limits<double>::infinity();
    for_each_option(
        hold, s, t, [&] { return budget; },
        [&](std::int32_t option, std::int64_t peak, double time_us) {
          if (peak <= budget && time_us < estimate) {
            choice = option;
            estimate = time_us;
          }
        });
    return choice;
  }

  int build(Tree& tree, bool hold, int s, int t, std::int64_t budget) const {
    const std::int32_t choice = pick(hold, s, t, budget);
    TreeNode node{.s = s, .t = t, .hold = hold};
    if (choice >= 0) {
      node.kind = TreeNode::Kind::kAll;
      node.mode = choice;
      if (s < t) {
        const AllTerms terms = all_terms(model_, s, t, hold, node.mode);
        node.first = build(tree, terms.sub_hold, s + 1, t, budget - terms.held_bytes);
      }
    } else {
      node.kind = TreeNode::Kind::kCheckpoint;
      node.split = -choice;
      node.first = build(tree, false, node.split, t,
                         budget - model_.blocks[static_cast<std::size_t>(s)].input_bytes);
      node.second = build(tree, hold, s, node.split - 1, budget);
    }
    tree.nodes.push_back(node);
    return static_cast<int>(tree.nodes.size()) - 1;
  }

  struct SweepPiece {
    bool valid = false;
    std::int64_t peak = kNoPeak;
    double time_us = 0;
  };

  const ChainModel& model_;
  int n_;
  std::vector<SweepPiece> sweep_[4];  // by 2 * first run + consume input, then block
  std::vector<Least> table_;  // by (hold, s, t), t fastest
  std::vector<Least> later_;  // C(s, t, false) again, by (t, s), s fastest
};

}  // namespace

struct LeastPeakSolver::Impl {
  explicit Impl(const ChainModel& model) : dp(model) {}
  LeastPeakDp dp;
};

LeastPeakSolver::LeastPeakSolver(const ChainModel& model) : impl_(std::make_shared<Impl>(model)) {}

std::int64_t LeastPeakSolver::least_peak() const { return impl_->dp.least_peak(); }

Tree LeastPeakSolver::tree(std::int64_t budget_bytes) const { return impl_->dp.tree(budget_bytes); }

}  // namespace ckpt::planning
