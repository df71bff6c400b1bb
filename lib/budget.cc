// Budget parsing and byte/time formatting. A budget is parsed into an exact decimal (digits before
// and after the point) and scaled with 128-bit integers, so no unit or decimal loses a byte and
// overflow is detected rather than wrapped.
#include "ckpt/budget.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <utility>

#include "ckpt/error.h"

namespace ckpt {

namespace {

// GCC and Clang's 128-bit integer; __extension__ keeps -Wpedantic quiet about it.
__extension__ typedef __int128 Int128;

constexpr std::int64_t kMaxBytes = std::numeric_limits<std::int64_t>::max();
// Fraction digits kept exactly. 10^24 * 2^40 (TiB) stays far below 2^127.
constexpr int kMaxFractionDigits = 24;
constexpr int kMaxPercentDigits = 6;

constexpr std::string_view kExamples =
    "valid forms: 123456789 (bytes), 1500MB, 2.5GiB, 512KiB, 1TB, 40%, 12.5%";

struct Unit {
  std::string_view name;  // lower case
  std::int64_t multiplier;
};

constexpr std::int64_t kKilo = 1000;
constexpr std::int64_t kKibi = 1024;
constexpr std::array<Unit, 9> kUnits = {{
    {"b", 1},
    {"kb", kKilo},
    {"mb", kKilo* kKilo},
    {"gb", kKilo* kKilo* kKilo},
    {"tb", kKilo* kKilo* kKilo* kKilo},
    {"kib", kKibi},
    {"mib", kKibi* kKibi},
    {"gib", kKibi* kKibi* kKibi},
    {"tib", kKibi* kKibi* kKibi* kKibi},
}};

// An exact non-negative decimal: whole + fraction / 10^fraction_digits.
struct Decimal {
  Int128 whole = 0;
  Int128 fraction = 0;
  int fraction_digits = 0;
  Int128 scale() const {
    Int128 s = 1;
    for (int i = 0; i < fraction_digits; ++i) s *= 10;
    return s;
  }
  bool is_zero() const { return whole == 0 && fraction == 0; }
};

[[noreturn]] void fail(std::string_view option, std::string_view text, std::string_view why) {
  throw Error(ErrorKind::kUsage, fmt::format("{} \"{}\": {}; {}", option, text, why, kExamples));
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string lower(std::string_view text) {
  std::string result(text);
  for (char& c : result) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return result;
}

// Reads the leading decimal of `text` ("12", "2.5", ".5", "3.") and leaves the rest in `text`.
Decimal read_decimal(std::string_view& text, std::string_view option, std::string_view original) {
  Decimal number;
  bool any_digit = false;
  // The whole part is capped just above the largest byte count, so it cannot overflow 128 bits.
  const Int128 whole_cap = static_cast<Int128>(kMaxBytes) * 10;
  while (!text.empty() && is_digit(text.front())) {
    number.whole = number.whole * 10 + (text.front() - '0');
    if (number.whole > whole_cap) fail(option, original, "too large (at most 2^63-1 bytes)");
    text.remove_prefix(1);
    any_digit = true;
  }
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    while (!text.empty() && is_digit(text.front())) {
      if (number.fraction_digits == kMaxFractionDigits) {
        fail(option, original,
             fmt::format("more than {} digits after the decimal point", kMaxFractionDigits));
      }
      number.fraction = number.fraction * 10 + (text.front() - '0');
      ++number.fraction_digits;
      text.remove_prefix(1);
      any_digit = true;
    }
  }
  if (!any_digit) fail(option, original, "expected a number");
  return number;
}

std::int64_t unit_multiplier(std::string_view unit, std::string_view option,
                             std::string_view original) {
  if (unit.empty()) return 1;
  const std::string name = lower(unit);
  for (const Unit& known : kUnits) {
    if (known.name == name) return known.multiplier;
  }
  fail(option, original,
       fmt::format("unknown unit \"{}\" (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", unit));
}

BudgetSpec parse_percent(const Decimal& number, std::string_view option,
                         std::string_view original) {
  if (number.fraction_digits > kMaxPercentDigits) {
    fail(option, original,
         fmt::format("a percentage takes at most {} decimals", kMaxPercentDigits));
  }
  if (number.is_zero()) fail(option, original, "a budget must be positive");
  Int128 micro = number.whole * 1000000;
  Int128 fraction = number.fraction;
  for (int i = number.fraction_digits; i < kMaxPercentDigits; ++i) fraction *= 10;
  micro += fraction;
  if (micro > kMaxBytes) fail(option, original, "percentage too large");
  BudgetSpec spec;
  spec.kind = BudgetSpec::Kind::kPercentOfStoreAll;
  spec.percent_micro = static_cast<std::int64_t>(micro);
  spec.text = std::string(original);
  return spec;
}

}  // namespace

BudgetSpec parse_budget(std::string_view text, std::string_view option) {
  const std::string_view original = text;
  text = trim(text);
  if (text.empty()) fail(option, original, "empty budget");
  if (text.front() == '-') fail(option, original, "a budget must be positive, not negative");
  if (text.front() == '+') text.remove_prefix(1);
  const Decimal number = read_decimal(text, option, original);
  if (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  if (text == "%") return parse_percent(number, option, original);
  for (char c : text) {
    if (!std::isalpha(static_cast<unsigned char>(c))) {
      fail(option, original, fmt::format("unexpected \"{}\" after the number", text));
    }
  }
  const std::int64_t multiplier = unit_multiplier(text, option, original);
  if (number.is_zero()) fail(option, original, "a budget must be positive");
  // floor((whole + fraction / scale) * multiplier), exactly.
  const Int128 whole_bytes = number.whole * multiplier;
  const Int128 fraction_bytes = number.fraction * multiplier / number.scale();
  const Int128 bytes = whole_bytes + fraction_bytes;
  if (bytes > kMaxBytes) fail(option, original, "too large (at most 2^63-1 bytes)");
  if (bytes == 0) fail(option, original, "less than one byte (budgets are floored to whole bytes)");
  BudgetSpec spec;
  spec.kind = BudgetSpec::Kind::kBytes;
  spec.bytes = static_cast<std::int64_t>(bytes);
  spec.text = std::string(original);
  return spec;
}

std::int64_t resolve_budget(const BudgetSpec& spec, std::int64_t store_all_peak_bytes,
                            std::string_view option) {
  if (spec.kind == BudgetSpec::Kind::kBytes) return spec.bytes;
  // percent_micro / 10^6 percent = percent_micro / 10^8 of the peak.
  const Int128 bytes = static_cast<Int128>(store_all_peak_bytes) * spec.percent_micro / 100000000;
  if (bytes > kMaxBytes) {
    throw Error(ErrorKind::kUsage, fmt::format("{} \"{}\": {} of the store-all peak ({} bytes) "
                                               "is more than 2^63-1 bytes",
                                               option, spec.text, spec.text, store_all_peak_bytes));
  }
  if (bytes <= 0) {
    throw Error(ErrorKind::kUsage,
                fmt::format("{} \"{}\": that share of the store-all peak ({} bytes) is 0 bytes; "
                            "give a larger percentage or a byte count",
                            option, spec.text, store_all_peak_bytes));
  }
  return static_cast<std::int64_t>(bytes);
}

std::string format_bytes(std::int64_t bytes) {
  if (bytes < 0) {
    if (bytes == std::numeric_limits<std::int64_t>::min()) return "-8.00 EiB";
    // fmt rather than "-" + string: GCC 12 reports a false -Wrestrict on the latter at -O3.
    return fmt::format("-{}", format_bytes(-bytes));
  }
  if (bytes < kKibi) return fmt::format("{} B", bytes);
  constexpr std::array<std::string_view, 6> kNames = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double scaled = static_cast<double>(bytes) / kKibi;
  std::size_t unit = 0;
  // Move up a unit once the rounded value would print as 1024.00 or more.
  while (unit + 1 < kNames.size() && scaled >= 1024.0 - 0.005) {
    scaled /= kKibi;
    ++unit;
  }
  return fmt::format("{:.2f} {}", scaled, kNames[unit]);
}

std::string format_time_us(double time_us) {
  if (!std::isfinite(time_us)) return fmt::format("{} us", time_us);
  const double magnitude = std::fabs(time_us);
  if (magnitude < 1000.0) return fmt::format("{:.1f} us", time_us);
  if (magnitude < 1000000.0) return fmt::format("{:.3f} ms", time_us / 1000.0);
  return fmt::format("{:.3f} s", time_us / 1000000.0);
}

}  // namespace ckpt
