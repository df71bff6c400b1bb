// ckpt-plan: plans gradient checkpointing for a graph file. All the logic is in the library
// (ckpt/cli.h, lib/plan_cli.cc) so that tests can run it in-process; see docs/cli.md.
#include <iostream>

#include "ckpt/cli.h"

int main(int argc, char** argv) { return ckpt::run_plan_cli(argc, argv, std::cout, std::cerr); }
