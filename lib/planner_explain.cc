// Block summaries for --explain and the DOT view: for each block of a plan, its forward nodes and
// output, the values its keep mode holds, whether its output is a checkpoint, how often its
// forward runs again, and one line on why, in bytes and microseconds the pieces were measured in.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "planner_internal.h"

namespace ckpt::planning {

namespace {

std::string human_bytes(std::int64_t bytes) {
  constexpr std::array<std::string_view, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (std::abs(value) >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.3g} {}", value, kUnits[unit]);
}

std::string human_time(double us) {
  if (us >= 1e6) return fmt::format("{:.3g} s", us / 1e6);
  if (us >= 1e3) return fmt::format("{:.3g} ms", us / 1e3);
  return fmt::format("{:.3g} us", us);
}

// One line on why a block is treated as it is.
std::string explain_block(const TrainingGraph& graph, const BlockModel& block, int mode,
                          bool checkpointed, int reruns) {
  std::vector<std::string> parts;
  if (checkpointed && !block.output.empty()) {
    parts.push_back(fmt::format("checkpoint: its output {} ({}) is held while later blocks run",
                                graph.value(block.output.front()).name,
                                human_bytes(block.output_bytes)));
  }
  if (mode >= 0) {
    const Mode& chosen = block.modes[static_cast<std::size_t>(mode)];
    double backward_time = 0;
    for (NodeId n = block.first_backward; n < block.end_backward; ++n) {
      backward_time += graph.node(n).time_us;
    }
    const double recompute_time = chosen.backward[0].time_us - backward_time;
    std::int64_t dropped_bytes = 0;
    for (std::size_t g = 0; g < block.groups.size(); ++g) {
      const Group& group = block.groups[g];
      const bool kept = std::find(chosen.kept.begin(), chosen.kept.end(), static_cast<int>(g)) !=
                        chosen.kept.end();
      if (!kept && group.read_by_backward) dropped_bytes += group.bytes;
    }
    if (chosen.recomputed_nodes > 0) {
      parts.push_back(fmt::format("recomputed: {} to rebuild {} for its backward",
                                  human_time(recompute_time), human_bytes(dropped_bytes)));
    }
    if (chosen.kept_bytes > 0) {
      // What keeping costs nothing in time saves: the least mode's extra recomputation.
      double cheapest_alternative = recompute_time;
      if (block.min_mode >= 0) {
        cheapest_alternative =
            block.modes[static_cast<std::size_t>(block.min_mode)].backward[0].time_us -
            backward_time;
      }
      parts.push_back(fmt::format(
          "kept: its backward needs {} and recomputing it would cost {}",
          human_bytes(chosen.kept_bytes),
          human_time(std::max(0.0, cheapest_alternative - std::max(0.0, recompute_time)))));
    }
    if (chosen.recomputed_nodes == 0 && chosen.kept_bytes <= 0) {
      parts.push_back("nothing inside it is read by its backward");
    }
  }
  if (reruns > (mode >= 0 && block.modes[static_cast<std::size_t>(mode)].recomputed_nodes > 0)) {
    parts.push_back(fmt::format("its forward reruns to rebuild later checkpoints"));
  }
  std::string line;
  for (const std::string& part : parts) {
    if (!line.empty()) line += "; ";
    line += part;
  }
  return line;
}

}  // namespace

std::vector<BlockSummary> summarize_blocks(const TrainingGraph& graph, const ChainModel& model,
                                           const Tree* tree) {
  std::vector<BlockSummary> summaries;
  TreeUsage usage;
  if (tree != nullptr) usage = tree_usage(model, *tree);
  for (int b = 0; b < model.num_blocks(); ++b) {
    const BlockModel& block = model.blocks[static_cast<std::size_t>(b)];
    BlockSummary summary;
    for (NodeId n = block.first_forward; n < block.end_forward; ++n) {
      summary.forward_nodes.push_back(n);
    }
    if (!block.output.empty()) summary.output = block.output.front();
    int mode = block.store_all_mode;
    if (tree != nullptr) {
      mode = usage.mode[static_cast<std::size_t>(b)];
      summary.checkpointed = usage.checkpointed[static_cast<std::size_t>(b)] != 0;
      summary.recomputations = usage.reruns[static_cast<std::size_t>(b)];
    }
    if (mode >= 0) {
      for (int g : block.modes[static_cast<std::size_t>(mode)].kept) {
        const Group& group = block.groups[static_cast<std::size_t>(g)];
        summary.kept.insert(summary.kept.end(), group.values.begin(), group.values.end());
      }
      std::sort(summary.kept.begin(), summary.kept.end());
    }
    summary.explanation =
        explain_block(graph, block, mode, summary.checkpointed, summary.recomputations);
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

}  // namespace ckpt::planning
