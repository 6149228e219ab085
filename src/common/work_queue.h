// WorkQueue: the keyed queue between informers and controller workers. Keys ("namespace/name")
// are de-duplicated while they wait, and a key is never handed to two workers at once: an add
// during processing is remembered and the key comes back after done(), so no update is lost
// and each object has at most one sync in flight. Retries back off per key.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace burstlet {

struct WorkQueueOptions {
  // addRateLimited waits baseDelay * 2^failures, at most maxDelay.
  std::chrono::nanoseconds baseDelay = std::chrono::milliseconds(100);
  std::chrono::nanoseconds maxDelay = std::chrono::seconds(60);
};

class WorkQueue {
 public:
  // Delays are measured with `clock`; getters wait on timers of `executor`. Both must outlive
  // the queue, and the queue must outlive its get() calls (shutDown() ends them).
  WorkQueue(boost::asio::any_io_executor executor, const Clock& clock,
            WorkQueueOptions options = {});
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Makes `key` ready now. Any later addAfter time for it is dropped.
  void add(const std::string& key);
  // Makes `key` ready after `delay`, unless it is ready already or due earlier.
  void addAfter(const std::string& key, std::chrono::nanoseconds delay);
  // addAfter with the key's backoff delay, then counts one more failure for it.
  void addRateLimited(const std::string& key);
  // Resets the key's failure count, after a successful sync or when the object is gone.
  void forget(const std::string& key);
  int failures(const std::string& key) const;

  // Ends processing of a key handed out by tryGet()/get(); re-queues it if added meanwhile.
  void done(const std::string& key);

  // Ends all get() calls with nullopt and ignores adds from now on.
  void shutDown();
  bool shuttingDown() const;

  // The first ready key in FIFO order, now marked processing; nullopt if none is ready or after
  // shutDown().
  std::optional<std::string> tryGet();
  // Waits for a ready key (as tryGet) or shutDown(). Several workers may wait at once.
  boost::asio::awaitable<std::optional<std::string>> get();

  // The counters below first move delayed keys that are due to the ready line, hence not const.
  // Keys ready to hand out: the queue depth.
  std::size_t length();
  // Keys waiting for their addAfter time.
  std::size_t delayedLength();
  // Keys waiting in any way: ready, delayed, or added again while processing.
  std::size_t size();
  // Keys handed out and not yet done.
  std::size_t processing() const;
  // Time until the earliest delayed key is due; nullopt if none is delayed.
  std::optional<std::chrono::nanoseconds> nextDelay();

 private:
  using SteadyTime = Clock::SteadyTime;
  class Waiter;

  void addLocked(const std::string& key);
  void addAfterLocked(const std::string& key, std::chrono::nanoseconds delay);
  void promoteDueLocked();
  bool makeReadyLocked(const std::string& key);
  void dropDelayLocked(const std::string& key);
  std::optional<std::string> takeLocked();
  std::optional<std::chrono::nanoseconds> nextDelayLocked() const;
  void wakeOneLocked();

  boost::asio::any_io_executor executor_;
  const Clock& clock_;
  const WorkQueueOptions options_;

  // Guards every member below, including the waiters' timers: a timer is armed and cancelled
  // only under it, so a wakeup from any thread can neither race the arming nor be lost.
  mutable std::mutex mu_;
  std::deque<std::string> ready_;                          // FIFO of keys to hand out
  std::unordered_set<std::string> queued_;                 // the keys in ready_
  std::unordered_set<std::string> processing_;             // handed out, not done
  std::unordered_set<std::string> dirty_;                  // processing keys added again
  std::unordered_map<std::string, SteadyTime> delayed_;    // key -> due time
  std::set<std::pair<SteadyTime, std::string>> dueOrder_;  // delayed_, earliest first
  std::unordered_map<std::string, int> failures_;
  std::vector<boost::asio::steady_timer*> waiters_;  // timers of get() calls waiting for work
  bool shutDown_ = false;
};

}  // namespace burstlet
