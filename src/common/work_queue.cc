#include "common/work_queue.h"

#include <algorithm>
#include <boost/asio/async_result.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>

namespace burstlet {

namespace asio = boost::asio;

namespace {

std::chrono::nanoseconds backoffDelay(const WorkQueueOptions& options, int failures) {
  // Compare before shifting so that a long failure streak cannot overflow.
  const auto base = options.baseDelay.count();
  const auto max = options.maxDelay.count();
  if (failures >= 62 || base > (max >> failures)) {
    return options.maxDelay;
  }
  return std::chrono::nanoseconds(base * (std::int64_t{1} << failures));
}

}  // namespace

// One get() call's registration as a waiter. Its timer both wakes the getter when the earliest
// delayed key falls due and, cancelled, serves as the wakeup signal.
class WorkQueue::Waiter {
 public:
  explicit Waiter(WorkQueue& queue) : queue_(queue), timer_(queue.executor_) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
  // Also runs when a suspended get() is destroyed with its io_context: the queue must not keep
  // a pointer to the timer.
  ~Waiter() {
    std::lock_guard lock(queue_.mu_);
    unregisterLocked();
  }

  void unregisterLocked() { std::erase(queue_.waiters_, &timer_); }

  // Completes at once if there is work or the queue is shut down, else when woken or when the
  // earliest delayed key is due. The check and the arming share one lock so that a wakeup
  // between them cannot be lost.
  template <typename Token>
  auto wait(Token& token) {
    auto initiation = [this](auto handler) {
      std::lock_guard lock(queue_.mu_);
      queue_.promoteDueLocked();
      if (queue_.shutDown_ || !queue_.ready_.empty()) {
        timer_.expires_after(std::chrono::nanoseconds::zero());
      } else {
        // Timers run on real time, so the injected clock's delay is added to the real now.
        const auto delay = queue_.nextDelayLocked();
        timer_.expires_at(delay ? std::chrono::steady_clock::now() + *delay
                                : std::chrono::steady_clock::time_point::max());
        queue_.waiters_.push_back(&timer_);
      }
      timer_.async_wait(std::move(handler));
    };
    return asio::async_initiate<Token, void(boost::system::error_code)>(initiation, token);
  }

 private:
  WorkQueue& queue_;
  asio::steady_timer timer_;
};

WorkQueue::WorkQueue(asio::any_io_executor executor, const Clock& clock, WorkQueueOptions options)
    : executor_(std::move(executor)), clock_(clock), options_(options) {}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  addLocked(key);
}

void WorkQueue::addAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::lock_guard lock(mu_);
  addAfterLocked(key, delay);
}

void WorkQueue::addRateLimited(const std::string& key) {
  std::lock_guard lock(mu_);
  if (shutDown_) {
    return;
  }
  int& failures = failures_[key];
  addAfterLocked(key, backoffDelay(options_, failures));
  ++failures;
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int WorkQueue::failures(const std::string& key) const {
  std::lock_guard lock(mu_);
  const auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.erase(key) > 0 && makeReadyLocked(key)) {
    wakeOneLocked();
  }
}

void WorkQueue::shutDown() {
  std::lock_guard lock(mu_);
  shutDown_ = true;
  for (auto* timer : waiters_) {
    timer->cancel();
  }
  waiters_.clear();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(mu_);
  return shutDown_;
}

std::optional<std::string> WorkQueue::tryGet() {
  std::lock_guard lock(mu_);
  return takeLocked();
}

asio::awaitable<std::optional<std::string>> WorkQueue::get() {
  Waiter waiter(*this);
  boost::system::error_code ec;  // operation_aborted is how a wakeup arrives: not an error
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  for (;;) {
    std::optional<std::string> key;
    bool stop = false;
    {
      std::lock_guard lock(mu_);
      waiter.unregisterLocked();
      stop = shutDown_;
      key = takeLocked();
      // Each wakeup wakes one getter; pass it on while work remains so that another getter
      // takes the next ready key or re-arms for the earliest delayed one.
      if (key && (!ready_.empty() || !dueOrder_.empty())) {
        wakeOneLocked();
      }
    }
    if (stop || key) {
      co_return key;
    }
    co_await waiter.wait(token);
  }
}

std::size_t WorkQueue::length() {
  std::lock_guard lock(mu_);
  promoteDueLocked();
  return ready_.size();
}

std::size_t WorkQueue::delayedLength() {
  std::lock_guard lock(mu_);
  promoteDueLocked();
  return delayed_.size();
}

std::size_t WorkQueue::size() {
  std::lock_guard lock(mu_);
  promoteDueLocked();
  return ready_.size() + delayed_.size() + dirty_.size();
}

std::size_t WorkQueue::processing() const {
  std::lock_guard lock(mu_);
  return processing_.size();
}

std::optional<std::chrono::nanoseconds> WorkQueue::nextDelay() {
  std::lock_guard lock(mu_);
  promoteDueLocked();
  return nextDelayLocked();
}

void WorkQueue::addLocked(const std::string& key) {
  if (shutDown_) {
    return;
  }
  // Due keys go first, so that FIFO order follows the time keys became ready.
  promoteDueLocked();
  if (makeReadyLocked(key)) {
    wakeOneLocked();
  }
}

void WorkQueue::addAfterLocked(const std::string& key, std::chrono::nanoseconds delay) {
  if (delay <= std::chrono::nanoseconds::zero()) {
    addLocked(key);
    return;
  }
  if (shutDown_) {
    return;
  }
  promoteDueLocked();
  if (queued_.contains(key) || dirty_.contains(key)) {
    return;  // ready already: a later time would only delay nothing
  }
  const SteadyTime due = clock_.steadyNow() + delay;
  const auto [it, inserted] = delayed_.try_emplace(key, due);
  if (!inserted) {
    if (it->second <= due) {
      return;
    }
    dueOrder_.erase({it->second, key});
    it->second = due;
  }
  dueOrder_.emplace(due, key);
  // Sleeping getters are armed for the old earliest time.
  if (dueOrder_.begin()->second == key) {
    wakeOneLocked();
  }
}

void WorkQueue::promoteDueLocked() {
  if (dueOrder_.empty()) {
    return;
  }
  const auto now = clock_.steadyNow();
  bool readied = false;
  while (!dueOrder_.empty() && dueOrder_.begin()->first <= now) {
    const std::string key = dueOrder_.begin()->second;
    readied = makeReadyLocked(key) || readied;  // also drops it from dueOrder_
  }
  // A getter sleeps until the due time on real time; the clock may have got there first (a test
  // clock moved on), and the add that found the key due then makes nothing new ready.
  if (readied) {
    wakeOneLocked();
  }
}

bool WorkQueue::makeReadyLocked(const std::string& key) {
  dropDelayLocked(key);
  if (processing_.contains(key)) {
    dirty_.insert(key);
    return false;
  }
  if (!queued_.insert(key).second) {
    return false;
  }
  ready_.push_back(key);
  return true;
}

void WorkQueue::dropDelayLocked(const std::string& key) {
  const auto it = delayed_.find(key);
  if (it != delayed_.end()) {
    dueOrder_.erase({it->second, key});
    delayed_.erase(it);
  }
}

std::optional<std::string> WorkQueue::takeLocked() {
  if (shutDown_) {
    return std::nullopt;
  }
  promoteDueLocked();
  if (ready_.empty()) {
    return std::nullopt;
  }
  std::string key = std::move(ready_.front());
  ready_.pop_front();
  queued_.erase(key);
  processing_.insert(key);
  return key;
}

std::optional<std::chrono::nanoseconds> WorkQueue::nextDelayLocked() const {
  if (dueOrder_.empty()) {
    return std::nullopt;
  }
  return std::max(std::chrono::nanoseconds(dueOrder_.begin()->first - clock_.steadyNow()),
                  std::chrono::nanoseconds::zero());
}

void WorkQueue::wakeOneLocked() {
  if (waiters_.empty()) {
    return;
  }
  // Unregistered here so that the next wakeup goes to another getter.
  auto* timer = waiters_.front();
  waiters_.erase(waiters_.begin());
  timer->cancel();
}

}  // namespace burstlet
