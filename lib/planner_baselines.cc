// The baselines users compare the optimal plan with, each built as a choice tree of the same
// class the DP searches (docs/algorithms.md), so that the DP's plan is never worse than any of
// them at a budget both meet: memory-minimal, Chen et al.'s sqrt(n) and greedy segmentations, and
// torch-style uniform segments.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <tuple>

#include "planner_internal.h"

namespace ckpt::planning {

namespace {

int add_node(Tree& tree, const TreeNode& node) {
  tree.nodes.push_back(node);
  return static_cast<int>(tree.nodes.size()) - 1;
}

// Modes of a block, the least-keeping first.
std::vector<int> modes_least_first(const BlockModel& block) {
  std::vector<int> order(block.modes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const Mode& ma = block.modes[static_cast<std::size_t>(a)];
    const Mode& mb = block.modes[static_cast<std::size_t>(b)];
    return std::make_tuple(a != block.min_mode, ma.kept_bytes) <
           std::make_tuple(b != block.min_mode, mb.kept_bytes);
  });
  return order;
}

int store_all_mode(const BlockModel& block) {
  if (block.store_all_mode >= 0) return block.store_all_mode;
  return block.min_mode;
}

// Above this many blocks, memory-minimal's quadratic recomputation would emit too many steps: its
// sweeps then stop at every sqrt(n)-th block first (one more boundary held, O(n^1.5) steps).
constexpr int kMaxQuadraticBlocks = 1024;

class MinimalBuilder {
 public:
  MinimalBuilder(const ChainModel& model, Tree& tree) : model_(model), tree_(tree) {
    const int n = model.num_blocks();
    if (n > kMaxQuadraticBlocks) stride_ = static_cast<int>(std::lround(std::sqrt(n)));
  }

  int build(int s, int t, bool hold) {
    const auto key = std::make_tuple(s, t, hold);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    int result = -1;
    // Sweep to the last block (or to the start of t's stretch of `stride_` blocks).
    int split = t;
    if (stride_ > 0 && t / stride_ * stride_ > s) split = t / stride_ * stride_;
    if (s < t && sweep_terms(model_, s, split, t).valid) {
      const int later = build(split, t, false);
      const int earlier = later >= 0 ? build(s, split - 1, hold) : -1;
      if (earlier >= 0) {
        result = add_node(tree_, {.kind = TreeNode::Kind::kCheckpoint,
                                  .s = s,
                                  .t = t,
                                  .hold = hold,
                                  .split = split,
                                  .first = later,
                                  .second = earlier});
      }
    }
    if (result < 0) {
      const BlockModel& block = model_.blocks[static_cast<std::size_t>(s)];
      for (int mode : modes_least_first(block)) {
        const AllTerms terms = all_terms(model_, s, t, hold, mode);
        if (!terms.valid) continue;
        const int child = s < t ? build(s + 1, t, terms.sub_hold) : -1;
        if (s < t && child < 0) continue;
        result = add_node(tree_, {.kind = TreeNode::Kind::kAll,
                                  .s = s,
                                  .t = t,
                                  .hold = hold,
                                  .mode = mode,
                                  .first = child});
        break;
      }
    }
    memo_[key] = result;
    return result;
  }

 private:
  const ChainModel& model_;
  Tree& tree_;
  int stride_ = 0;  // 0: plain quadratic memory-minimal
  std::map<std::tuple<int, int, bool>, int> memo_;
};

class SegmentBuilder {
 public:
  SegmentBuilder(const ChainModel& model, const std::vector<int>& starts, Tree& tree)
      : model_(model), starts_(starts), tree_(tree) {}

  // Blocks of segment k onwards, in the first computation (t = n - 1).
  int spine(std::size_t k, bool hold) {
    const auto key = std::make_pair(k, hold);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    const int n = model_.num_blocks();
    const int s = starts_[k];
    const int next = k + 1 < starts_.size() ? starts_[k + 1] : n;
    int result = -1;
    if (next == n) {
      result = all_through(s, n, n - 1, hold, k);
    } else {
      const int later = spine(k + 1, false);
      const int earlier = later >= 0 ? all_through(s, next, next - 1, hold, k) : -1;
      if (earlier >= 0 && sweep_terms(model_, s, next, n - 1).valid) {
        result = add_node(tree_, {.kind = TreeNode::Kind::kCheckpoint,
                                  .s = s,
                                  .t = n - 1,
                                  .hold = hold,
                                  .split = next,
                                  .first = later,
                                  .second = earlier});
      } else {
        // Recomputing this segment would repeat a side effect: store it like store-all.
        result = all_through(s, next, n - 1, hold, k);
      }
    }
    memo_[key] = result;
    return result;
  }

 private:
  // kAll nodes for blocks s..end-1 with their store-all modes inside C(., t); when end <= t, the
  // last one's sub-call is the spine of segment k + 1.
  int all_through(int s, int end, int t, bool hold, std::size_t k) {
    const BlockModel& block = model_.blocks[static_cast<std::size_t>(s)];
    const int mode = store_all_mode(block);
    if (mode < 0) return -1;
    const AllTerms terms = all_terms(model_, s, t, hold, mode);
    if (!terms.valid) return -1;
    int child = -1;
    if (s < t) {
      child = s + 1 < end ? all_through(s + 1, end, t, terms.sub_hold, k)
                          : spine(k + 1, terms.sub_hold);
      if (child < 0) return -1;
    }
    return add_node(
        tree_,
        {.kind = TreeNode::Kind::kAll, .s = s, .t = t, .hold = hold, .mode = mode, .first = child});
  }

  const ChainModel& model_;
  const std::vector<int>& starts_;
  Tree& tree_;
  std::map<std::pair<std::size_t, bool>, int> memo_;
};

// Bytes a block holds between its forward and its backward when nothing is recomputed.
std::vector<std::int64_t> stored_bytes(const ChainModel& model) {
  std::vector<std::int64_t> bytes;
  for (const BlockModel& block : model.blocks) {
    const int mode = store_all_mode(block);
    const std::int64_t kept =
        mode >= 0 ? block.modes[static_cast<std::size_t>(mode)].kept_bytes : 0;
    bytes.push_back(std::max<std::int64_t>(0, kept) + block.output_bytes);
  }
  return bytes;
}

}  // namespace

Tree memory_minimal_tree(const ChainModel& model) {
  Tree tree;
  if (model.num_blocks() == 0) return tree;
  MinimalBuilder builder(model, tree);
  tree.root = builder.build(0, model.num_blocks() - 1, false);
  return tree;
}

Tree segment_tree(const ChainModel& model, const std::vector<int>& segment_starts) {
  Tree tree;
  if (model.num_blocks() == 0 || segment_starts.empty()) return tree;
  SegmentBuilder builder(model, segment_starts, tree);
  tree.root = builder.spine(0, false);
  return tree;
}

std::vector<int> uniform_segments(int num_blocks, int segments) {
  segments = std::clamp(segments, 1, std::max(1, num_blocks));
  std::vector<int> starts;
  for (int j = 0; j < segments; ++j) {
    const int start = static_cast<int>(static_cast<std::int64_t>(j) * num_blocks / segments);
    if (starts.empty() || start > starts.back()) starts.push_back(start);
  }
  return starts;
}

std::vector<int> chen_sqrt_segments(const ChainModel& model) {
  const int n = model.num_blocks();
  const int segments = std::max(1, static_cast<int>(std::lround(std::sqrt(n))));
  const std::vector<std::int64_t> bytes = stored_bytes(model);
  const double total =
      static_cast<double>(std::accumulate(bytes.begin(), bytes.end(), std::int64_t{0}));
  std::vector<int> starts = {0};
  double running = 0;
  int next_segment = 1;
  for (int b = 0; b + 1 < n && next_segment < segments; ++b) {
    running += static_cast<double>(bytes[static_cast<std::size_t>(b)]);
    if (running >= total * next_segment / segments) {
      starts.push_back(b + 1);
      while (next_segment < segments && running >= total * next_segment / segments) {
        ++next_segment;
      }
    }
  }
  return starts;
}

std::vector<int> chen_greedy_segments(const ChainModel& model, std::int64_t threshold_bytes) {
  const std::vector<std::int64_t> bytes = stored_bytes(model);
  std::vector<int> starts = {0};
  std::int64_t running = 0;
  for (int b = 0; b + 1 < model.num_blocks(); ++b) {
    running += bytes[static_cast<std::size_t>(b)];
    if (running > threshold_bytes) {
      starts.push_back(b + 1);
      running = 0;
    }
  }
  return starts;
}

std::vector<std::int64_t> chen_thresholds(const ChainModel& model) {
  const std::vector<std::int64_t> bytes = stored_bytes(model);
  const std::int64_t total = std::accumulate(bytes.begin(), bytes.end(), std::int64_t{0});
  std::int64_t smallest = total;
  for (std::int64_t b : bytes) {
    if (b > 0) smallest = std::min(smallest, b);
  }
  std::vector<std::int64_t> thresholds = {0, total};
  // A geometric grid from the smallest block to the whole chain: the segmentation only changes
  // where the threshold crosses a run of blocks' bytes, and a few dozen steps cover the range.
  constexpr int kSteps = 96;
  const double low = static_cast<double>(std::max<std::int64_t>(smallest, 1));
  const double ratio =
      std::pow(static_cast<double>(std::max<std::int64_t>(total, 1)) / low, 1.0 / kSteps);
  double value = low;
  for (int i = 0; i <= kSteps; ++i, value *= ratio) {
    thresholds.push_back(static_cast<std::int64_t>(value));
  }
  std::sort(thresholds.begin(), thresholds.end());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  return thresholds;
}

}  // namespace ckpt::planning
