// ProviderHealth: whether the provider's backend can be reached, from pings in a coroutine of
// their own. A backend that hangs makes a ping take minutes (the client's retries); so that
// nothing waits for that, a ping still unanswered after `timeout` counts as unreachable at once,
// and its late answer is recorded when it comes. One ping is in flight at a time.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "provider/provider.h"

namespace burstlet::node {

namespace asio = boost::asio;

// "10s", "1m30s", "250ms": durations in messages, as written in the config.
std::string durationText(std::chrono::milliseconds d);

struct ProviderHealthOptions {
  std::chrono::milliseconds interval{10'000};  // from one ping's start to the next
  std::chrono::milliseconds timeout{10'000};   // unanswered this long = unreachable
};

struct ProviderHealthState {
  bool reachable = true;          // assumed until a ping says otherwise
  std::string error;              // why not, while unreachable
  std::string reason;             // the ping error's reason, while unreachable
  Clock::WallTime since;          // when `reachable` last flipped
  Clock::SteadyTime outageStart;  // when the current outage began, while unreachable
};

class ProviderHealth {
 public:
  ProviderHealth(provider::Provider& provider, ProviderHealthOptions options, const Clock& clock);

  // Pings until stop(). Returns once no ping is in flight, so that nothing refers to the
  // provider afterwards: a hanging ping delays the return until the client gives up on it.
  // Runs on an executor that runs one handler at a time (see Wakeup).
  asio::awaitable<void> run();
  // Ends run() soon. Thread-safe.
  void stop();
  // Thread-safe.
  ProviderHealthState state() const;
  // Called when reachability flips (or, while unreachable, the reason or the network state
  // changes), on run()'s executor and never under a lock. Set before
  // run().
  void onChange(std::function<void()> callback) { onChange_ = std::move(callback); }

 private:
  void record(const Status& answer);

  provider::Provider& provider_;
  ProviderHealthOptions options_;
  const Clock& clock_;
  std::function<void()> onChange_;
  std::atomic<bool> stopped_{false};
  Wakeup wakeup_;  // run()'s sleeps, cut short by a ping's answer and by stop()
  // Guards state_, inFlight_ and answer_: the ping's completion runs apart from run(), and
  // state() is read from other threads of the io_context (the node's loop, /metrics).
  mutable std::mutex mu_;
  ProviderHealthState state_;
  bool inFlight_ = false;
  std::optional<Status> answer_;  // a ping's answer that run() has not recorded yet
};

}  // namespace burstlet::node
