// PingProvider: a Provider without pods whose ping() answers, fails or hangs as the test says,
// for the node's health checks (a backend that stops answering makes a ping hang for minutes).
#pragma once

#include <atomic>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "provider/provider.h"

namespace burstlet::testing {

namespace asio = boost::asio;

class PingProvider final : public provider::Provider {
 public:
  enum class Mode { kAnswer, kFail, kHang };

  // Takes effect for pings that start or are hanging: a hanging ping answers (or fails) as
  // soon as the mode leaves kHang.
  void setMode(Mode mode) { mode_ = mode; }
  // What a failing ping answers (kFail); set before the mode.
  void setFailure(std::string reason, std::string message) {
    std::lock_guard lock(mu_);
    failReason_ = std::move(reason);
    failMessage_ = std::move(message);
  }
  int pingsStarted() const { return started_.load(); }
  int pingsInFlight() const { return inFlight_.load(); }

  std::string_view name() const override { return "stub"; }
  asio::awaitable<Status> createPod(provider::Json /*pod*/) override { co_return okStatus(); }
  asio::awaitable<Status> updatePod(provider::Json /*pod*/) override { co_return okStatus(); }
  asio::awaitable<Status> deletePod(provider::PodRef /*pod*/, int64_t /*grace*/) override {
    co_return okStatus();
  }
  asio::awaitable<Result<provider::Json>> getPod(provider::PodRef /*pod*/) override {
    co_return Error::make(ErrorCode::kNotFound, "NotFound", "no pods here");
  }
  asio::awaitable<Result<std::vector<provider::Json>>> listPods() override {
    co_return std::vector<provider::Json>{};
  }
  void onPodStatusChange(std::function<void(const provider::PodRef&)> /*callback*/) override {}
  provider::NodeCapacity capacity() const override { return {}; }
  provider::NodeResources resources() const override {
    std::lock_guard lock(mu_);
    return resources_;
  }
  void onResourcesChange(std::function<void()> callback) override {
    std::lock_guard lock(callbackMu_);
    resourcesChanged_ = std::move(callback);
  }
  // What resources() answers from now on; `notify`: tells the node, as a provider does.
  void setResources(provider::NodeResources r, bool notify = true) {
    {
      std::lock_guard lock(mu_);
      resources_ = std::move(r);
    }
    std::lock_guard lock(callbackMu_);
    if (notify && resourcesChanged_) {
      resourcesChanged_();
    }
  }

  asio::awaitable<Status> ping() override {
    ++started_;
    ++inFlight_;
    // Polls: a test double need not be woken precisely, only eventually.
    while (mode_ == Mode::kHang) {
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor,
                                      std::chrono::milliseconds(5));
      boost::system::error_code ec;
      co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
    --inFlight_;
    if (mode_ == Mode::kFail) {
      std::lock_guard lock(mu_);
      co_return Error::make(ErrorCode::kUnavailable, failReason_, failMessage_);
    }
    co_return okStatus();
  }

 private:
  std::atomic<Mode> mode_{Mode::kAnswer};
  std::atomic<int> started_{0};
  std::atomic<int> inFlight_{0};
  mutable std::mutex mu_;  // guards the failure and resources_
  std::string failReason_ = "BackendUnreachable";
  std::string failMessage_ = "stub backend refuses connections";
  provider::NodeResources resources_;
  std::mutex callbackMu_;  // guards resourcesChanged_, held while it runs
  std::function<void()> resourcesChanged_;
};

}  // namespace burstlet::testing
