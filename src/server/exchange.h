// What a route handler sees of one request: the Request, and an Exchange through which a
// coroutine handler may answer in other ways than with one Response: a body streamed in
// chunks, a WebSocket, or the raw connection after a 101 (SPDY and other upgrades).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace burstlet::server {

class WebSocket;
class RawStream;

using Headers = std::vector<std::pair<std::string, std::string>>;

// The certificate a TLS client presented, verified against the listener's client CAs.
struct ClientCertificate {
  std::string commonName;                  // subject CN: the user, as the kubelet reads it
  std::vector<std::string> organizations;  // subject O: the user's groups
};

struct Request {
  // As sent ("GET", "POST", ...). A route that accepts GET also gets HEAD; its body is dropped.
  std::string method;
  std::string path;   // without the query, not decoded
  std::string query;  // after '?', undecoded; empty when absent
  Headers headers;
  std::string body;           // at most Options::maxBodyBytes
  std::string remoteAddress;  // the client's "ip:port"
  bool tls = false;
  // Present when the listener verifies client certificates and this client sent a valid one.
  std::optional<ClientCertificate> clientCertificate;

  // The first value of header `name` (case-insensitive), empty when absent.
  std::string_view header(std::string_view name) const;
};

struct Response {
  unsigned status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
  Headers headers;  // extra response headers
};

// One request being answered. Owned by the server and valid until the handler returns; used on
// executor() only (the handler runs there).
//
// A handler answers in exactly one way: by returning a Response, or by startStream(), or by
// an upgrade. Once it streamed or upgraded, the Response it returns is ignored.
//
// Arguments passed by reference must outlive the co_await: pass named objects, not
// temporaries built in the co_await expression (GCC 12 miscompiles those in coroutines).
class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const Request& request() const = 0;
  // The connection's strand: the handler runs on it, and so must every use of this Exchange
  // and of the WebSocket or RawStream it hands out.
  virtual boost::asio::any_io_executor executor() const = 0;

  // --- Streaming: status and headers now, the body in chunks as it comes -------------------
  // Sends `head` (status, content type, headers; a non-empty body becomes the first chunk)
  // with chunked transfer encoding (HTTP/1.0 clients: a body delimited by the close) and
  // "Connection: close": the connection ends with the stream. From now on the server watches
  // the connection, so clientGone() and untilClientGone() tell when the client went away.
  // Errors: kInvalid "AlreadyAnswered" after another answer, kUnavailable "ClientGone".
  virtual boost::asio::awaitable<Status> startStream(const Response& head) = 0;
  // Sends `data` as one chunk and flushes it (empty: nothing). A write the client does not
  // take within Options::idleTimeout fails and closes the connection. To a HEAD request
  // nothing is sent. Errors: kInvalid "NotStreaming", kUnavailable "ClientGone".
  virtual boost::asio::awaitable<Status> write(std::string_view data) = 0;
  // Ends the body (the last chunk). Optional: done when the handler returns.
  virtual boost::asio::awaitable<Status> endStream() = 0;
  // True once the client closed or reset the connection, or the server stopped. Only known
  // while streaming: before startStream() the server does not read the connection.
  virtual bool clientGone() const = 0;
  // Completes when clientGone() becomes true (at once if it is), e.g. to cancel a backend log
  // stream. Also completes when this coroutine is cancelled (the server stops).
  virtual boost::asio::awaitable<void> untilClientGone() = 0;

  // --- Upgrades -------------------------------------------------------------------------------
  // True for a WebSocket opening handshake (GET with Upgrade: websocket).
  virtual bool isWebSocketUpgrade() const = 0;
  // Accepts the WebSocket, choosing the first of `subprotocols` (most preferred first) that
  // the client offered in Sec-WebSocket-Protocol; none when the client offered none. The
  // returned socket reads and writes whole messages. Errors leave the exchange unanswered
  // (the handler returns a Response) unless said otherwise: kBadRequest "NotWebSocket",
  // kInvalid "UnsupportedSubprotocol" (the client offered only others), kUnavailable
  // "HandshakeFailed" (connection lost or a malformed handshake, answered with 400).
  virtual boost::asio::awaitable<Result<std::unique_ptr<WebSocket>>> acceptWebSocket(
      const std::vector<std::string>& subprotocols) = 0;
  // Answers "101 Switching Protocols" with "Upgrade: <protocol>", "Connection: Upgrade" and
  // `headers`, and hands over the byte stream behind it (decrypted on TLS). Errors:
  // kInvalid "AlreadyAnswered", kUnavailable "ClientGone" (the 101 could not be sent).
  virtual boost::asio::awaitable<Result<std::unique_ptr<RawStream>>> upgrade(
      std::string_view protocol, const Headers& headers) = 0;
};

// A route's handler, run as a coroutine on the connection's strand. Handlers of different
// connections run concurrently. When the server stops, the handler's pending operation is
// cancelled (it completes with operation_aborted) and the connection is closed under it.
using Handler = std::function<boost::asio::awaitable<Response>(Exchange&)>;

// A plain handler: runs to completion under the server's lock (one at a time, never after
// stop() returned), so it must be cheap and must not call stop().
using SyncHandler = std::function<Response(const Request&)>;

}  // namespace burstlet::server
