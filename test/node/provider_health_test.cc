#include "node/provider_health.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>

#include "mocks/ping_provider.h"
#include "mocks/run_sync.h"

namespace burstlet::node {
namespace {

using burstlet::testing::PingProvider;
using burstlet::testing::runUntil;
using Mode = PingProvider::Mode;
using std::chrono::milliseconds;

TEST(ProviderHealthTest, DurationText) {
  EXPECT_EQ(durationText(milliseconds(250)), "250ms");
  EXPECT_EQ(durationText(milliseconds(1500)), "1500ms");
  EXPECT_EQ(durationText(std::chrono::seconds(10)), "10s");
  EXPECT_EQ(durationText(std::chrono::seconds(90)), "1m30s");
  EXPECT_EQ(durationText(std::chrono::minutes(5)), "5m");
  EXPECT_EQ(durationText(std::chrono::seconds(3600 + 2)), "1h2s");
}

// A hanging ping counts as unreachable once its timeout passes, is not repeated while it
// hangs, and its late answer ends the outage; stop() waits for it.
TEST(ProviderHealthTest, AHangingPingTimesOutAndItsLateAnswerCounts) {
  boost::asio::io_context io;
  PingProvider provider;
  ProviderHealth health(provider, {milliseconds(50), milliseconds(100)}, realClock());
  std::atomic<int> changes{0};
  health.onChange([&] { ++changes; });
  std::atomic<bool> done{false};
  provider.setMode(Mode::kHang);
  boost::asio::co_spawn(io, health.run(), [&](const std::exception_ptr&) { done = true; });

  ASSERT_TRUE(runUntil(io, [&] { return !health.state().reachable; }));
  EXPECT_EQ(health.state().error, "no answer to a ping within 100ms");
  EXPECT_EQ(changes.load(), 1);
  EXPECT_EQ(provider.pingsStarted(), 1);

  health.stop();
  EXPECT_FALSE(runUntil(
      io, [&] { return done.load(); }, milliseconds(200)));
  provider.setMode(Mode::kAnswer);
  ASSERT_TRUE(runUntil(io, [&] { return done.load(); }));
  EXPECT_TRUE(health.state().reachable);
  EXPECT_EQ(changes.load(), 2);
  EXPECT_EQ(provider.pingsStarted(), 1);
}

TEST(ProviderHealthTest, FailuresAndRecoveryFlipOnce) {
  boost::asio::io_context io;
  PingProvider provider;
  ProviderHealth health(provider, {milliseconds(20), milliseconds(1000)}, realClock());
  std::atomic<int> changes{0};
  health.onChange([&] { ++changes; });
  std::atomic<bool> done{false};
  boost::asio::co_spawn(io, health.run(), [&](const std::exception_ptr&) { done = true; });
  ASSERT_TRUE(runUntil(io, [&] { return provider.pingsStarted() >= 2; }));
  EXPECT_TRUE(health.state().reachable);
  EXPECT_EQ(changes.load(), 0);

  provider.setMode(Mode::kFail);
  const int before = provider.pingsStarted();
  ASSERT_TRUE(runUntil(io, [&] { return provider.pingsStarted() >= before + 3; }));
  EXPECT_FALSE(health.state().reachable);
  EXPECT_EQ(health.state().error, "stub backend refuses connections");
  EXPECT_EQ(changes.load(), 1);

  provider.setMode(Mode::kAnswer);
  ASSERT_TRUE(runUntil(io, [&] { return health.state().reachable; }));
  EXPECT_EQ(changes.load(), 2);
  health.stop();
  ASSERT_TRUE(runUntil(io, [&] { return done.load(); }));
}

}  // namespace
}  // namespace burstlet::node
