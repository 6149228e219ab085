// StreamingProvider: a provider for the kubelet API's tests. Logs are chunks the test sets
// (with `follow`, the stream then stays open until cancelled); exec and attach run an echo
// session (stdin back on stdout, "err:..." on stderr, resizes reported, the exit code the test
// set once stdin closes); stats are the document the test sets. It records what was asked.
#pragma once

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "provider/provider.h"

namespace burstlet::testing {

namespace asio = boost::asio;

// Wakes one coroutine waiting on it; all on one executor, but notifyFromAnyThread() may be
// called from anywhere.
class WakeUp {
 public:
  explicit WakeUp(const asio::any_io_executor& executor) : timer_(executor) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  asio::awaitable<void> wait() {
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  void notify() { timer_.cancel(); }
  asio::any_io_executor executor() { return timer_.get_executor(); }

 private:
  asio::steady_timer timer_;
};

// What the streams' cancel() does (thread-safe): mark `cancelled` (counting the first time in
// `cancels`) and wake the stream's reader on its executor.
inline void cancelOnce(std::atomic<bool>& cancelled, std::atomic<int>& cancels,
                       const std::shared_ptr<WakeUp>& wake) {
  if (!cancelled.exchange(true)) {
    ++cancels;
  }
  asio::post(wake->executor(), [wake] { wake->notify(); });
}

class ScriptedLogStream final : public provider::ByteStream {
 public:
  ScriptedLogStream(const asio::any_io_executor& executor, std::vector<std::string> chunks,
                    bool follow, std::atomic<int>& cancels)
      : wake_(std::make_shared<WakeUp>(executor)),
        chunks_(chunks.begin(), chunks.end()),
        follow_(follow),
        cancels_(cancels) {}
  asio::awaitable<Result<std::optional<std::string>>> read() override {
    for (;;) {
      if (cancelled_->load()) {
        co_return Error::make(ErrorCode::kCancelled, "Cancelled", "log stream cancelled");
      }
      if (!chunks_.empty()) {
        std::string next = std::move(chunks_.front());
        chunks_.pop_front();
        co_return std::optional<std::string>(std::move(next));
      }
      if (!follow_) {
        co_return std::optional<std::string>();
      }
      co_await wake_->wait();
    }
  }
  void cancel() override { cancelOnce(*cancelled_, cancels_, wake_); }

 private:
  std::shared_ptr<WakeUp> wake_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::deque<std::string> chunks_;
  bool follow_;
  std::atomic<int>& cancels_;
};

class EchoSession final : public provider::ExecSession {
 public:
  EchoSession(const asio::any_io_executor& executor, const provider::ExecOptions& options,
              int exitCode, std::atomic<int>& cancels)
      : wake_(std::make_shared<WakeUp>(executor)), exitCode_(exitCode), cancels_(cancels) {
    if (!options.command.empty()) {
      std::string line;
      for (const auto& part : options.command) {
        line += (line.empty() ? "" : " ") + part;
      }
      out_.push_back({1, line + "\n"});
    }
    stdinClosed_ = !options.stdinOpen;
  }
  asio::awaitable<Status> writeStdin(std::string data) override {
    if (data.empty()) {
      stdinClosed_ = true;
    } else if (data.starts_with("err:")) {
      out_.push_back({2, data.substr(4)});
    } else {
      out_.push_back({1, std::move(data)});
    }
    wake_->notify();
    co_return okStatus();
  }
  asio::awaitable<Result<std::optional<provider::OutputChunk>>> read() override {
    for (;;) {
      if (cancelled_->load()) {
        co_return Error::make(ErrorCode::kCancelled, "Cancelled", "session cancelled");
      }
      if (!out_.empty()) {
        auto next = std::move(out_.front());
        out_.pop_front();
        co_return std::optional<provider::OutputChunk>(std::move(next));
      }
      if (stdinClosed_) {
        co_return std::optional<provider::OutputChunk>();
      }
      co_await wake_->wait();
    }
  }
  asio::awaitable<Status> resize(provider::TerminalSize size) override {
    out_.push_back(
        {1, "resize " + std::to_string(size.width) + "x" + std::to_string(size.height) + "\n"});
    wake_->notify();
    co_return okStatus();
  }
  asio::awaitable<Result<int>> exitCode() override { co_return exitCode_; }
  void cancel() override { cancelOnce(*cancelled_, cancels_, wake_); }

 private:
  std::shared_ptr<WakeUp> wake_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::deque<provider::OutputChunk> out_;
  bool stdinClosed_ = false;
  int exitCode_;
  std::atomic<int>& cancels_;
};

// A connection to a pod's port that echoes what it gets; the write side's close ends it.
class EchoPortStream final : public provider::PortStream {
 public:
  EchoPortStream(const asio::any_io_executor& executor, std::atomic<int>& cancels)
      : wake_(std::make_shared<WakeUp>(executor)), cancels_(cancels) {}
  asio::awaitable<Status> write(std::string data) override {
    if (data.empty()) {
      closed_ = true;
    } else {
      pending_ += data;
    }
    wake_->notify();
    co_return okStatus();
  }
  asio::awaitable<Result<std::optional<std::string>>> read() override {
    for (;;) {
      if (cancelled_->load()) {
        co_return Error::make(ErrorCode::kCancelled, "Cancelled", "port stream cancelled");
      }
      if (!pending_.empty()) {
        std::string out = std::move(pending_);
        pending_.clear();
        co_return std::optional<std::string>(std::move(out));
      }
      if (closed_) {
        co_return std::optional<std::string>();
      }
      co_await wake_->wait();
    }
  }
  void cancel() override { cancelOnce(*cancelled_, cancels_, wake_); }

 private:
  std::shared_ptr<WakeUp> wake_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::string pending_;
  bool closed_ = false;
  std::atomic<int>& cancels_;
};

class StreamingProvider final : public provider::Provider {
 public:
  std::string_view name() const override { return "streaming"; }
  asio::awaitable<Status> createPod(boost::json::value) override { co_return okStatus(); }
  asio::awaitable<Status> updatePod(boost::json::value) override { co_return okStatus(); }
  asio::awaitable<Status> deletePod(provider::PodRef, int64_t) override { co_return okStatus(); }
  asio::awaitable<Result<boost::json::value>> getPod(provider::PodRef) override {
    co_return Error::make(ErrorCode::kNotFound, "NotFound", "no pods here");
  }
  asio::awaitable<Result<std::vector<boost::json::value>>> listPods() override {
    std::lock_guard lock(mu);
    co_return running;
  }
  void onPodStatusChange(std::function<void(const provider::PodRef&)>) override {}
  provider::NodeCapacity capacity() const override { return {}; }
  asio::awaitable<Status> ping() override { co_return okStatus(); }

  asio::awaitable<Result<std::unique_ptr<provider::ByteStream>>> logs(
      provider::PodRef pod, provider::LogOptions options) override {
    auto executor = co_await asio::this_coro::executor;
    std::lock_guard lock(mu);
    logPods.push_back(pod);
    lastLogOptions = options;
    if (logError) {
      co_return *logError;
    }
    co_return std::unique_ptr<provider::ByteStream>(
        std::make_unique<ScriptedLogStream>(executor, logChunks, options.follow, logCancels));
  }
  asio::awaitable<Result<std::unique_ptr<provider::ExecSession>>> exec(
      provider::PodRef pod, provider::ExecOptions options) override {
    co_return co_await session(std::move(pod), std::move(options));
  }
  asio::awaitable<Result<std::unique_ptr<provider::ExecSession>>> attach(
      provider::PodRef pod, provider::ExecOptions options) override {
    co_return co_await session(std::move(pod), std::move(options));
  }
  // Port 99 is refused; others echo.
  asio::awaitable<Result<std::unique_ptr<provider::PortStream>>> portForward(
      provider::PodRef, uint16_t port) override {
    auto executor = co_await asio::this_coro::executor;
    std::lock_guard lock(mu);
    forwardedPorts.push_back(port);
    if (port == 99) {
      co_return Error::make(ErrorCode::kUnavailable, "ConnectionRefused", "connection refused");
    }
    co_return std::unique_ptr<provider::PortStream>(
        std::make_unique<EchoPortStream>(executor, portCancels));
  }
  asio::awaitable<Result<boost::json::value>> statsSummary() override {
    std::lock_guard lock(mu);
    if (statsError) {
      co_return *statsError;
    }
    co_return stats;
  }

  std::mutex mu;  // guards what follows
  std::vector<std::string> logChunks;
  std::optional<Error> logError;
  std::vector<provider::PodRef> logPods;
  provider::LogOptions lastLogOptions;
  std::atomic<int> logCancels{0};
  int exitCode = 0;
  std::optional<Error> execError;
  std::vector<provider::ExecOptions> execOptions;
  std::atomic<int> sessionCancels{0};
  std::vector<uint16_t> forwardedPorts;
  std::atomic<int> portCancels{0};
  boost::json::value stats;
  std::optional<Error> statsError;
  std::vector<boost::json::value> running;

 private:
  asio::awaitable<Result<std::unique_ptr<provider::ExecSession>>> session(
      provider::PodRef, provider::ExecOptions options) {
    auto executor = co_await asio::this_coro::executor;
    std::lock_guard lock(mu);
    execOptions.push_back(options);
    if (execError) {
      co_return *execError;
    }
    co_return std::unique_ptr<provider::ExecSession>(
        std::make_unique<EchoSession>(executor, options, exitCode, sessionCancels));
  }
};

}  // namespace burstlet::testing
