#include "server/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

namespace burstlet::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

// A client with its own io_context, driving async operations to completion one at a time so
// that every read has a deadline: a server bug fails the test instead of hanging it.
class Client {
 public:
  explicit Client(unsigned short port, const char* host = "127.0.0.1") : stream_(io_) {
    stream_.expires_after(5s);
    stream_.async_connect(tcp::endpoint(asio::ip::make_address(host), port),
                          [this](error_code ec) { ec_ = ec; });
    run();
    connectError = ec_;
  }

  error_code write(const std::string& raw) {
    stream_.expires_after(5s);
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
    stream_.expires_after(deadline);
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

  // Waits until the server closes the connection; false if it is still open at the deadline
  // or sends data.
  bool closedByServer(std::chrono::milliseconds deadline = 3s) {
    std::array<char, 64> scratch{};
    stream_.expires_after(deadline);
    size_t got = 0;
    stream_.async_read_some(asio::buffer(scratch), [this, &got](error_code ec, size_t n) {
      ec_ = ec;
      got = n;
    });
    run();
    return got == 0 && (ec_ == asio::error::eof || ec_ == asio::error::connection_reset);
  }

  error_code connectError;

 private:
  void run() {
    io_.restart();
    io_.run();
  }

  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  error_code ec_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void TearDown() override { stopAndJoin(); }

  void startServer(Options options = {}, const std::string& address = "127.0.0.1:0",
                   int threads = 1) {
    auto created = HttpServer::create(io_.get_executor(), address, options);
    ASSERT_TRUE(created.ok()) << created.error().toString();
    server_ = std::move(*created);
    server_->route("/healthz", [](const Request&) {
      return Response{200, "text/plain", "ok", {}};
    });
    server_->route("/echo", [](const Request& r) {
      return Response{
          200,
          "text/plain",
          r.method + "|" + r.path + "|" + r.query + "|" + std::string(r.header("x-test")),
          {{"X-Extra", "1"}}};
    });
    server_->route("/throw", [](const Request&) -> Response { throw std::runtime_error("boom"); });
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

  asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::thread> threads_;
  std::future<void> runDone_;
};

TEST_F(HttpServerTest, GetHealthz) {
  startServer();
  Client c(server_->port());
  auto r = c.request("GET", "/healthz");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 200u);
  EXPECT_EQ(r.res.body(), "ok");
  EXPECT_EQ(r.res[http::field::content_type], "text/plain");
  EXPECT_EQ(r.res[http::field::content_length], "2");
}

TEST_F(HttpServerTest, RequestPartsReachHandler) {
  startServer();
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /echo?a=1&b=%20 HTTP/1.1\r\nHost: t\r\nX-Test: hello\r\n\r\n"));
  auto r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.body(), "GET|/echo|a=1&b=%20|hello");
  EXPECT_EQ(r.res["X-Extra"], "1");
}

TEST_F(HttpServerTest, HeadSendsHeadersWithoutBody) {
  startServer();
  Client c(server_->port());
  auto head = c.request("HEAD", "/healthz");
  ASSERT_FALSE(head.ec) << head.ec.message();
  EXPECT_EQ(head.res.result_int(), 200u);
  EXPECT_EQ(head.res[http::field::content_length], "2");
  EXPECT_TRUE(head.res.body().empty());
  // Had the server sent the body, its bytes would now be parsed as the next response.
  auto get = c.request("GET", "/healthz");
  ASSERT_FALSE(get.ec) << get.ec.message();
  EXPECT_EQ(get.res.result_int(), 200u);
  EXPECT_EQ(get.res.body(), "ok");
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  startServer();
  Client c(server_->port());
  auto r = c.request("GET", "/nope?x");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 404u);
  EXPECT_TRUE(r.res.keep_alive());
  EXPECT_EQ(c.request("GET", "/healthz").res.result_int(), 200u);
}

TEST_F(HttpServerTest, PostIs405WithAllow) {
  startServer();
  Client c(server_->port());
  ASSERT_FALSE(c.write("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  auto r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 405u);
  EXPECT_EQ(r.res[http::field::allow], "GET, HEAD");
  // The body was consumed: the connection is still in step.
  EXPECT_EQ(c.request("DELETE", "/healthz").res.result_int(), 405u);
  EXPECT_EQ(c.request("GET", "/healthz").res.result_int(), 200u);
}

TEST_F(HttpServerTest, OversizedHeaderIs431AndClosed) {
  startServer();
  Client c(server_->port());
  const std::string big(size_t{10} * 1024, 'a');
  ASSERT_FALSE(c.write("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + big + "\r\n\r\n"));
  auto r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 431u);
  EXPECT_FALSE(r.res.keep_alive());
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(HttpServerTest, HeaderJustUnderLimitIsServed) {
  startServer();
  Client c(server_->port());
  const std::string big(size_t{7} * 1024, 'a');
  ASSERT_FALSE(c.write("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + big + "\r\n\r\n"));
  auto r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 200u);
}

TEST_F(HttpServerTest, OversizedBodyIs413) {
  Options o;
  o.maxBodyBytes = 1024;
  startServer(o);
  Client c(server_->port());
  ASSERT_FALSE(c.write("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n"));
  auto r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 413u);
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(HttpServerTest, MalformedRequestIs400AndClosed) {
  startServer();
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n"));
  auto r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 400u);
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  startServer();
  Client c(server_->port());
  auto r = c.request("GET", "/healthz", /*keepAlive=*/false);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 200u);
  EXPECT_FALSE(r.res.keep_alive());
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  startServer();
  Client c(server_->port());
  auto first = c.request("GET", "/healthz");
  ASSERT_FALSE(first.ec) << first.ec.message();
  EXPECT_TRUE(first.res.keep_alive());
  auto second = c.request("GET", "/echo?n=2");
  ASSERT_FALSE(second.ec) << second.ec.message();
  EXPECT_EQ(second.res.body(), "GET|/echo|n=2|");
  // Pipelined: two requests in one write, two responses in order.
  ASSERT_FALSE(c.write("GET /echo?n=3 HTTP/1.1\r\nHost: t\r\n\r\nGET /echo?n=4 HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.read().res.body(), "GET|/echo|n=3|");
  EXPECT_EQ(c.read().res.body(), "GET|/echo|n=4|");
}

TEST_F(HttpServerTest, HandlerExceptionIs500) {
  startServer();
  Client c(server_->port());
  EXPECT_EQ(c.request("GET", "/throw").res.result_int(), 500u);
  EXPECT_EQ(c.request("GET", "/healthz").res.result_int(), 200u);
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterTimeout) {
  Options o;
  o.idleTimeout = 200ms;
  startServer(o);
  Client c(server_->port());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closedByServer(3s));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 150ms);
  EXPECT_LT(elapsed, 2s);
}

TEST_F(HttpServerTest, SlowLorisIsClosedAtTheRequestDeadline) {
  Options o;
  o.idleTimeout = 200ms;
  startServer(o);
  Client c(server_->port());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_FALSE(c.write("GET /healthz HTTP/1.1\r\n"));
  // Trickle a header line every 50 ms: each byte arrives well within the timeout, but the
  // request as a whole does not.
  bool writeFailed = false;
  for (int i = 0; i < 40 && !writeFailed; ++i) {
    std::this_thread::sleep_for(50ms);
    writeFailed = static_cast<bool>(c.write("X-" + std::to_string(i) + ": y\r\n"));
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(writeFailed || c.closedByServer(100ms));
  EXPECT_LT(elapsed, 1500ms);
}

TEST_F(HttpServerTest, ConnectionLimit) {
  Options o;
  o.maxConnections = 2;
  startServer(o);
  auto a = std::make_unique<Client>(server_->port());
  Client b(server_->port());
  // A served request proves each connection was accepted and counted.
  ASSERT_EQ(a->request("GET", "/healthz").res.result_int(), 200u);
  ASSERT_EQ(b.request("GET", "/healthz").res.result_int(), 200u);
  {
    Client extra(server_->port());
    EXPECT_TRUE(extra.closedByServer());
  }
  a.reset();  // frees a slot once the server notices
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    Client next(server_->port());
    served = next.request("GET", "/healthz").res.result_int() == 200u;
    if (!served) {
      std::this_thread::sleep_for(10ms);
    }
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, StopClosesConnectionsAndEndsRun) {
  startServer();
  Client idle(server_->port());
  ASSERT_EQ(idle.request("GET", "/healthz").res.result_int(), 200u);
  Client partial(server_->port());
  ASSERT_FALSE(partial.write("GET /healthz HTTP/1.1\r\nHost:"));
  const unsigned short port = server_->port();
  EXPECT_TRUE(stopAndJoin(2s));
  server_->stop();  // a second stop is harmless
  EXPECT_TRUE(idle.closedByServer(1s));
  EXPECT_TRUE(partial.closedByServer(1s));
  Client late(port);
  EXPECT_TRUE(late.connectError) << "still listening after stop()";
}

TEST_F(HttpServerTest, DestroyingTheServerEndsRun) {
  startServer();
  Client idle(server_->port());
  ASSERT_EQ(idle.request("GET", "/healthz").res.result_int(), 200u);
  server_.reset();
  EXPECT_TRUE(stopAndJoin(2s));
  EXPECT_TRUE(idle.closedByServer(1s));
}

TEST_F(HttpServerTest, StopBeforeRunStarts) {
  auto created = HttpServer::create(io_.get_executor(), "127.0.0.1:0");
  ASSERT_TRUE(created.ok());
  (*created)->start();
  (*created)->stop();
  created->reset();
  // The accept loop was queued but never ran: it must still end on its own.
  const auto start = std::chrono::steady_clock::now();
  io_.run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(HttpServerTest, ManyClientsOnAThreadPool) {
  startServer({}, "127.0.0.1:0", /*threads=*/2);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  clients.reserve(4);
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([this, &ok] {
      Client c(server_->port());
      for (int i = 0; i < 25; ++i) {
        if (c.request("GET", "/healthz").res.body() == "ok") {
          ++ok;
        }
      }
    });
  }
  for (auto& t : clients) {
    t.join();
  }
  EXPECT_EQ(ok.load(), 100);
}

TEST_F(HttpServerTest, AllInterfacesAndIpv6) {
  startServer({}, ":0");
  Client v4(server_->port());
  EXPECT_EQ(v4.request("GET", "/healthz").res.result_int(), 200u);

  asio::io_context io;
  auto v6 = HttpServer::create(io.get_executor(), "[::1]:0");
  if (!v6.ok()) {
    GTEST_SKIP() << "no IPv6 loopback: " << v6.error().toString();
  }
  EXPECT_NE((*v6)->port(), 0);
}

TEST(HttpServerCreateTest, PortInUseFails) {
  asio::io_context io;
  auto first = HttpServer::create(io.get_executor(), "127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.error().toString();
  const std::string address = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HttpServer::create(io.get_executor(), address);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().reason, "ListenFailed");
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find(address), std::string::npos) << second.error().message;
}

TEST(HttpServerCreateTest, InvalidAddressesFail) {
  asio::io_context io;
  for (const std::string address :
       {"", "10255", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:80x",
        "localhost:80", "::1:80", "[::1:80", "[127.0.0.1]:80", "1.2.3:80"}) {
    auto s = HttpServer::create(io.get_executor(), address);
    ASSERT_FALSE(s.ok()) << address;
    EXPECT_EQ(s.error().reason, "InvalidAddress") << address;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalid) << address;
    EXPECT_NE(s.error().message.find("\"" + address + "\""), std::string::npos)
        << s.error().message;
  }
}

TEST(HttpServerCreateTest, AddressNotOnThisHostFails) {
  asio::io_context io;
  // TEST-NET-1: never assigned to a local interface.
  auto s = HttpServer::create(io.get_executor(), "192.0.2.1:0");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "ListenFailed");
}

}  // namespace
}  // namespace burstlet::server
