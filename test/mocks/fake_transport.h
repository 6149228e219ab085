// FakeTransport: a Transport whose answers a test scripts, to force faults (429, Gone,
// dropped connections, chunked watch bodies) without a server. Lists read as streams
// (HttpRequest::compressedStream) are answered by the send script.
#pragma once

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kube/http.h"

namespace burstlet::testing {

// A streamed body given as pieces. After the last piece it ends cleanly when `endAfter` is
// set, otherwise it blocks (like a quiet watch) until cancel().
class ScriptedStream final : public kube::ResponseStream {
 public:
  ScriptedStream(unsigned status, std::vector<std::string> pieces, bool endAfter)
      : status_(status), pieces_(pieces.begin(), pieces.end()), endAfter_(endAfter) {}

  unsigned status() const override { return status_; }

  boost::asio::awaitable<Result<std::optional<std::string>>> read() override {
    if (!pieces_.empty()) {
      std::string p = std::move(pieces_.front());
      pieces_.pop_front();
      co_return std::optional<std::string>(std::move(p));
    }
    if (endAfter_) {
      co_return std::optional<std::string>{};
    }
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor,
                                    std::chrono::hours(1));
    {
      std::lock_guard lock(mu_);
      if (cancelled_) {
        co_return Error::make(ErrorCode::kCancelled, "Cancelled", "stream cancelled");
      }
      timer_ = &timer;
    }
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    std::lock_guard lock(mu_);
    timer_ = nullptr;
    co_return Error::make(ErrorCode::kCancelled, "Cancelled", "stream cancelled");
  }

  void cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    if (timer_ != nullptr) {
      timer_->cancel();
    }
  }

 private:
  unsigned status_;
  std::deque<std::string> pieces_;
  bool endAfter_;
  std::mutex mu_;  // guards cancelled_ and timer_
  bool cancelled_ = false;
  boost::asio::steady_timer* timer_ = nullptr;
};

class FakeTransport final : public kube::Transport {
 public:
  using SendFn = std::function<Result<kube::HttpResponse>(const kube::HttpRequest&)>;
  using StreamFn =
      std::function<Result<std::unique_ptr<kube::ResponseStream>>(const kube::HttpRequest&)>;

  explicit FakeTransport(SendFn send, StreamFn stream = nullptr)
      : send_(std::move(send)), stream_(std::move(stream)) {}

  boost::asio::awaitable<Result<kube::HttpResponse>> send(kube::HttpRequest request) override {
    record(request);
    co_return send_(request);
  }

  boost::asio::awaitable<Result<std::unique_ptr<kube::ResponseStream>>> stream(
      kube::HttpRequest request) override {
    record(request);
    if (request.compressedStream) {
      // A list read as a stream: answered by the send script, its body cut into small pieces
      // so that decoders see items split anywhere.
      auto answer = send_(request);
      if (!answer.ok()) {
        co_return std::move(answer).error();
      }
      std::vector<std::string> pieces;
      for (size_t i = 0; i < answer->body.size(); i += kListPiece) {
        pieces.push_back(answer->body.substr(i, kListPiece));
      }
      co_return std::unique_ptr<kube::ResponseStream>(
          std::make_unique<ScriptedStream>(answer->status, std::move(pieces), true));
    }
    if (!stream_) {
      co_return Error::make(ErrorCode::kUnavailable, "ConnectFailed", "no stream scripted");
    }
    co_return stream_(request);
  }

  std::vector<kube::HttpRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void record(const kube::HttpRequest& r) {
    std::lock_guard lock(mu_);
    requests_.push_back(r);
  }

  static constexpr size_t kListPiece = 37;
  SendFn send_;
  StreamFn stream_;
  mutable std::mutex mu_;  // guards requests_
  std::vector<kube::HttpRequest> requests_;
};

inline kube::HttpResponse jsonResponse(unsigned status, std::string body) {
  kube::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.contentType = "application/json";
  return r;
}

}  // namespace burstlet::testing
