// Graphviz DOT view of a plan: the forward part of the training graph (ops as boxes, values as
// ellipses) coloured by what the plan does with each value (classify_values, ckpt/report.h),
// clustered by the plan's blocks, with a legend. Output is deterministic (ids from indices,
// everything in id order) and renders with `dot -Tsvg`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/planner.h"
#include "ckpt/report.h"
#include "ckpt/training_graph.h"

namespace ckpt {

// What render_dot draws.
struct DotOptions {
  // Draw resident values (grey) when the forward pass has at most this many nodes; larger graphs
  // hide them and say how many in the legend. 0 always hides them, a negative value always shows.
  int show_resident_up_to_nodes = 40;
  // Group nodes into one cluster per Plan::blocks entry (when the plan has blocks).
  bool cluster_blocks = true;
};

// The DOT text of `plan` on `graph` (a digraph named ckpt, with a legend), ready for `dot -Tsvg`.
std::string render_dot(const TrainingGraph& graph, const Plan& plan,
                       const DotOptions& options = {});

}  // namespace ckpt
