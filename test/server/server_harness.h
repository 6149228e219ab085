// Test harness for src/server: a fixture that runs an HttpServer on a thread pool, and
// clients (plain or TLS) on their own io_context that drive one operation at a time to
// completion, each with a deadline, so that a server bug fails a test instead of hanging it.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "server/http_server.h"

namespace burstlet::server::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

// A TLS client context that trusts `caPem` (and checks the server's name against `host`), with
// an optional client certificate.
inline std::shared_ptr<ssl::context> clientTlsContext(const std::string& caPem,
                                                      const std::string& host = "127.0.0.1",
                                                      const std::string& certPem = "",
                                                      const std::string& keyPem = "") {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->add_certificate_authority(asio::buffer(caPem));
  ctx->set_verify_mode(ssl::verify_peer);
  ctx->set_verify_callback(ssl::host_name_verification(host));
  if (!certPem.empty()) {
    ctx->use_certificate_chain(asio::buffer(certPem));
    ctx->use_private_key(asio::buffer(keyPem), ssl::context::pem);
  }
  return ctx;
}

template <typename Stream>
class BasicClient {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  // Plain: connects. TLS: connects and handshakes with `ctx` (see connectError).
  explicit BasicClient(unsigned short port, const char* host = "127.0.0.1") requires(!kTls)
      : stream_(io_) {
    connect(port, host);
  }
  BasicClient(unsigned short port, ssl::context& ctx, const char* host = "127.0.0.1") requires(kTls)
      : stream_(io_, ctx) {
    connect(port, host);
    if (!connectError) {
      lowest().expires_after(5s);
      stream_.async_handshake(ssl::stream_base::client, [this](error_code ec) { ec_ = ec; });
      run();
      connectError = ec_;
    }
  }

  error_code write(const std::string& raw) {
    lowest().expires_after(5s);
    asio::async_write(stream_, asio::buffer(raw), [this](error_code ec, size_t) { ec_ = ec; });
    run();
    return ec_;
  }

  struct Reply {
    error_code ec;
    http::response<http::string_body> res;
  };

  Reply read(bool head = false, std::chrono::milliseconds deadline = 5s) {
    http::response_parser<http::string_body> parser;
    parser.skip(head);  // a response to HEAD has no body whatever Content-Length says
    parser.body_limit(size_t{16} << 20);
    lowest().expires_after(deadline);
    http::async_read(stream_, buffer_, parser, [this](error_code ec, size_t) { ec_ = ec; });
    run();
    Reply r{ec_, {}};
    if (!r.ec) {
      r.res = parser.release();
    }
    return r;
  }

  Reply request(const std::string& method, const std::string& target, bool keepAlive = true) {
    std::string raw = method + " " + target + " HTTP/1.1\r\nHost: test\r\n";
    if (!keepAlive) {
      raw += "Connection: close\r\n";
    }
    raw += "\r\n";
    if (auto ec = write(raw)) {
      return Reply{ec, {}};
    }
    return read(method == "HEAD");
  }

  // Some bytes as they arrive (what was buffered first); empty on error or at the deadline.
  std::string readSome(std::chrono::milliseconds deadline = 5s) {
    if (buffer_.size() > 0) {
      std::string out = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      return out;
    }
    std::array<char, 4096> scratch{};
    size_t got = 0;
    lowest().expires_after(deadline);
    stream_.async_read_some(asio::buffer(scratch), [this, &got](error_code ec, size_t n) {
      ec_ = ec;
      got = n;
    });
    run();
    return std::string(scratch.data(), got);
  }

  // Reads until `text` arrived (or the deadline); everything read so far.
  std::string readUntil(const std::string& text, std::chrono::milliseconds deadline = 5s) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    std::string got;
    while (got.find(text) == std::string::npos && std::chrono::steady_clock::now() < end) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      std::string more = readSome(std::max(left, std::chrono::milliseconds(1)));
      if (more.empty()) {
        break;
      }
      got += more;
    }
    return got;
  }

  // Waits until the server closes the connection; false if it is still open at the deadline
  // or sends data.
  bool closedByServer(std::chrono::milliseconds deadline = 3s) {
    std::array<char, 64> scratch{};
    lowest().expires_after(deadline);
    size_t got = 0;
    stream_.async_read_some(asio::buffer(scratch), [this, &got](error_code ec, size_t n) {
      ec_ = ec;
      got = n;
    });
    run();
    // A TLS server that closes below the encryption looks truncated, which is still closed.
    return got == 0 && (ec_ == asio::error::eof || ec_ == asio::error::connection_reset ||
                        ec_ == ssl::error::stream_truncated);
  }

  // Closes the connection from the client's side.
  void close() { lowest().close(); }

  Stream& stream() { return stream_; }
  beast::flat_buffer& buffer() { return buffer_; }
  // Drives the client's io_context until its queued work is done.
  void run() {
    io_.restart();
    io_.run();
  }

  error_code connectError;

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void connect(unsigned short port, const char* host) {
    lowest().expires_after(5s);
    lowest().async_connect(tcp::endpoint(asio::ip::make_address(host), port),
                           [this](error_code ec) { ec_ = ec; });
    run();
    connectError = ec_;
  }

  asio::io_context io_;
  Stream stream_;
  beast::flat_buffer buffer_;
  error_code ec_;
};

using Client = BasicClient<beast::tcp_stream>;
using TlsClient = BasicClient<beast::ssl_stream<beast::tcp_stream>>;

// Runs an HttpServer on `threads` threads; stopAndJoin() (also at teardown) stops it and
// checks that the threads' run() returned.
class ServerHarness : public ::testing::Test {
 public:
  // What handlers report back, in the order they did (handlers run on server threads).
  void note(const std::string& what) {
    std::lock_guard lock(notesMu_);
    notes_ += what + ";";
  }
  std::string notes() {
    std::lock_guard lock(notesMu_);
    return notes_;
  }

 protected:
  void TearDown() override { stopAndJoin(); }

  void startServer(Options options, const std::string& address, int threads,
                   const std::function<void(HttpServer&)>& addRoutes) {
    auto created = HttpServer::create(io_.get_executor(), address, std::move(options));
    ASSERT_TRUE(created.ok()) << created.error().toString();
    server_ = std::move(*created);
    addRoutes(*server_);
    server_->start();
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    runDone_ = std::async(std::launch::async, [this] {
      for (auto& t : threads_) {
        t.join();
      }
    });
  }

  // True when every thread's run() returned within the deadline after stop().
  bool stopAndJoin(std::chrono::milliseconds deadline = 5s) {
    if (server_) {
      server_->stop();
    }
    if (!runDone_.valid()) {
      return true;
    }
    const bool done = runDone_.wait_for(deadline) == std::future_status::ready;
    if (!done) {
      io_.stop();  // let the test fail instead of hanging
    }
    runDone_.get();
    return done;
  }

  // Polls `pred` until it holds or `limit` passes (for what a server thread sets).
  static bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  }

  asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::thread> threads_;
  std::future<void> runDone_;

 private:
  std::mutex notesMu_;
  std::string notes_;
};

}  // namespace burstlet::server::testing
