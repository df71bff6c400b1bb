// Every failure mode of the real binaries and of the library gives a clear message and its
// documented exit code or error kind (docs/errors.md): a graph file that cannot be read; invalid
// JSON; a wrong format version; a budget with bad syntax or below the minimum; an output file that
// cannot be written; every bad input of tests/corpus; for ckpt-run also no GPU (--device cuda on a
// machine or build without one) and running out of memory (host memory, under an address-space
// limit; CUDA out of memory is tests/cuda's OutOfMemoryIsAClearError, which needs a GPU). The
// binaries are ckpt-plan (CKPT_PLAN_EXE) and the ckpt-run built beside it.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ckpt/budget.h"
#include "ckpt/cli.h"
#include "ckpt/error.h"
#include "ckpt/executor_cli.h"
#include "ckpt/formats.h"
#include "ckpt/graph.h"
#include "ckpt/planner.h"
#include "ckpt/training_graph.h"
#include "process_util.h"

namespace ckpt {
namespace {

namespace fs = std::filesystem;
using testing::ProcessRun;
using testing::run_process;

const fs::path kSource = CKPT_SOURCE_DIR;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

std::string plan_exe() { return CKPT_PLAN_EXE; }
std::string run_exe() {
  if (plan_exe().empty()) return "";
  const fs::path exe = fs::path(plan_exe()).parent_path() / "ckpt-run";
  return fs::exists(exe) ? exe.string() : "";
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// The tiny forward graph of docs/format.md. Store-all peak 16,388 bytes (see the budget tests).
constexpr const char* kTinyGraph = R"({
  "format": "ckpt-graph/1", "form": "forward", "name": "tiny", "loss": "y",
  "values": [
    {"name": "x", "bytes": 4096, "kind": "input"},
    {"name": "w", "bytes": 4096, "kind": "param"},
    {"name": "h", "bytes": 4096, "kind": "activation"},
    {"name": "h.1", "bytes": 4096, "kind": "activation", "alias_of": "h"},
    {"name": "y", "bytes": 4, "kind": "activation"}
  ],
  "ops": [
    {"name": "fc", "kind": "matmul", "inputs": ["x", "w"], "outputs": ["h"], "fwd_time_us": 12.5, "bwd_time_us": 25.0, "saved": ["x", "w"]},
    {"name": "relu_", "kind": "relu_", "inputs": ["h"], "outputs": ["h.1"], "fwd_time_us": 1.0, "bwd_time_us": 1.5, "saved": ["h.1"], "in_place": true},
    {"name": "sum", "kind": "sum", "inputs": ["h.1"], "outputs": ["y"], "fwd_time_us": 1.0, "bwd_time_us": 1.0}
  ]
})";

class FailureModesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           fmt::format("ckpt_failure_modes_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    tiny_ = write("tiny.json", kTinyGraph);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) const {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs ckpt-plan; skips the test when the tools are not built.
  ProcessRun plan(const std::vector<std::string>& args) const {
    return run_process(plan_exe(), args);
  }
  // Expects exit 1 with "ckpt-plan: error: " + `starts` and every `needles` on stderr, nothing on
  // stdout.
  void expect_input_error(const ProcessRun& r, const std::string& starts,
                          const std::vector<std::string>& needles) const {
    EXPECT_EQ(r.exit_code, kExitInputError) << r.err;
    EXPECT_EQ(r.err.rfind("ckpt-plan: error: " + starts, 0), 0u) << r.err;
    for (const std::string& needle : needles) EXPECT_TRUE(contains(r.err, needle)) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }

  fs::path dir_;
  std::string tiny_;
};

#define REQUIRE_PLAN_EXE() \
  if (plan_exe().empty()) GTEST_SKIP() << "ckpt-plan is not built (CKPT_BUILD_TOOLS off)"
#define REQUIRE_RUN_EXE() \
  if (run_exe().empty()) GTEST_SKIP() << "ckpt-run is not built beside ckpt-plan"

// ---- ckpt-plan --------------------------------------------------------------------------------

TEST_F(FailureModesTest, PlanFileThatDoesNotExist) {
  REQUIRE_PLAN_EXE();
  const std::string missing = path("no_such_graph.json");
  expect_input_error(
      plan({missing}), missing,
      {"cannot open the file for reading: No such file or directory", "check the path"});
}

TEST_F(FailureModesTest, PlanFileThatIsADirectory) {
  REQUIRE_PLAN_EXE();
  const std::string directory = dir_.string();
  expect_input_error(plan({directory}), directory, {"Is a directory"});
}

TEST_F(FailureModesTest, PlanFileWithoutReadPermission) {
  REQUIRE_PLAN_EXE();
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file; run as a user to test this";
  const std::string locked = write("locked.json", kTinyGraph);
  fs::permissions(locked, fs::perms::none);
  expect_input_error(plan({locked}), locked, {"Permission denied"});
}

TEST_F(FailureModesTest, PlanInvalidJsonGivesLineAndColumn) {
  REQUIRE_PLAN_EXE();
  const std::string broken = write("broken.json", "{\"format\": \"ckpt-graph/1\",\n  \"name\": }");
  expect_input_error(plan({broken}), broken + ":2:11: invalid JSON: ", {});
}

TEST_F(FailureModesTest, PlanEmptyFile) {
  REQUIRE_PLAN_EXE();
  const std::string empty = write("empty.json", "");
  expect_input_error(plan({empty}), empty + ":1:1: invalid JSON: ", {"unexpected end of input"});
}

TEST_F(FailureModesTest, PlanWrongFormatVersionNamesTheReadableOne) {
  REQUIRE_PLAN_EXE();
  std::string text = kTinyGraph;
  text.replace(text.find("ckpt-graph/1"), 12, "ckpt-graph/2");
  const std::string future = write("future.json", text);
  expect_input_error(plan({future}), future,
                     {"unsupported version \"ckpt-graph/2\"", "reads \"ckpt-graph/1\""});
}

TEST_F(FailureModesTest, PlanBudgetWithBadSyntax) {
  REQUIRE_PLAN_EXE();
  for (const char* budget : {"lots", "12 parsecs", "1.5.5GB", "-1GiB", "0", "40%%", "", "1e9"}) {
    SCOPED_TRACE(budget);
    const ProcessRun r = plan({tiny_, "--budget", budget});
    EXPECT_EQ(r.exit_code, kExitInputError) << r.err;
    EXPECT_TRUE(contains(r.err, "--budget")) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

TEST_F(FailureModesTest, PlanBudgetBelowTheMinimumPrintsTheMinimum) {
  REQUIRE_PLAN_EXE();
  const ProcessRun table = plan({tiny_, "--budget", "1"});
  EXPECT_EQ(table.exit_code, kExitInfeasible) << table.err;
  EXPECT_TRUE(table.out.empty()) << table.out;
  EXPECT_TRUE(contains(table.err, "is below what the optimal strategy needs")) << table.err;
  EXPECT_TRUE(contains(table.err, "minimum feasible budget: ")) << table.err;

  const ProcessRun json = plan({tiny_, "--budget", "1", "--format", "json"});
  EXPECT_EQ(json.exit_code, kExitInfeasible) << json.err;
  const nlohmann::json report = nlohmann::json::parse(json.out);
  EXPECT_EQ(report["feasible"], false);
  const auto minimum = report["min_feasible_bytes"].get<std::int64_t>();
  EXPECT_GT(minimum, 1);
  EXPECT_TRUE(contains(table.err, fmt::format("minimum feasible budget: {} bytes", minimum)));
  // And the minimum itself is feasible.
  EXPECT_EQ(plan({tiny_, "--budget", std::to_string(minimum)}).exit_code, kExitOk);
}

TEST_F(FailureModesTest, PlanOutputFileThatCannotBeWritten) {
  REQUIRE_PLAN_EXE();
  const std::string target = path("no_such_dir/schedule.json");
  const ProcessRun r = plan({tiny_, "--schedule", target});
  expect_input_error(r, target, {"cannot create the temporary file", "No such file or directory"});
  EXPECT_FALSE(fs::exists(path("no_such_dir")));
}

TEST_F(FailureModesTest, PlanUsageErrors) {
  REQUIRE_PLAN_EXE();
  EXPECT_EQ(plan({}).exit_code, kExitInputError);
  EXPECT_EQ(plan({tiny_, "--strategy", "fastest"}).exit_code, kExitInputError);
  EXPECT_EQ(plan({tiny_, "--format", "yaml"}).exit_code, kExitInputError);
  EXPECT_EQ(plan({tiny_, "--frobnicate"}).exit_code, kExitInputError);
  EXPECT_EQ(plan({tiny_, "--sweep", "1"}).exit_code, kExitInputError);
}

// Every bad input of tests/corpus through the real binary: exit 1, the path first, one line.
TEST_F(FailureModesTest, PlanEveryCorpusFile) {
  REQUIRE_PLAN_EXE();
  int files = 0;
  for (const char* harness : {"native", "nodelink"}) {
    for (const auto& entry : fs::directory_iterator(kSource / "tests" / "corpus" / harness)) {
      SCOPED_TRACE(entry.path().string());
      const ProcessRun r = plan({entry.path().string()});
      EXPECT_EQ(r.exit_code, kExitInputError) << "signal " << r.signal << ": " << r.err;
      EXPECT_EQ(r.err.rfind("ckpt-plan: error: " + entry.path().string(), 0), 0u) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err.substr(0, 400);
      EXPECT_TRUE(r.out.empty());
      ++files;
    }
  }
  EXPECT_GE(files, 80);
}

// ---- ckpt-run ---------------------------------------------------------------------------------

// A CPU model small enough to run in well under a second.
std::vector<std::string> small_mlp(std::vector<std::string> more) {
  std::vector<std::string> args = {"--model",          "mlp", "--hidden",  "16,16", "--batch", "4",
                                   "--input-features", "8",   "--classes", "3",     "--steps", "1",
                                   "--repetitions",    "1"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST_F(FailureModesTest, RunWithoutAGpuExits4) {
  REQUIRE_RUN_EXE();
  // This machine and CI have no GPU: either the build has no CUDA device or cudaGetDeviceCount
  // finds none; both are exit 4 with a message that says what to do.
  const ProcessRun r = run_process(run_exe(), small_mlp({"--device", "cuda"}));
  if (r.exit_code == kRunOk) GTEST_SKIP() << "a GPU is present: " << r.out.substr(0, 200);
  EXPECT_EQ(r.exit_code, kRunNoDevice) << r.err;
  EXPECT_EQ(r.err.rfind("ckpt-run: ", 0), 0u) << r.err;
  EXPECT_TRUE(contains(r.err, "cuda") || contains(r.err, "CUDA")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(FailureModesTest, RunBadBudgetAndBelowTheMinimum) {
  REQUIRE_RUN_EXE();
  const ProcessRun bad = run_process(run_exe(), small_mlp({"--device", "cpu", "--budget", "lots"}));
  EXPECT_EQ(bad.exit_code, kRunInputError) << bad.err;
  EXPECT_TRUE(contains(bad.err, "--budget")) << bad.err;
  const ProcessRun low = run_process(run_exe(), small_mlp({"--device", "cpu", "--budget", "1"}));
  EXPECT_EQ(low.exit_code, kRunInfeasible) << low.err;
  EXPECT_TRUE(contains(low.err, "is below the least")) << low.err;
}

TEST_F(FailureModesTest, RunUsageErrors) {
  REQUIRE_RUN_EXE();
  EXPECT_EQ(run_process(run_exe(), {"--device", "tpu"}).exit_code, kRunInputError);
  EXPECT_EQ(run_process(run_exe(), {"--device", "cpu", "--model", "resnet"}).exit_code,
            kRunInputError);
  EXPECT_EQ(run_process(run_exe(), {"--frobnicate"}).exit_code, kRunInputError);
  EXPECT_EQ(run_process(run_exe(), {"--device", "cpu", "--model", "mlp", "--steps", "0"}).exit_code,
            kRunInputError);
  EXPECT_EQ(
      run_process(run_exe(), {"--device", "cpu", "--model", "mlp", "--batch", "-5"}).exit_code,
      kRunInputError);
}

// Host memory runs out under an address-space limit: the CPU backend's allocation fails and the
// run ends with exit 5 and a message, the path a CUDA out-of-memory takes too.
TEST_F(FailureModesTest, RunOutOfHostMemoryExits5) {
  REQUIRE_RUN_EXE();
  if (kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer reserves more address space than this";
  testing::ProcessOptions limited;
  limited.address_space_limit_bytes = std::int64_t{1} << 30;  // 1 GiB
  // About 1.5 GiB of activations: batch 65536 x 3 layers of 2048 floats.
  const ProcessRun r =
      run_process(run_exe(),
                  {"--device", "cpu", "--model", "mlp", "--hidden", "2048,2048,2048", "--batch",
                   "65536", "--input-features", "64", "--classes", "4", "--steps", "1",
                   "--repetitions", "1", "--budget", "100%"},
                  limited);
  EXPECT_EQ(r.exit_code, kRunOutOfMemory) << "signal " << r.signal << ": " << r.err;
  EXPECT_TRUE(contains(r.err, "out of memory")) << r.err;
}

// ---- the library: each ckpt::Error kind ------------------------------------------------------

ErrorKind kind_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no ckpt::Error thrown";
  return ErrorKind::kUsage;
}

TEST_F(FailureModesTest, LibraryErrorKinds) {
  EXPECT_EQ(kind_of([&] { load_graph(path("missing.json")); }), ErrorKind::kIo);
  EXPECT_EQ(kind_of([&] { write_text_file(path("no/such/dir.json"), "x"); }), ErrorKind::kIo);
  EXPECT_EQ(kind_of([] { parse_graph("{", "a.json"); }), ErrorKind::kParse);
  EXPECT_EQ(kind_of([] { parse_graph(R"({"format": "ckpt-graph/9"})", "a.json"); }),
            ErrorKind::kParse);
  EXPECT_EQ(kind_of([] { GraphBuilder("empty").build(); }), ErrorKind::kValidation);
  EXPECT_EQ(kind_of([] { parse_budget("lots"); }), ErrorKind::kUsage);
  EXPECT_EQ(kind_of([] { parse_budget("0"); }), ErrorKind::kUsage);
  EXPECT_EQ(kind_of([] { resolve_budget(parse_budget("1%"), 10); }), ErrorKind::kUsage);
  const TrainingGraph graph = parse_graph(kTinyGraph, "tiny.json").training;
  EXPECT_EQ(kind_of([&] { ckpt::plan(graph, {.budget_bytes = -1}); }), ErrorKind::kUsage);
}

TEST_F(FailureModesTest, LibraryBudgetBelowTheMinimumIsAResultNotAnError) {
  const TrainingGraph graph = parse_graph(kTinyGraph, "tiny.json").training;
  const Plan plan = ckpt::plan(graph, {.budget_bytes = 1});
  EXPECT_FALSE(plan.feasible);
  EXPECT_GT(plan.min_feasible_bytes, 1);
  EXPECT_FALSE(plan.schedule.steps.empty()) << "the least-memory schedule comes with it";
}

}  // namespace
}  // namespace ckpt
