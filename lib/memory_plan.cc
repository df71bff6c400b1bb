// Static memory planning, read top to bottom: validate the schedule with the simulator, replay it
// to collect storage lifetimes (cross-checked against MemoryTracker at every compute step), place
// the lifetimes in one arena with lifetime-aware best fit under a few orders, keep the smallest.
#include "ckpt/memory_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <tuple>

#include "ckpt/error.h"
#include "ckpt/simulator.h"
#include "memory_tracker.h"

namespace ckpt {

namespace {

// A broken internal invariant: the planner and the memory model disagree. Not a user error.
void check_invariant(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "ckpt: memory plan invariant broken: %s\n", what.c_str());
  std::abort();
}

std::int64_t round_up(std::int64_t bytes, std::int64_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

// Replays the schedule with the memory model's storage rules and records when each storage root
// is held (a lifetime opens when its first live value appears and closes when its last one goes).
class LifetimeCollector {
 public:
  LifetimeCollector(const TrainingGraph& graph, std::int64_t alignment)
      : graph_(graph),
        alignment_(alignment),
        tracker_(graph),
        live_(static_cast<std::size_t>(graph.num_values()), 0),
        holders_(static_cast<std::size_t>(graph.num_values()), 0),
        open_(static_cast<std::size_t>(graph.num_values()), -1) {}

  std::vector<Lifetime> run(const Schedule& schedule) {
    for (std::size_t i = 0; i < schedule.steps.size(); ++i) {
      const Step& step = schedule.steps[i];
      if (step.is_compute()) {
        compute(i, step.node);
      } else {
        release(step.value, i);
        tracker_.free(step.value);
      }
    }
    for (Lifetime& lifetime : lifetimes_) {
      if (lifetime.end_step == kOpen) lifetime.end_step = schedule.steps.size();
    }
    return std::move(lifetimes_);
  }

 private:
  static constexpr std::size_t kOpen = std::numeric_limits<std::size_t>::max();

  void compute(std::size_t step, NodeId node_id) {
    const Node& node = graph_.node(node_id);
    for (ValueId out : node.outputs) {
      if (!graph_.is_resident(out)) hold(out, step);
    }
    std::int64_t step_bytes = live_bytes_;
    if (node.workspace_bytes > 0) {
      add(Lifetime::Kind::kWorkspace, kNoId, step, node.workspace_bytes);
      lifetimes_.back().end_step = step + 1;
      step_bytes += node.workspace_bytes;
    }
    const std::int64_t model_bytes = tracker_.compute(node_id);
    check_invariant(model_bytes == step_bytes,
                    fmt::format("step {} (\"{}\"): lifetimes hold {} bytes, the memory model {}",
                                step, node.name, step_bytes, model_bytes));
    for (ValueId killed : node.kills) {
      if (!graph_.is_resident(killed) && live_[static_cast<std::size_t>(killed)] != 0) {
        release(killed, step + 1);
      }
    }
  }

  void hold(ValueId value, std::size_t step) {
    const auto root = static_cast<std::size_t>(graph_.storage_root(value));
    live_[static_cast<std::size_t>(value)] = 1;
    if (holders_[root]++ > 0) return;
    open_[root] = static_cast<std::int32_t>(lifetimes_.size());
    add(Lifetime::Kind::kStorage, static_cast<ValueId>(root), step, graph_.storage_bytes(value));
    live_bytes_ += graph_.storage_bytes(value);
  }

  void release(ValueId value, std::size_t end_step) {
    const auto root = static_cast<std::size_t>(graph_.storage_root(value));
    live_[static_cast<std::size_t>(value)] = 0;
    if (--holders_[root] > 0) return;
    Lifetime& lifetime = lifetimes_[static_cast<std::size_t>(open_[root])];
    lifetime.end_step = end_step;
    live_bytes_ -= lifetime.bytes;
    open_[root] = -1;
  }

  void add(Lifetime::Kind kind, ValueId root, std::size_t step, std::int64_t bytes) {
    Lifetime lifetime;
    lifetime.kind = kind;
    lifetime.root = root;
    lifetime.start_step = step;
    lifetime.end_step = kOpen;
    lifetime.bytes = bytes;
    lifetime.aligned_bytes = round_up(bytes, alignment_);
    lifetimes_.push_back(lifetime);
  }

  const TrainingGraph& graph_;
  std::int64_t alignment_;
  MemoryTracker tracker_;  // the memory model itself, replayed alongside as the cross-check
  std::vector<char> live_;
  std::vector<int> holders_;
  std::vector<std::int32_t> open_;  // per storage root: its open lifetime, or -1
  std::vector<Lifetime> lifetimes_;
  std::int64_t live_bytes_ = 0;
};

// Places lifetimes one by one in `order`: each goes into the smallest gap, among the lifetimes
// already placed that overlap it in time, that holds it; with no such gap, on top of them.
// Returns the arena size; offsets are written into `lifetimes`.
std::int64_t place_best_fit(std::vector<Lifetime>& lifetimes,
                            const std::vector<std::size_t>& order) {
  std::vector<std::size_t> placed;
  placed.reserve(order.size());
  std::vector<std::pair<std::int64_t, std::int64_t>> busy;  // [offset, end) of overlapping ones
  std::int64_t arena = 0;
  for (std::size_t index : order) {
    Lifetime& lifetime = lifetimes[index];
    const std::int64_t size = lifetime.aligned_bytes;
    busy.clear();
    for (std::size_t other : placed) {
      const Lifetime& o = lifetimes[other];
      if (o.aligned_bytes > 0 && o.overlaps_in_time(lifetime)) {
        busy.emplace_back(o.offset_bytes, o.offset_bytes + o.aligned_bytes);
      }
    }
    std::sort(busy.begin(), busy.end());
    std::int64_t best_offset = -1;
    std::int64_t best_gap = std::numeric_limits<std::int64_t>::max();
    std::int64_t cursor = 0;
    for (const auto& [begin, end] : busy) {
      const std::int64_t gap = begin - cursor;
      if (gap >= size && gap < best_gap) {
        best_gap = gap;
        best_offset = cursor;
      }
      cursor = std::max(cursor, end);
    }
    lifetime.offset_bytes = best_offset >= 0 ? best_offset : cursor;
    arena = std::max(arena, lifetime.offset_bytes + size);
    if (size > 0) placed.push_back(index);
  }
  return arena;
}

struct PlacementOrder {
  const char* name;
  // A strict weak order on lifetimes; ties fall back to the index, so placement is deterministic.
  bool (*before)(const Lifetime&, const Lifetime&);
};

// Bigger first (TVM's and XLA's default), earlier first (the order a runtime allocator sees), and
// bigger area (bytes x steps) first: on transformer schedules each wins on some graphs.
constexpr PlacementOrder kOrders[] = {
    {"size",
     [](const Lifetime& a, const Lifetime& b) {
       return std::tie(b.aligned_bytes, a.start_step) < std::tie(a.aligned_bytes, b.start_step);
     }},
    {"start",
     [](const Lifetime& a, const Lifetime& b) {
       return std::tie(a.start_step, b.aligned_bytes) < std::tie(b.start_step, a.aligned_bytes);
     }},
    {"size, longest first",
     [](const Lifetime& a, const Lifetime& b) {
       return std::tuple(b.aligned_bytes, b.end_step - b.start_step, a.start_step) <
              std::tuple(a.aligned_bytes, a.end_step - a.start_step, b.start_step);
     }},
    {"duration",
     [](const Lifetime& a, const Lifetime& b) {
       return std::tuple(b.end_step - b.start_step, b.aligned_bytes, a.start_step) <
              std::tuple(a.end_step - a.start_step, a.aligned_bytes, b.start_step);
     }},
    {"area",
     [](const Lifetime& a, const Lifetime& b) {
       const double area_a =
           static_cast<double>(a.aligned_bytes) * static_cast<double>(a.end_step - a.start_step);
       const double area_b =
           static_cast<double>(b.aligned_bytes) * static_cast<double>(b.end_step - b.start_step);
       return std::tie(area_b, a.start_step) < std::tie(area_a, b.start_step);
     }},
};

// The largest sum, over the steps, of `bytes_of` the lifetimes live there.
template <typename BytesOf>
std::int64_t max_live(const std::vector<Lifetime>& lifetimes, std::size_t num_steps,
                      BytesOf bytes_of) {
  std::vector<std::int64_t> delta(num_steps + 1, 0);
  for (const Lifetime& lifetime : lifetimes) {
    delta[lifetime.start_step] += bytes_of(lifetime);
    delta[lifetime.end_step] -= bytes_of(lifetime);
  }
  std::int64_t live = 0;
  std::int64_t peak = 0;
  for (std::int64_t d : delta) {
    live += d;
    peak = std::max(peak, live);
  }
  return peak;
}

}  // namespace

MemoryPlan plan_memory(const TrainingGraph& graph, const Schedule& schedule,
                       const MemoryPlanOptions& options) {
  const std::int64_t alignment = options.alignment_bytes;
  if (alignment < 1 || (alignment & (alignment - 1)) != 0) {
    throw Error(ErrorKind::kUsage,
                fmt::format("memory plan: alignment_bytes {} is not a power of two", alignment));
  }
  const SimulationResult simulation = simulate(graph, schedule);
  if (!simulation.valid) {
    throw Error(ErrorKind::kValidation, fmt::format("memory plan for \"{}\": invalid schedule: {}",
                                                    graph.name(), simulation.error));
  }

  MemoryPlan plan;
  plan.alignment_bytes = alignment;
  plan.peak_bytes = simulation.peak_bytes;
  std::vector<Lifetime> lifetimes = LifetimeCollector(graph, alignment).run(schedule);
  std::stable_sort(lifetimes.begin(), lifetimes.end(), [](const Lifetime& a, const Lifetime& b) {
    return std::tie(a.start_step, a.kind, a.root) < std::tie(b.start_step, b.kind, b.root);
  });
  const std::size_t num_steps = schedule.steps.size();
  plan.aligned_peak_bytes =
      max_live(lifetimes, num_steps, [](const Lifetime& l) { return l.aligned_bytes; });
  check_invariant(
      max_live(lifetimes, num_steps, [](const Lifetime& l) { return l.bytes; }) == plan.peak_bytes,
      "the lifetimes' peak differs from the simulator's");

  std::vector<std::size_t> order(lifetimes.size());
  plan.arena_bytes = std::numeric_limits<std::int64_t>::max();
  for (const PlacementOrder& candidate : kOrders) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return candidate.before(lifetimes[a], lifetimes[b]);
    });
    std::vector<Lifetime> placed = lifetimes;
    const std::int64_t arena = place_best_fit(placed, order);
    if (arena < plan.arena_bytes) {
      plan.arena_bytes = arena;
      plan.placement = candidate.name;
      plan.lifetimes = std::move(placed);
    }
    if (arena == plan.aligned_peak_bytes) break;  // optimal: no order can do better
  }
  if (lifetimes.empty()) plan.arena_bytes = 0;

  plan.workspace_of_step.assign(num_steps, -1);
  for (std::size_t i = 0; i < plan.lifetimes.size(); ++i) {
    const Lifetime& lifetime = plan.lifetimes[i];
    if (lifetime.kind == Lifetime::Kind::kWorkspace) {
      plan.workspace_of_step[lifetime.start_step] = static_cast<std::int32_t>(i);
    }
  }
  return plan;
}

std::int64_t live_bytes_at(const MemoryPlan& plan, std::size_t step) {
  std::int64_t total = 0;
  for (const Lifetime& lifetime : plan.lifetimes) {
    if (lifetime.start_step <= step && step < lifetime.end_step) total += lifetime.bytes;
  }
  return total;
}

}  // namespace ckpt
