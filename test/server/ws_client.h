// WsClient: a Beast WebSocket client for tests of WebSocket routes (plain or TLS), driving one
// operation at a time on its own io_context with a deadline.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace burstlet::server::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using boost::system::error_code;
using namespace std::chrono_literals;

// A Beast WebSocket client on its own io_context; every operation has a deadline of 5 s (the
// client then reports timed_out and leaves the operation pending).
template <typename Stream>
class WsClient {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  explicit WsClient(unsigned short port) requires(!kTls) : ws_(io_) { connect(port); }
  WsClient(unsigned short port, asio::ssl::context& ctx) requires(kTls) : ws_(io_, ctx) {
    connect(port);
    if (!error) {
      ws_.next_layer().async_handshake(asio::ssl::stream_base::client,
                                       [this](error_code ec) { done(ec); });
      run();
      error = ec_;
    }
  }

  // The opening handshake, offering `protocols` ("a, b"; empty: no header).
  error_code handshake(const std::string& target, const std::string& protocols) {
    if (error) {
      return error;
    }
    ws_.set_option(websocket::stream_base::decorator(
        [protocols, headers = headers](websocket::request_type& req) {
          if (!protocols.empty()) {
            req.set(http::field::sec_websocket_protocol, protocols);
          }
          for (const auto& [name, value] : headers) {
            req.set(name, value);
          }
        }));
    beast::get_lowest_layer(ws_).expires_never();
    ws_.async_handshake(response, "127.0.0.1", target, [this](error_code ec) { done(ec); });
    run();
    return ec_;
  }

  error_code write(const std::string& data, bool binary) {
    ws_.binary(binary);
    ws_.async_write(asio::buffer(data), [this](error_code ec, size_t) { done(ec); });
    run();
    return ec_;
  }

  struct Message {
    error_code ec;
    std::string data;
    bool binary = false;
  };
  Message read() {
    beast::flat_buffer buffer;
    ws_.async_read(buffer, [this](error_code ec, size_t) { done(ec); });
    run();
    return Message{ec_, beast::buffers_to_string(buffer.data()), ws_.got_binary()};
  }

  error_code close(websocket::close_code code) {
    ws_.async_close(code, [this](error_code ec) { done(ec); });
    run();
    return ec_;
  }

  websocket::stream<Stream>& ws() { return ws_; }

  error_code error;
  websocket::response_type response;
  // Sent with the opening handshake (e.g. Authorization).
  std::vector<std::pair<std::string, std::string>> headers;

 private:
  void connect(unsigned short port) {
    beast::get_lowest_layer(ws_).expires_after(5s);
    beast::get_lowest_layer(ws_).async_connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
        [this](error_code ec) { done(ec); });
    run();
    error = ec_;
  }
  void done(error_code ec) {
    ec_ = ec;
    done_ = true;
  }
  // Runs until the operation started last completes or 5 s passed.
  void run() {
    done_ = false;
    io_.restart();
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (!done_ && std::chrono::steady_clock::now() < end) {
      io_.run_one_for(10ms);
    }
    if (!done_) {
      ec_ = asio::error::timed_out;
    }
  }

  asio::io_context io_;
  websocket::stream<Stream> ws_;
  error_code ec_;
  bool done_ = false;
};

}  // namespace burstlet::server::testing
