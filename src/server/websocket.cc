// WebSocket and RawStream: connections handed to a handler after an upgrade, over plain TCP or
// TLS. They keep the Connection (its slot in the connection count, stop()'s reach) alive.
#include "server/websocket.h"

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <cstring>

#include "server/connection.h"

namespace burstlet::server::detail {

namespace websocket = beast::websocket;
using boost::system::error_code;

namespace {

Error connectionLost(const error_code& ec) {
  return Error::make(ErrorCode::kUnavailable, "ConnectionLost", "connection lost: " + ec.message());
}

template <typename Stream>
class WebSocketImpl final : public WebSocket {
 public:
  WebSocketImpl(std::shared_ptr<Connection> conn, Stream& stream, std::string subprotocol)
      : ws_(std::move(stream)),
        claim_(std::move(conn), beast::get_lowest_layer(ws_)),
        subprotocol_(std::move(subprotocol)) {}
  ~WebSocketImpl() override = default;
  WebSocketImpl(const WebSocketImpl&) = delete;
  WebSocketImpl& operator=(const WebSocketImpl&) = delete;

  asio::awaitable<Status> accept(const RawRequest& request) {
    const Options& options = claim_.conn()->server->options;
    // The WebSocket keeps its own time: no deadline from the HTTP exchange applies.
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = options.idleTimeout;  // also bounds close()
    timeout.idle_timeout = websocket::stream_base::none();
    timeout.keep_alive_pings = false;
    ws_.set_option(timeout);
    ws_.read_message_max(options.maxMessageBytes);
    ws_.set_option(
        websocket::stream_base::decorator([protocol = subprotocol_](websocket::response_type& res) {
          res.set(http::field::server, "burstlet");
          if (!protocol.empty()) {
            res.set(http::field::sec_websocket_protocol, protocol);
          }
        }));
    error_code ec;
    co_await ws_.async_accept(request, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return Error::make(ErrorCode::kUnavailable, "HandshakeFailed",
                            "WebSocket handshake: " + ec.message());
    }
    co_return okStatus();
  }

  const std::string& subprotocol() const override { return subprotocol_; }
  asio::any_io_executor executor() const override { return claim_.conn()->strand; }

  asio::awaitable<Result<WebSocketMessage>> read() override {
    beast::flat_buffer buffer;
    error_code ec;
    co_await ws_.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == websocket::error::closed) {
      co_return Error::make(ErrorCode::kUnavailable, "WebSocketClosed",
                            "closed by the peer with code " + std::to_string(closeCode()));
    }
    if (ec == websocket::error::message_too_big) {
      co_return Error::make(ErrorCode::kInvalid, "MessageTooBig",
                            "a WebSocket message exceeded the limit");
    }
    if (ec) {
      co_return connectionLost(ec);
    }
    co_return WebSocketMessage{beast::buffers_to_string(buffer.data()), ws_.got_binary()};
  }

  asio::awaitable<Status> write(std::string_view data, bool binary) override {
    ws_.binary(binary);
    error_code ec;
    co_await ws_.async_write(asio::buffer(data), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return connectionLost(ec);
    }
    co_return okStatus();
  }

  asio::awaitable<Status> close(unsigned short code, std::string_view reason) override {
    error_code ec;
    // A close frame carries at most 123 bytes of reason.
    websocket::close_reason why(static_cast<websocket::close_code>(code),
                                reason.substr(0, websocket::reason_string::static_capacity));
    co_await ws_.async_close(why, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return connectionLost(ec);
    }
    co_return okStatus();
  }

  unsigned short closeCode() const override { return ws_.reason().code; }

  void abort() override { beast::get_lowest_layer(ws_).close(); }

 private:
  websocket::stream<Stream> ws_;
  SocketClaim claim_;  // after ws_: closes its socket before it goes
  std::string subprotocol_;
};

template <typename Stream>
class RawStreamImpl final : public RawStream {
 public:
  RawStreamImpl(std::shared_ptr<Connection> conn, Stream& stream, std::string leftover)
      : stream_(std::move(stream)),
        claim_(std::move(conn), beast::get_lowest_layer(stream_)),
        leftover_(std::move(leftover)) {}
  ~RawStreamImpl() override = default;
  RawStreamImpl(const RawStreamImpl&) = delete;
  RawStreamImpl& operator=(const RawStreamImpl&) = delete;

  asio::any_io_executor executor() const override { return claim_.conn()->strand; }

  asio::awaitable<Result<size_t>> readSome(asio::mutable_buffer buffer) override {
    if (!leftover_.empty()) {
      const size_t n = std::min(buffer.size(), leftover_.size() - leftoverOffset_);
      std::memcpy(buffer.data(), leftover_.data() + leftoverOffset_, n);
      leftoverOffset_ += n;
      if (leftoverOffset_ == leftover_.size()) {
        leftover_.clear();
        leftoverOffset_ = 0;
      }
      co_return n;
    }
    error_code ec;
    const size_t n =
        co_await stream_.async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
    // A TLS peer that closes without close_notify ends its stream all the same.
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      co_return size_t{0};
    }
    if (ec) {
      co_return connectionLost(ec);
    }
    co_return n;
  }

  asio::awaitable<Status> write(asio::const_buffer data) override {
    error_code ec;
    co_await asio::async_write(stream_, data, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return connectionLost(ec);
    }
    co_return okStatus();
  }

  void close() override { beast::get_lowest_layer(stream_).close(); }

 private:
  Stream stream_;
  SocketClaim claim_;     // after stream_: closes its socket before it goes
  std::string leftover_;  // what the client sent right behind its upgrade request
  size_t leftoverOffset_ = 0;
};

}  // namespace

template <typename Stream>
asio::awaitable<Result<std::unique_ptr<WebSocket>>> acceptWebSocketOn(
    const std::shared_ptr<Connection>& conn, Stream& stream, const RawRequest& request,
    const std::string& subprotocol) {
  auto ws = std::make_unique<WebSocketImpl<Stream>>(conn, stream, subprotocol);
  auto accepted = co_await ws->accept(request);
  if (!accepted.ok()) {
    co_return std::move(accepted).error();
  }
  co_return std::unique_ptr<WebSocket>(std::move(ws));
}

template <typename Stream>
std::unique_ptr<RawStream> makeRawStream(std::shared_ptr<Connection> conn, Stream& stream,
                                         beast::flat_buffer& leftover) {
  std::string bytes = beast::buffers_to_string(leftover.data());
  leftover.consume(leftover.size());
  return std::make_unique<RawStreamImpl<Stream>>(std::move(conn), stream, std::move(bytes));
}

template asio::awaitable<Result<std::unique_ptr<WebSocket>>> acceptWebSocketOn(
    const std::shared_ptr<Connection>&, PlainStream&, const RawRequest&, const std::string&);
template asio::awaitable<Result<std::unique_ptr<WebSocket>>> acceptWebSocketOn(
    const std::shared_ptr<Connection>&, TlsStream&, const RawRequest&, const std::string&);
template std::unique_ptr<RawStream> makeRawStream(std::shared_ptr<Connection>, PlainStream&,
                                                  beast::flat_buffer&);
template std::unique_ptr<RawStream> makeRawStream(std::shared_ptr<Connection>, TlsStream&,
                                                  beast::flat_buffer&);

}  // namespace burstlet::server::detail
