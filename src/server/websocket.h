// Connections a handler took over with an upgrade: a WebSocket (whole messages, Boost.Beast)
// or the raw byte stream after a 101 (for protocols the server does not speak itself, such as
// SPDY/3.1). Both may be used by one reader and one writer at a time, on executor() only. They
// keep their connection counted against Options::maxConnections until destroyed, and the
// server's stop() closes them.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace burstlet::server {

struct WebSocketMessage {
  std::string data;
  bool binary = true;  // false: a text frame (UTF-8)
};

class WebSocket {
 public:
  virtual ~WebSocket() = default;

  // The negotiated subprotocol, empty when none.
  virtual const std::string& subprotocol() const = 0;
  virtual boost::asio::any_io_executor executor() const = 0;

  // The next whole message; pings are answered on the way. Errors: kUnavailable
  // "WebSocketClosed" when the peer closed (see closeCode()), kInvalid "MessageTooBig" (over
  // Options::maxMessageBytes: the socket is closed with 1009), kUnavailable "ConnectionLost".
  virtual boost::asio::awaitable<Result<WebSocketMessage>> read() = 0;
  // Sends one message. Errors: kUnavailable "ConnectionLost" (also after close).
  virtual boost::asio::awaitable<Status> write(std::string_view data, bool binary) = 0;
  // Sends a close frame with `code` and `reason`, and waits for the peer's close (bounded by
  // the server's idle timeout). A pending read() then fails with "WebSocketClosed".
  virtual boost::asio::awaitable<Status> close(unsigned short code, std::string_view reason) = 0;
  // The code of the peer's close frame, 0 before one arrived.
  virtual unsigned short closeCode() const = 0;
  // Closes the connection at once, without a close frame (a protocol carried inside the
  // messages ended, or failed); pending operations complete with errors.
  virtual void abort() = 0;
};

class RawStream {
 public:
  virtual ~RawStream() = default;

  virtual boost::asio::any_io_executor executor() const = 0;

  // Reads some bytes into `buffer` (at least one unless the stream ended): first whatever the
  // client sent right behind its upgrade request. 0 when the client closed its side.
  // Errors: kUnavailable "ConnectionLost".
  virtual boost::asio::awaitable<Result<size_t>> readSome(boost::asio::mutable_buffer buffer) = 0;
  // Writes all of `data`, which must stay valid until this completes.
  // Errors: kUnavailable "ConnectionLost".
  virtual boost::asio::awaitable<Status> write(boost::asio::const_buffer data) = 0;
  // Closes the connection at once; pending operations complete with errors.
  virtual void close() = 0;
};

}  // namespace burstlet::server
