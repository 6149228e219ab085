#include "node/provider_health.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <exception>

namespace burstlet::node {

std::string durationText(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms < 1000 || ms % 1000 != 0) {
    return fmt::format("{}ms", ms);
  }
  const int64_t s = ms / 1000;
  std::string out;
  if (s >= 3600) {
    out += fmt::format("{}h", s / 3600);
  }
  if (s % 3600 >= 60) {
    out += fmt::format("{}m", s % 3600 / 60);
  }
  if (s % 60 != 0 || out.empty()) {
    out += fmt::format("{}s", s % 60);
  }
  return out;
}

ProviderHealth::ProviderHealth(provider::Provider& provider, ProviderHealthOptions options,
                               const Clock& clock)
    : provider_(provider), options_(options), clock_(clock) {
  state_.since = clock_.now();
}

ProviderHealthState ProviderHealth::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

void ProviderHealth::stop() {
  stopped_ = true;
  wakeup_.notify();
}

void ProviderHealth::record(const Status& answer) {
  const bool ok = answer.ok();
  bool flipped = false;
  bool news = false;
  std::string error;
  {
    std::lock_guard lock(mu_);
    if (!ok) {
      error = answer.error().message.empty() ? answer.error().toString() : answer.error().message;
    }
    std::string reason = ok ? std::string() : answer.error().reason;
    // Not a flip, but news for the node's condition: a new reason, or a new state of the
    // backend's network.
    news = reason != state_.reason ||
           (reason == provider::kBackendNetworkNotActive && error != state_.error);
    state_.error = error;
    state_.reason = std::move(reason);
    if (ok != state_.reachable) {
      flipped = true;
      state_.reachable = ok;
      state_.since = clock_.now();
      if (!ok) {
        state_.outageStart = clock_.steadyNow();
      }
    }
  }
  if (!flipped) {
    if (news && onChange_) {
      onChange_();
    }
    return;
  }
  if (ok) {
    spdlog::info("msg=\"provider reachable again\" provider={}", provider_.name());
  } else {
    spdlog::warn("msg=\"provider unreachable\" provider={} error=\"{}\"", provider_.name(), error);
  }
  if (onChange_) {
    onChange_();
  }
}

asio::awaitable<void> ProviderHealth::run() {
  const auto executor = co_await asio::this_coro::executor;
  auto nextPing = clock_.steadyNow();
  // While a ping is in flight: when its silence starts to count as unreachable. Reset once
  // that is recorded, so that a long hang is recorded once.
  std::optional<Clock::SteadyTime> deadline;
  for (;;) {
    std::optional<Status> answer;
    bool inFlight = false;
    {
      std::lock_guard lock(mu_);
      answer.swap(answer_);
      inFlight = inFlight_;
    }
    if (answer) {
      deadline.reset();
      record(*answer);
    }
    const auto now = clock_.steadyNow();
    if (inFlight && deadline && now >= *deadline) {
      deadline.reset();
      record(Error::make(ErrorCode::kTimeout, "PingTimeout",
                         "no answer to a ping within " + durationText(options_.timeout)));
    }
    if (stopped_) {
      if (!inFlight) {
        break;
      }
      // The answer wakes us; the provider's client bounds how long that takes.
      co_await wakeup_.sleep(clock_, options_.timeout);
      continue;
    }
    if (!inFlight && now >= nextPing) {
      {
        std::lock_guard lock(mu_);
        inFlight_ = true;
      }
      deadline = now + options_.timeout;
      nextPing = now + options_.interval;
      // Not awaited here: run() must go on to notice the timeout while the ping hangs.
      asio::co_spawn(executor, provider_.ping(), [this](const std::exception_ptr& e, Status s) {
        if (e) {
          s = Error::make(ErrorCode::kInternal, "PingFailed", "the provider's ping failed");
        }
        // Under the lock: once run() sees the ping done it may return, and `this` may go.
        std::lock_guard lock(mu_);
        answer_ = std::move(s);
        inFlight_ = false;
        wakeup_.notify();
      });
      continue;
    }
    auto wake = nextPing;
    if (inFlight) {
      wake = deadline ? *deadline : now + options_.interval;
    }
    co_await wakeup_.sleep(clock_, wake - now);
  }
}

}  // namespace burstlet::node
