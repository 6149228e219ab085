// The Exchange a coroutine handler gets: streamed responses (chunked, with a watch on the
// connection so the handler learns when the client left) and the hand-over to WebSocket and
// raw upgrades.
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "server/connection.h"
#include "server/websocket.h"

namespace burstlet::server::detail {

using boost::system::error_code;

namespace {

Error alreadyAnswered() {
  return Error::make(ErrorCode::kInvalid, "AlreadyAnswered",
                     "the request was already answered, streamed or upgraded");
}

Error notStreaming() {
  return Error::make(ErrorCode::kInvalid, "NotStreaming", "startStream() was not called");
}

Error clientGoneError() {
  return Error::make(ErrorCode::kUnavailable, "ClientGone", "the client closed the connection");
}

// While a response streams, reads the connection so that its end is noticed at once (a
// backend stream can then be cancelled). What arrives is dropped: the connection closes after
// the stream, so there is no next request to keep. Holds the stream: its pending read must not
// outlive it.
template <typename Stream>
class CloseWatcher : public std::enable_shared_from_this<CloseWatcher<Stream>> {
 public:
  CloseWatcher(std::shared_ptr<Connection> conn, std::shared_ptr<Stream> stream)
      : conn_(std::move(conn)), stream_(std::move(stream)) {}

  // On the strand, with no read pending.
  void read() {
    // A streamed connection has no read deadline; writes set their own (only on the write
    // side while this read is pending).
    beast::get_lowest_layer(*stream_).expires_never();
    stream_->async_read_some(asio::buffer(scratch_),
                             [self = this->shared_from_this()](error_code ec, size_t) {
                               if (ec) {
                                 self->conn_->markClientGone();
                                 return;
                               }
                               self->read();
                             });
  }

 private:
  std::shared_ptr<Connection> conn_;
  std::shared_ptr<Stream> stream_;
  std::array<char, 1024> scratch_{};
};

// The client's Sec-WebSocket-Protocol offers, from every such header field.
std::vector<std::string> offeredSubprotocols(const RawRequest& raw) {
  std::vector<std::string> out;
  auto [begin, end] = raw.equal_range(http::field::sec_websocket_protocol);
  for (auto it = begin; it != end; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      const auto comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
        item.remove_prefix(1);
      }
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
        item.remove_suffix(1);
      }
      if (!item.empty()) {
        out.emplace_back(item);
      }
    }
  }
  return out;
}

}  // namespace

template <typename Stream>
ExchangeImpl<Stream>::ExchangeImpl(SessionIo<Stream>& io, const Request& request,
                                   const RawRequest& raw)
    : io_(io), request_(request), raw_(raw), chunked_(raw.version() >= 11) {}

template <typename Stream>
asio::awaitable<Status> ExchangeImpl<Stream>::startStream(const Response& head) {
  if (state_ != ExchangeState::kFresh) {
    co_return alreadyAnswered();
  }
  state_ = ExchangeState::kStreaming;
  http::response<http::empty_body> res;
  res.version(raw_.version());
  setHead(res, head.status, head.contentType, head.headers);
  res.chunked(chunked_);
  res.keep_alive(false);
  std::make_shared<CloseWatcher<Stream>>(io_.conn, io_.stream)->read();
  error_code ec;
  http::response_serializer<http::empty_body> serializer(res);
  io_.socket().expires_after(io_.options().idleTimeout);
  co_await http::async_write_header(*io_.stream, serializer,
                                    asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    state_ = ExchangeState::kClosed;
    co_return clientGoneError();
  }
  if (head.body.empty()) {
    co_return okStatus();
  }
  co_return co_await write(head.body);
}

template <typename Stream>
asio::awaitable<Status> ExchangeImpl<Stream>::write(std::string_view data) {
  if (state_ == ExchangeState::kClosed) {
    co_return clientGoneError();
  }
  if (state_ != ExchangeState::kStreaming) {
    co_return notStreaming();
  }
  if (data.empty() || raw_.method() == http::verb::head) {
    co_return okStatus();
  }
  if (io_.conn->clientGone()) {
    co_return clientGoneError();
  }
  error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  io_.socket().expires_after(io_.options().idleTimeout);
  if (chunked_) {
    co_await asio::async_write(*io_.stream, http::make_chunk(asio::buffer(data)), token);
  } else {
    co_await asio::async_write(*io_.stream, asio::buffer(data), token);
  }
  if (ec) {
    // Timed out (beast closed the socket) or reset: either way the stream is over.
    state_ = ExchangeState::kClosed;
    io_.socket().close();
    io_.conn->markClientGone();
    co_return clientGoneError();
  }
  co_return okStatus();
}

template <typename Stream>
asio::awaitable<Status> ExchangeImpl<Stream>::endStream() {
  if (state_ == ExchangeState::kEnded) {
    co_return okStatus();
  }
  if (state_ == ExchangeState::kClosed) {
    co_return clientGoneError();
  }
  if (state_ != ExchangeState::kStreaming) {
    co_return notStreaming();
  }
  state_ = ExchangeState::kEnded;
  if (!chunked_ || raw_.method() == http::verb::head) {
    co_return okStatus();
  }
  error_code ec;
  io_.socket().expires_after(io_.options().idleTimeout);
  co_await asio::async_write(*io_.stream, http::make_chunk_last(),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    state_ = ExchangeState::kClosed;
    co_return clientGoneError();
  }
  co_return okStatus();
}

template <typename Stream>
asio::awaitable<void> ExchangeImpl<Stream>::finishStream(bool failed) {
  auto& conn = *io_.conn;
  if (!failed && !conn.aborted()) {
    (void)co_await endStream();
  }
  if (state_ == ExchangeState::kEnded && !conn.clientGone() && !conn.aborted()) {
    // The response said Connection: close. Send FIN and give the client a moment to close its
    // side (the watcher notices), so that nothing it still sends turns our close into a reset.
    error_code ec;
    io_.socket().socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    asio::steady_timer linger(conn.strand);
    linger.expires_after(kLingerTime);
    linger.async_wait([stream = io_.stream](error_code e) {
      if (!e) {
        beast::get_lowest_layer(*stream).close();  // the watcher's read ends: client gone
      }
    });
    co_await conn.untilClientGone();
    linger.cancel();
  }
  io_.socket().close();
}

template <typename Stream>
asio::awaitable<void> ExchangeImpl<Stream>::untilClientGone() {
  co_await io_.conn->untilClientGone();
}

template <typename Stream>
bool ExchangeImpl<Stream>::isWebSocketUpgrade() const {
  return beast::websocket::is_upgrade(raw_);
}

template <typename Stream>
asio::awaitable<Result<std::unique_ptr<WebSocket>>> ExchangeImpl<Stream>::acceptWebSocket(
    const std::vector<std::string>& subprotocols) {
  if (state_ != ExchangeState::kFresh) {
    co_return alreadyAnswered();
  }
  if (!isWebSocketUpgrade()) {
    co_return Error::make(ErrorCode::kBadRequest, "NotWebSocket",
                          "not a WebSocket handshake (GET with Upgrade: websocket)");
  }
  const auto offered = offeredSubprotocols(raw_);
  std::string chosen;
  for (const auto& wanted : subprotocols) {
    if (std::find(offered.begin(), offered.end(), wanted) != offered.end()) {
      chosen = wanted;
      break;
    }
  }
  if (!offered.empty() && chosen.empty()) {
    co_return Error::make(ErrorCode::kInvalid, "UnsupportedSubprotocol",
                          "none of the WebSocket subprotocols the client offered is supported");
  }
  // Even a failed handshake leaves the stream with the WebSocket, which closes it.
  state_ = ExchangeState::kUpgraded;
  io_.handOver();
  auto ws = co_await acceptWebSocketOn(io_.conn, *io_.stream, raw_, chosen);
  co_return ws;
}

template <typename Stream>
asio::awaitable<Result<std::unique_ptr<RawStream>>> ExchangeImpl<Stream>::upgrade(
    std::string_view protocol, const Headers& headers) {
  if (state_ != ExchangeState::kFresh) {
    co_return alreadyAnswered();
  }
  state_ = ExchangeState::kUpgraded;
  http::response<http::empty_body> res;
  res.version(raw_.version());
  setHead(res, 101, "", headers);
  res.set(http::field::connection, "Upgrade");
  res.set(http::field::upgrade, protocol);
  error_code ec;
  io_.socket().expires_after(io_.options().idleTimeout);
  co_await http::async_write(*io_.stream, res, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    state_ = ExchangeState::kClosed;
    co_return clientGoneError();
  }
  io_.handOver();
  co_return makeRawStream(io_.conn, *io_.stream, io_.buffer);
}

template class ExchangeImpl<PlainStream>;
template class ExchangeImpl<TlsStream>;

}  // namespace burstlet::server::detail
