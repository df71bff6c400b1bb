// Byte quantities as users write and read them: parsing a memory budget ("2.5GiB", "1500MB",
// "123456789", "40%") into exact bytes, and printing byte counts and times for reports. Parsing is
// exact integer arithmetic (no floating point), so "2.5GiB" is exactly 2684354560 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ckpt {

// A parsed --budget: either a byte count or a share of the store-all peak, which is only known
// once the graph is loaded (resolve_budget turns it into bytes).
struct BudgetSpec {
  // Which of the two forms the user wrote.
  enum class Kind : std::uint8_t {
    kBytes,             // an absolute byte count
    kPercentOfStoreAll  // a percentage of the graph's store-all peak
  };
  Kind kind = Kind::kBytes;
  std::int64_t bytes = 0;          // kBytes: whole bytes (fractions floored), always > 0
  std::int64_t percent_micro = 0;  // kPercentOfStoreAll: millionths of a percent (40% = 40000000)
  std::string text;                // what the user wrote, for messages
};

// Parses a budget: a plain number is bytes; units B, KB/MB/GB/TB (powers of 1000) and
// KiB/MiB/GiB/TiB (powers of 1024), case-insensitive, optionally after one space; decimals are
// allowed and the result is floored to whole bytes; "N%" is N percent of the store-all peak (at
// most 6 decimals). Throws ckpt::Error (kUsage) naming `option` with valid examples for bad
// syntax, a negative, zero or sub-byte budget, or one beyond 2^63-1 bytes.
BudgetSpec parse_budget(std::string_view text, std::string_view option = "--budget");

// The budget in bytes for a graph whose store-all peak is `store_all_peak_bytes` (floored for a
// percentage). Throws ckpt::Error (kUsage) when a percentage comes to 0 bytes or overflows.
std::int64_t resolve_budget(const BudgetSpec& spec, std::int64_t store_all_peak_bytes,
                            std::string_view option = "--budget");

// "512 B", "1.50 KiB", "2.00 GiB": binary units, two decimals (rounded) above 1 KiB.
std::string format_bytes(std::int64_t bytes);

// "850 us", "12.345 ms", "1.234 s": the graph's microseconds in a readable unit.
std::string format_time_us(double time_us);

}  // namespace ckpt
