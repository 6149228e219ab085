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

}  // namespace
}  // namespace burstlet
