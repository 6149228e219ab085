// HttpServer: the process's HTTP/1.1 server (Boost.Beast, coroutines), plain or TLS. Routes
// by exact path or path prefix and method; handlers are coroutines (or plain functions) that
// answer with a Response, a streamed body, a WebSocket or a raw upgraded stream (exchange.h,
// websocket.h). It faces whatever can reach the port, so every connection is bounded: TLS
// handshake time, header and body size, time to deliver a request and to take a response, and
// the number of open connections.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "server/exchange.h"
#include "server/tls_context.h"

namespace burstlet::server {

namespace detail {
struct ServerState;
}  // namespace detail

struct Options {
  // Time a connection gets to deliver a complete request (from the end of the previous
  // response, so it also bounds keep-alive idleness) and to take a response or a streamed
  // chunk. Not a limit on how long a handler, a stream or an upgraded connection lasts.
  std::chrono::milliseconds idleTimeout{std::chrono::seconds(30)};
  // Time a TLS client gets to complete its handshake.
  std::chrono::milliseconds tlsHandshakeTimeout{std::chrono::seconds(10)};
  // Connections beyond this are closed as soon as they are accepted. Streams and upgraded
  // connections count until they end.
  size_t maxConnections = 128;
  size_t maxHeaderBytes = size_t{8} * 1024;  // larger: 431 and close
  size_t maxBodyBytes = size_t{64} * 1024;   // larger: 413 and close
  size_t maxMessageBytes = size_t{1} << 20;  // a larger WebSocket message closes it (1009)
  // TLS with these certificates; plain HTTP when empty.
  std::optional<TlsOptions> tls;
  // For TLS reload checks and generated certificates; null: realClock().
  const Clock* clock = nullptr;
};

// Methods a route accepts. GET implies HEAD (the handler sees "HEAD"; the server drops the
// body and keeps its Content-Length). Others get 405 with an Allow header.
using Methods = std::vector<std::string>;

// Each connection runs on its own strand of the executor given to create(), so the io_context
// may be run by several threads. route(), start(), stop() and port() may be called from any
// thread.
class HttpServer {
 public:
  // Binds and listens on `listenAddress`: "host:port" with an IP address as host,
  // "[v6]:port", or ":port" for all interfaces. Port 0 picks a free port (see port()).
  // Errors: kInvalid "InvalidAddress" for an unparsable address, kUnavailable "ListenFailed"
  // when the address cannot be bound (in use, not local, no permission), and TlsContext's
  // errors for options.tls.
  static Result<std::unique_ptr<HttpServer>> create(const boost::asio::any_io_executor& executor,
                                                    const std::string& listenAddress,
                                                    Options options = {});
  // Stops the server (see stop()).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves `path` (exact match, without query); replaces an earlier route for the same path.
  // Requests already running keep the handler they started with.
  void route(std::string path, SyncHandler handler, Methods methods = {"GET"});
  void route(std::string path, Handler handler, Methods methods = {"GET"});
  // Serves every path that starts with `prefix` (e.g. "/containerLogs/") and has no exact
  // route; the longest matching prefix wins.
  void routePrefix(std::string prefix, SyncHandler handler, Methods methods = {"GET"});
  void routePrefix(std::string prefix, Handler handler, Methods methods = {"GET"});
  // Starts accepting connections. Further calls, and calls after stop(), do nothing.
  void start();
  // Closes the listener and every open connection, streams and upgraded ones included. No
  // SyncHandler runs once stop() has returned, and no handler starts. Coroutine handlers that
  // are running are cancelled: their pending operation completes with operation_aborted, their
  // connection is closed, and they end on the executor shortly after; so the io_context's
  // run() returns once nothing else is queued (a handler awaiting something the server cannot
  // cancel ends when that completes). Idempotent.
  void stop();
  // The bound port, useful after asking for port 0.
  unsigned short port() const;
  // The TLS certificates in use; null for plain HTTP.
  TlsContext* tls() const;

  // Use create(): the state is only defined inside the server's sources.
  explicit HttpServer(std::shared_ptr<detail::ServerState> state);

 private:
  // Shared with the accept loop and connection coroutines: they end on the executor after
  // stop(), possibly after this object is gone.
  std::shared_ptr<detail::ServerState> state_;
};

}  // namespace burstlet::server
