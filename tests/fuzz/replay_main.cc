// Replay main for the fuzz harnesses: runs LLVMFuzzerTestOneInput on every file named on the
// command line (a directory: every regular file in it, in name order), so that an input libFuzzer
// found reproduces with any compiler, without libFuzzer, under a debugger or a sanitizer build. A
// broken contract aborts inside the harness, naming the input last printed with --verbose.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_of(const fs::path& argument) {
  if (!fs::is_directory(argument)) return {argument};
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(argument)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool replay(const fs::path& path, bool verbose) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "replay: %s: cannot open the file\n", path.c_str());
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (verbose) std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bool verbose = false;
  std::vector<fs::path> arguments;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--verbose" || arg == "-v") {
      verbose = true;
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: %s [--verbose] FILE|DIRECTORY...\nRuns the fuzz harness on each file "
          "(each regular file of a directory); aborts on a broken contract.\n",
          argv[0]);
      return 0;
    } else {
      arguments.emplace_back(arg);
    }
  }
  if (arguments.empty()) {
    std::fprintf(stderr, "usage: %s [--verbose] FILE|DIRECTORY...\n", argv[0]);
    return 1;
  }
  std::size_t replayed = 0;
  bool all_opened = true;
  for (const fs::path& argument : arguments) {
    if (!fs::exists(argument)) {
      std::fprintf(stderr, "replay: %s: no such file or directory\n", argument.c_str());
      all_opened = false;
      continue;
    }
    for (const fs::path& path : inputs_of(argument)) {
      if (replay(path, verbose)) {
        ++replayed;
      } else {
        all_opened = false;
      }
    }
  }
  std::printf("replay: %zu inputs, no contract broken\n", replayed);
  return all_opened ? 0 : 1;
}
