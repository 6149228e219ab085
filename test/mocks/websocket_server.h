// LocalWebSocketServer: a small Beast WebSocket server on 127.0.0.1, plain or TLS, for tests of
// the WebSocket client and what is built on it (remotecommand, port-forward, the cci provider's
// streams). It runs on a thread of its own, so tests drive their client's io_context as usual.
// Per upgrade request a test decides: accept with a subprotocol and run a scripted session,
// refuse with a status and a body, or never answer.
#pragma once

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace burstlet::testing {

namespace ws_detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
}  // namespace ws_detail

// The server's side of one accepted WebSocket, for a session script (on the server's thread).
class ServerSocket {
 public:
  virtual ~ServerSocket() = default;
  // The next message; std::nullopt when the client closed or the connection failed.
  virtual boost::asio::awaitable<std::optional<std::string>> read() = 0;
  // Queues a binary message; flush() sends what is queued, in order (a failed send shows in the
  // next read). Two steps so that scripts never build a string inside a co_await (GCC 12).
  void push(std::string message) { queued_.push_back(std::move(message)); }
  virtual boost::asio::awaitable<void> flush() = 0;
  // The closing handshake.
  virtual boost::asio::awaitable<void> close() = 0;
  // Bytes on the wire under the WebSocket framing (a frame cut short).
  virtual boost::asio::awaitable<void> writeRaw(std::string bytes) = 0;
  // Drops the TCP connection without a close frame.
  virtual void drop() = 0;

 protected:
  std::vector<std::string> queued_;
};

struct UpgradeDecision {
  enum Kind { kAccept, kRefuse, kSilent } kind = kAccept;
  std::string subprotocol;  // kAccept: what the server picks ("" none)
  unsigned status = 403;    // kRefuse
  std::string body;         // kRefuse
};

class LocalWebSocketServer {
 public:
  using Request = ws_detail::http::request<ws_detail::http::string_body>;
  using Decide = std::function<UpgradeDecision(const Request&)>;
  using Session = std::function<boost::asio::awaitable<void>(ServerSocket&)>;

  // `tls`: certificate chain and key PEM for https; empty for plain http.
  LocalWebSocketServer(Decide decide, Session session, std::string certPem = "",
                       std::string keyPem = "")
      : decide_(std::move(decide)), session_(std::move(session)), acceptor_(io_) {
    using namespace ws_detail;
    if (!certPem.empty()) {
      tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      tls_->use_certificate_chain(asio::buffer(certPem));
      tls_->use_private_key(asio::buffer(keyPem), asio::ssl::context::pem);
    }
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, acceptLoop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~LocalWebSocketServer() {
    io_.stop();
    thread_.join();
  }

  std::string url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  int sessionsEnded() const { return ended_.load(); }

 private:
  template <class Stream>
  class Socket final : public ServerSocket {
   public:
    explicit Socket(Stream&& stream) : ws_(std::move(stream)) {}
    ws_detail::websocket::stream<Stream>& ws() { return ws_; }

    boost::asio::awaitable<std::optional<std::string>> read() override {
      using namespace ws_detail;
      beast::flat_buffer buffer;
      error_code ec;
      const size_t n =
          co_await ws_.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
      static_cast<void>(n);
      if (ec) {
        co_return std::nullopt;
      }
      co_return beast::buffers_to_string(buffer.data());
    }
    boost::asio::awaitable<void> flush() override {
      using namespace ws_detail;
      std::vector<std::string> messages;
      messages.swap(queued_);
      ws_.binary(true);
      for (const auto& message : messages) {
        error_code ec;
        const size_t n = co_await ws_.async_write(asio::buffer(message),
                                                  asio::redirect_error(asio::use_awaitable, ec));
        static_cast<void>(n);
        if (ec) {
          co_return;
        }
      }
    }
    boost::asio::awaitable<void> close() override {
      using namespace ws_detail;
      error_code ec;
      const websocket::close_reason reason(websocket::close_code::normal);
      co_await ws_.async_close(reason, asio::redirect_error(asio::use_awaitable, ec));
    }
    boost::asio::awaitable<void> writeRaw(std::string bytes) override {
      using namespace ws_detail;
      error_code ec;
      const size_t n = co_await asio::async_write(ws_.next_layer(), asio::buffer(bytes),
                                                  asio::redirect_error(asio::use_awaitable, ec));
      static_cast<void>(n);
    }
    void drop() override {
      ws_detail::error_code ec;
      ws_detail::beast::get_lowest_layer(ws_).socket().close(ec);
    }

   private:
    ws_detail::websocket::stream<Stream> ws_;
  };

  boost::asio::awaitable<void> acceptLoop() {
    using namespace ws_detail;
    while (true) {
      error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        co_return;
      }
      if (tls_) {
        auto stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(
            beast::tcp_stream(std::move(socket)), *tls_);
        asio::co_spawn(io_, serveTls(std::move(stream)), asio::detached);
      } else {
        auto stream = std::make_unique<beast::tcp_stream>(std::move(socket));
        asio::co_spawn(io_, serve(std::move(stream)), asio::detached);
      }
    }
  }

  boost::asio::awaitable<void> serveTls(
      std::unique_ptr<ws_detail::beast::ssl_stream<ws_detail::beast::tcp_stream>> stream) {
    using namespace ws_detail;
    error_code ec;
    co_await stream->async_handshake(asio::ssl::stream_base::server,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return;
    }
    co_await serve(std::move(stream));
  }

  template <class Stream>
  boost::asio::awaitable<void> serve(std::unique_ptr<Stream> stream) {
    using namespace ws_detail;
    beast::flat_buffer buffer;
    Request req;
    error_code ec;
    const size_t n = co_await http::async_read(*stream, buffer, req,
                                               asio::redirect_error(asio::use_awaitable, ec));
    static_cast<void>(n);
    if (ec) {
      co_return;
    }
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
    }
    UpgradeDecision decision = decide_(req);
    if (decision.kind == UpgradeDecision::kSilent) {
      asio::steady_timer forever(io_, std::chrono::hours(1));
      co_await forever.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      co_return;
    }
    if (decision.kind == UpgradeDecision::kRefuse) {
      http::response<http::string_body> res{static_cast<http::status>(decision.status), 11};
      res.set(http::field::content_type, "application/json");
      res.body() = decision.body;
      res.keep_alive(false);
      res.prepare_payload();
      const size_t w =
          co_await http::async_write(*stream, res, asio::redirect_error(asio::use_awaitable, ec));
      static_cast<void>(w);
      co_return;
    }
    Socket<Stream> socket(std::move(*stream));
    const std::string picked = decision.subprotocol;
    socket.ws().set_option(
        websocket::stream_base::decorator([picked](websocket::response_type& res) {
          if (!picked.empty()) {
            res.set(http::field::sec_websocket_protocol, picked);
          }
        }));
    co_await socket.ws().async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return;
    }
    co_await session_(socket);
    ++ended_;
  }

  Decide decide_;
  Session session_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  ws_detail::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;  // guards requests_
  std::vector<Request> requests_;
  std::atomic<int> ended_{0};
};

// A Kubernetes Status body, as the API server refuses a request.
inline std::string statusBody(unsigned code, const std::string& reason,
                              const std::string& message) {
  return R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":")" + message +
         R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) + "}";
}

}  // namespace burstlet::testing
