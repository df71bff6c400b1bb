// The ckpt-run command as a library function (tools/ckpt_run.cc is a thin main): build a model,
// measure its ops on a device, plan at a budget, train store-all and the plan, and report
// predicted against measured peak and step time. Devices come in as factories so the core
// library does not depend on CUDA. docs/executor.md describes the options and exit codes.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "ckpt/executor_backend.h"

namespace ckpt {

// Exit statuses of ckpt-run (docs/executor.md).
enum RunExitCode : int {
  kRunOk = 0,
  kRunInputError = 1,        // bad option value or model size
  kRunInfeasible = 2,        // the budget is below the least the strategy can meet
  kRunInternal = 3,          // a bug: a schedule failed the simulator's check
  kRunNoDevice = 4,          // the device is absent (no GPU, or built without CUDA)
  kRunOutOfMemory = 5,       // the run does not fit in the device's memory
  kRunGradientMismatch = 6,  // the plan's gradients are not bitwise the store-all run's
};

// A device by name ("cpu", "cuda"): make() builds its backend or throws DeviceError.
struct DeviceFactory {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};

// Runs `ckpt-run argv[1..]`; the report goes to `out`, messages to `err`. Never exits the process.
int run_executor_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                     const std::vector<DeviceFactory>& devices);

}  // namespace ckpt
