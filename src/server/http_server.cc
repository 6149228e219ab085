#include "server/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <charconv>
#include <optional>
#include <vector>

#include "server/connection.h"

namespace burstlet::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

using detail::Connection;
using detail::ServerState;

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

asio::awaitable<void> acceptLoop(std::shared_ptr<ServerState> s) {
  error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  while (!s->isStopped()) {
    // Each connection on a strand of its own: handlers of different connections run in
    // parallel on a thread pool.
    auto strand = asio::make_strand(s->executor);
    tcp::socket socket(strand);
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
    {
      std::lock_guard lock(s->connMu);
      if (s->active >= s->options.maxConnections) {
        // Debug only: a flood of connections would otherwise flood the log too.
        spdlog::debug("msg=\"http connection limit reached\" address={} limit={}", s->address,
                      s->options.maxConnections);
        socket.close(ec);
        continue;
      }
      ++s->active;
    }
    // Responses are written whole; without this a pipelined second response would wait for
    // the client's delayed ACK of the first.
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = Connection::create(s, strand);
    // The completion handler keeps the connection, whose signal the slot lives in, until the
    // coroutine is done.
    asio::co_spawn(
        strand, detail::serveConnection(conn, std::move(socket)),
        asio::bind_cancellation_slot(conn->cancel.slot(), [conn](const std::exception_ptr&) {}));
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
  std::unique_ptr<TlsContext> tls;
  if (options.tls) {
    auto created =
        TlsContext::create(*options.tls, options.clock != nullptr ? *options.clock : realClock());
    if (!created.ok()) {
      return std::move(created).error();
    }
    tls = std::move(*created);
  }
  auto state = std::make_shared<ServerState>(executor, std::move(options));
  state->tls = std::move(tls);
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

namespace {

void addRoute(ServerState& s, bool prefix, std::string path, detail::Route route) {
  auto shared = std::make_shared<const detail::Route>(std::move(route));
  std::lock_guard lock(s.mu);
  (prefix ? s.prefixRoutes : s.routes).insert_or_assign(std::move(path), std::move(shared));
}

}  // namespace

void HttpServer::route(std::string path, SyncHandler handler, Methods methods) {
  addRoute(*state_, false, std::move(path), {std::move(handler), {}, std::move(methods)});
}

void HttpServer::route(std::string path, Handler handler, Methods methods) {
  addRoute(*state_, false, std::move(path), {{}, std::move(handler), std::move(methods)});
}

void HttpServer::routePrefix(std::string prefix, SyncHandler handler, Methods methods) {
  addRoute(*state_, true, std::move(prefix), {std::move(handler), {}, std::move(methods)});
}

void HttpServer::routePrefix(std::string prefix, Handler handler, Methods methods) {
  addRoute(*state_, true, std::move(prefix), {{}, std::move(handler), std::move(methods)});
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
  asio::dispatch(state_->strand, [state = state_] {
    error_code ec;
    state->acceptor.close(ec);
    state->retryTimer.cancel();
  });
  // A connection registered after this saw `stopped` set and ends by itself (serveConnection).
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(state_->connMu);
    for (const auto& [raw, weak] : state_->connections) {
      if (auto conn = weak.lock()) {
        open.push_back(std::move(conn));
      }
    }
  }
  for (auto& conn : open) {
    asio::post(conn->strand, [conn] { conn->abort(); });
  }
}

unsigned short HttpServer::port() const { return state_->port; }

TlsContext* HttpServer::tls() const { return state_->tls.get(); }

}  // namespace burstlet::server
