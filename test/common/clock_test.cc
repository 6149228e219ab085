#include "common/clock.h"

#include <gtest/gtest.h>

#include "mocks/fake_clock.h"

namespace burstlet {
namespace {

using namespace std::chrono_literals;

TEST(ClockTest, FakeClockAdvancesBothTimes) {
  testing::FakeClock clock;
  const auto wall = clock.now();
  const auto steady = clock.steadyNow();
  clock.advance(1500ms);
  EXPECT_EQ(clock.now() - wall, 1500ms);
  EXPECT_EQ(clock.steadyNow() - steady, 1500ms);
}

TEST(ClockTest, RealClockMovesForward) {
  const auto a = realClock().steadyNow();
  const auto b = realClock().steadyNow();
  EXPECT_LE(a, b);
}

TEST(ClockTest, FormatsRfc3339) {
  // 2023-11-14T22:13:20Z is 1700000000 seconds after the epoch.
  const Clock::WallTime t{std::chrono::seconds(1'700'000'000)};
  EXPECT_EQ(formatRfc3339(t), "2023-11-14T22:13:20Z");
  EXPECT_EQ(formatRfc3339(t + 999ms), "2023-11-14T22:13:20Z");
  EXPECT_EQ(formatRfc3339Micro(t + 1234us), "2023-11-14T22:13:20.001234Z");
}

TEST(ClockTest, ParsesRfc3339Utc) {
  const Clock::WallTime t{std::chrono::seconds(1'700'000'000)};
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20Z"), t);
  EXPECT_EQ(parseRfc3339("2023-11-14t22:13:20z"), t);
  EXPECT_EQ(parseRfc3339("1970-01-01T00:00:00Z"), Clock::WallTime{});
  EXPECT_EQ(parseRfc3339("2024-02-29T00:00:00Z"),
            Clock::WallTime{std::chrono::seconds(1'709'164'800)});
}

TEST(ClockTest, ParsesRfc3339FractionalSeconds) {
  const Clock::WallTime t{std::chrono::seconds(1'700'000'000)};
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20.5Z"), t + 500ms);
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20.001234Z"), t + 1234us);
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20.123456789Z"), t + 123456789ns);
  // Digits past nanoseconds are truncated.
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20.1234567891Z"), t + 123456789ns);
  // Round trip with the formatters.
  EXPECT_EQ(parseRfc3339(formatRfc3339Micro(t + 42us)), t + 42us);
  EXPECT_EQ(parseRfc3339(formatRfc3339(t)), t);
}

TEST(ClockTest, ParsesRfc3339Offsets) {
  const Clock::WallTime t{std::chrono::seconds(1'700'000'000)};
  EXPECT_EQ(parseRfc3339("2023-11-15T06:13:20+08:00"), t);
  EXPECT_EQ(parseRfc3339("2023-11-14T16:43:20-05:30"), t);
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20+00:00"), t);
  EXPECT_EQ(parseRfc3339("2023-11-14T22:13:20.25-00:00"), t + 250ms);
}

TEST(ClockTest, RejectsMalformedRfc3339) {
  for (const char* bad : {
           "",
           "2023-11-14",
           "2023-11-14T22:13:20",        // no zone
           "2023-11-14 22:13:20Z",       // space instead of T
           "2023-11-14T22:13Z",          // no seconds
           "2023-11-14T22:13:20.Z",      // empty fraction
           "2023-11-14T22:13:20+0800",   // offset without colon
           "2023-11-14T22:13:20+08",     // offset without minutes
           "2023-11-14T22:13:20Zjunk",   // trailing text
           "2023-13-01T00:00:00Z",       // month 13
           "2023-02-29T00:00:00Z",       // not a leap year
           "2023-04-31T00:00:00Z",       // April has 30 days
           "2023-11-14T24:00:00Z",       // hour 24
           "2023-11-14T22:60:00Z",       // minute 60
           "2023-11-14T22:13:60Z",       // leap seconds are not accepted (nor by Go)
           "2023-11-14T22:13:20+24:00",  // offset hour 24
           "2023-1-14T22:13:20Z",        // one-digit month
           "+023-11-14T22:13:20Z",
       }) {
    EXPECT_EQ(parseRfc3339(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace burstlet
