// Internal to the SPDY session: a wake-up for coroutines that share one strand. Waiters look at
// their condition, wait, and look again; notifyAll() wakes every waiter of the moment. Checking
// and starting to wait happen in one step of the strand, so no notification falls in between.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace burstlet::spdy::detail {

class Event {
 public:
  explicit Event(const boost::asio::any_io_executor& executor)
      : timer_(executor, boost::asio::steady_timer::time_point::max()) {}

  // Returns after the next notifyAll() (the timer never expires by itself).
  boost::asio::awaitable<void> wait() {
    boost::system::error_code ec;
    co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }

  void notifyAll() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

}  // namespace burstlet::spdy::detail
