#include "common/wait.h"

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

namespace burstlet {

namespace asio = boost::asio;

namespace detail {

// One wait of one coroutine: a timer on the coroutine's executor that anything holding the
// sleeper (latches, the clock, a Wakeup) may cancel from any thread. Shared, so a wake-up posted
// just before the wait ended finds a live timer.
class Sleeper final : public Clock::Alarm, public std::enable_shared_from_this<Sleeper> {
 public:
  explicit Sleeper(const asio::any_io_executor& executor) : executor_(executor), timer_(executor) {}

  void ring() override { wake(); }

  // Ends the wait (or makes the coming one return at once). Thread-safe, idempotent.
  void wake() {
    std::lock_guard lock(mu_);
    if (woken_) {
      return;
    }
    woken_ = true;
    asio::post(executor_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

  bool woken() const {
    std::lock_guard lock(mu_);
    return woken_;
  }

  // Waits until wake(), or until `clock` reaches `deadline` when one is given.
  asio::awaitable<void> wait(const Clock* clock, std::optional<Clock::SteadyTime> deadline) {
    if (deadline && clock != nullptr) {
      if (clock->setAlarm(*this, *deadline)) {
        clockWithAlarm_ = clock;
        timer_.expires_at(asio::steady_timer::time_point::max());
      } else {
        const auto left = *deadline - clock->steadyNow();
        timer_.expires_after(std::max(left, Clock::SteadyTime::duration::zero()));
      }
    } else {
      timer_.expires_at(asio::steady_timer::time_point::max());
    }
    if (!woken()) {
      // A wake() from here on is posted behind this coroutine's step, so it cancels the
      // wait started below rather than racing it.
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    forgetAlarm();
  }

  // Called when the wait is over or abandoned: the clock rings the alarm no more.
  void forgetAlarm() {
    if (clockWithAlarm_ != nullptr) {
      clockWithAlarm_->cancelAlarm(*this);
      clockWithAlarm_ = nullptr;
    }
  }

 private:
  mutable std::mutex mu_;  // guards woken_
  bool woken_ = false;
  asio::any_io_executor executor_;
  asio::steady_timer timer_;  // touched only on executor_
  const Clock* clockWithAlarm_ = nullptr;
};

namespace {

// Removes a sleeper from its latch and clock when the waiting coroutine ends, also when its
// frame is destroyed mid-wait (an io_context torn down).
class Registration {
 public:
  Registration(std::shared_ptr<Sleeper> sleeper, const Latch* latch)
      : sleeper_(std::move(sleeper)), latch_(latch) {}
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration() {
    sleeper_->forgetAlarm();
    if (latch_ != nullptr) {
      latch_->remove(sleeper_.get());
    }
  }

 private:
  std::shared_ptr<Sleeper> sleeper_;
  const Latch* latch_;
};

}  // namespace

}  // namespace detail

Latch::~Latch() = default;

void Latch::set() {
  std::vector<std::shared_ptr<detail::Sleeper>> woken;
  {
    std::lock_guard lock(mu_);
    set_.store(true, std::memory_order_release);
    woken.swap(sleepers_);
  }
  for (auto& s : woken) {
    s->wake();
  }
}

bool Latch::add(const std::shared_ptr<detail::Sleeper>& sleeper) const {
  std::lock_guard lock(mu_);
  if (set_.load(std::memory_order_relaxed)) {
    return false;
  }
  sleepers_.push_back(sleeper);
  return true;
}

void Latch::remove(const detail::Sleeper* sleeper) const {
  std::lock_guard lock(mu_);
  std::erase_if(sleepers_, [sleeper](const auto& s) { return s.get() == sleeper; });
}

asio::awaitable<void> Latch::wait() const {
  auto sleeper = std::make_shared<detail::Sleeper>(co_await asio::this_coro::executor);
  if (!add(sleeper)) {
    co_return;
  }
  const detail::Registration registration(sleeper, this);
  co_await sleeper->wait(nullptr, std::nullopt);
}

asio::awaitable<bool> sleepUntil(const Clock& clock, Clock::SteadyTime deadline,
                                 const Latch* cancel) {
  auto sleeper = std::make_shared<detail::Sleeper>(co_await asio::this_coro::executor);
  if (cancel != nullptr && !cancel->add(sleeper)) {
    co_return false;
  }
  const detail::Registration registration(sleeper, cancel);
  co_await sleeper->wait(&clock, deadline);
  co_return cancel == nullptr || !cancel->isSet();
}

asio::awaitable<bool> sleepFor(const Clock& clock, std::chrono::nanoseconds d,
                               const Latch* cancel) {
  const auto deadline =
      clock.steadyNow() + std::chrono::duration_cast<Clock::SteadyTime::duration>(d);
  co_return co_await sleepUntil(clock, deadline, cancel);
}

asio::awaitable<bool> waitFor(const Latch& latch, const Clock& clock,
                              std::chrono::nanoseconds timeout) {
  co_await sleepFor(clock, timeout, &latch);
  co_return latch.isSet();
}

asio::awaitable<void> Wakeup::sleep(const Clock& clock, std::chrono::nanoseconds d,
                                    const Latch* cancel) {
  auto sleeper = std::make_shared<detail::Sleeper>(co_await asio::this_coro::executor);
  {
    std::lock_guard lock(mu_);
    if (pending_) {
      pending_ = false;
      co_return;
    }
    current_ = sleeper;
  }
  if (cancel == nullptr || cancel->add(sleeper)) {
    const detail::Registration registration(sleeper, cancel);
    const auto deadline =
        clock.steadyNow() + std::chrono::duration_cast<Clock::SteadyTime::duration>(d);
    co_await sleeper->wait(&clock, deadline);
  }
  std::lock_guard lock(mu_);
  current_.reset();
  pending_ = false;  // woken either way: the sleeper looks at its state now
}

void Wakeup::notify() {
  std::lock_guard lock(mu_);
  pending_ = true;
  if (current_) {
    current_->wake();
  }
}

asio::awaitable<void> waitAny(const Latch& a, const Latch& b) {
  auto sleeper = std::make_shared<detail::Sleeper>(co_await asio::this_coro::executor);
  if (a.add(sleeper)) {
    const detail::Registration onA(sleeper, &a);
    if (b.add(sleeper)) {
      const detail::Registration onB(sleeper, &b);
      co_await sleeper->wait(nullptr, std::nullopt);
    }
  }
}

bool Gate::enter() {
  std::lock_guard lock(mu_);
  if (closed_) {
    return false;
  }
  ++count_;
  return true;
}

void Gate::leave() {
  bool drained = false;
  {
    std::lock_guard lock(mu_);
    drained = --count_ == 0 && closed_;
  }
  if (drained) {
    drained_.set();
  }
}

asio::awaitable<void> Gate::close() {
  bool drained = false;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    drained = count_ == 0;
  }
  if (drained) {
    drained_.set();
  }
  co_await drained_.wait();
}

size_t Gate::inFlight() const {
  std::lock_guard lock(mu_);
  return count_;
}

asio::awaitable<bool> readyOrStopped(const Signals& s) {
  co_await waitAny(s.ready, s.stopped);
  co_return s.ready.isSet();
}

}  // namespace burstlet
