// ckpt-run run in-process on the CPU backend with tiny models: the JSON report's fields, the table,
// and every exit code (bad option, infeasible budget, missing device, out of memory).
#include "ckpt/executor_cli.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ckpt/cpu_backend.h"

namespace ckpt {
namespace {

struct CliRun {
  int code = 0;
  std::string out;
  std::string err;
};

CliRun run_cli(std::vector<std::string> args, std::vector<DeviceFactory> devices = {}) {
  if (devices.empty()) devices = {{"cpu", [] { return make_cpu_backend(); }}};
  args.insert(args.begin(), "ckpt-run");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  std::ostringstream err;
  CliRun run;
  run.code = run_executor_cli(static_cast<int>(argv.size()), argv.data(), out, err, devices);
  run.out = out.str();
  run.err = err.str();
  return run;
}

// Two blocks of width 16 over 8 tokens: a step takes a millisecond.
const std::vector<std::string> kTinyGpt2 = {
    "--model", "gpt2", "--layers", "2",  "--d-model", "16", "--heads",       "2", "--seq", "8",
    "--batch", "2",    "--vocab",  "31", "--steps",   "2",  "--repetitions", "1"};

// The tiny GPT-2 plus `extra`; on the CPU unless `extra` names a device.
std::vector<std::string> tiny_gpt2(std::vector<std::string> extra) {
  std::vector<std::string> args = kTinyGpt2;
  if (std::find(extra.begin(), extra.end(), "--device") == extra.end()) {
    args.insert(args.end(), {"--device", "cpu"});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(ExecutorCliTest, JsonReportHasPredictedAndMeasuredPeaksAndGradientCheck) {
  const CliRun run = run_cli(tiny_gpt2({"--budget", "75%", "--format", "json"}));
  ASSERT_EQ(run.code, kRunOk) << run.err;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  for (const char* key :
       {"device", "model", "budget_bytes", "predicted_peak_bytes", "measured_peak_bytes",
        "arena_bytes", "step_ms", "store_all_step_ms", "overhead", "grads_match_store_all"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["model"], "gpt2");
  EXPECT_TRUE(j["grads_match_store_all"].get<bool>());
  EXPECT_LE(j["predicted_peak_bytes"].get<std::int64_t>(), j["budget_bytes"].get<std::int64_t>());
  EXPECT_LT(j["predicted_peak_bytes"].get<std::int64_t>(),
            j["store_all_peak_bytes"].get<std::int64_t>());
  // On the CPU the counting allocator measures the arena itself.
  EXPECT_EQ(j["measured_peak_bytes"], j["arena_bytes"]);
  EXPECT_GE(j["arena_bytes"].get<std::int64_t>(), j["predicted_peak_bytes"].get<std::int64_t>());
  EXPECT_GT(j["step_ms"].get<double>(), 0);
  EXPECT_EQ(j["plan"]["losses"].size(), 2u);
}

TEST(ExecutorCliTest, MlpTableSaysTheGradientsMatch) {
  const CliRun run =
      run_cli({"--device", "cpu",      "--model",          "mlp", "--batch",    "8",
               "--hidden", "16,16,16", "--input-features", "8",   "--classes",  "4",
               "--steps",  "1",        "--repetitions",    "1",   "--strategy", "chen-sqrt",
               "--budget", "90%"});
  ASSERT_EQ(run.code, kRunOk) << run.err;
  EXPECT_NE(run.out.find("gradients bitwise equal to store-all: yes"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("predicted peak"), std::string::npos) << run.out;
}

TEST(ExecutorCliTest, ExitCodes) {
  EXPECT_EQ(run_cli(tiny_gpt2({"--budget", "1"})).code, kRunInfeasible);
  EXPECT_EQ(run_cli(tiny_gpt2({"--model", "resnet"})).code, kRunInputError);
  EXPECT_EQ(run_cli(tiny_gpt2({"--strategy", "magic"})).code, kRunInputError);
  EXPECT_EQ(run_cli(tiny_gpt2({"--budget", "lots"})).code, kRunInputError);
  EXPECT_EQ(run_cli(tiny_gpt2({"--heads", "3"})).code, kRunInputError);  // 16 % 3 != 0

  const CliRun no_cuda = run_cli(tiny_gpt2({"--device", "cuda"}));
  EXPECT_EQ(no_cuda.code, kRunNoDevice);
  EXPECT_NE(no_cuda.err.find("without CUDA"), std::string::npos) << no_cuda.err;

  auto failing = [](DeviceError::Reason reason) {
    return std::vector<DeviceFactory>{{"cuda", [reason]() -> std::unique_ptr<Backend> {
                                         throw DeviceError(reason, "test device failure");
                                       }}};
  };
  const CliRun absent =
      run_cli(tiny_gpt2({"--device", "cuda"}), failing(DeviceError::Reason::kNoDevice));
  EXPECT_EQ(absent.code, kRunNoDevice);
  EXPECT_NE(absent.err.find("test device failure"), std::string::npos);
  EXPECT_EQ(
      run_cli(tiny_gpt2({"--device", "cuda"}), failing(DeviceError::Reason::kOutOfMemory)).code,
      kRunOutOfMemory);
}

}  // namespace
}  // namespace ckpt
