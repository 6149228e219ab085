#include "server/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace burstlet::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace detail {

struct ServerState {
  ServerState(const asio::any_io_executor& executor, Options opts)
      : strand(asio::make_strand(executor)), acceptor(strand), retryTimer(strand), options(opts) {}

  bool isStopped() {
    std::lock_guard lock(mu);
    return stopped;
  }

  // On the strand.
  void closeAll() {
    error_code ec;
    acceptor.close(ec);
    retryTimer.cancel();
    for (auto* c : connections) {
      c->close();
    }
  }

  asio::strand<asio::any_io_executor> strand;
  // The members below up to `mu` are only touched on the strand.
  tcp::acceptor acceptor;
  asio::steady_timer retryTimer;  // back-off after a failed accept
  std::set<beast::tcp_stream*> connections;
  size_t active = 0;  // accepted connections, including those not yet in `connections`

  const Options options;
  std::string address;  // as given to create(), for logs
  unsigned short port = 0;

  // Guards routes, started and stopped. Held while a handler runs, so that once stop() has
  // set `stopped` no handler is running or will run.
  std::mutex mu;
  std::map<std::string, Handler, std::less<>> routes;
  bool started = false;
  bool stopped = false;
};

}  // namespace detail

namespace {

using detail::ServerState;

// How long a closing connection may keep sending what we will not read (the rest of an
// oversized request), so that the client receives our error response instead of a reset.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = size_t{256} * 1024;
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

struct ListenAddress {
  std::optional<asio::ip::address> host;  // empty: all interfaces
  unsigned short port = 0;
};

Error invalidAddress(const std::string& address, std::string_view why) {
  return Error::make(ErrorCode::kInvalid, "InvalidAddress",
                     fmt::format("listen address \"{}\": {}", address, why));
}

Result<ListenAddress> parseListenAddress(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    return invalidAddress(address, "expected host:port, [v6]:port or :port");
  }
  std::string_view host = std::string_view(address).substr(0, colon);
  const std::string_view portText = std::string_view(address).substr(colon + 1);
  unsigned port = 0;
  const auto [end, err] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (portText.empty() || err != std::errc() || end != portText.data() + portText.size() ||
      port > 65535) {
    return invalidAddress(address, "port must be a number from 0 to 65535");
  }
  ListenAddress out;
  out.port = static_cast<unsigned short>(port);
  if (host.empty()) {
    return out;
  }
  const bool bracketed = host.front() == '[';
  if (bracketed) {
    if (host.size() < 2 || host.back() != ']') {
      return invalidAddress(address, "unterminated [");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return invalidAddress(address, "an IPv6 address must be in brackets");
  }
  error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec || ip.is_v6() != bracketed) {
    return invalidAddress(address, "host must be an IP address");
  }
  out.host = ip;
  return out;
}

error_code listenOn(tcp::acceptor& acceptor, const tcp::endpoint& endpoint) {
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) {
    return ec;
  }
  // A restarted daemon must not wait for the old connections' TIME_WAIT; on Linux this never
  // lets two listeners share a port. Neither option is essential, so failures are ignored.
  error_code ignored;
  acceptor.set_option(tcp::acceptor::reuse_address(true), ignored);
  if (endpoint.address().is_v6() && endpoint.address().is_unspecified()) {
    // "[::]:port" and ":port" mean IPv4 and IPv6 on one socket.
    acceptor.set_option(asio::ip::v6_only(false), ignored);
  }
  acceptor.bind(endpoint, ec);
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    acceptor.close(ignored);
  }
  return ec;
}

bool isMalformed(const error_code& ec) {
  static const auto& kHttpCategory = make_error_code(http::error::bad_method).category();
  return ec.category() == kHttpCategory && ec != http::error::end_of_stream &&
         ec != http::error::partial_message && ec != http::error::need_more;
}

using RawRequest = http::request<http::string_body>;
using RawResponse = http::response<http::string_body>;

RawResponse makeResponse(unsigned version, Response r, bool head) {
  RawResponse res;
  res.version(version);
  res.result(r.status >= 100 && r.status <= 999 ? r.status : 500);
  res.set(http::field::server, "burstlet");
  if (!r.contentType.empty()) {
    res.set(http::field::content_type, r.contentType);
  }
  for (const auto& [name, value] : r.headers) {
    res.set(name, value);
  }
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

// The response to a parsed request, or nothing when the server is stopping.
std::optional<RawResponse> dispatchRequest(ServerState& s, const RawRequest& raw) {
  const bool head = raw.method() == http::verb::head;
  const std::string_view target = raw.target();
  const auto q = target.find('?');
  Request req;
  req.method = std::string(raw.method_string());
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    req.query = std::string(target.substr(q + 1));
  }
  Response r;
  {
    std::lock_guard lock(s.mu);
    if (s.stopped) {
      return std::nullopt;
    }
    auto it = s.routes.find(req.path);
    if (it == s.routes.end()) {
      r.status = 404;
      r.body = "not found\n";
    } else if (!head && raw.method() != http::verb::get) {
      r.status = 405;
      r.body = "method not allowed\n";
      r.headers.emplace_back("Allow", "GET, HEAD");
    } else {
      for (const auto& field : raw) {
        req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      try {
        r = it->second(req);
      } catch (const std::exception& e) {
        // Handlers are not supposed to throw; one bug must not take the endpoint down.
        spdlog::error("msg=\"http handler failed\" path={} error=\"{}\"", req.path, e.what());
        r = Response{500, "text/plain; charset=utf-8", "internal error\n", {}};
      }
    }
  }
  auto res = makeResponse(raw.version(), std::move(r), head);
  res.keep_alive(raw.keep_alive());
  return res;
}

// Keeps a connection in the server's books for as long as its coroutine lives, so stop() can
// close it. Created and destroyed on the strand.
class ConnectionGuard {
 public:
  ConnectionGuard(ServerState& s, beast::tcp_stream& stream) : s_(s), stream_(stream) {
    s_.connections.insert(&stream_);
  }
  ~ConnectionGuard() {
    s_.connections.erase(&stream_);
    --s_.active;
  }
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

 private:
  ServerState& s_;
  beast::tcp_stream& stream_;
};

// Sends FIN, then reads and drops what the client still sends for a short while: closing with
// unread data makes the kernel send a reset, which can destroy our response in flight.
asio::awaitable<void> lingeringClose(ServerState& s, beast::tcp_stream& stream) {
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (!ec && !s.isStopped()) {
    stream.expires_after(std::min<std::chrono::milliseconds>(s.options.idleTimeout, kLingerTime));
    std::array<char, 4096> scratch{};
    size_t total = 0;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    while (!ec && total < kLingerBytes) {
      auto buffer = asio::buffer(scratch);
      total += co_await stream.async_read_some(buffer, token);
    }
  }
  stream.close();
}

asio::awaitable<void> serveConnection(std::shared_ptr<ServerState> s, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  ConnectionGuard guard(*s, stream);
  if (s->isStopped()) {
    co_return;  // stop() ran between accept and now: closeAll() did not see this connection
  }
  beast::flat_buffer buffer;
  error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(s->options.maxHeaderBytes));
    parser.body_limit(s->options.maxBodyBytes);
    // One deadline for the whole request: a client trickling bytes gets no more time.
    stream.expires_after(s->options.idleTimeout);
    co_await http::async_read(stream, buffer, parser, token);
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
      res = dispatchRequest(*s, parser.get());
      if (!res) {
        break;
      }
    }
    stream.expires_after(s->options.idleTimeout);
    co_await http::async_write(stream, *res, token);
    if (ec) {
      break;
    }
    if (!res->keep_alive()) {
      co_await lingeringClose(*s, stream);
      co_return;
    }
  }
  stream.close();
}

asio::awaitable<void> acceptLoop(std::shared_ptr<ServerState> s) {
  error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  while (!s->isStopped()) {
    tcp::socket socket(s->strand);
    co_await s->acceptor.async_accept(socket, token);
    if (s->isStopped() || !s->acceptor.is_open()) {
      co_return;
    }
    if (ec) {
      // Mostly out of file descriptors: wait for some to be released instead of spinning.
      spdlog::warn("msg=\"http accept failed\" address={} error=\"{}\"", s->address, ec.message());
      s->retryTimer.expires_after(kAcceptRetryDelay);
      co_await s->retryTimer.async_wait(token);
      continue;
    }
    if (s->active >= s->options.maxConnections) {
      // Debug only: a flood of connections would otherwise flood the log too.
      spdlog::debug("msg=\"http connection limit reached\" address={} limit={}", s->address,
                    s->options.maxConnections);
      socket.close(ec);
      continue;
    }
    // Responses are written whole; without this a pipelined second response would wait for
    // the client's delayed ACK of the first.
    socket.set_option(tcp::no_delay(true), ec);
    ++s->active;
    asio::co_spawn(s->strand, serveConnection(s, std::move(socket)), asio::detached);
  }
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) {
      return v;
    }
  }
  return {};
}

HttpServer::HttpServer(std::shared_ptr<detail::ServerState> state) : state_(std::move(state)) {}

HttpServer::~HttpServer() { stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::create(const asio::any_io_executor& executor,
                                                       const std::string& listenAddress,
                                                       Options options) {
  auto parsed = parseListenAddress(listenAddress);
  if (!parsed.ok()) {
    return std::move(parsed).error();
  }
  auto state = std::make_shared<ServerState>(executor, options);
  state->address = listenAddress;
  error_code ec;
  if (parsed->host) {
    ec = listenOn(state->acceptor, tcp::endpoint(*parsed->host, parsed->port));
  } else {
    ec = listenOn(state->acceptor, tcp::endpoint(tcp::v6(), parsed->port));
    if (ec && ec != asio::error::address_in_use && ec != asio::error::access_denied) {
      // No IPv6 on this host: all IPv4 interfaces, then.
      ec = listenOn(state->acceptor, tcp::endpoint(tcp::v4(), parsed->port));
    }
  }
  if (ec) {
    return Error::make(ErrorCode::kUnavailable, "ListenFailed",
                       fmt::format("listening on \"{}\": {}", listenAddress, ec.message()));
  }
  state->port = state->acceptor.local_endpoint(ec).port();
  spdlog::debug("msg=\"http server listening\" address={} port={}", listenAddress, state->port);
  return std::make_unique<HttpServer>(std::move(state));
}

void HttpServer::route(std::string path, Handler handler) {
  std::lock_guard lock(state_->mu);
  state_->routes.insert_or_assign(std::move(path), std::move(handler));
}

void HttpServer::start() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->started || state_->stopped) {
      return;
    }
    state_->started = true;
  }
  asio::co_spawn(state_->strand, acceptLoop(state_), asio::detached);
}

void HttpServer::stop() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopped) {
      return;
    }
    state_->stopped = true;
  }
  asio::dispatch(state_->strand, [state = state_] { state->closeAll(); });
}

unsigned short HttpServer::port() const { return state_->port; }

}  // namespace burstlet::server
