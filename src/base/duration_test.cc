#include "base/duration.h"

#include <gtest/gtest.h>

#include <string>

namespace phoenix {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// The error message of a parse that must fail, or a marker that makes the assertion fail.
template <class T>
std::string ErrorOf(const Result<T>& result) {
  return result.ok() ? "<unexpectedly ok>" : result.error().message;
}

// ---- ParseDuration ------------------------------------------------------------------------

TEST(ParseDurationTest, SingleUnits) {
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("90s"), seconds(90));
  EXPECT_EQ(*ParseDuration("216m"), minutes(216));
  EXPECT_EQ(*ParseDuration("24h"), hours(24));
  EXPECT_EQ(*ParseDuration("2d"), days(2));
}

TEST(ParseDurationTest, Sequences) {
  EXPECT_EQ(*ParseDuration("1h30m"), minutes(90));
  EXPECT_EQ(*ParseDuration("1d2h3m4s5ms"),
            days(1) + hours(2) + minutes(3) + seconds(4) + milliseconds(5));
  // Units in any order add up, as Go's time.ParseDuration allows.
  EXPECT_EQ(*ParseDuration("30m1h"), minutes(90));
  EXPECT_EQ(*ParseDuration("1m1m"), minutes(2));
}

TEST(ParseDurationTest, Zero) {
  EXPECT_EQ(*ParseDuration("0"), milliseconds(0));
  EXPECT_EQ(*ParseDuration("0s"), milliseconds(0));
  EXPECT_EQ(*ParseDuration("0ms"), milliseconds(0));
  EXPECT_EQ(*ParseDuration("0h0m"), milliseconds(0));
}

TEST(ParseDurationTest, LeadingZerosAndLargeValues) {
  EXPECT_EQ(*ParseDuration("007s"), seconds(7));
  EXPECT_EQ(*ParseDuration("100000d"), days(100000));
  EXPECT_EQ(*ParseDuration("9223372036854775807ms"), milliseconds(9223372036854775807LL));
}

TEST(ParseDurationTest, RejectsEmpty) {
  EXPECT_NE(ErrorOf(ParseDuration("")).find("empty duration"), std::string::npos);
}

TEST(ParseDurationTest, RejectsNegative) {
  std::string message = ErrorOf(ParseDuration("-5s"));
  EXPECT_NE(message.find("invalid duration '-5s'"), std::string::npos) << message;
  EXPECT_NE(message.find("negative"), std::string::npos) << message;
}

TEST(ParseDurationTest, RejectsMissingUnit) {
  std::string message = ErrorOf(ParseDuration("10"));
  EXPECT_NE(message.find("invalid duration '10': missing unit after 10"), std::string::npos)
      << message;
  EXPECT_NE(message.find("use ms, s, m, h or d"), std::string::npos) << message;
  EXPECT_NE(ErrorOf(ParseDuration("1h30")).find("missing unit after 30"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("00")).find("missing unit"), std::string::npos);
}

TEST(ParseDurationTest, RejectsUnknownUnit) {
  EXPECT_NE(ErrorOf(ParseDuration("10x")).find("unknown unit 'x'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("3w")).find("unknown unit 'w'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("24H")).find("unknown unit 'H'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("5sec")).find("unknown unit 'sec'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("1us")).find("unknown unit 'us'"), std::string::npos);
}

TEST(ParseDurationTest, RejectsFractions) {
  std::string message = ErrorOf(ParseDuration("1.5h"));
  EXPECT_NE(message.find("fractions are not supported"), std::string::npos) << message;
  EXPECT_NE(ErrorOf(ParseDuration("1,5h")).find("fractions"), std::string::npos);
}

TEST(ParseDurationTest, RejectsGarbage) {
  EXPECT_NE(ErrorOf(ParseDuration("h")).find("expected a number at 'h'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("abc")).find("expected a number at 'abc'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration(" 5s")).find("expected a number at ' 5s'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("5s ")).find("expected a number at ' '"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("1h 30m")).find("expected a number at ' 30m'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("+5s")).find("expected a number at '+5s'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("5 s")).find("expected a unit at ' s'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("5/s")).find("expected a unit at '/s'"), std::string::npos);
}

TEST(ParseDurationTest, EscapesControlBytesInMessages) {
  std::string message = ErrorOf(ParseDuration(std::string("5s\n\x01", 4)));
  EXPECT_NE(message.find("'5s\\n\\x01'"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(ParseDurationTest, RejectsOverflow) {
  EXPECT_NE(ErrorOf(ParseDuration("99999999999999999999s")).find("number too large"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("9223372036854775808ms")).find("number too large"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("9223372036854775807d")).find("too large"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDuration("9223372036854775807ms1ms")).find("too large"),
            std::string::npos);
}

// ---- FormatDuration -----------------------------------------------------------------------

TEST(FormatDurationTest, UnderOneSecondInMilliseconds) {
  EXPECT_EQ(FormatDuration(milliseconds(850)), "850ms");
  EXPECT_EQ(FormatDuration(milliseconds(1)), "1ms");
  EXPECT_EQ(FormatDuration(milliseconds(999)), "999ms");
}

TEST(FormatDurationTest, Zero) { EXPECT_EQ(FormatDuration(milliseconds(0)), "0s"); }

TEST(FormatDurationTest, TwoMostSignificantUnits) {
  EXPECT_EQ(FormatDuration(seconds(45)), "45s");
  EXPECT_EQ(FormatDuration(seconds(45) + milliseconds(999)), "45s");
  EXPECT_EQ(FormatDuration(minutes(3) + seconds(20)), "3m20s");
  EXPECT_EQ(FormatDuration(hours(3) + minutes(12) + seconds(59)), "3h12m");
  EXPECT_EQ(FormatDuration(days(2) + hours(4) + minutes(30)), "2d4h");
  EXPECT_EQ(FormatDuration(days(400)), "400d");
}

TEST(FormatDurationTest, DropsZeroSecondUnit) {
  EXPECT_EQ(FormatDuration(seconds(1)), "1s");
  EXPECT_EQ(FormatDuration(minutes(3)), "3m");
  EXPECT_EQ(FormatDuration(hours(3)), "3h");
  EXPECT_EQ(FormatDuration(hours(3) + seconds(59)), "3h");
  EXPECT_EQ(FormatDuration(days(1)), "1d");
  EXPECT_EQ(FormatDuration(days(1) + minutes(59)), "1d");
}

TEST(FormatDurationTest, Negative) {
  EXPECT_EQ(FormatDuration(milliseconds(-1500)), "-1s");
  EXPECT_EQ(FormatDuration(milliseconds(std::numeric_limits<int64_t>::min())).front(), '-');
}

TEST(FormatDurationTest, RoundTripsWhatItPrints) {
  for (const char* text : {"850ms", "45s", "3m20s", "3h12m", "2d4h", "3h", "1d"}) {
    EXPECT_EQ(FormatDuration(*ParseDuration(text)), text);
  }
}

// ---- FormatBytes --------------------------------------------------------------------------

TEST(FormatBytesTest, Bytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(999), "999 B");
}

TEST(FormatBytesTest, DecimalUnitsWithOneDecimal) {
  EXPECT_EQ(FormatBytes(1000), "1.0 KB");
  EXPECT_EQ(FormatBytes(1234), "1.2 KB");
  EXPECT_EQ(FormatBytes(3'400'000), "3.4 MB");
  EXPECT_EQ(FormatBytes(1'000'000'000), "1.0 GB");
  EXPECT_EQ(FormatBytes(2'500'000'000'000), "2.5 TB");
}

TEST(FormatBytesTest, PromotesInsteadOfPrintingAThousand) {
  EXPECT_EQ(FormatBytes(999'949), "999.9 KB");
  EXPECT_EQ(FormatBytes(999'999), "1.0 MB");
  EXPECT_EQ(FormatBytes(999'999'999), "1.0 GB");
}

TEST(FormatBytesTest, Largest) {
  EXPECT_EQ(FormatBytes(std::numeric_limits<unsigned long long>::max()), "18.4 EB");
}

// ---- DailyWindow --------------------------------------------------------------------------

TEST(ParseDailyWindowTest, SameDay) {
  auto window = ParseDailyWindow("02:00-05:00");
  ASSERT_TRUE(window.ok()) << window.error().message;
  EXPECT_EQ(window->start_min, 120);
  EXPECT_EQ(window->end_min, 300);
  EXPECT_FALSE(window->Contains(119));
  EXPECT_TRUE(window->Contains(120));
  EXPECT_TRUE(window->Contains(299));
  EXPECT_FALSE(window->Contains(300));
}

TEST(ParseDailyWindowTest, CrossesMidnight) {
  auto window = ParseDailyWindow("22:30-06:00");
  ASSERT_TRUE(window.ok()) << window.error().message;
  EXPECT_TRUE(window->Contains(22 * 60 + 30));
  EXPECT_TRUE(window->Contains(23 * 60 + 59));
  EXPECT_TRUE(window->Contains(0));
  EXPECT_TRUE(window->Contains(5 * 60 + 59));
  EXPECT_FALSE(window->Contains(6 * 60));
  EXPECT_FALSE(window->Contains(12 * 60));
  EXPECT_FALSE(window->Contains(22 * 60 + 29));
}

TEST(ParseDailyWindowTest, EndOfDay) {
  auto evening = ParseDailyWindow("22:00-24:00");
  ASSERT_TRUE(evening.ok()) << evening.error().message;
  EXPECT_EQ(evening->end_min, 1440);
  EXPECT_TRUE(evening->Contains(23 * 60 + 59));
  EXPECT_FALSE(evening->Contains(0));

  auto all_day = ParseDailyWindow("00:00-24:00");
  ASSERT_TRUE(all_day.ok()) << all_day.error().message;
  EXPECT_TRUE(all_day->Contains(0));
  EXPECT_TRUE(all_day->Contains(1439));
}

TEST(ParseDailyWindowTest, OneDigitHours) {
  auto window = ParseDailyWindow("9:00-17:30");
  ASSERT_TRUE(window.ok()) << window.error().message;
  EXPECT_EQ(window->start_min, 540);
  EXPECT_EQ(window->end_min, 1050);
}

TEST(DailyWindowTest, ContainsWrapsMinutesOutsideTheDay) {
  DailyWindow window{60, 120};
  EXPECT_TRUE(window.Contains(1440 + 90));
  EXPECT_TRUE(window.Contains(-1440 + 90));
  EXPECT_FALSE(window.Contains(-1));
  EXPECT_FALSE((DailyWindow{60, 60}).Contains(60));
}

TEST(ParseDailyWindowTest, RejectsEmptyWindow) {
  std::string message = ErrorOf(ParseDailyWindow("05:00-05:00"));
  EXPECT_NE(message.find("empty window '05:00-05:00'"), std::string::npos) << message;
}

TEST(ParseDailyWindowTest, RejectsMalformed) {
  for (const char* text : {"", "02:00", "0200-0500", "02:00-", "-05:00", "2:0-5:00",
                           "02:00 - 05:00", "002:00-05:00", "aa:bb-cc:dd", "02:00-05:00x"}) {
    std::string message = ErrorOf(ParseDailyWindow(text));
    EXPECT_TRUE(message.find("invalid window") != std::string::npos ||
                message.find("invalid time") != std::string::npos)
        << text << ": " << message;
    EXPECT_NE(message.find("02:00-05:00"), std::string::npos) << message;  // The example.
  }
  EXPECT_NE(ErrorOf(ParseDailyWindow("02:00")).find("invalid window '02:00'"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseDailyWindow("0200-05:00")).find("invalid time '0200'"), std::string::npos);
}

TEST(ParseDailyWindowTest, RejectsOutOfRange) {
  EXPECT_NE(ErrorOf(ParseDailyWindow("25:00-05:00")).find("hours must be 00..23"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ParseDailyWindow("02:60-05:00")).find("minutes must be 00..59"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ParseDailyWindow("02:00-24:30")).find("invalid time '24:30'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(ParseDailyWindow("24:00-05:00")).find("cannot start at 24:00"),
            std::string::npos);
}

// ---- robustness ---------------------------------------------------------------------------

// Arbitrary short strings over the characters these parsers care about never crash, and what
// ParseDuration accepts prints back to the same length of time.
TEST(DurationFuzzTest, ArbitraryInput) {
  const std::string alphabet = "0123456789msdhx:-. ";
  unsigned state = 99;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    int length = static_cast<int>(state % 14);
    for (int i = 0; i < length; ++i) {
      state = state * 1103515245 + 12345;
      text += alphabet[(state >> 16) % alphabet.size()];
    }
    state = state * 1103515245 + 12345;
    auto duration = ParseDuration(text);
    if (duration.ok()) {
      EXPECT_GE(duration->count(), 0) << text;
      EXPECT_FALSE(FormatDuration(*duration).empty());
    } else {
      EXPECT_FALSE(duration.error().message.empty());
    }
    auto window = ParseDailyWindow(text);
    if (window.ok()) {
      EXPECT_NE(window->start_min, window->end_min) << text;
      EXPECT_LT(window->start_min, 1440) << text;
      EXPECT_LE(window->end_min, 1440) << text;
    }
  }
}

}  // namespace
}  // namespace phoenix
