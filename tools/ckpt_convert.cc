// ckpt-convert: reads any graph file ckpt understands (native, ckpt-profile/1, node-link) and
// writes it in the native format. A forward graph stays a forward graph unless --joint asks for
// the joint training graph derived from it; a joint graph is written as one.
#include <cstdio>
#include <string>
#include <string_view>

#include "ckpt/error.h"
#include "ckpt/formats.h"

namespace {

constexpr std::string_view kUsage =
    "usage: ckpt-convert [--joint] IN OUT\n"
    "  Reads IN (ckpt-graph/1, ckpt-profile/1 or node-link JSON) and writes OUT as ckpt-graph/1.\n"
    "  --joint  write the joint training graph (forward + backward nodes) instead of the\n"
    "           forward graph\n";

}  // namespace

int main(int argc, char** argv) {
  const bool joint = argc == 4 && std::string_view(argv[1]) == "--joint";
  if (argc != 3 && !joint) {
    std::fputs(kUsage.data(), stderr);
    return 2;
  }
  try {
    const ckpt::LoadedGraph loaded = ckpt::load_graph(argv[argc - 2]);
    const bool forward = loaded.forward.has_value() && !joint;
    ckpt::write_text_file(argv[argc - 1], forward ? ckpt::to_native_json(*loaded.forward)
                                                  : ckpt::to_native_json(loaded.training));
  } catch (const ckpt::Error& error) {
    std::fprintf(stderr, "ckpt-convert: %s\n", error.what());
    return 1;
  }
  return 0;
}
