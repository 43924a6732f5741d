#include "supervisor/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <set>

namespace phoenix {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// ---- CrashBackoff ----

TEST(CrashBackoffTest, FirstCrashIsRebornAtOnce) { EXPECT_EQ(CrashBackoff(1), Millis(0)); }

TEST(CrashBackoffTest, NoCrashesMeansNoDelay) {
  EXPECT_EQ(CrashBackoff(0), Millis(0));
  EXPECT_EQ(CrashBackoff(-1), Millis(0));
  EXPECT_EQ(CrashBackoff(INT_MIN), Millis(0));
}

TEST(CrashBackoffTest, DoublesFromOneSecond) {
  EXPECT_EQ(CrashBackoff(2), seconds(1));
  EXPECT_EQ(CrashBackoff(3), seconds(2));
  EXPECT_EQ(CrashBackoff(4), seconds(4));
  EXPECT_EQ(CrashBackoff(5), seconds(8));
  EXPECT_EQ(CrashBackoff(6), seconds(16));
  EXPECT_EQ(CrashBackoff(7), seconds(32));
  EXPECT_EQ(CrashBackoff(8), seconds(64));
  EXPECT_EQ(CrashBackoff(9), seconds(128));
  EXPECT_EQ(CrashBackoff(10), seconds(256));
}

TEST(CrashBackoffTest, CappedAtFiveMinutes) {
  EXPECT_EQ(CrashBackoff(11), minutes(5));  // 512 s would exceed the cap
  EXPECT_EQ(CrashBackoff(12), minutes(5));
  EXPECT_EQ(CrashBackoff(30), minutes(5));
}

TEST(CrashBackoffTest, LargeCountsDoNotOverflow) {
  for (int n : {31, 32, 63, 64, 65, 100, 1000, 1 << 20, INT_MAX - 1, INT_MAX}) {
    EXPECT_EQ(CrashBackoff(n), minutes(5)) << n;
  }
}

TEST(CrashBackoffTest, NeverDecreasesAndNeverExceedsTheCap) {
  Millis previous(0);
  for (int n = 0; n < 200; ++n) {
    Millis d = CrashBackoff(n);
    EXPECT_GE(d, previous) << n;
    EXPECT_LE(d, minutes(5)) << n;
    EXPECT_GE(d, Millis(0)) << n;
    previous = d;
  }
}

// ---- RebirthSchedule::Lifetime ----

TEST(RebirthScheduleTest, ZeroMaxAgeMeansNever) {
  RebirthSchedule s(1);
  EXPECT_EQ(s.Lifetime(Millis(0), Millis(0)), Millis(0));
  EXPECT_EQ(s.Lifetime(Millis(0), minutes(10)), Millis(0));
}

TEST(RebirthScheduleTest, NegativeMaxAgeMeansNever) {
  RebirthSchedule s(1);
  EXPECT_EQ(s.Lifetime(Millis(-5), minutes(10)), Millis(0));
}

TEST(RebirthScheduleTest, ZeroJitterGivesExactlyMaxAge) {
  RebirthSchedule s(7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.Lifetime(hours(24), Millis(0)), hours(24));
}

TEST(RebirthScheduleTest, NegativeJitterIsTreatedAsZero) {
  RebirthSchedule s(7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.Lifetime(hours(1), Millis(-1000)), hours(1));
}

TEST(RebirthScheduleTest, AlwaysWithinMaxAgeMinusJitterAndMaxAge) {
  struct Case {
    Millis max_age, jitter;
  };
  const Case cases[] = {
      {hours(24), minutes(216)}, {hours(1), minutes(10)}, {seconds(1), Millis(500)},
      {Millis(2), Millis(1)},    {Millis(1), Millis(0)},  {hours(24 * 365), hours(24)},
  };
  for (uint64_t seed : {0ull, 1ull, 42ull, 0xdeadbeefull}) {
    RebirthSchedule s(seed);
    for (const Case& c : cases) {
      for (int i = 0; i < 500; ++i) {
        Millis life = s.Lifetime(c.max_age, c.jitter);
        ASSERT_GE(life, c.max_age - c.jitter) << c.max_age.count() << " " << c.jitter.count();
        ASSERT_LE(life, c.max_age) << c.max_age.count() << " " << c.jitter.count();
      }
    }
  }
}

TEST(RebirthScheduleTest, JitterAtLeastMaxAgeIsClampedToAPositiveLifetime) {
  RebirthSchedule s(3);
  for (Millis jitter : {Millis(minutes(10)), Millis(minutes(11)), Millis(hours(100))}) {
    for (int i = 0; i < 1000; ++i) {
      Millis life = s.Lifetime(minutes(10), jitter);
      ASSERT_GT(life, Millis(0)) << "0 would mean 'never'";
      ASSERT_LE(life, minutes(10));
    }
  }
  // The smallest max_age leaves no room for jitter at all.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.Lifetime(Millis(1), hours(1)), Millis(1));
}

TEST(RebirthScheduleTest, SameSeedGivesSameSequence) {
  RebirthSchedule a(99), b(99);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(a.Lifetime(hours(24), minutes(216)), b.Lifetime(hours(24), minutes(216)));
  }
}

TEST(RebirthScheduleTest, DifferentSeedsGiveDifferentValues) {
  RebirthSchedule a(1), b(2);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    if (a.Lifetime(hours(24), minutes(216)) != b.Lifetime(hours(24), minutes(216))) ++differ;
  }
  EXPECT_GT(differ, 90);
}

TEST(RebirthScheduleTest, SuccessiveDrawsDiffer) {
  // Instances born together must not die together.
  RebirthSchedule s(5);
  std::set<Millis::rep> seen;
  for (int i = 0; i < 100; ++i) seen.insert(s.Lifetime(hours(24), minutes(216)).count());
  EXPECT_GT(seen.size(), 95u);
}

TEST(RebirthScheduleTest, DrawsSpreadOverTheWholeRange) {
  RebirthSchedule s(12345);
  const Millis max_age = hours(1), jitter = minutes(10);
  const Millis lo = max_age - jitter;
  Millis min = max_age, max = lo;
  int buckets[10] = {};
  for (int i = 0; i < 1000; ++i) {
    Millis life = s.Lifetime(max_age, jitter);
    min = std::min(min, life);
    max = std::max(max, life);
    ++buckets[std::min<int64_t>(9, (life - lo).count() * 10 / jitter.count())];
  }
  // Within 1% of the jitter from each bound.
  EXPECT_LT(min - lo, jitter / 100);
  EXPECT_LT(max_age - max, jitter / 100);
  // Roughly uniform: each tenth of the range gets about 100 of the 1000 draws.
  for (int b = 0; b < 10; ++b) {
    EXPECT_GT(buckets[b], 50) << "bucket " << b;
    EXPECT_LT(buckets[b], 150) << "bucket " << b;
  }
}

}  // namespace
}  // namespace phoenix
