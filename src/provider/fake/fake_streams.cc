#include "provider/fake/fake_streams.h"

#include <fmt/format.h>

#include <deque>
#include <mutex>

#include "common/wait.h"

namespace burstlet::provider {

namespace {

class TextStream final : public ByteStream {
 public:
  explicit TextStream(std::string text) : text_(std::move(text)) {}
  asio::awaitable<Result<std::optional<std::string>>> read() override {
    if (done_) {
      co_return std::optional<std::string>{};
    }
    done_ = true;
    co_return std::optional<std::string>(std::move(text_));
  }
  void cancel() override {}

 private:
  std::string text_;
  bool done_ = false;
};

class EchoSession final : public ExecSession {
 public:
  EchoSession(const Clock& clock, std::string banner, bool stdinOpen, int exitCode)
      : clock_(clock), exitCode_(exitCode), ended_(!stdinOpen) {
    if (!banner.empty()) {
      output_.push_back(OutputChunk{1, std::move(banner)});
    }
  }

  asio::awaitable<Status> writeStdin(std::string data) override {
    {
      std::lock_guard lock(mu_);
      if (data.empty()) {
        ended_ = true;
      } else if (!ended_) {
        output_.push_back(OutputChunk{1, std::move(data)});
      }
    }
    wakeup_.notify();
    co_return okStatus();
  }

  asio::awaitable<Result<std::optional<OutputChunk>>> read() override {
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (cancelled_.isSet()) {
          co_return Error::make(ErrorCode::kCancelled, "Cancelled", "exec session cancelled");
        }
        if (!output_.empty()) {
          OutputChunk chunk = std::move(output_.front());
          output_.pop_front();
          co_return std::optional<OutputChunk>(std::move(chunk));
        }
        if (ended_) {
          done_ = true;
          co_return std::optional<OutputChunk>();
        }
      }
      co_await wakeup_.sleep(clock_, std::chrono::hours(1), &cancelled_);
    }
  }

  asio::awaitable<Status> resize(TerminalSize size) override {
    {
      std::lock_guard lock(mu_);
      output_.push_back(OutputChunk{2, fmt::format("resize {}x{}\n", size.width, size.height)});
    }
    wakeup_.notify();
    co_return okStatus();
  }

  asio::awaitable<Result<int>> exitCode() override {
    std::lock_guard lock(mu_);
    if (!done_) {
      co_return Error::make(ErrorCode::kInternal, "SessionNotEnded",
                            "the exit code is known once all output was read");
    }
    co_return exitCode_;
  }

  void cancel() override { cancelled_.set(); }

 private:
  const Clock& clock_;
  const int exitCode_;
  std::mutex mu_;  // guards output_, ended_, done_
  std::deque<OutputChunk> output_;
  bool ended_;         // stdin closed: the output queued is the last
  bool done_ = false;  // read() returned the end
  Wakeup wakeup_;      // the reader's sleep, cut short by writes
  Latch cancelled_;
};

}  // namespace

std::unique_ptr<ByteStream> makeTextStream(std::string text) {
  return std::make_unique<TextStream>(std::move(text));
}

std::unique_ptr<ExecSession> makeEchoSession(const Clock& clock, std::string banner, bool stdinOpen,
                                             int exitCode) {
  return std::make_unique<EchoSession>(clock, std::move(banner), stdinOpen, exitCode);
}

}  // namespace burstlet::provider
