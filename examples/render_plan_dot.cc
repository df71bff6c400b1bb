// Example (c): plans a forward graph file (by default the bundled MLP profile) at half its
// store-all peak and writes the plan as a Graphviz DOT picture: values coloured by what the plan
// does with them (kept, checkpoint, recomputed, freed early), ops clustered by block.
// Run: render_plan_dot GRAPH OUT.dot, then `dot -Tsvg OUT.dot -o plan.svg`.
#include <cstdint>
#include <exception>
#include <iostream>

#include "ckpt/dot.h"
#include "ckpt/formats.h"
#include "ckpt/planner.h"

namespace {

int render(const char* graph_path, const char* dot_path) {
  const ckpt::LoadedGraph loaded = ckpt::load_graph(graph_path);
  const ckpt::TrainingGraph& graph = loaded.training;
  const ckpt::Plan store_all = ckpt::plan(graph, {.strategy = ckpt::Strategy::kStoreAll});
  const ckpt::Plan half = ckpt::plan(graph, {.budget_bytes = store_all.peak_bytes / 2});
  ckpt::write_text_file(dot_path, ckpt::render_dot(graph, half));
  std::cout << graph.name() << ": peak " << half.peak_bytes << " of budget " << half.budget_bytes
            << " bytes (store-all " << store_all.peak_bytes << "), " << half.blocks.size()
            << " blocks; wrote " << dot_path << "\n";
  return half.feasible ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: render_plan_dot GRAPH OUT.dot\n";
    return 64;
  }
  try {
    return render(argv[1], argv[2]);
  } catch (const std::exception& error) {
    std::cerr << "render_plan_dot: " << error.what() << "\n";
    return 1;
  }
}
