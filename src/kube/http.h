// HTTP seam between the API client and the network: requests, responses, streaming bodies,
// and the Transport interface. The implementation (transport.h) speaks HTTP/1.1 over TLS with
// Beast; tests substitute small local servers or fakes.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace burstlet::kube {

namespace asio = boost::asio;
using Verb = boost::beast::http::verb;

struct HttpRequest {
  Verb method = Verb::get;
  std::string target;  // path and query, e.g. "/api/v1/pods?limit=500"
  std::string body;
  std::string contentType;
  std::string accept = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // stream() only: ask for a gzip-compressed body, decoded transparently (a large list). send()
  // always asks, unless the transport has compression turned off.
  bool compressedStream = false;
  // Deadline of the whole exchange; for streams, the longest silence tolerated between reads.
  // Zero: the transport's default. kNoTimeout (streams only): silence is never cut, for a stream
  // that may rightly be quiet for hours (a followed log); the caller cancels it.
  std::chrono::milliseconds timeout{0};
};

inline constexpr std::chrono::milliseconds kNoTimeout{-1};

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::string contentType;
  std::optional<std::chrono::seconds> retryAfter;  // from a Retry-After header
};

// A response whose body arrives over time (a watch). Not thread-safe: one reader.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual unsigned status() const = 0;
  // The next piece of the body, in arbitrary sizes; std::nullopt at the clean end of the body.
  virtual asio::awaitable<Result<std::optional<std::string>>> read() = 0;
  // Closes the connection; a pending read() completes with kCancelled. Thread-safe.
  virtual void cancel() = 0;
};

// A WebSocket to open: the upgrade request and how long the connection may take.
struct WebSocketRequest {
  std::string target;  // path and query
  // Offered in this order (Sec-WebSocket-Protocol); the server picks one.
  std::vector<std::string> subprotocols;
  std::vector<std::pair<std::string, std::string>> headers;
  // Deadline of connecting and of the upgrade (and later of the closing handshake). Zero: the
  // transport's default.
  std::chrono::milliseconds timeout{0};
  // Zero: a silent peer is never cut. Otherwise the connection pings after half of it without a
  // frame from the peer and fails with kTimeout after all of it (a pong counts as a frame).
  std::chrono::milliseconds idleTimeout{0};
  // Larger messages fail the read (kInvalid "MessageTooBig").
  size_t maxMessageBytes = size_t{16} << 20;
};

// An open WebSocket: whole messages both ways. One read() and one write() (or close()) may be in
// flight at once, from any threads; further writes wait their turn.
class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  // The subprotocol the server picked; empty when it picked none.
  virtual const std::string& subprotocol() const = 0;
  // The next whole message (binary or text); std::nullopt once the peer closed the WebSocket
  // with a close frame. A connection lost without one is kUnavailable "ConnectionLost".
  virtual asio::awaitable<Result<std::optional<std::string>>> read() = 0;
  // Sends one binary message.
  virtual asio::awaitable<Status> write(std::string message) = 0;
  // The closing handshake (close code 1000); a pending read() then ends with std::nullopt.
  virtual asio::awaitable<Status> close() = 0;
  // Closes the connection at once; pending and later operations end with kCancelled.
  // Thread-safe.
  virtual void cancel() = 0;
};

// The answer to a WebSocket upgrade: the open connection (101), or else the server's answer.
struct WebSocketUpgrade {
  std::unique_ptr<WebSocketConnection> connection;
  HttpResponse refusal;  // when connection is null
};

class Transport {
 public:
  virtual ~Transport() = default;
  // One request/response exchange. A non-2xx status is a response, not an error; errors are
  // connection, TLS, timeout and protocol failures (kUnavailable / kTimeout).
  virtual asio::awaitable<Result<HttpResponse>> send(HttpRequest request) = 0;
  // Opens a streaming exchange once the response headers arrived. For a non-2xx status the
  // stream carries the error body: callers check status() first.
  virtual asio::awaitable<Result<std::unique_ptr<ResponseStream>>> stream(HttpRequest request) = 0;
  // Opens a WebSocket (never through the keep-alive pool). A refused upgrade is a
  // WebSocketUpgrade with the answer, not an error. Default: kNotSupported.
  virtual asio::awaitable<Result<WebSocketUpgrade>> websocket(WebSocketRequest request);
};

}  // namespace burstlet::kube
