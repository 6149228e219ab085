// One connection: TLS handshake, then requests read one at a time (keep-alive, pipelining),
// routed and answered, until the client leaves, a limit is hit, or a handler takes the
// connection over.
#include "server/connection.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>

#include "server/openssl_util.h"

namespace burstlet::server::detail {

using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr size_t kLingerBytes = size_t{256} * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

using RawResponse = http::response<http::string_body>;

bool isMalformed(const error_code& ec) {
  static const auto& kHttpCategory = make_error_code(http::error::bad_method).category();
  return ec.category() == kHttpCategory && ec != http::error::end_of_stream &&
         ec != http::error::partial_message && ec != http::error::need_more;
}

RawResponse makeResponse(unsigned version, Response r, bool head) {
  RawResponse res;
  res.version(version);
  setHead(res, r.status, r.contentType, r.headers);
  res.body() = std::move(r.body);
  res.prepare_payload();
  if (head) {
    res.body().clear();  // Content-Length still announces what GET would send
  }
  return res;
}

RawResponse errorResponse(unsigned status, std::string text) {
  Response r;
  r.status = status;
  r.body = std::move(text);
  r.body += '\n';
  auto res = makeResponse(11, std::move(r), false);
  res.keep_alive(false);
  return res;
}

std::string endpointText(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), endpoint.port())
                         : fmt::format("{}:{}", address.to_string(), endpoint.port());
}

// The verified client certificate of a finished handshake. Without client CAs the server asks
// for none, so there is none.
std::optional<ClientCertificate> verifiedPeer(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) {
    return std::nullopt;
  }
  return ClientCertificate{subjectCommonName(cert), subjectOrganizations(cert)};
}

template <typename Stream>
Request makeRequest(const SessionIo<Stream>& io, const RawRequest& raw) {
  const std::string_view target = raw.target();
  const auto q = target.find('?');
  Request req;
  req.method = std::string(raw.method_string());
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    req.query = std::string(target.substr(q + 1));
  }
  for (const auto& field : raw) {
    req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  req.body = raw.body();
  req.remoteAddress = io.remoteAddress;
  req.tls = std::is_same_v<Stream, TlsStream>;
  req.clientCertificate = io.clientCertificate;
  return req;
}

// Sends FIN, then reads and drops what the client still sends for a short while: closing with
// unread data makes the kernel send a reset, which can destroy our response in flight. On TLS
// this is below the encryption: the response was complete, no close_notify follows.
template <typename Stream>
asio::awaitable<void> lingeringClose(SessionIo<Stream>& io) {
  auto& socket = io.socket();
  error_code ec;
  socket.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (!ec && !io.conn->aborted() && !io.conn->server->isStopped()) {
    socket.expires_after(
        std::min<std::chrono::milliseconds>(io.options().idleTimeout, kLingerTime));
    std::array<char, 4096> scratch{};
    size_t total = 0;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    while (!ec && total < kLingerBytes) {
      auto buffer = asio::buffer(scratch);
      total += co_await socket.async_read_some(buffer, token);
    }
  }
  socket.close();
}

enum class Next {
  kKeepAlive,   // read the next request
  kLinger,      // answered with Connection: close
  kClose,       // close now
  kHandedOver,  // a stream or upgrade took the connection; it is not ours to touch
};

Response plainResponse(unsigned status, std::string body) {
  return Response{status, "text/plain; charset=utf-8", std::move(body), {}};
}

// Runs a SyncHandler under the server's lock; nullopt when the server stopped.
std::optional<Response> runSync(ServerState& s, const Route& route, const Request& req) {
  std::lock_guard lock(s.mu);
  if (s.stopped) {
    return std::nullopt;
  }
  try {
    return route.sync(req);
  } catch (const std::exception& e) {
    // Handlers are not supposed to throw; one bug must not take the endpoint down.
    spdlog::error("msg=\"http handler failed\" path={} error=\"{}\"", req.path, e.what());
    return plainResponse(500, "internal error\n");
  }
}

template <typename Stream>
asio::awaitable<Next> dispatch(SessionIo<Stream>& io, const RawRequest& raw) {
  ServerState& s = *io.conn->server;
  const Request req = makeRequest(io, raw);
  std::shared_ptr<const Route> route;
  {
    std::lock_guard lock(s.mu);
    if (s.stopped) {
      co_return Next::kClose;
    }
    route = s.findLocked(req.path);
  }
  Response r;
  if (!route) {
    r = plainResponse(404, "not found\n");
  } else if (!route->accepts(req.method)) {
    r = plainResponse(405, "method not allowed\n");
    r.headers.emplace_back("Allow", route->allow());
  } else if (route->sync) {
    auto answered = runSync(s, *route, req);
    if (!answered) {
      co_return Next::kClose;
    }
    r = std::move(*answered);
  } else {
    ExchangeImpl<Stream> ex(io, req, raw);
    bool failed = false;
    try {
      r = co_await route->async(ex);
    } catch (const std::exception& e) {
      failed = true;
      if (io.conn->aborted()) {
        spdlog::debug("msg=\"http handler cancelled\" path={} error=\"{}\"", req.path, e.what());
      } else {
        spdlog::error("msg=\"http handler failed\" path={} error=\"{}\"", req.path, e.what());
      }
    }
    switch (ex.state()) {
      case ExchangeState::kStreaming:
      case ExchangeState::kEnded:
        co_await ex.finishStream(failed);
        co_return Next::kHandedOver;
      case ExchangeState::kUpgraded:
        co_return Next::kHandedOver;
      case ExchangeState::kClosed:
        co_return Next::kClose;
      case ExchangeState::kFresh:
        break;
    }
    if (io.conn->aborted()) {
      co_return Next::kClose;
    }
    if (failed) {
      r = plainResponse(500, "internal error\n");
    }
  }
  auto res = makeResponse(raw.version(), std::move(r), raw.method() == http::verb::head);
  res.keep_alive(raw.keep_alive());
  error_code ec;
  io.socket().expires_after(io.options().idleTimeout);
  co_await http::async_write(*io.stream, res, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return Next::kClose;
  }
  co_return res.keep_alive() ? Next::kKeepAlive : Next::kLinger;
}

template <typename Stream>
asio::awaitable<void> serveRequests(SessionIo<Stream>& io) {
  const Options& options = io.options();
  error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.maxHeaderBytes));
    parser.body_limit(options.maxBodyBytes);
    // One deadline for the whole request: a client trickling bytes gets no more time.
    io.socket().expires_after(options.idleTimeout);
    co_await http::async_read_header(*io.stream, io.buffer, parser, token);
    if (!ec && !parser.is_done() &&
        beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      // The body is within the limit (else the header read failed): ask for it.
      co_await asio::async_write(*io.stream, asio::buffer(kContinue), token);
    }
    if (!ec && !parser.is_done()) {
      co_await http::async_read(*io.stream, io.buffer, parser, token);
    }
    std::optional<RawResponse> res;
    if (ec == http::error::header_limit) {
      res = errorResponse(431, "request header fields too large");
    } else if (ec == http::error::body_limit) {
      res = errorResponse(413, "request body too large");
    } else if (ec && isMalformed(ec)) {
      res = errorResponse(400, "bad request");
    } else if (ec) {
      break;  // closed by the client, timed out, or stopped
    } else {
      const Next next = co_await dispatch(io, parser.get());
      if (next == Next::kKeepAlive) {
        continue;
      }
      if (next == Next::kLinger) {
        co_await lingeringClose(io);
      } else if (next == Next::kClose) {
        io.socket().close();
      }
      co_return;
    }
    io.socket().expires_after(options.idleTimeout);
    co_await http::async_write(*io.stream, *res, token);
    if (!ec) {
      co_await lingeringClose(io);
      co_return;
    }
    break;
  }
  io.socket().close();
}

asio::awaitable<void> servePlain(const std::shared_ptr<Connection>& conn, tcp::socket& socket,
                                 const std::string& remote) {
  SessionIo<PlainStream> io(conn, std::make_shared<PlainStream>(std::move(socket)), remote);
  co_await serveRequests(io);
}

asio::awaitable<void> serveTls(const std::shared_ptr<Connection>& conn, tcp::socket& socket,
                               const std::string& remote) {
  const Options& options = conn->server->options;
  conn->tlsContext = conn->server->tls->forNewConnection();
  SessionIo<TlsStream> io(
      conn, std::make_shared<TlsStream>(beast::tcp_stream(std::move(socket)), *conn->tlsContext),
      remote);
  error_code ec;
  io.socket().expires_after(options.tlsHandshakeTimeout);
  co_await io.stream->async_handshake(asio::ssl::stream_base::server,
                                      asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    // Scanners and clients that distrust us end here: not worth more than debug.
    spdlog::debug("msg=\"tls handshake failed\" address={} client={} error=\"{}\"",
                  conn->server->address, remote, ec.message());
    io.socket().close();
  } else {
    io.clientCertificate = verifiedPeer(io.stream->native_handle());
    co_await serveRequests(io);
  }
}

}  // namespace

bool Route::accepts(std::string_view method) const {
  return std::any_of(methods.begin(), methods.end(), [method](const std::string& m) {
    return m == method || (m == "GET" && method == "HEAD");
  });
}

std::string Route::allow() const {
  const bool head = std::find(methods.begin(), methods.end(), "HEAD") != methods.end();
  std::string out;
  for (const auto& m : methods) {
    out += out.empty() ? "" : ", ";
    out += m;
    if (m == "GET" && !head) {
      out += ", HEAD";
    }
  }
  return out;
}

ServerState::ServerState(const asio::any_io_executor& ex, Options opts)
    : executor(ex),
      strand(asio::make_strand(ex)),
      acceptor(strand),
      retryTimer(strand),
      options(std::move(opts)) {}

bool ServerState::isStopped() {
  std::lock_guard lock(mu);
  return stopped;
}

std::shared_ptr<const Route> ServerState::findLocked(std::string_view path) const {
  if (auto it = routes.find(path); it != routes.end()) {
    return it->second;
  }
  std::shared_ptr<const Route> best;
  size_t bestLength = 0;
  for (const auto& [prefix, route] : prefixRoutes) {
    if (path.starts_with(prefix) && (!best || prefix.size() > bestLength)) {
      best = route;
      bestLength = prefix.size();
    }
  }
  return best;
}

Connection::Connection(std::shared_ptr<ServerState> s, Strand st)
    : server(std::move(s)), strand(std::move(st)), goneEvent_(strand) {
  goneEvent_.expires_at(asio::steady_timer::time_point::max());
}

std::shared_ptr<Connection> Connection::create(const std::shared_ptr<ServerState>& server,
                                               Strand strand) {
  auto conn = std::make_shared<Connection>(server, std::move(strand));
  std::lock_guard lock(server->connMu);
  server->connections.emplace(conn.get(), conn);
  return conn;
}

Connection::~Connection() {
  std::lock_guard lock(server->connMu);
  server->connections.erase(this);
  --server->active;
}

void Connection::setSocket(beast::tcp_stream* socket) {
  std::lock_guard lock(socketMu_);
  socket_ = socket;
}

void Connection::releaseSocket(const beast::tcp_stream* socket) {
  std::lock_guard lock(socketMu_);
  if (socket_ == socket) {
    socket_ = nullptr;
  }
}

void Connection::abort() {
  aborted_ = true;
  cancel.emit(asio::cancellation_type::terminal);
  {
    std::lock_guard lock(socketMu_);
    if (socket_ != nullptr) {
      socket_->close();
    }
  }
  markClientGone();
}

bool Connection::aborted() const { return aborted_; }

void Connection::markClientGone() {
  if (!gone_) {
    gone_ = true;
    goneEvent_.cancel();
  }
}

bool Connection::clientGone() const { return gone_; }

asio::awaitable<void> Connection::untilClientGone() {
  if (!gone_) {
    error_code ec;
    co_await goneEvent_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> serveConnection(std::shared_ptr<Connection> conn, tcp::socket socket) {
  // Cancellation (stop()) makes operations fail with operation_aborted, never throw: the
  // session must still release what a pending operation uses.
  co_await asio::this_coro::throw_if_cancelled(false);
  if (conn->server->isStopped()) {
    co_return;  // stop() ran between accept and now and may not have seen this connection
  }
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  const std::string remote = ec ? std::string() : endpointText(endpoint);
  try {
    if (conn->server->tls) {
      co_await serveTls(conn, socket, remote);
    } else {
      co_await servePlain(conn, socket, remote);
    }
  } catch (const std::exception& e) {
    spdlog::error("msg=\"http connection failed\" address={} client={} error=\"{}\"",
                  conn->server->address, remote, e.what());
  }
}

}  // namespace burstlet::server::detail
