// Escaping for the markup ckpt writes: SVG plots (plot_svg.cc) and the HTML-like labels of
// Graphviz DOT output (dot.cc).
#pragma once

#include <string>
#include <string_view>

namespace ckpt::internal {

// `text` with & < > " ' replaced by entities: safe in XML and HTML text and attribute values.
inline std::string markup_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace ckpt::internal
