// The SVG trade-off chart of ckpt-plan --plot, written by hand: axes with "nice" 1-2-5 ticks
// (peak memory in the binary unit that fits, overhead in percent), the frontier as a step line,
// baselines as markers, and a legend. Coordinates are printed with fixed decimals so the same
// data always gives the same bytes.
#include "ckpt/plot.h"
#include "markup.h"
// Implements render_plot_svg.

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <limits>
#include <string>

namespace ckpt {

namespace {

constexpr double kWidth = 820;
constexpr double kHeight = 460;
constexpr double kLeft = 80;  // plot area
constexpr double kTop = 50;
constexpr double kPlotWidth = 500;
constexpr double kPlotHeight = 330;
constexpr double kLegendX = kLeft + kPlotWidth + 30;

constexpr std::size_t kMaxStepLineMarkers = 40;

constexpr std::array<std::string_view, 6> kColors = {"#1f77b4", "#d62728", "#2ca02c",
                                                     "#ff7f0e", "#9467bd", "#8c564b"};

// The 1, 2 or 5 times a power of ten nearest above `rough`.
double nice_step(double rough) {
  if (!(rough > 0) || !std::isfinite(rough)) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  const double fraction = rough / power;
  if (fraction <= 1) return power;
  if (fraction <= 2) return 2 * power;
  if (fraction <= 5) return 5 * power;
  return 10 * power;
}

struct Axis {
  double low = 0;
  double high = 1;
  double step = 1;
  int decimals = 0;
  double to_pixels(double value, double origin, double length, bool flip) const {
    const double t = (value - low) / (high - low);
    return flip ? origin + length - t * length : origin + t * length;
  }
};

Axis make_axis(double low, double high, bool from_zero) {
  if (from_zero) low = std::min(low, 0.0);
  if (high <= low) {
    const double pad = low == 0 ? 1 : std::fabs(low) * 0.1;
    low -= from_zero ? 0 : pad;
    high += pad;
  }
  Axis axis;
  axis.step = nice_step((high - low) / 5);
  axis.low = std::floor(low / axis.step) * axis.step;
  axis.high = std::ceil(high / axis.step) * axis.step;
  if (axis.high <= axis.low) axis.high = axis.low + axis.step;
  axis.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(axis.step))));
  return axis;
}

struct ByteUnit {
  std::string_view name;
  double bytes;
};

ByteUnit byte_unit(std::int64_t max_bytes) {
  constexpr std::array<ByteUnit, 4> kUnits = {
      {{"GiB", 1024.0 * 1024 * 1024}, {"MiB", 1024.0 * 1024}, {"KiB", 1024.0}, {"B", 1.0}}};
  for (const ByteUnit& unit : kUnits) {
    if (static_cast<double>(max_bytes) >= unit.bytes) return unit;
  }
  return kUnits.back();
}

class SvgPlot {
 public:
  explicit SvgPlot(const PlotData& data) : data_(data) {
    std::int64_t min_peak = std::numeric_limits<std::int64_t>::max();
    std::int64_t max_peak = 0;
    double max_overhead = 0;
    bool any = false;
    for (const PlotSeries& series : data.series) {
      for (const PlotPoint& point : series.points) {
        min_peak = std::min(min_peak, point.peak_bytes);
        max_peak = std::max(max_peak, point.peak_bytes);
        max_overhead = std::max(max_overhead, point.overhead * 100);
        any = true;
      }
    }
    if (!any) min_peak = 0;
    unit_ = byte_unit(max_peak);
    x_ = make_axis(static_cast<double>(min_peak) / unit_.bytes,
                   static_cast<double>(max_peak) / unit_.bytes, /*from_zero=*/false);
    y_ = make_axis(0, max_overhead, /*from_zero=*/true);
  }

  std::string print() {
    fmt::format_to(std::back_inserter(out_),
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
                   "viewBox=\"0 0 {0} {1}\" font-family=\"Helvetica, Arial, sans-serif\" "
                   "font-size=\"12\">\n",
                   kWidth, kHeight);
    out_ += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
    fmt::format_to(
        std::back_inserter(out_),
        "<text x=\"{:.2f}\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        kLeft + kPlotWidth / 2, internal::markup_escape(data_.title));
    axes();
    for (std::size_t i = 0; i < data_.series.size(); ++i) series(i);
    legend();
    out_ += "</svg>\n";
    return std::move(out_);
  }

 private:
  double px(double peak_bytes) const {
    return x_.to_pixels(peak_bytes / unit_.bytes, kLeft, kPlotWidth, /*flip=*/false);
  }
  double py(double overhead) const {
    return y_.to_pixels(overhead * 100, kTop, kPlotHeight, /*flip=*/true);
  }

  void axes() {
    const double bottom = kTop + kPlotHeight;
    fmt::format_to(std::back_inserter(out_),
                   "<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" "
                   "fill=\"none\" stroke=\"#333333\"/>\n",
                   kLeft, kTop, kPlotWidth, kPlotHeight);
    const int x_ticks = static_cast<int>(std::lround((x_.high - x_.low) / x_.step));
    for (int i = 0; i <= x_ticks; ++i) {
      const double value = x_.low + i * x_.step;
      const double x = x_.to_pixels(value, kLeft, kPlotWidth, false);
      fmt::format_to(std::back_inserter(out_),
                     "<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" "
                     "stroke=\"#e5e5e5\"/>\n"
                     "<line x1=\"{0:.2f}\" y1=\"{2:.2f}\" x2=\"{0:.2f}\" y2=\"{3:.2f}\" "
                     "stroke=\"#333333\"/>\n"
                     "<text x=\"{0:.2f}\" y=\"{4:.2f}\" text-anchor=\"middle\">{5:.{6}f}</text>\n",
                     x, kTop, bottom, bottom + 5, bottom + 19, value, x_.decimals);
    }
    const int y_ticks = static_cast<int>(std::lround((y_.high - y_.low) / y_.step));
    for (int i = 0; i <= y_ticks; ++i) {
      const double value = y_.low + i * y_.step;
      const double y = y_.to_pixels(value, kTop, kPlotHeight, true);
      fmt::format_to(std::back_inserter(out_),
                     "<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{2:.2f}\" y2=\"{1:.2f}\" "
                     "stroke=\"#e5e5e5\"/>\n"
                     "<line x1=\"{3:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{1:.2f}\" "
                     "stroke=\"#333333\"/>\n"
                     "<text x=\"{4:.2f}\" y=\"{5:.2f}\" text-anchor=\"end\">{6:.{7}f}</text>\n",
                     kLeft, y, kLeft + kPlotWidth, kLeft - 5, kLeft - 8, y + 4, value, y_.decimals);
    }
    fmt::format_to(std::back_inserter(out_),
                   "<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">peak memory ({})"
                   "</text>\n",
                   kLeft + kPlotWidth / 2, bottom + 42, unit_.name);
    fmt::format_to(std::back_inserter(out_),
                   "<text x=\"{0:.2f}\" y=\"{1:.2f}\" text-anchor=\"middle\" "
                   "transform=\"rotate(-90 {0:.2f} {1:.2f})\">recompute overhead (%)</text>\n",
                   kLeft - 50, kTop + kPlotHeight / 2);
  }

  void marker(std::size_t series_index, double x, double y) {
    const std::string_view color = kColors[series_index % kColors.size()];
    switch (series_index % 5) {
      case 0:
        fmt::format_to(std::back_inserter(out_),
                       "<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3.5\" fill=\"{}\"/>\n", x, y,
                       color);
        return;
      case 1:
        fmt::format_to(std::back_inserter(out_),
                       "<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"8\" height=\"8\" fill=\"none\" "
                       "stroke=\"{}\" stroke-width=\"1.5\"/>\n",
                       x - 4, y - 4, color);
        return;
      case 2:
        fmt::format_to(
            std::back_inserter(out_),
            "<path d=\"M {:.2f} {:.2f} L {:.2f} {:.2f} L {:.2f} {:.2f} Z\" fill=\"none\" "
            "stroke=\"{}\" stroke-width=\"1.5\"/>\n",
            x, y - 5, x + 5, y + 4, x - 5, y + 4, color);
        return;
      case 3:
        fmt::format_to(std::back_inserter(out_),
                       "<path d=\"M {:.2f} {:.2f} L {:.2f} {:.2f} L {:.2f} {:.2f} L {:.2f} {:.2f} "
                       "Z\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n",
                       x, y - 5, x + 5, y, x, y + 5, x - 5, y, color);
        return;
      default:
        fmt::format_to(
            std::back_inserter(out_),
            "<path d=\"M {:.2f} {:.2f} L {:.2f} {:.2f} M {:.2f} {:.2f} L {:.2f} {:.2f}\" "
            "stroke=\"{}\" stroke-width=\"1.5\"/>\n",
            x - 4, y - 4, x + 4, y + 4, x - 4, y + 4, x + 4, y - 4, color);
    }
  }

  void series(std::size_t index) {
    const PlotSeries& s = data_.series[index];
    std::vector<PlotPoint> points = s.points;
    std::stable_sort(points.begin(), points.end(), [](const PlotPoint& a, const PlotPoint& b) {
      return a.peak_bytes < b.peak_bytes;
    });
    fmt::format_to(std::back_inserter(out_), "<g id=\"series-{}\">\n", index);
    if (s.step_line && !points.empty()) {
      // The least overhead at a peak of at most x: flat until the next point, then a drop.
      std::string path = fmt::format(
          "M {:.2f} {:.2f}", px(static_cast<double>(points[0].peak_bytes)), py(points[0].overhead));
      for (std::size_t i = 1; i < points.size(); ++i) {
        path += fmt::format(" H {:.2f} V {:.2f}", px(static_cast<double>(points[i].peak_bytes)),
                            py(points[i].overhead));
      }
      path += fmt::format(" H {:.2f}", kLeft + kPlotWidth);
      fmt::format_to(std::back_inserter(out_),
                     "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", path,
                     kColors[index % kColors.size()]);
    }
    // A long frontier reads better as the line alone; baselines always show their points.
    if (s.step_line && points.size() > kMaxStepLineMarkers) points.clear();
    for (const PlotPoint& point : points) {
      marker(index, px(static_cast<double>(point.peak_bytes)), py(point.overhead));
    }
    out_ += "</g>\n";
  }

  void legend() {
    double y = kTop + 10;
    for (std::size_t i = 0; i < data_.series.size(); ++i) {
      const PlotSeries& s = data_.series[i];
      if (s.step_line) {
        fmt::format_to(
            std::back_inserter(out_),
            "<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"{}\" "
            "stroke-width=\"2\"/>\n",
            kLegendX - 8, y, kLegendX + 8, y, kColors[i % kColors.size()]);
      }
      marker(i, kLegendX, y);
      const std::string label = s.points.empty() ? s.name + " (no feasible budget)" : s.name;
      fmt::format_to(std::back_inserter(out_), "<text x=\"{:.2f}\" y=\"{:.2f}\">{}</text>\n",
                     kLegendX + 16, y + 4, internal::markup_escape(label));
      y += 22;
    }
  }

  const PlotData& data_;
  ByteUnit unit_;
  Axis x_;
  Axis y_;
  std::string out_;
};

}  // namespace

std::string render_plot_svg(const PlotData& data) { return SvgPlot(data).print(); }

}  // namespace ckpt
