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
  // Zero: the transport's default.
  std::chrono::milliseconds timeout{0};
};

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

class Transport {
 public:
  virtual ~Transport() = default;
  // One request/response exchange. A non-2xx status is a response, not an error; errors are
  // connection, TLS, timeout and protocol failures (kUnavailable / kTimeout).
  virtual asio::awaitable<Result<HttpResponse>> send(HttpRequest request) = 0;
  // Opens a streaming exchange once the response headers arrived. For a non-2xx status the
  // stream carries the error body: callers check status() first.
  virtual asio::awaitable<Result<std::unique_ptr<ResponseStream>>> stream(HttpRequest request) = 0;
};

}  // namespace burstlet::kube
