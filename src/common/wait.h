// Waiting without polling: a Latch that coroutines await, sleeps on the Clock that a Latch
// cuts short, a Wakeup for loops that sleep between rounds of work, and the Signals by which a
// component says it started, is ready and stopped.
//
// Sleeps go through the Clock, so a test's FakeClock wakes them when it is advanced instead of
// the test sleeping. A coroutine that sleeps or waits must run on an executor that runs one
// handler at a time (a strand, or an io_context run by one thread): wake-ups from other threads
// are posted there, never run beside the waiting coroutine.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "common/clock.h"

namespace burstlet {

namespace detail {
class Sleeper;
}  // namespace detail

// Set once, stays set. set() and isSet() from any thread; any number of coroutines, on any
// executors, may wait() at once.
class Latch {
 public:
  Latch() = default;
  Latch(const Latch&) = delete;
  Latch& operator=(const Latch&) = delete;
  ~Latch();

  // Sets the latch and wakes every waiter. Idempotent.
  void set();
  bool isSet() const { return set_.load(std::memory_order_acquire); }
  // Returns once the latch is set (at once when it is).
  boost::asio::awaitable<void> wait() const;

  // For the waits in wait.cc: adds a sleeper to wake on set(), false (and nothing added) when
  // already set; removes it again.
  bool add(const std::shared_ptr<detail::Sleeper>& sleeper) const;
  void remove(const detail::Sleeper* sleeper) const;

 private:
  mutable std::mutex mu_;  // guards sleepers_; set_ changes under it too
  std::atomic<bool> set_{false};
  mutable std::vector<std::shared_ptr<detail::Sleeper>> sleepers_;
};

// Sleeps until `clock` reaches `deadline`, or until `cancel` (when given) is set.
// True when the time came, false when cancelled (at once when `cancel` is already set).
boost::asio::awaitable<bool> sleepUntil(const Clock& clock, Clock::SteadyTime deadline,
                                        const Latch* cancel = nullptr);
boost::asio::awaitable<bool> sleepFor(const Clock& clock, std::chrono::nanoseconds d,
                                      const Latch* cancel = nullptr);
// Waits until `latch` is set or `timeout` passed on `clock`; true when the latch is set.
boost::asio::awaitable<bool> waitFor(const Latch& latch, const Clock& clock,
                                     std::chrono::nanoseconds timeout);

// A loop's sleep between rounds that another thread can cut short: notify() ends the current
// sleep, or the next one when it comes while the loop is busy, so no wake-up is lost between
// looking for work and going to sleep. One sleeper at a time.
class Wakeup {
 public:
  // Sleeps `d` on `clock`, until notify(), or until `cancel` is set, whichever comes first;
  // returns at once when notify() came since the last sleep or `cancel` is set.
  boost::asio::awaitable<void> sleep(const Clock& clock, std::chrono::nanoseconds d,
                                     const Latch* cancel = nullptr);
  // Thread-safe.
  void notify();

 private:
  std::mutex mu_;                             // guards current_ and pending_
  std::shared_ptr<detail::Sleeper> current_;  // the sleeper's while it sleeps
  bool pending_ = false;                      // a notify() not yet seen by the sleeper
};

// Returns once `a` or `b` is set.
boost::asio::awaitable<void> waitAny(const Latch& a, const Latch& b);

// Counts work in flight (coroutines a component spawned) so that stopping can await its end:
// enter() before the work starts, leave() when it ends, close() to refuse more and wait for
// what is in flight. Thread-safe.
class Gate {
 public:
  // False once closed: the work must not start.
  bool enter();
  void leave();
  // Refuses further enter() and returns once every entered piece of work has left.
  boost::asio::awaitable<void> close();
  size_t inFlight() const;

 private:
  mutable std::mutex mu_;  // guards count_ and closed_
  size_t count_ = 0;
  bool closed_ = false;
  Latch drained_;  // set once closed and empty
};

// How a component tells others where it is: `started` once its run() began, `ready` once it
// serves (informers listed, backend reconciled: what "ready" means is the component's to say),
// `stopped` once its run() returned. Others await them instead of polling flags. A component
// that stops before it was ready never sets `ready`; waiters await `ready` and `stopped`
// together through readyOrStopped().
struct Signals {
  Latch started;
  Latch ready;
  Latch stopped;
};

// Returns once `s.ready` or `s.stopped` is set; true when ready.
boost::asio::awaitable<bool> readyOrStopped(const Signals& s);

}  // namespace burstlet
