#include "common/wait.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <thread>

#include "mocks/fake_clock.h"
#include "mocks/run_sync.h"

namespace burstlet {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::FakeClock;
using testing::runUntil;

TEST(LatchTest, WaitReturnsAtOnceWhenSet) {
  asio::io_context io;
  Latch latch;
  latch.set();
  EXPECT_TRUE(latch.isSet());
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await latch.wait();
        done = true;
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(done);
}

TEST(LatchTest, SetWakesEveryWaiter) {
  asio::io_context io;
  Latch latch;
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await latch.wait();
          ++done;
        },
        asio::detached);
  }
  EXPECT_FALSE(runUntil(
      io, [&] { return done > 0; }, 50ms));
  latch.set();
  EXPECT_TRUE(runUntil(io, [&] { return done == 3; }));
}

TEST(LatchTest, SetFromAnotherThreadWakesAWaiterOnAStrand) {
  asio::io_context io;
  Latch latch;
  bool done = false;
  asio::co_spawn(
      asio::make_strand(io),
      [&]() -> asio::awaitable<void> {
        co_await latch.wait();
        done = true;
      },
      asio::detached);
  std::thread setter([&] {
    std::this_thread::sleep_for(20ms);
    latch.set();
  });
  EXPECT_TRUE(runUntil(io, [&] { return done; }));
  setter.join();
}

TEST(SleepTest, FakeClockWakesTheSleeperOnlyWhenAdvancedPastTheDeadline) {
  asio::io_context io;
  FakeClock clock;
  std::optional<bool> result;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { result = co_await sleepFor(clock, 10s); },
      asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return result.has_value(); }, 50ms));
  EXPECT_EQ(clock.sleepers(), 1U);
  clock.advance(9s);
  EXPECT_FALSE(runUntil(
      io, [&] { return result.has_value(); }, 50ms));
  clock.advance(1s);
  ASSERT_TRUE(runUntil(io, [&] { return result.has_value(); }));
  EXPECT_TRUE(*result);
  EXPECT_EQ(clock.sleepers(), 0U);
}

TEST(SleepTest, CancelEndsTheSleepEarlyAndForgetsTheAlarm) {
  asio::io_context io;
  FakeClock clock;
  Latch stop;
  std::optional<bool> result;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { result = co_await sleepFor(clock, 1h, &stop); },
      asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return result.has_value(); }, 30ms));
  stop.set();
  ASSERT_TRUE(runUntil(io, [&] { return result.has_value(); }));
  EXPECT_FALSE(*result);
  EXPECT_EQ(clock.sleepers(), 0U);
}

TEST(SleepTest, AlreadyCancelledReturnsAtOnce) {
  asio::io_context io;
  FakeClock clock;
  Latch stop;
  stop.set();
  EXPECT_FALSE(testing::runSync(io, sleepFor(clock, 1h, &stop)));
}

TEST(SleepTest, PastDeadlineOnTheFakeClockReturnsAtOnce) {
  asio::io_context io;
  FakeClock clock;
  EXPECT_TRUE(testing::runSync(io, sleepUntil(clock, clock.steadyNow() - 1s)));
}

TEST(SleepTest, RealClockSleepsRealTime) {
  asio::io_context io;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(testing::runSync(io, sleepFor(realClock(), 20ms)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

TEST(WaitForTest, TrueWhenSetFalseOnTimeout) {
  asio::io_context io;
  FakeClock clock;
  Latch latch;
  std::optional<bool> first;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { first = co_await waitFor(latch, clock, 5s); },
      asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return first.has_value(); }, 30ms));
  clock.advance(5s);
  ASSERT_TRUE(runUntil(io, [&] { return first.has_value(); }));
  EXPECT_FALSE(*first);

  std::optional<bool> second;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { second = co_await waitFor(latch, clock, 5s); },
      asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return second.has_value(); }, 30ms));
  latch.set();
  ASSERT_TRUE(runUntil(io, [&] { return second.has_value(); }));
  EXPECT_TRUE(*second);
}

TEST(WakeupTest, NotifyOrTheDeadlineEndsTheSleep) {
  asio::io_context io;
  FakeClock clock;
  Wakeup wakeup;
  int rounds = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await wakeup.sleep(clock, 1h);
        ++rounds;
        co_await wakeup.sleep(clock, 1h);
        ++rounds;
        co_await wakeup.sleep(clock, 1h);
        ++rounds;
      },
      asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return rounds > 0; }, 30ms));
  wakeup.notify();
  EXPECT_TRUE(runUntil(io, [&] { return rounds == 1; }));
  // Round two sleeps until the clock passes its deadline.
  EXPECT_FALSE(runUntil(
      io, [&] { return rounds > 1; }, 30ms));
  clock.advance(1h);
  EXPECT_TRUE(runUntil(io, [&] { return rounds == 2; }));
  wakeup.notify();
  wakeup.notify();
  EXPECT_TRUE(runUntil(io, [&] { return rounds == 3; }));
}

TEST(WakeupTest, PendingNotifyMakesTheNextSleepReturnAtOnce) {
  asio::io_context io;
  FakeClock clock;
  Wakeup wakeup;
  wakeup.notify();
  testing::runSync(io, wakeup.sleep(clock, 1h));
  EXPECT_EQ(clock.sleepers(), 0U);
}

TEST(WakeupTest, CancelEndsTheSleep) {
  asio::io_context io;
  FakeClock clock;
  Wakeup wakeup;
  Latch stop;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await wakeup.sleep(clock, 1h, &stop);
        done = true;
      },
      asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return done; }, 30ms));
  stop.set();
  EXPECT_TRUE(runUntil(io, [&] { return done; }));
}

TEST(SignalsTest, ReadyOrStoppedSaysWhichCameFirst) {
  asio::io_context io;
  Signals ready;
  Signals stopped;
  std::optional<bool> a;
  std::optional<bool> b;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { a = co_await readyOrStopped(ready); }, asio::detached);
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { b = co_await readyOrStopped(stopped); }, asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return a || b; }, 30ms));
  ready.ready.set();
  stopped.stopped.set();
  ASSERT_TRUE(runUntil(io, [&] { return a && b; }));
  EXPECT_TRUE(*a);
  EXPECT_FALSE(*b);
}

TEST(SignalsTest, AbandonedWaitLeavesNothingBehind) {
  FakeClock clock;
  Latch latch;
  {
    asio::io_context io;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { co_await sleepFor(clock, 1h, &latch); },
        asio::detached);
    EXPECT_FALSE(runUntil(
        io, [] { return false; }, 20ms));
    EXPECT_EQ(clock.sleepers(), 1U);
  }  // the io_context destroys the suspended coroutine
  EXPECT_EQ(clock.sleepers(), 0U);
  latch.set();  // no sleeper of a destroyed frame is touched
  clock.advance(2h);
}

TEST(WaitAnyTest, EitherLatchEndsTheWait) {
  asio::io_context io;
  Latch a;
  Latch b;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await waitAny(a, b);
        done = true;
      },
      asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return done; }, 30ms));
  b.set();
  EXPECT_TRUE(runUntil(io, [&] { return done; }));
}

TEST(GateTest, CloseWaitsForWorkInFlightAndRefusesMore) {
  asio::io_context io;
  Gate gate;
  ASSERT_TRUE(gate.enter());
  ASSERT_TRUE(gate.enter());
  bool closed = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await gate.close();
        closed = true;
      },
      asio::detached);
  EXPECT_FALSE(runUntil(
      io, [&] { return closed; }, 30ms));
  EXPECT_FALSE(gate.enter());
  gate.leave();
  EXPECT_FALSE(runUntil(
      io, [&] { return closed; }, 30ms));
  EXPECT_EQ(gate.inFlight(), 1U);
  gate.leave();
  EXPECT_TRUE(runUntil(io, [&] { return closed; }));
}

TEST(GateTest, CloseOfAnEmptyGateReturnsAtOnce) {
  asio::io_context io;
  Gate gate;
  testing::runSync(io, gate.close());
  EXPECT_FALSE(gate.enter());
}

}  // namespace
}  // namespace burstlet
