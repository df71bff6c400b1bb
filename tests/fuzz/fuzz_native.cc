// libFuzzer harness for the native ckpt-graph/1 reader (forward and joint form; ckpt-profile/1
// documents reach their reader through the same entry point): parse_graph on arbitrary bytes, then
// the checks of fuzz_harness.h. Seeds: tests/fuzz/seeds/native; dictionary: native.dict. Built
// with clang as ckpt_fuzz_native (libFuzzer) and with any compiler as ckpt_fuzz_native_replay
// (replay_main.cc), which runs the same function on saved inputs.
#include <cstddef>
#include <cstdint>

#include "fuzz_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ckpt::fuzz::check_graph_text(data, size);
}
