// Example (a): a framework author describes a small MLP's training forward with GraphBuilder,
// derives the backward pass, asks the optimal planner for a schedule at 60% of the store-all peak
// and prints the plan the way `ckpt-plan --format table` does. Run: plan_mlp [PERCENT].
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include "ckpt/graph.h"
#include "ckpt/planner.h"
#include "ckpt/report.h"
#include "ckpt/training_graph.h"

namespace {

constexpr std::int64_t kMiB = 1 << 20;

// Four fully connected layers with ReLU, then a loss. Sizes and times are what a profiler would
// report for batch 256 x width 4096 in fp32; the backward of a linear layer saves its input.
ckpt::Graph build_mlp() {
  ckpt::GraphBuilder b("mlp-example");
  ckpt::ValueId h = b.add_input("x", 4 * kMiB);
  for (int layer = 0; layer < 4; ++layer) {
    const std::string id = std::to_string(layer);
    const ckpt::ValueId w = b.add_param("w" + id, 64 * kMiB);
    const ckpt::ValueId z = b.add_simple_op("fc" + id, "linear", {h, w}, 4 * kMiB,
                                            /*fwd_time_us=*/120, /*bwd_time_us=*/240,
                                            /*saved=*/{h});
    // kNoId in `saved` means the op's new output: ReLU's backward reads its result.
    h = b.add_simple_op("relu" + id, "relu", {z}, 4 * kMiB, /*fwd_time_us=*/10,
                        /*bwd_time_us=*/15, /*saved=*/{ckpt::kNoId});
  }
  b.add_simple_op("loss", "sum", {h}, 4, /*fwd_time_us=*/5, /*bwd_time_us=*/5);
  return std::move(b).build();
}

}  // namespace

int main(int argc, char** argv) {
  const double percent = argc > 1 ? std::atof(argv[1]) : 60.0;
  const ckpt::TrainingGraph graph = ckpt::derive_training_graph(build_mlp());
  const ckpt::Plan store_all = ckpt::plan(graph, {.strategy = ckpt::Strategy::kStoreAll});
  const auto budget = static_cast<std::int64_t>(store_all.peak_bytes * percent / 100);
  ckpt::Plan optimal = ckpt::plan(graph, {.budget_bytes = budget});
  const ckpt::PlanReport report =
      ckpt::make_report(graph, std::move(optimal), store_all.peak_bytes);
  std::cout << ckpt::render_table(graph, report, {.explain = true});
  return report.plan.feasible ? 0 : 2;
}
