// What both graph-reader fuzz harnesses check on one input, beyond "does not crash": the error
// contract (every rejection is a ckpt::Error whose message starts with the source name and is
// short enough to read), the writer round trip (a graph that was read is written, read back and
// written again to identical text) and, for small graphs, that the store-all schedule simulates
// and the optimal planner's plan passes the simulator at two budgets. A broken contract aborts
// with the reason, which libFuzzer and the replay main report as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <string_view>

#include "ckpt/error.h"
#include "ckpt/formats.h"
#include "ckpt/planner.h"
#include "ckpt/schedule.h"
#include "ckpt/simulator.h"

namespace ckpt::fuzz {

// The source name parse_graph gets; every error message must start with it.
inline constexpr std::string_view kSource = "fuzz-input.json";
// An error message longer than this, not counting the quoted names and keys it repeats from the
// input, is not one a user can read (a value dumped whole, say).
inline constexpr std::size_t kMaxMessageBytes = 4096;
// Graphs up to this many nodes are also planned; larger ones only parse and round-trip, so that
// one input takes milliseconds, not seconds (the DP's cost grows quickly with the graph).
inline constexpr int kMaxPlannedNodes = 48;

[[noreturn]] inline void contract_broken(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "ckpt fuzz: contract broken: %.*s\n  %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// The message's length without the "..." spans in it: the names and keys it quotes from the input
// may be as long as the input makes them.
inline std::size_t unquoted_length(std::string_view message) {
  std::size_t length = 0;
  bool quoted = false;
  for (char c : message) {
    if (c == '"') quoted = !quoted;
    if (!quoted) ++length;
  }
  return length;
}

inline void check_error(const Error& error) {
  const std::string_view message = error.what();
  if (!message.starts_with(kSource)) {
    contract_broken("the error message does not start with the source name", message);
  }
  if (unquoted_length(message) > kMaxMessageBytes) {
    contract_broken("the error message is too long to read", message.substr(0, 300));
  }
}

inline std::string write_native(const LoadedGraph& loaded) {
  return loaded.forward ? to_native_json(*loaded.forward) : to_native_json(loaded.training);
}

// Written text reads back to the same text: the native writer is lossless for what was read.
inline void check_round_trip(const LoadedGraph& loaded) {
  std::string first;
  try {
    first = write_native(loaded);
  } catch (const std::exception& e) {
    contract_broken("a graph that was read cannot be written", e.what());
  }
  std::string second;
  try {
    second = write_native(parse_graph(first, "round-trip.json"));
  } catch (const std::exception& e) {
    contract_broken("a written graph cannot be read back", e.what());
  }
  if (first != second) contract_broken("writing a read-back graph gives different text", first);
}

// Plans a small graph with the optimal strategy at the store-all peak and halfway to the minimum;
// every plan must pass the simulator at the peak the planner claims.
inline void check_plans(const TrainingGraph& graph) {
  if (graph.num_nodes() > kMaxPlannedNodes) return;
  const SimulationResult store_all = simulate(graph, store_all_schedule(graph));
  if (!store_all.valid) return;  // plan() rejects such a graph with a ckpt::Error (kValidation)
  PlanOptions options;
  options.budget_bytes = store_all.peak_bytes;
  const Plan at_peak = plan(graph, options);
  options.budget_bytes =
      at_peak.min_feasible_bytes + (store_all.peak_bytes - at_peak.min_feasible_bytes) / 2;
  for (const Plan& p : {at_peak, plan(graph, options)}) {
    if (!p.feasible) contract_broken("a plan at or above the minimum budget is infeasible", p.note);
    const SimulationResult check = simulate(graph, p.schedule);
    if (!check.valid) contract_broken("a plan fails the simulator", check.error);
    if (check.peak_bytes != p.peak_bytes || check.peak_bytes > p.budget_bytes) {
      contract_broken("a plan's peak disagrees with the simulator or exceeds its budget",
                      std::to_string(check.peak_bytes));
    }
  }
}

// The body of LLVMFuzzerTestOneInput for both harnesses.
inline int check_graph_text(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  LoadedGraph loaded;
  try {
    loaded = parse_graph(text, kSource);
  } catch (const Error& error) {
    check_error(error);
    return 0;
  } catch (const std::exception& e) {
    contract_broken("parse_graph threw something other than ckpt::Error", e.what());
  }
  check_round_trip(loaded);
  try {
    check_plans(loaded.training);
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::kValidation) {
      contract_broken("planning a graph that was read threw a non-validation error", error.what());
    }
  } catch (const std::exception& e) {
    contract_broken("planning threw something other than ckpt::Error", e.what());
  }
  return 0;
}

}  // namespace ckpt::fuzz
