// Builds a two-layer graph through the installed API, derives its backward pass and checks the
// store-all schedule with the simulator.
#include <cstdio>

#include "ckpt/graph.h"
#include "ckpt/schedule.h"
#include "ckpt/simulator.h"
#include "ckpt/training_graph.h"

int main() {
  ckpt::GraphBuilder builder("downstream");
  const auto x = builder.add_input("x", 1024);
  const auto w = builder.add_param("w", 4096);
  const auto h = builder.add_simple_op("fc", "linear", {x, w}, 2048, 10, 20, {x});
  const auto y = builder.add_simple_op("act", "relu", {h}, 2048, 1, 1, {ckpt::kNoId});
  builder.add_simple_op("loss", "loss", {y}, 4, 1, 1, {y});
  const ckpt::TrainingGraph graph = ckpt::derive_training_graph(std::move(builder).build());
  const ckpt::SimulationResult result = ckpt::simulate(graph, ckpt::store_all_schedule(graph));
  std::printf("downstream: valid=%d peak=%lld bytes\n", result.valid ? 1 : 0,
              static_cast<long long>(result.peak_bytes));
  return result.valid && result.peak_bytes > 0 ? 0 : 1;
}
