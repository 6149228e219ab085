#include "common/work_queue.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mocks/fake_clock.h"
#include "mocks/run_sync.h"

namespace burstlet {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<void> getInto(WorkQueue& queue, std::optional<std::string>& out, bool& finished) {
  out = co_await queue.get();
  finished = true;
}

class QueueFixture : public ::testing::Test {
 protected:
  explicit QueueFixture(bool realTime)
      : queue_(io_.get_executor(), realTime ? realClock() : clock_) {}

  // The queue and the getters' results must outlive suspended get() calls, so even a test that
  // stops early ends them here.
  void TearDown() override {
    queue_.shutDown();
    io_.restart();
    io_.run();
  }

  // Starts a get() whose key lands in got_[i] and that sets finished_[i].
  void spawnGet(int i) {
    asio::co_spawn(io_, getInto(queue_, got_[i], finished_[i]), asio::detached);
  }

  // Runs the io_context until `done` holds, for at most 5 seconds.
  void runUntil(const std::function<bool()>& done) { testing::runUntil(io_, done, 5s); }

  asio::io_context io_;
  testing::FakeClock clock_;
  WorkQueue queue_;
  std::optional<std::string> got_[3];
  bool finished_[3] = {false, false, false};
};

class WorkQueueTest : public QueueFixture {
 protected:
  WorkQueueTest() : QueueFixture(false) {}
};

class WorkQueueRealTimeTest : public QueueFixture {
 protected:
  WorkQueueRealTimeTest() : QueueFixture(true) {}
};

TEST_F(WorkQueueTest, DeduplicatesWaitingKeys) {
  queue_.add("ns/a");
  queue_.add("ns/a");
  queue_.add("ns/b");
  EXPECT_EQ(queue_.length(), 2U);
  EXPECT_EQ(queue_.size(), 2U);
  EXPECT_EQ(queue_.tryGet(), "ns/a");
  EXPECT_EQ(queue_.tryGet(), "ns/b");
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  EXPECT_EQ(queue_.processing(), 2U);
  EXPECT_EQ(queue_.size(), 0U);
}

TEST_F(WorkQueueTest, HandsOutInFifoOrder) {
  for (const char* key : {"ns/c", "ns/a", "ns/b"}) {
    queue_.add(key);
  }
  EXPECT_EQ(queue_.tryGet(), "ns/c");
  EXPECT_EQ(queue_.tryGet(), "ns/a");
  EXPECT_EQ(queue_.tryGet(), "ns/b");
}

TEST_F(WorkQueueTest, KeyAddedWhileProcessingComesBackAfterDone) {
  queue_.add("ns/a");
  queue_.add("ns/b");
  ASSERT_EQ(queue_.tryGet(), "ns/a");
  queue_.add("ns/a");
  queue_.add("ns/a");
  // Not handed out a second time while in flight, but not lost either.
  EXPECT_EQ(queue_.tryGet(), "ns/b");
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  EXPECT_EQ(queue_.length(), 0U);
  EXPECT_EQ(queue_.size(), 1U);
  queue_.done("ns/a");
  EXPECT_EQ(queue_.processing(), 1U);
  EXPECT_EQ(queue_.tryGet(), "ns/a");
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  queue_.done("ns/a");
  queue_.done("ns/b");
  EXPECT_EQ(queue_.processing(), 0U);
  EXPECT_EQ(queue_.size(), 0U);
}

TEST_F(WorkQueueTest, DoneWithoutReAddDoesNotRequeue) {
  queue_.add("ns/a");
  ASSERT_EQ(queue_.tryGet(), "ns/a");
  queue_.done("ns/a");
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  EXPECT_EQ(queue_.size(), 0U);
}

TEST_F(WorkQueueTest, AddAfterIsReadyOnlyOnceDue) {
  queue_.addAfter("ns/a", 1s);
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  EXPECT_EQ(queue_.delayedLength(), 1U);
  EXPECT_EQ(queue_.length(), 0U);
  EXPECT_EQ(queue_.size(), 1U);
  EXPECT_EQ(queue_.nextDelay(), 1s);
  clock_.advance(999ms);
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  EXPECT_EQ(queue_.nextDelay(), 1ms);
  clock_.advance(1ms);
  EXPECT_EQ(queue_.length(), 1U);
  EXPECT_EQ(queue_.delayedLength(), 0U);
  EXPECT_EQ(queue_.nextDelay(), std::nullopt);
  EXPECT_EQ(queue_.tryGet(), "ns/a");
}

TEST_F(WorkQueueTest, AddAfterKeepsTheEarlierTime) {
  queue_.addAfter("ns/a", 5s);
  queue_.addAfter("ns/a", 2s);
  EXPECT_EQ(queue_.nextDelay(), 2s);
  queue_.addAfter("ns/a", 10s);
  EXPECT_EQ(queue_.nextDelay(), 2s);
  EXPECT_EQ(queue_.delayedLength(), 1U);
  clock_.advance(2s);
  EXPECT_EQ(queue_.tryGet(), "ns/a");
  queue_.done("ns/a");
  // The superseded 5s and 10s times leave nothing behind.
  clock_.advance(10s);
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
}

TEST_F(WorkQueueTest, AddAfterOfAReadyKeyChangesNothing) {
  queue_.add("ns/a");
  queue_.addAfter("ns/a", 1s);
  EXPECT_EQ(queue_.delayedLength(), 0U);
  EXPECT_EQ(queue_.nextDelay(), std::nullopt);
  // And add() of a delayed key makes it ready now, dropping the delay.
  queue_.addAfter("ns/b", 1s);
  queue_.add("ns/b");
  EXPECT_EQ(queue_.delayedLength(), 0U);
  EXPECT_EQ(queue_.tryGet(), "ns/a");
  EXPECT_EQ(queue_.tryGet(), "ns/b");
}

TEST_F(WorkQueueTest, DueKeysJoinTheLineBeforeLaterAdds) {
  queue_.addAfter("ns/a", 1s);
  clock_.advance(1s);
  queue_.add("ns/b");
  EXPECT_EQ(queue_.tryGet(), "ns/a");
  EXPECT_EQ(queue_.tryGet(), "ns/b");
}

TEST_F(WorkQueueTest, DelayedKeyDueWhileProcessingWaitsForDone) {
  queue_.add("ns/a");
  ASSERT_EQ(queue_.tryGet(), "ns/a");
  queue_.addAfter("ns/a", 1s);
  clock_.advance(1s);
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  queue_.done("ns/a");
  EXPECT_EQ(queue_.tryGet(), "ns/a");
}

TEST_F(WorkQueueTest, RateLimitedBackoffDoublesUpToTheCap) {
  WorkQueue queue(io_.get_executor(), clock_, WorkQueueOptions{100ms, 1s});
  const std::vector<std::chrono::nanoseconds> want = {100ms, 200ms, 400ms, 800ms, 1s, 1s};
  for (std::size_t i = 0; i < want.size(); ++i) {
    queue.addRateLimited("ns/a");
    EXPECT_EQ(queue.failures("ns/a"), static_cast<int>(i + 1));
    EXPECT_EQ(queue.nextDelay(), want[i]) << "attempt " << i;
    clock_.advance(want[i]);
    ASSERT_EQ(queue.tryGet(), "ns/a");
    queue.done("ns/a");
  }
  queue.forget("ns/a");
  EXPECT_EQ(queue.failures("ns/a"), 0);
  queue.addRateLimited("ns/a");
  EXPECT_EQ(queue.nextDelay(), 100ms);
}

TEST_F(WorkQueueTest, RateLimitedDefaultsCapAtSixtySeconds) {
  EXPECT_EQ(queue_.failures("ns/a"), 0);
  for (int i = 0; i < 100; ++i) {
    queue_.addRateLimited("ns/a");
    clock_.advance(60s);
    ASSERT_EQ(queue_.tryGet(), "ns/a");
    queue_.done("ns/a");
  }
  queue_.addRateLimited("ns/a");
  EXPECT_EQ(queue_.nextDelay(), 60s);
  EXPECT_EQ(queue_.failures("ns/a"), 101);
  // Failures are per key.
  queue_.addRateLimited("ns/b");
  EXPECT_EQ(queue_.failures("ns/b"), 1);
  clock_.advance(100ms);
  EXPECT_EQ(queue_.tryGet(), "ns/b");
}

TEST_F(WorkQueueTest, ShutDownIgnoresAddsAndStopsTryGet) {
  queue_.add("ns/a");
  queue_.shutDown();
  EXPECT_TRUE(queue_.shuttingDown());
  queue_.add("ns/b");
  queue_.addAfter("ns/c", 1s);
  queue_.addRateLimited("ns/d");
  EXPECT_EQ(queue_.tryGet(), std::nullopt);
  EXPECT_EQ(queue_.size(), 1U);
  EXPECT_EQ(queue_.failures("ns/d"), 0);
}

TEST_F(WorkQueueTest, GetReturnsAReadyKeyAtOnce) {
  queue_.add("ns/a");
  EXPECT_EQ(testing::runSync(io_, queue_.get()), "ns/a");
  EXPECT_EQ(queue_.processing(), 1U);
}

TEST_F(WorkQueueTest, ShutDownEndsEveryWaitingGet) {
  for (int i = 0; i < 3; ++i) {
    got_[i] = "unset";
    spawnGet(i);
  }
  io_.poll();
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(finished_[i]) << "getter " << i << " did not wait";
  }
  queue_.shutDown();
  runUntil([this] { return finished_[0] && finished_[1] && finished_[2]; });
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(finished_[i]);
    EXPECT_EQ(got_[i], std::nullopt);
  }
  EXPECT_EQ(testing::runSync(io_, queue_.get()), std::nullopt);
}

TEST_F(WorkQueueTest, AddWakesAWaitingGet) {
  spawnGet(0);
  io_.poll();
  ASSERT_FALSE(finished_[0]);
  queue_.add("ns/a");
  runUntil([this] { return finished_[0]; });
  EXPECT_TRUE(finished_[0]);
  EXPECT_EQ(got_[0], "ns/a");
}

// The getter sleeps on a real timer for the delay; a key found due (on a clock that moved on)
// by an add wakes it at once.
TEST_F(WorkQueueTest, AKeyFoundDueWakesAWaitingGet) {
  queue_.addAfter("ns/a", 1h);
  spawnGet(0);
  io_.poll();
  ASSERT_FALSE(finished_[0]);
  clock_.advance(1h);
  queue_.add("ns/a");
  runUntil([this] { return finished_[0]; });
  EXPECT_TRUE(finished_[0]);
  EXPECT_EQ(got_[0], "ns/a");
}

TEST_F(WorkQueueTest, DoneWakesAGetWaitingForAReAddedKey) {
  queue_.add("ns/a");
  ASSERT_EQ(queue_.tryGet(), "ns/a");
  queue_.add("ns/a");
  spawnGet(0);
  io_.poll();
  ASSERT_FALSE(finished_[0]);
  queue_.done("ns/a");
  runUntil([this] { return finished_[0]; });
  EXPECT_TRUE(finished_[0]);
  EXPECT_EQ(got_[0], "ns/a");
}

TEST_F(WorkQueueRealTimeTest, GetDeliversADelayedKeyAfterItsDelay) {
  const auto start = std::chrono::steady_clock::now();
  queue_.addAfter("ns/a", 20ms);
  EXPECT_EQ(testing::runSync(io_, queue_.get()), "ns/a");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 20ms);
  EXPECT_LT(elapsed, 5s);
}

TEST_F(WorkQueueRealTimeTest, EarlierAddAfterRearmsAWaitingGet) {
  queue_.addAfter("ns/late", 1h);
  spawnGet(0);
  io_.poll();
  ASSERT_FALSE(finished_[0]);
  queue_.addAfter("ns/soon", 20ms);
  runUntil([this] { return finished_[0]; });
  EXPECT_TRUE(finished_[0]);
  EXPECT_EQ(got_[0], "ns/soon");
}

TEST_F(WorkQueueRealTimeTest, DelayedKeysReachEveryWaitingGet) {
  spawnGet(0);
  spawnGet(1);
  io_.poll();
  // Only one getter re-arms for the first key; the second key must still find the other one.
  queue_.addAfter("ns/a", 20ms);
  queue_.addAfter("ns/b", 40ms);
  runUntil([this] { return finished_[0] && finished_[1]; });
  ASSERT_TRUE(finished_[0] && finished_[1]);
  EXPECT_EQ(std::set<std::optional<std::string>>({got_[0], got_[1]}),
            std::set<std::optional<std::string>>({"ns/a", "ns/b"}));
  EXPECT_EQ(queue_.processing(), 2U);
}

// Shared by the drain workers; guarded by mu.
struct DrainState {
  std::mutex mu;
  std::map<std::string, int> handled;
  std::set<std::string> inFlight;
  int concurrentSyncs = 0;
  int total = 0;
};

asio::awaitable<void> drainWorker(WorkQueue& queue, DrainState& state) {
  const auto executor = co_await asio::this_coro::executor;
  for (;;) {
    const std::optional<std::string> key = co_await queue.get();
    if (!key) {
      co_return;
    }
    {
      std::lock_guard lock(state.mu);
      if (!state.inFlight.insert(*key).second) {
        ++state.concurrentSyncs;
      }
      ++state.handled[*key];
    }
    // Let the other workers and the producer run while this key is in flight.
    co_await asio::post(executor, asio::use_awaitable);
    bool last = false;
    {
      std::lock_guard lock(state.mu);
      state.inFlight.erase(*key);
      last = ++state.total == 1000;
    }
    queue.done(*key);
    if (last) {
      queue.shutDown();
    }
  }
}

asio::awaitable<void> produce(WorkQueue& queue, int from, int to) {
  const auto executor = co_await asio::this_coro::executor;
  for (int i = from; i < to; ++i) {
    queue.add("ns/pod-" + std::to_string(i));
    co_await asio::post(executor, asio::use_awaitable);
  }
}

void drainThousandKeys(int threads) {
  asio::io_context io;
  WorkQueue queue(io.get_executor(), realClock());
  DrainState state;
  for (int i = 0; i < 500; ++i) {
    queue.add("ns/pod-" + std::to_string(i));
  }
  for (int w = 0; w < 4; ++w) {
    asio::co_spawn(io, drainWorker(queue, state), asio::detached);
  }
  asio::co_spawn(io, produce(queue, 500, 1000), asio::detached);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& thread : pool) {
    thread.join();
  }
  EXPECT_EQ(state.total, 1000);
  EXPECT_EQ(state.handled.size(), 1000U);
  for (const auto& [key, count] : state.handled) {
    EXPECT_EQ(count, 1) << key;
  }
  EXPECT_EQ(state.concurrentSyncs, 0);
  EXPECT_EQ(queue.size(), 0U);
  EXPECT_EQ(queue.processing(), 0U);
}

TEST(WorkQueueAsyncTest, FourWorkersDrainAThousandKeysOnce) { drainThousandKeys(1); }

TEST(WorkQueueAsyncTest, FourWorkersDrainAThousandKeysOnceOnFourThreads) { drainThousandKeys(4); }

// Producer and workers of the re-add test; guarded by mu.
struct ReAddState {
  std::mutex mu;
  std::map<std::string, int> version;  // bumped before each add
  std::map<std::string, int> synced;   // the version the last sync saw
  std::set<std::string> inFlight;
  int concurrentSyncs = 0;
  int addsWhileInFlight = 0;  // proves the test exercised the case it is about
};

asio::awaitable<void> reAddWorker(WorkQueue& queue, ReAddState& state) {
  const auto executor = co_await asio::this_coro::executor;
  for (;;) {
    const std::optional<std::string> key = co_await queue.get();
    if (!key) {
      co_return;
    }
    {
      std::lock_guard lock(state.mu);
      if (!state.inFlight.insert(*key).second) {
        ++state.concurrentSyncs;
      }
      state.synced[*key] = state.version[*key];
    }
    // A slow sync, so that the producer adds keys that are in flight.
    for (int i = 0; i < 5; ++i) {
      co_await asio::post(executor, asio::use_awaitable);
    }
    {
      std::lock_guard lock(state.mu);
      state.inFlight.erase(*key);
    }
    queue.done(*key);
  }
}

asio::awaitable<void> reAddProducer(WorkQueue& queue, ReAddState& state) {
  const auto executor = co_await asio::this_coro::executor;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = "ns/pod-" + std::to_string(i % 5);
    {
      std::lock_guard lock(state.mu);
      ++state.version[key];
      state.addsWhileInFlight += static_cast<int>(state.inFlight.contains(key));
    }
    queue.add(key);
    co_await asio::post(executor, asio::use_awaitable);
  }
  // size() counts keys added again while in flight, so zero of both means all work is done.
  while (queue.size() > 0 || queue.processing() > 0) {
    co_await asio::post(executor, asio::use_awaitable);
  }
  queue.shutDown();
}

TEST(WorkQueueAsyncTest, ReAddsDuringProcessingAreNeitherConcurrentNorLost) {
  asio::io_context io;
  WorkQueue queue(io.get_executor(), realClock());
  ReAddState state;
  for (int w = 0; w < 4; ++w) {
    asio::co_spawn(io, reAddWorker(queue, state), asio::detached);
  }
  asio::co_spawn(io, reAddProducer(queue, state), asio::detached);
  std::vector<std::thread> pool;
  for (int t = 1; t < 4; ++t) {
    pool.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& thread : pool) {
    thread.join();
  }
  EXPECT_EQ(state.concurrentSyncs, 0);
  EXPECT_GT(state.addsWhileInFlight, 100);
  ASSERT_EQ(state.version.size(), 5U);
  EXPECT_EQ(state.synced, state.version);
}

}  // namespace
}  // namespace burstlet
