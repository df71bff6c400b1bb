// The bad-input corpus (tests/corpus): every file gets a clear error from the library — a
// ckpt::Error of the kind tests/corpus/expected.tsv gives, whose message starts with the file's
// path, contains the expected text (the entry, field and what is wrong), is one line, and does
// not dump input at length. Every corpus file must be listed. The fuzz harnesses (tests/fuzz)
// replay the same corpus for crashes and sanitizer reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ckpt/error.h"
#include "ckpt/formats.h"

namespace ckpt {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(CKPT_SOURCE_DIR) / "tests" / "corpus";
// A message longer than this outside the "..." names it quotes does not read as one message.
constexpr std::size_t kMaxUnquotedBytes = 1024;

struct Expectation {
  std::string file;  // relative to tests/corpus
  ErrorKind kind = ErrorKind::kParse;
  std::string text;
};

ErrorKind kind_from_name(const std::string& name) {
  if (name == "io") return ErrorKind::kIo;
  if (name == "validation") return ErrorKind::kValidation;
  if (name == "usage") return ErrorKind::kUsage;
  return ErrorKind::kParse;
}

const char* kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kParse:
      return "parse";
    case ErrorKind::kValidation:
      return "validation";
    case ErrorKind::kUsage:
      return "usage";
  }
  return "?";
}

std::vector<Expectation> read_expectations() {
  std::vector<Expectation> expectations;
  std::ifstream manifest(kCorpus / "expected.tsv");
  for (std::string line; std::getline(manifest, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t tab1 = line.find('\t'), tab2 = line.find('\t', tab1 + 1);
    if (tab1 == std::string::npos || tab2 == std::string::npos) {
      ADD_FAILURE() << "tests/corpus/expected.tsv: a line without two tabs: " << line;
      continue;
    }
    expectations.push_back({line.substr(0, tab1),
                            kind_from_name(line.substr(tab1 + 1, tab2 - tab1 - 1)),
                            line.substr(tab2 + 1)});
  }
  return expectations;
}

std::size_t unquoted_length(const std::string& message) {
  std::size_t length = 0;
  bool quoted = false;
  for (char c : message) {
    if (c == '"') quoted = !quoted;
    if (!quoted) ++length;
  }
  return length;
}

// Loads the file and checks its error against the expectation.
void expect_clear_error(const Expectation& e) {
  SCOPED_TRACE(e.file);
  const std::string path = (kCorpus / e.file).string();
  try {
    load_graph(path);
    ADD_FAILURE() << "read without an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(kind_name(error.kind()), std::string(kind_name(e.kind))) << message;
    EXPECT_EQ(message.rfind(path, 0), 0u) << "does not start with the path: " << message;
    EXPECT_NE(message.find(e.text), std::string::npos)
        << "expected \"" << e.text << "\" in: " << message.substr(0, 500);
    EXPECT_EQ(message.find('\n'), std::string::npos) << message.substr(0, 500);
    EXPECT_LE(unquoted_length(message), kMaxUnquotedBytes) << message.substr(0, 500) << "...";
  } catch (const std::exception& other) {
    ADD_FAILURE() << "threw something other than ckpt::Error: " << other.what();
  }
}

TEST(CorpusTest, EveryFileIsListedWithItsExpectedError) {
  std::set<std::string> listed;
  for (const Expectation& e : read_expectations()) listed.insert(e.file);
  ASSERT_FALSE(listed.empty()) << "tests/corpus/expected.tsv is missing or empty";
  std::set<std::string> present;
  for (const auto& entry : fs::recursive_directory_iterator(kCorpus)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    present.insert(fs::relative(entry.path(), kCorpus).generic_string());
  }
  for (const std::string& file : present) {
    EXPECT_TRUE(listed.count(file)) << file << " has no line in tests/corpus/expected.tsv";
  }
  for (const std::string& file : listed) {
    EXPECT_TRUE(present.count(file)) << file << " is listed but absent";
  }
  EXPECT_GE(present.size(), 80u) << "the corpus shrank";
}

TEST(CorpusTest, EveryBadInputGetsAClearError) {
  for (const Expectation& e : read_expectations()) expect_clear_error(e);
}

}  // namespace
}  // namespace ckpt
