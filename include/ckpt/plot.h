// A self-contained SVG chart of the memory/compute trade-off: recompute overhead (%) against peak
// memory, the optimal frontier as a step line and each baseline as markers. No external
// dependencies; the output is deterministic text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ckpt {

// One plotted point: a schedule's peak and its recompute overhead.
struct PlotPoint {
  std::int64_t peak_bytes = 0;
  double overhead = 0;  // compute / store-all compute - 1 (plotted as a percentage)
};

// A named set of points: one strategy.
struct PlotSeries {
  std::string name;  // legend entry ("optimal", "chen-sqrt", ...)
  std::vector<PlotPoint> points;
  // A Pareto frontier: drawn as a step line (the least overhead at each peak) with its points.
  bool step_line = false;
};

// A whole chart: its title and series.
struct PlotData {
  std::string title;
  std::vector<PlotSeries> series;
};

// The chart as standalone SVG text (axes, legend, series).
std::string render_plot_svg(const PlotData& data);

}  // namespace ckpt
