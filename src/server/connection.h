// Internal to src/server: the state the listener, the connections and the handed-out streams
// share. Not for other areas (they include http_server.h, exchange.h, websocket.h).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "server/http_server.h"

namespace burstlet::server::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using Strand = asio::strand<asio::any_io_executor>;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using RawRequest = http::request<http::string_body>;

// How long a closing connection may keep sending what we will not read (the rest of an
// oversized request), or take to close after a streamed response, so that the client receives
// the end of our response instead of a reset.
inline constexpr auto kLingerTime = std::chrono::seconds(1);

// Status (an invalid one becomes 500), Server, Content-Type and `headers` of a response.
template <typename Body>
void setHead(http::response<Body>& res, unsigned status, const std::string& contentType,
             const Headers& headers) {
  res.result(status >= 100 && status <= 999 ? status : 500);
  res.set(http::field::server, "burstlet");
  if (!contentType.empty()) {
    res.set(http::field::content_type, contentType);
  }
  for (const auto& [name, value] : headers) {
    res.set(name, value);
  }
}

struct Route {
  SyncHandler sync;  // exactly one of sync and async is set
  Handler async;
  Methods methods;

  bool accepts(std::string_view method) const;
  // The Allow header of a 405.
  std::string allow() const;
};

class Connection;

struct ServerState {
  ServerState(const asio::any_io_executor& executor, Options opts);

  bool isStopped();
  // The route for `path`: exact, else the longest prefix; null when none. Under mu.
  std::shared_ptr<const Route> findLocked(std::string_view path) const;

  const asio::any_io_executor executor;  // each connection runs on a strand of it
  Strand strand;                         // the accept loop's
  // Only touched on `strand`.
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer retryTimer;  // back-off after a failed accept

  const Options options;
  std::unique_ptr<TlsContext> tls;  // null: plain HTTP
  std::string address;              // as given to create(), for logs
  unsigned short port = 0;

  // Guards routes, prefixRoutes, started and stopped. Held while a SyncHandler runs, so that
  // once stop() has set `stopped` no SyncHandler is running or will run.
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const Route>, std::less<>> routes;
  std::map<std::string, std::shared_ptr<const Route>, std::less<>> prefixRoutes;
  bool started = false;
  bool stopped = false;

  // Guards connections and active.
  std::mutex connMu;
  std::map<const Connection*, std::weak_ptr<Connection>> connections;
  size_t active = 0;  // accepted connections not yet destroyed
};

// One accepted connection, alive as long as anything holds its socket: the HTTP session, then
// a WebSocket or RawStream handed to a handler. It is counted in ServerState::active (by the
// accept loop) and registered for stop() until destroyed.
class Connection {
 public:
  // The caller has counted the connection in `active` already.
  static std::shared_ptr<Connection> create(const std::shared_ptr<ServerState>& server,
                                            Strand strand);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::shared_ptr<ServerState> server;
  const Strand strand;
  // Bound to the connection's coroutine; abort() emits it to cancel the handler's operation.
  asio::cancellation_signal cancel;
  // A TLS connection's context, kept for as long as its stream lives.
  std::shared_ptr<asio::ssl::context> tlsContext;

  // The stream whose socket abort() closes: whoever owns the connection's stream now.
  void setSocket(beast::tcp_stream* socket);
  void releaseSocket(const beast::tcp_stream* socket);
  // stop(): cancels the coroutine and closes the socket under whatever uses it. On the strand.
  void abort();
  bool aborted() const;

  // The client went away (or the server stopped). On the strand.
  void markClientGone();
  bool clientGone() const;
  asio::awaitable<void> untilClientGone();

  Connection(std::shared_ptr<ServerState> server, Strand strand);  // use create()

 private:
  // Guards socket_: a WebSocket may be destroyed off the strand while abort() runs on it.
  std::mutex socketMu_;
  beast::tcp_stream* socket_ = nullptr;
  // On the strand.
  bool aborted_ = false;
  bool gone_ = false;
  asio::steady_timer goneEvent_;  // never expires; cancelled when the client is gone
};

// Held by a WebSocket or RawStream: makes `socket` the one abort() closes while it lives, and
// closes it at the end (ending reads still pending elsewhere instead of leaving them to the
// peer). Declare it after the stream it refers to.
class SocketClaim {
 public:
  SocketClaim(std::shared_ptr<Connection> conn, beast::tcp_stream& socket)
      : conn_(std::move(conn)), socket_(socket) {
    conn_->setSocket(&socket_);
    socket_.expires_never();  // the new owner keeps its own time
  }
  ~SocketClaim() {
    conn_->releaseSocket(&socket_);
    socket_.close();
  }
  SocketClaim(const SocketClaim&) = delete;
  SocketClaim& operator=(const SocketClaim&) = delete;

  const std::shared_ptr<Connection>& conn() const { return conn_; }

 private:
  std::shared_ptr<Connection> conn_;
  beast::tcp_stream& socket_;
};

// The connection's stream and what the HTTP session keeps around it. The stream is shared with
// the close watcher of a streamed response, whose pending read must not outlive it.
template <typename Stream>
class SessionIo {
 public:
  SessionIo(std::shared_ptr<Connection> c, std::shared_ptr<Stream> s, std::string remote)
      : conn(std::move(c)),
        stream(std::move(s)),
        remoteAddress(std::move(remote)),
        socket_(&beast::get_lowest_layer(*stream)) {
    conn->setSocket(socket_);
  }
  ~SessionIo() {
    if (socket_ != nullptr) {
      conn->releaseSocket(socket_);
    }
  }
  SessionIo(const SessionIo&) = delete;
  SessionIo& operator=(const SessionIo&) = delete;

  // The stream is about to move to a WebSocket or RawStream: the session must not touch it
  // (nor socket()) again, and abort() closes the new owner's.
  void handOver() {
    conn->releaseSocket(socket_);
    socket_ = nullptr;
  }
  bool handedOver() const { return socket_ == nullptr; }

  const Options& options() const { return conn->server->options; }
  beast::tcp_stream& socket() { return *socket_; }

  const std::shared_ptr<Connection> conn;
  const std::shared_ptr<Stream> stream;
  beast::flat_buffer buffer;  // bytes read past the current request
  const std::string remoteAddress;
  std::optional<ClientCertificate> clientCertificate;

 private:
  beast::tcp_stream* socket_;  // the stream's lowest layer while the session owns it
};

enum class ExchangeState {
  kFresh,      // nothing sent yet: the handler's Response will be
  kStreaming,  // status and headers sent, chunks follow
  kEnded,      // the last chunk sent
  kUpgraded,   // the stream belongs to a WebSocket or RawStream now
  kClosed,     // the connection failed or was answered and must close
};

template <typename Stream>
class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(SessionIo<Stream>& io, const Request& request, const RawRequest& raw);

  const Request& request() const override { return request_; }
  asio::any_io_executor executor() const override { return io_.conn->strand; }
  asio::awaitable<Status> startStream(const Response& head) override;
  asio::awaitable<Status> write(std::string_view data) override;
  asio::awaitable<Status> endStream() override;
  bool clientGone() const override { return io_.conn->clientGone(); }
  asio::awaitable<void> untilClientGone() override;
  bool isWebSocketUpgrade() const override;
  asio::awaitable<Result<std::unique_ptr<WebSocket>>> acceptWebSocket(
      const std::vector<std::string>& subprotocols) override;
  asio::awaitable<Result<std::unique_ptr<RawStream>>> upgrade(std::string_view protocol,
                                                              const Headers& headers) override;

  ExchangeState state() const { return state_; }
  // After the handler returned while streaming: ends the body unless `failed` (a truncated
  // body tells the client something went wrong), then closes the connection once the client
  // closed its side or after a short linger.
  asio::awaitable<void> finishStream(bool failed);

 private:
  SessionIo<Stream>& io_;
  const Request& request_;
  const RawRequest& raw_;
  ExchangeState state_ = ExchangeState::kFresh;
  bool chunked_ = true;  // false for HTTP/1.0: the body ends with the connection
};

extern template class ExchangeImpl<PlainStream>;
extern template class ExchangeImpl<TlsStream>;

// websocket.cc: the upgraded connections. `stream` is moved from.
template <typename Stream>
asio::awaitable<Result<std::unique_ptr<WebSocket>>> acceptWebSocketOn(
    const std::shared_ptr<Connection>& conn, Stream& stream, const RawRequest& request,
    const std::string& subprotocol);
template <typename Stream>
std::unique_ptr<RawStream> makeRawStream(std::shared_ptr<Connection> conn, Stream& stream,
                                         beast::flat_buffer& leftover);

extern template asio::awaitable<Result<std::unique_ptr<WebSocket>>> acceptWebSocketOn(
    const std::shared_ptr<Connection>&, PlainStream&, const RawRequest&, const std::string&);
extern template asio::awaitable<Result<std::unique_ptr<WebSocket>>> acceptWebSocketOn(
    const std::shared_ptr<Connection>&, TlsStream&, const RawRequest&, const std::string&);
extern template std::unique_ptr<RawStream> makeRawStream(std::shared_ptr<Connection>, PlainStream&,
                                                         beast::flat_buffer&);
extern template std::unique_ptr<RawStream> makeRawStream(std::shared_ptr<Connection>, TlsStream&,
                                                         beast::flat_buffer&);

// connection.cc: serves one accepted connection until it closes or is handed over.
asio::awaitable<void> serveConnection(std::shared_ptr<Connection> conn,
                                      asio::ip::tcp::socket socket);

}  // namespace burstlet::server::detail
