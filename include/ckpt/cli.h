// The ckpt-plan command as a library function, so that tools/ckpt_plan.cc is a thin main and
// tests can run the whole command in-process with captured streams. docs/cli.md describes every
// option, the output formats and the exit codes.
#pragma once

#include <ostream>

namespace ckpt {

// Exit statuses of ckpt-plan (docs/cli.md).
enum PlanExitCode : int {
  kExitOk = 0,          // planned (or --help)
  kExitInputError = 1,  // bad option, unreadable or invalid graph file, a file not writable
  kExitInfeasible = 2,  // the budget is below the least the strategy can meet
  kExitInternal = 3,    // a bug: the planner's schedule failed the simulator's check
};

// Runs `ckpt-plan argv[1..]`: reports go to `out`, messages and --verbose progress to `err`.
// Never exits the process; returns a PlanExitCode.
int run_plan_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace ckpt
