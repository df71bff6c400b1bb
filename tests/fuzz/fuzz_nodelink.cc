// libFuzzer harness for the networkx node-link reader (Checkmate and Moccasin joint graphs):
// parse_graph on arbitrary bytes, seeded with node-link graphs (tests/fuzz/seeds/nodelink) and a
// node-link dictionary (nodelink.dict) so that mutations stay on that reader's paths: node ids and
// their order, links, cycles, forward and backward parts, repeated names. The checks are
// fuzz_harness.h's. Built as ckpt_fuzz_nodelink (libFuzzer) and ckpt_fuzz_nodelink_replay.
#include <cstddef>
#include <cstdint>

#include "fuzz_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ckpt::fuzz::check_graph_text(data, size);
}
