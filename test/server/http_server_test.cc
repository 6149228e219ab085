#include "server/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

#include "server/server_harness.h"

namespace burstlet::server {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using testing::Client;
using namespace std::chrono_literals;

class HttpServerTest : public testing::ServerHarness {
 protected:
  void startServer(Options options = {}, const std::string& address = "127.0.0.1:0",
                   int threads = 1) {
    ServerHarness::startServer(std::move(options), address, threads, [](HttpServer& s) {
      s.route("/healthz", [](const Request&) { return Response{200, "text/plain", "ok", {}}; });
      s.route("/echo", [](const Request& r) {
        return Response{
            200,
            "text/plain",
            r.method + "|" + r.path + "|" + r.query + "|" + std::string(r.header("x-test")),
            {{"X-Extra", "1"}}};
      });
      s.route("/throw", [](const Request&) -> Response { throw std::runtime_error("boom"); });
    });
  }
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

// Routes by prefix and method, request bodies and coroutine handlers.
class RoutingTest : public testing::ServerHarness {
 protected:
  void start(const std::function<void(HttpServer&)>& routes, Options options = {}) {
    startServer(std::move(options), "127.0.0.1:0", 2, routes);
  }

  // A handler answering with its name and what it saw.
  static SyncHandler named(const std::string& name) {
    return [name](const Request& r) {
      return Response{200, "text/plain", name + "|" + r.method + "|" + r.path, {}};
    };
  }
};

TEST_F(RoutingTest, ExactRouteThenLongestPrefix) {
  start([](HttpServer& s) {
    s.routePrefix("/containerLogs/", named("logs"));
    s.routePrefix("/containerLogs/kube-system/", named("system"));
    s.route("/containerLogs/ns/exact", named("exact"));
  });
  Client c(server_->port());
  EXPECT_EQ(c.request("GET", "/containerLogs/ns/pod/ctr?follow=true").res.body(),
            "logs|GET|/containerLogs/ns/pod/ctr");
  EXPECT_EQ(c.request("GET", "/containerLogs/kube-system/pod/ctr").res.body(),
            "system|GET|/containerLogs/kube-system/pod/ctr");
  EXPECT_EQ(c.request("GET", "/containerLogs/ns/exact").res.body(),
            "exact|GET|/containerLogs/ns/exact");
  // The prefix itself matches; a path that only shares its start without the slash does not.
  EXPECT_EQ(c.request("GET", "/containerLogs/").res.result_int(), 200u);
  EXPECT_EQ(c.request("GET", "/containerLogs").res.result_int(), 404u);
}

TEST_F(RoutingTest, MethodsOfARouteAnd405WithAllow) {
  start([](HttpServer& s) {
    s.route("/hook", named("hook"), {"POST"});
    s.route("/pods", named("pods"), {"GET", "POST"});
    s.routePrefix("/exec/", named("exec"), {"GET", "POST"});
  });
  Client c(server_->port());
  ASSERT_FALSE(c.write("POST /hook HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"));
  EXPECT_EQ(c.read().res.body(), "hook|POST|/hook");
  auto get = c.request("GET", "/hook");
  EXPECT_EQ(get.res.result_int(), 405u);
  EXPECT_EQ(get.res[http::field::allow], "POST");
  auto head = c.request("HEAD", "/hook");
  EXPECT_EQ(head.res.result_int(), 405u);
  auto del = c.request("DELETE", "/pods");
  EXPECT_EQ(del.res.result_int(), 405u);
  EXPECT_EQ(del.res[http::field::allow], "GET, HEAD, POST");
  EXPECT_EQ(c.request("HEAD", "/pods").res.result_int(), 200u);
  EXPECT_EQ(c.request("PUT", "/exec/ns/pod/ctr").res.result_int(), 405u);
  ASSERT_FALSE(c.write("POST /exec/ns/pod/ctr HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(c.read().res.body(), "exec|POST|/exec/ns/pod/ctr");
}

// A coroutine handler that answers with what it received.
asio::awaitable<Response> echoBody(Exchange& ex) {
  const Request& r = ex.request();
  co_return Response{
      200, "application/json", r.method + " " + std::to_string(r.body.size()) + " " + r.body, {}};
}

TEST_F(RoutingTest, RequestBodyReachesCoroutineHandler) {
  start([](HttpServer& s) { s.route("/hook", Handler(echoBody), {"POST"}); });
  Client c(server_->port());
  ASSERT_FALSE(
      c.write("POST /hook HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
              "Content-Length: 13\r\n\r\n{\"kind\":\"A\"}\n"));
  auto r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.body(), "POST 13 {\"kind\":\"A\"}\n");
  EXPECT_EQ(r.res[http::field::content_type], "application/json");
  // A chunked request body arrives whole.
  ASSERT_FALSE(
      c.write("POST /hook HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  EXPECT_EQ(c.read().res.body(), "POST 5 abcde");
}

TEST_F(RoutingTest, BodyOverTheLimitIs413AndJustUnderIsServed) {
  Options o;
  o.maxBodyBytes = 1000;
  start([](HttpServer& s) { s.route("/hook", Handler(echoBody), {"POST"}); }, o);
  {
    Client c(server_->port());
    ASSERT_FALSE(c.write("POST /hook HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
                         std::string(1000, 'x')));
    auto r = c.read();
    EXPECT_EQ(r.res.result_int(), 200u);
    EXPECT_EQ(r.res.body().substr(0, 9), "POST 1000");
  }
  Client c(server_->port());
  // Chunked: the limit is only known to be crossed as the chunks arrive.
  ASSERT_FALSE(
      c.write("POST /hook HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3e9\r\n" +
              std::string(1001, 'x') + "\r\n0\r\n\r\n"));
  auto r = c.read();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.result_int(), 413u);
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(RoutingTest, ExpectContinueIsAnswered) {
  start([](HttpServer& s) { s.route("/hook", Handler(echoBody), {"POST"}); });
  Client c(server_->port());
  ASSERT_FALSE(
      c.write("POST /hook HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
              "Content-Length: 4\r\n\r\n"));
  // The client waits for the 100 before it sends the body.
  EXPECT_EQ(c.readUntil("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_FALSE(c.write("body"));
  EXPECT_EQ(c.read().res.body(), "POST 4 body");
}

TEST_F(RoutingTest, CoroutineHandlersOfDifferentConnectionsDoNotBlockEachOther) {
  std::atomic<bool> released{false};
  start([&released](HttpServer& s) {
    s.route("/wait", [&released](Exchange& ex) -> asio::awaitable<Response> {
      asio::steady_timer timer(ex.executor());
      // Waits (suspended, not blocking a thread) until another request releases it.
      for (int i = 0; i < 500 && !released; ++i) {
        timer.expires_after(10ms);
        co_await timer.async_wait(asio::use_awaitable);
      }
      co_return Response{200, "text/plain", released ? "released" : "timed out", {}};
    });
    s.route("/release", [&released](const Request&) {
      released = true;
      return Response{200, "text/plain", "ok", {}};
    });
  });
  Client waiting(server_->port());
  ASSERT_FALSE(waiting.write("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n"));
  Client other(server_->port());
  EXPECT_EQ(other.request("GET", "/release").res.body(), "ok");
  EXPECT_EQ(waiting.read().res.body(), "released");
}

TEST_F(RoutingTest, CoroutineHandlerExceptionIs500AndHeadDropsTheBody) {
  start([](HttpServer& s) {
    s.route("/throw", [](Exchange&) -> asio::awaitable<Response> {
      throw std::runtime_error("boom");
      co_return Response{};
    });
    s.route("/who", [](Exchange& ex) -> asio::awaitable<Response> {
      const Request& r = ex.request();
      co_return Response{200,
                         "text/plain",
                         r.remoteAddress.substr(0, 10) + (r.tls ? " tls" : " plain") +
                             (r.clientCertificate ? " cert" : ""),
                         {}};
    });
  });
  Client c(server_->port());
  EXPECT_EQ(c.request("GET", "/throw").res.result_int(), 500u);
  auto who = c.request("GET", "/who");
  EXPECT_EQ(who.res.body(), "127.0.0.1: plain");
  auto head = c.request("HEAD", "/who");
  EXPECT_EQ(head.res.result_int(), 200u);
  EXPECT_EQ(head.res[http::field::content_length], "16");
  EXPECT_TRUE(head.res.body().empty());
  // In step: nothing of HEAD's body was sent.
  EXPECT_EQ(c.request("GET", "/who").res.body(), "127.0.0.1: plain");
}

TEST_F(RoutingTest, StopCancelsAWaitingCoroutineHandler) {
  std::atomic<bool> entered{false};
  std::atomic<bool> aborted{false};
  start([&](HttpServer& s) {
    s.route("/hang", [&](Exchange& ex) -> asio::awaitable<Response> {
      asio::steady_timer timer(ex.executor());
      timer.expires_after(std::chrono::hours(1));
      error_code ec;
      entered = true;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      aborted = ec == asio::error::operation_aborted;
      co_return Response{};
    });
  });
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /hang HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return entered.load(); }));
  EXPECT_TRUE(stopAndJoin(3s));
  EXPECT_TRUE(aborted);
  EXPECT_TRUE(c.closedByServer(1s));
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
