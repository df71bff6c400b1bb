// Reading and writing graph files. The native format ("ckpt-graph/1", docs/format.md) holds either
// a forward graph or a joint training graph; importers read Checkmate/Moccasin node-link joint
// graphs and ckpt-profile/1 op-level PyTorch profiles. load_graph picks the reader from the
// content. Every reader validates and throws ckpt::Error naming the file, field and op.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ckpt/graph.h"
#include "ckpt/training_graph.h"

namespace ckpt {

// The three file formats ckpt reads (docs/format.md).
enum class GraphFormat { kNative, kNodeLink, kProfile };
// "native", "node-link" or "profile", as messages name them.
std::string_view to_string(GraphFormat format);

// What a file holds: a forward graph (from which the training graph is derived) or a joint graph.
struct LoadedGraph {
  GraphFormat format = GraphFormat::kNative;
  std::optional<Graph> forward;  // set for forward graphs
  TrainingGraph training;        // always set: derived from `forward`, or read as a joint graph
};

// `source` names the input in error messages (a file path).
LoadedGraph parse_graph(std::string_view text, std::string_view source);
// Reads and parses a file; a file that cannot be read is a kIo error naming the OS reason.
LoadedGraph load_graph(const std::string& path);

// Native format, written deterministically (stable key order, ids as indices).
std::string to_native_json(const Graph& graph);
// A training graph in the joint form; validated first, so the text always reads back.
std::string to_native_json(const TrainingGraph& joint_graph);
// Writes atomically: a temporary file renamed over `path`, so a failure leaves nothing behind.
void write_text_file(const std::string& path, std::string_view text);

}  // namespace ckpt
