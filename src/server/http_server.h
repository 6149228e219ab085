// HttpServer: a small HTTP/1.1 server (plain TCP, Boost.Beast, coroutines) for the daemon's
// /healthz, /readyz and /metrics. Only GET and HEAD, exact-path routes, synchronous handlers.
// It faces whatever can reach the port, so every connection is bounded: header and body size,
// time to deliver a request, and the number of open connections.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace burstlet::server {

namespace detail {
struct ServerState;
}  // namespace detail

struct Request {
  std::string method;  // "GET" or "HEAD": other methods never reach a handler
  std::string path;    // without the query
  std::string query;   // after '?', undecoded; empty when absent
  std::vector<std::pair<std::string, std::string>> headers;

  // The first value of header `name` (case-insensitive), empty when absent.
  std::string_view header(std::string_view name) const;
};

struct Response {
  unsigned status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
};

// Runs on the server's strand, one at a time. Must be cheap and must not call stop().
using Handler = std::function<Response(const Request&)>;

struct Options {
  // Time a connection gets to deliver a complete request (from the end of the previous
  // response, so it also bounds keep-alive idleness) and to take a response.
  std::chrono::milliseconds idleTimeout{std::chrono::seconds(30)};
  // Connections beyond this are closed as soon as they are accepted.
  size_t maxConnections = 128;
  size_t maxHeaderBytes = size_t{8} * 1024;  // larger: 431 and close
  size_t maxBodyBytes = size_t{64} * 1024;   // larger: 413 and close
};

// All I/O runs on a strand of the executor given to create(), so the io_context may be run by
// several threads. route(), start(), stop() and port() may be called from any thread.
class HttpServer {
 public:
  // Binds and listens on `listenAddress`: "host:port" with an IP address as host,
  // "[v6]:port", or ":port" for all interfaces. Port 0 picks a free port (see port()).
  // Errors: kInvalid "InvalidAddress" for an unparsable address, kUnavailable "ListenFailed"
  // when the address cannot be bound (in use, not local, no permission).
  static Result<std::unique_ptr<HttpServer>> create(const boost::asio::any_io_executor& executor,
                                                    const std::string& listenAddress,
                                                    Options options = {});
  // Stops the server (see stop()).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves `path` (exact match, without query) with `handler`; replaces an earlier route.
  void route(std::string path, Handler handler);
  // Starts accepting connections. Further calls, and calls after stop(), do nothing.
  void start();
  // Closes the listener and every open connection. No handler runs once stop() has returned.
  // The connections' coroutines end on the executor shortly after, so the io_context's run()
  // returns once nothing else is queued. Idempotent.
  void stop();
  // The bound port, useful after asking for port 0.
  unsigned short port() const;

  // Use create(): the state is only defined inside http_server.cc.
  explicit HttpServer(std::shared_ptr<detail::ServerState> state);

 private:
  // Shared with the accept loop and connection coroutines: they end on the executor after
  // stop(), possibly after this object is gone.
  std::shared_ptr<detail::ServerState> state_;
};

}  // namespace burstlet::server
