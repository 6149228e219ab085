// Wakeup: a coroutine's sleep that another thread can cut short. A notify() that comes while
// the sleeper is busy elsewhere is kept, so its next sleep returns at once and no wake-up is
// lost between checking for work and going to sleep.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <mutex>
#include <optional>

namespace burstlet::node {

class Wakeup {
 public:
  // Sleeps for `d` or until notify(), whichever comes first; at once if notify() came since the
  // last sleep. One sleeper at a time, on an executor that runs one handler at a time (a strand
  // or a one-thread io_context): notify() cancels the timer there, never beside a running wait.
  boost::asio::awaitable<void> sleep(std::chrono::steady_clock::duration d) {
    auto executor = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer timer(executor, d);
    {
      std::lock_guard lock(mu_);
      if (pending_) {
        pending_ = false;
        co_return;
      }
      timer_ = &timer;
      executor_ = executor;
    }
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    std::lock_guard lock(mu_);
    timer_ = nullptr;
    pending_ = false;  // woken either way: the sleeper looks at its state now
  }

  // Ends the current sleep, or the next one. Thread-safe.
  void notify() {
    std::lock_guard lock(mu_);
    pending_ = true;
    if (timer_ != nullptr) {
      boost::asio::post(*executor_, [this] {
        std::lock_guard inner(mu_);
        if (timer_ != nullptr) {
          timer_->cancel();
        }
      });
    }
  }

 private:
  std::mutex mu_;                               // guards timer_, executor_ and pending_
  boost::asio::steady_timer* timer_ = nullptr;  // the sleeper's timer while it sleeps
  std::optional<boost::asio::any_io_executor> executor_;
  bool pending_ = false;  // a notify() not yet seen by the sleeper
};

}  // namespace burstlet::node
