// Tests of --budget parsing (every accepted form and every rejection, with the message it gives)
// and of the byte and time formatting used by the reports.
#include "ckpt/budget.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "ckpt/error.h"

namespace ckpt {
namespace {

std::int64_t bytes_of(std::string_view text) {
  const BudgetSpec spec = parse_budget(text);
  EXPECT_EQ(spec.kind, BudgetSpec::Kind::kBytes) << text;
  return spec.bytes;
}

// The message of the usage error parse_budget throws for `text`, or "" when it accepts it.
std::string rejection(std::string_view text) {
  try {
    parse_budget(text);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    return e.what();
  }
  return "";
}

TEST(BudgetTest, PlainNumberIsBytes) {
  EXPECT_EQ(bytes_of("123456789"), 123456789);
  EXPECT_EQ(bytes_of("1"), 1);
  EXPECT_EQ(bytes_of("  4096 "), 4096);
  EXPECT_EQ(bytes_of("+4096"), 4096);
  EXPECT_EQ(bytes_of("9223372036854775807"), std::numeric_limits<std::int64_t>::max());
}

TEST(BudgetTest, DecimalUnitsArePowersOf1000) {
  EXPECT_EQ(bytes_of("1B"), 1);
  EXPECT_EQ(bytes_of("1KB"), 1000);
  EXPECT_EQ(bytes_of("1500MB"), 1500000000);
  EXPECT_EQ(bytes_of("2GB"), 2000000000);
  EXPECT_EQ(bytes_of("1TB"), 1000000000000);
}

TEST(BudgetTest, BinaryUnitsArePowersOf1024) {
  EXPECT_EQ(bytes_of("1KiB"), 1024);
  EXPECT_EQ(bytes_of("3MiB"), 3 * 1024 * 1024);
  EXPECT_EQ(bytes_of("2.5GiB"), 2684354560);  // exactly 2.5 * 2^30
  EXPECT_EQ(bytes_of("1TiB"), std::int64_t{1} << 40);
}

TEST(BudgetTest, UnitsAreCaseInsensitiveAndMayFollowASpace) {
  EXPECT_EQ(bytes_of("1kb"), 1000);
  EXPECT_EQ(bytes_of("1kib"), 1024);
  EXPECT_EQ(bytes_of("1 MiB"), 1024 * 1024);
  EXPECT_EQ(bytes_of("1GIB"), 1024 * 1024 * 1024);
}

TEST(BudgetTest, DecimalsAreFlooredToWholeBytes) {
  EXPECT_EQ(bytes_of("1.5KiB"), 1536);
  EXPECT_EQ(bytes_of("0.5KiB"), 512);
  EXPECT_EQ(bytes_of(".5MiB"), 524288);
  EXPECT_EQ(bytes_of("3."), 3);
  EXPECT_EQ(bytes_of("1.0001KiB"), 1024);  // 1024.1024 bytes
  EXPECT_EQ(bytes_of("1.9"), 1);           // bytes: the fraction is dropped
  EXPECT_EQ(bytes_of("0.001KB"), 1);
  // 24 fraction digits are exact: 0.999...9 KiB is 1023.99... bytes, floored to 1023.
  EXPECT_EQ(bytes_of("0.999999999999999999999999KiB"), 1023);
}

TEST(BudgetTest, PercentIsAShareOfTheStoreAllPeak) {
  const BudgetSpec forty = parse_budget("40%");
  EXPECT_EQ(forty.kind, BudgetSpec::Kind::kPercentOfStoreAll);
  EXPECT_EQ(forty.percent_micro, 40000000);
  EXPECT_EQ(resolve_budget(forty, 1000), 400);
  EXPECT_EQ(resolve_budget(parse_budget("12.5%"), 1001), 125);  // 125.125 floored
  EXPECT_EQ(resolve_budget(parse_budget("100%"), 7000), 7000);
  EXPECT_EQ(resolve_budget(parse_budget("150%"), 7000), 10500);
  EXPECT_EQ(resolve_budget(parse_budget("0.000001%"), 100000000), 1);
  EXPECT_EQ(resolve_budget(parse_budget("40 %"), 1000), 400);
  EXPECT_EQ(resolve_budget(parse_budget("2.5GiB"), 1), 2684354560) << "bytes ignore the peak";
}

TEST(BudgetTest, PercentOfZeroBytesOrOverflowIsRejected) {
  try {
    resolve_budget(parse_budget("1%"), 50);  // 0.5 bytes
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("--budget \"1%\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("0 bytes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_budget(parse_budget("1000%"), std::numeric_limits<std::int64_t>::max()),
               Error);
}

TEST(BudgetTest, BadSyntaxNamesTheOptionAndShowsExamples) {
  for (const char* text : {"", "abc", "MB", "%", "1e9", "1,000", "1.2.3", "5MB%", "5 MB extra",
                           "0x10", "1  MB", "five"}) {
    const std::string message = rejection(text);
    ASSERT_FALSE(message.empty()) << "accepted \"" << text << "\"";
    EXPECT_NE(message.find("--budget"), std::string::npos) << message;
    EXPECT_NE(message.find("2.5GiB"), std::string::npos) << "no examples in: " << message;
    EXPECT_NE(message.find("40%"), std::string::npos) << "no examples in: " << message;
  }
}

TEST(BudgetTest, UnknownUnitIsNamedWithTheValidOnes) {
  const std::string message = rejection("5XB");
  EXPECT_NE(message.find("unknown unit \"XB\""), std::string::npos) << message;
  EXPECT_NE(message.find("KiB"), std::string::npos) << message;
  EXPECT_NE(rejection("8EiB"), "");
  EXPECT_NE(rejection("1Mb/s"), "");
}

TEST(BudgetTest, NegativeZeroAndSubByteBudgetsAreRejected) {
  EXPECT_NE(rejection("-5").find("negative"), std::string::npos);
  EXPECT_NE(rejection("-1.5GiB").find("negative"), std::string::npos);
  EXPECT_NE(rejection("-40%").find("negative"), std::string::npos);
  EXPECT_NE(rejection("0").find("positive"), std::string::npos);
  EXPECT_NE(rejection("0.0GiB").find("positive"), std::string::npos);
  EXPECT_NE(rejection("0%").find("positive"), std::string::npos);
  EXPECT_NE(rejection("0.4").find("less than one byte"), std::string::npos);
  EXPECT_NE(rejection("0.0001KB").find("less than one byte"), std::string::npos);
}

TEST(BudgetTest, OverflowIsRejected) {
  EXPECT_NE(rejection("9223372036854775808").find("too large"), std::string::npos);
  EXPECT_NE(rejection("8388608TiB").find("too large"), std::string::npos);  // 2^63 bytes
  EXPECT_NE(rejection("99999999999999999999999999999999999999").find("too large"),
            std::string::npos);
  EXPECT_EQ(bytes_of("8388607.999999TiB"), 9223372036853676296);  // just below 2^63
  EXPECT_NE(rejection("1.0000000000000000000000001").find("digits"), std::string::npos);
  EXPECT_NE(rejection("1.0000001%").find("decimals"), std::string::npos);
}

TEST(BudgetTest, MessageNamesTheGivenOption) {
  try {
    parse_budget("lots", "--max-memory");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--max-memory \"lots\"", 0), 0u) << e.what();
  }
}

TEST(FormatBytesTest, BinaryUnitsWithTwoDecimals) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1.00 KiB");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(1048575), "1.00 MiB");  // 1023.999 KiB would print as 1024.00 KiB
  EXPECT_EQ(format_bytes(2684354560), "2.50 GiB");
  EXPECT_EQ(format_bytes(std::int64_t{3} << 40), "3.00 TiB");
  EXPECT_EQ(format_bytes(-1536), "-1.50 KiB");
}

TEST(FormatTimeTest, PicksAReadableUnit) {
  EXPECT_EQ(format_time_us(850), "850.0 us");
  EXPECT_EQ(format_time_us(12345), "12.345 ms");
  EXPECT_EQ(format_time_us(1234000), "1.234 s");
}

}  // namespace
}  // namespace ckpt
