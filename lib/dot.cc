// The DOT printer: classifies every value by what the plan's schedule does with it, then prints
// the forward nodes and their values, clustered by block, with a legend. Resident values are
// drawn grey on small graphs and hidden (counted in the legend) on large ones to keep 500-op
// graphs readable.
#include "ckpt/dot.h"

#include <fmt/format.h>

#include <array>
#include <iterator>
#include <string>
#include <utility>

#include "ckpt/budget.h"
#include "markup.h"

namespace ckpt {

namespace {

struct FateStyle {
  ValueFate fate;
  std::string_view legend;
  std::string_view attributes;  // DOT attributes of a value node with this fate
  std::string_view swatch;      // attributes of its legend swatch (an HTML-like table cell)
};

constexpr std::array<FateStyle, 5> kFateStyles = {{
    {ValueFate::kKept, "kept: stored from the forward for the backward",
     R"(style=filled, fillcolor="#a6cee3")", R"(bgcolor="#a6cee3" border="1" style="rounded")"},
    {ValueFate::kCheckpoint, "checkpoint: kept across a recompute segment",
     R"(style=filled, fillcolor="#1f78b4", fontcolor="#ffffff", penwidth=2)",
     R"(bgcolor="#1f78b4" border="2" style="rounded")"},
    {ValueFate::kRecomputed, "recomputed: dropped, computed again for the backward",
     R"(style=filled, fillcolor="#fdbf6f")", R"(bgcolor="#fdbf6f" border="1" style="rounded")"},
    {ValueFate::kFreedEarly, "freed early: dropped in the forward, not needed again",
     R"(style="filled,dashed", fillcolor="#ffffff")",
     R"(bgcolor="#ffffff" border="1" style="dashed")"},
    {ValueFate::kResident, "resident: input or param, not budgeted",
     R"(style=filled, fillcolor="#e0e0e0", fontcolor="#666666", color="#999999")",
     R"(bgcolor="#e0e0e0" border="1" color="#999999" style="rounded")"},
}};

constexpr std::string_view kOpStyle = R"(shape=box, style=filled, fillcolor="#ffffff")";
constexpr std::string_view kRecomputedOpStyle = R"(shape=box, style=filled, fillcolor="#fdbf6f")";

std::string_view fate_attributes(ValueFate fate) {
  for (const FateStyle& style : kFateStyles) {
    if (style.fate == fate) return style.attributes;
  }
  return "";
}

// A DOT double-quoted string body: quotes and backslashes escaped, line breaks flattened.
std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out;
}

class DotPrinter {
 public:
  DotPrinter(const TrainingGraph& graph, const Plan& plan, const DotOptions& options)
      : graph_(graph),
        plan_(plan),
        fates_(classify_values(graph, plan)),
        recomputes_(recompute_counts(graph, plan.schedule)),
        block_of_node_(static_cast<std::size_t>(graph.num_nodes()), -1) {
    const int forward = graph.num_forward_nodes();
    show_resident_ =
        options.show_resident_up_to_nodes < 0 || forward <= options.show_resident_up_to_nodes;
    if (!options.cluster_blocks) return;
    for (std::size_t b = 0; b < plan.blocks.size(); ++b) {
      for (NodeId n : plan.blocks[b].forward_nodes) {
        if (n >= 0 && n < graph.num_nodes()) {
          block_of_node_[static_cast<std::size_t>(n)] = static_cast<int>(b);
        }
      }
    }
  }

  std::string print() {
    header();
    for (std::size_t b = 0; b < plan_.blocks.size(); ++b) block_cluster(static_cast<int>(b));
    nodes_in_block(-1, "  ");
    edges();
    legend();
    out_ += "}\n";
    return std::move(out_);
  }

 private:
  // Values drawn: forward values, and resident ones when shown and read by a forward node.
  bool visible(ValueId v) const {
    const ValueFate fate = fates_[static_cast<std::size_t>(v)];
    if (fate == ValueFate::kBackward) return false;
    if (fate != ValueFate::kResident) return true;
    if (!show_resident_) return false;
    for (NodeId n : graph_.consumers(v)) {
      if (graph_.node(n).phase == NodePhase::kForward) return true;
    }
    return false;
  }

  // The block a value is drawn in: its producer's, or -1 (top level).
  int block_of_value(ValueId v) const {
    const NodeId producer = graph_.value(v).producer;
    if (producer == kNoId || fates_[static_cast<std::size_t>(v)] == ValueFate::kResident) return -1;
    return block_of_node_[static_cast<std::size_t>(producer)];
  }

  void header() {
    fmt::format_to(std::back_inserter(out_),
                   "// ckpt plan of \"{}\": strategy {}, budget {} bytes, peak {} bytes.\n",
                   escape(graph_.name()), to_string(plan_.strategy), plan_.budget_bytes,
                   plan_.peak_bytes);
    out_ += "digraph ckpt {\n";
    fmt::format_to(std::back_inserter(out_),
                   "  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=12, labelloc=t, "
                   "label=\"{}: {} plan, peak {} (budget {})\"];\n",
                   escape(graph_.name()), to_string(plan_.strategy), format_bytes(plan_.peak_bytes),
                   format_bytes(plan_.budget_bytes));
    out_ += "  node [fontname=\"Helvetica\", fontsize=10];\n";
    out_ += "  edge [color=\"#555555\", arrowsize=0.6];\n";
  }

  void block_cluster(int block) {
    const BlockSummary& summary = plan_.blocks[static_cast<std::size_t>(block)];
    std::string label = fmt::format("block {}", block);
    if (summary.recomputations > 0) {
      label += fmt::format(": recomputed {}x", summary.recomputations);
    }
    if (summary.checkpointed) label += summary.recomputations > 0 ? ", checkpoint" : ": checkpoint";
    fmt::format_to(std::back_inserter(out_), "  subgraph cluster_block_{} {{\n", block);
    fmt::format_to(std::back_inserter(out_),
                   "    label=\"{}\"; style=\"rounded,dashed\"; color=\"#888888\"; "
                   "fontsize=10;\n",
                   label);
    nodes_in_block(block, "    ");
    out_ += "  }\n";
  }

  void nodes_in_block(int block, std::string_view indent) {
    for (NodeId n = 0; n < graph_.num_forward_nodes(); ++n) {
      if (block_of_node_[static_cast<std::size_t>(n)] == block) op_node(n, indent);
    }
    for (ValueId v = 0; v < graph_.num_values(); ++v) {
      if (visible(v) && block_of_value(v) == block) value_node(v, indent);
    }
  }

  void op_node(NodeId n, std::string_view indent) {
    const Node& node = graph_.node(n);
    std::string label = escape(node.name);
    if (!node.kind.empty() && node.kind != node.name) label += "\\n" + escape(node.kind);
    const int recomputed = recomputes_[static_cast<std::size_t>(n)];
    if (recomputed > 0) label += fmt::format("\\nrecomputed {}x", recomputed);
    fmt::format_to(std::back_inserter(out_), "{}n{} [{}, label=\"{}\"];\n", indent, n,
                   recomputed > 0 ? kRecomputedOpStyle : kOpStyle, label);
  }

  void value_node(ValueId v, std::string_view indent) {
    const TValue& value = graph_.value(v);
    std::string label = escape(value.name) + "\\n";
    if (value.alias_of != kNoId) {
      label += "view of " + escape(graph_.value(graph_.storage_root(v)).name);
    } else {
      label += format_bytes(value.bytes);
    }
    fmt::format_to(std::back_inserter(out_), "{}v{} [shape=ellipse, {}, label=\"{}\"];\n", indent,
                   v, fate_attributes(fates_[static_cast<std::size_t>(v)]), label);
  }

  void edges() {
    for (NodeId n = 0; n < graph_.num_forward_nodes(); ++n) {
      const Node& node = graph_.node(n);
      for (ValueId v : node.inputs) {
        if (visible(v)) fmt::format_to(std::back_inserter(out_), "  v{} -> n{};\n", v, n);
      }
      for (ValueId v : node.accumulates) {
        if (visible(v)) fmt::format_to(std::back_inserter(out_), "  v{} -> n{};\n", v, n);
      }
      for (ValueId v : node.outputs) {
        if (visible(v)) fmt::format_to(std::back_inserter(out_), "  n{} -> v{};\n", n, v);
      }
    }
  }

  // One compact node: a table of swatches (HTML-like label), placed by dot beside the graph.
  void legend() {
    out_ +=
        "  legend [shape=plain, fontsize=9, label=<<table border=\"0\" cellborder=\"0\" "
        "cellspacing=\"3\" cellpadding=\"2\">\n";
    out_ += "    <tr><td colspan=\"2\"><b>legend</b></td></tr>\n";
    for (const FateStyle& style : kFateStyles) {
      std::string label(style.legend);
      if (style.fate == ValueFate::kResident && !show_resident_) label = hidden_resident_label();
      swatch_row(style.swatch, label);
    }
    swatch_row(R"(bgcolor="#ffffff" border="1")", "op");
    swatch_row(R"(bgcolor="#fdbf6f" border="1")", "op, recomputed");
    out_ += "  </table>>];\n";
  }

  void swatch_row(std::string_view swatch, std::string_view label) {
    fmt::format_to(std::back_inserter(out_),
                   "    <tr><td {} width=\"28\"> </td><td align=\"left\">{}</td></tr>\n", swatch,
                   internal::markup_escape(label));
  }

  std::string hidden_resident_label() const {
    int hidden = 0;
    std::int64_t hidden_bytes = 0;
    for (ValueId v = 0; v < graph_.num_values(); ++v) {
      if (fates_[static_cast<std::size_t>(v)] != ValueFate::kResident) continue;
      ++hidden;
      if (graph_.storage_root(v) == v) hidden_bytes += graph_.value(v).bytes;
    }
    return fmt::format("resident: {} values, {}, hidden", hidden, format_bytes(hidden_bytes));
  }

  const TrainingGraph& graph_;
  const Plan& plan_;
  std::vector<ValueFate> fates_;
  std::vector<int> recomputes_;
  std::vector<int> block_of_node_;  // per node: index into plan_.blocks, or -1
  bool show_resident_ = true;
  std::string out_;
};

}  // namespace

std::string render_dot(const TrainingGraph& graph, const Plan& plan, const DotOptions& options) {
  return DotPrinter(graph, plan, options).print();
}

}  // namespace ckpt
