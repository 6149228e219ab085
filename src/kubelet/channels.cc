#include "kubelet/channels.h"

#include <algorithm>
#include <cstring>

namespace burstlet::kubelet {

namespace asio = boost::asio;

namespace {

class RawStreamChannel final : public spdy::ByteChannel {
 public:
  explicit RawStreamChannel(std::unique_ptr<server::RawStream> stream)
      : stream_(std::move(stream)) {}
  asio::any_io_executor executor() const override { return stream_->executor(); }
  asio::awaitable<Result<size_t>> readSome(asio::mutable_buffer buffer) override {
    co_return co_await stream_->readSome(buffer);
  }
  asio::awaitable<Status> write(asio::const_buffer data) override {
    co_return co_await stream_->write(data);
  }
  void close() override { stream_->close(); }

 private:
  std::unique_ptr<server::RawStream> stream_;
};

// Each binary message is a piece of the byte stream, each write one message.
class WebSocketChannel final : public spdy::ByteChannel {
 public:
  explicit WebSocketChannel(std::unique_ptr<server::WebSocket> socket)
      : socket_(std::move(socket)) {}
  asio::any_io_executor executor() const override { return socket_->executor(); }
  asio::awaitable<Result<size_t>> readSome(asio::mutable_buffer buffer) override {
    while (offset_ >= pending_.size()) {
      auto message = co_await socket_->read();
      if (!message.ok()) {
        if (message.error().reason == "WebSocketClosed") {
          co_return size_t{0};  // the peer closed: the end of the byte stream
        }
        co_return message.error();
      }
      pending_ = std::move(message->data);
      offset_ = 0;
    }
    const size_t n = std::min(buffer.size(), pending_.size() - offset_);
    std::memcpy(buffer.data(), pending_.data() + offset_, n);
    offset_ += n;
    co_return n;
  }
  asio::awaitable<Status> write(asio::const_buffer data) override {
    const std::string_view bytes(static_cast<const char*>(data.data()), data.size());
    co_return co_await socket_->write(bytes, true);
  }
  void close() override { socket_->abort(); }

 private:
  std::unique_ptr<server::WebSocket> socket_;
  std::string pending_;
  size_t offset_ = 0;
};

}  // namespace

std::unique_ptr<spdy::ByteChannel> rawStreamChannel(std::unique_ptr<server::RawStream> stream) {
  return std::make_unique<RawStreamChannel>(std::move(stream));
}

std::unique_ptr<spdy::ByteChannel> webSocketChannel(std::unique_ptr<server::WebSocket> socket) {
  return std::make_unique<WebSocketChannel>(std::move(socket));
}

}  // namespace burstlet::kubelet
