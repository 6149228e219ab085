// MemoryByteChannel: the two ends of an in-memory byte pipe, each a spdy::ByteChannel, for SPDY
// sessions in tests. Everything runs on one executor (a strand or a one-thread io_context). The
// test can hold an end's writes back (to leave a write pending), see every byte an end wrote,
// and cut the pipe as a vanished peer would.
#pragma once

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "common/result.h"
#include "kubelet/spdy/event.h"
#include "kubelet/spdy/session.h"

namespace burstlet::testing {

class MemoryByteChannel final : public spdy::ByteChannel {
 public:
  // One direction of the pipe.
  struct Pipe {
    explicit Pipe(const boost::asio::any_io_executor& ex) : changed(ex) {}
    std::string data;     // written, not yet read
    bool eof = false;     // the writer closed: the reader gets 0 after the data
    bool broken = false;  // cut: the reader gets an error
    spdy::detail::Event changed;
  };

  MemoryByteChannel(boost::asio::any_io_executor ex, std::shared_ptr<Pipe> in,
                    std::shared_ptr<Pipe> out)
      : executor_(std::move(ex)), in_(std::move(in)), out_(std::move(out)), self_(executor_) {}
  ~MemoryByteChannel() override { close(); }

  // A connected pair.
  static std::pair<std::unique_ptr<MemoryByteChannel>, std::unique_ptr<MemoryByteChannel>> pair(
      const boost::asio::any_io_executor& ex) {
    auto ab = std::make_shared<Pipe>(ex);
    auto ba = std::make_shared<Pipe>(ex);
    return {std::make_unique<MemoryByteChannel>(ex, ba, ab),
            std::make_unique<MemoryByteChannel>(ex, ab, ba)};
  }

  boost::asio::any_io_executor executor() const override { return executor_; }

  boost::asio::awaitable<Result<size_t>> readSome(boost::asio::mutable_buffer buffer) override {
    while (!closed_ && in_->data.empty() && !in_->eof && !in_->broken) {
      co_await in_->changed.wait();
    }
    if (closed_ || in_->broken) {
      co_return lost();
    }
    if (in_->data.empty()) {
      co_return size_t{0};
    }
    const size_t n = std::min({buffer.size(), in_->data.size(), readLimit});
    std::memcpy(buffer.data(), in_->data.data(), n);
    in_->data.erase(0, n);
    co_return n;
  }

  boost::asio::awaitable<Status> write(boost::asio::const_buffer data) override {
    while (!closed_ && holdWrites_ && !out_->broken) {
      co_await self_.wait();
    }
    if (closed_ || out_->broken || out_->eof) {
      co_return lost();
    }
    const std::string_view bytes(static_cast<const char*>(data.data()), data.size());
    out_->data.append(bytes);
    written.append(bytes);
    out_->changed.notifyAll();
    co_return okStatus();
  }

  // Like a socket's close: the peer reads what was written, then the end.
  void close() override {
    if (closed_) {
      return;
    }
    closed_ = true;
    out_->eof = true;
    out_->changed.notifyAll();
    in_->changed.notifyAll();
    self_.notifyAll();
  }

  // The connection dies: both ends' pending and later operations fail.
  void cut() {
    in_->broken = true;
    out_->broken = true;
    in_->changed.notifyAll();
    out_->changed.notifyAll();
    self_.notifyAll();
  }

  // While held, write() waits (as on a peer that reads nothing).
  void holdWrites(bool hold) {
    holdWrites_ = hold;
    self_.notifyAll();
  }

  bool closed() const { return closed_; }

  // For a peer the test scripts without coroutines: puts bytes in front of the other end's
  // reader, and takes whatever the other end wrote so far.
  void inject(std::string_view bytes) {
    out_->data.append(bytes);
    out_->changed.notifyAll();
  }
  std::string takeIncoming() { return std::exchange(in_->data, std::string()); }

  std::string written;       // every byte this end wrote
  size_t readLimit = 65536;  // at most this many bytes per readSome (1: byte by byte)

 private:
  static Error lost() {
    return Error::make(ErrorCode::kUnavailable, "ConnectionLost", "memory channel closed");
  }

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Pipe> in_;
  std::shared_ptr<Pipe> out_;
  spdy::detail::Event self_;  // holdWrites_ or closed_ changed
  bool closed_ = false;
  bool holdWrites_ = false;
};

}  // namespace burstlet::testing
