// Streamed responses and raw upgrades through the Exchange a coroutine handler gets.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "server/server_harness.h"
#include "server/websocket.h"

namespace burstlet::server {
namespace {

namespace asio = boost::asio;
using testing::Client;
using namespace std::chrono_literals;

// Suspends the handler (not its thread) until `flag` is set by the test, or 5 s passed.
asio::awaitable<void> waitFor(Exchange& ex, const std::atomic<bool>& flag) {
  asio::steady_timer timer(ex.executor());
  for (int i = 0; i < 1000 && !flag; ++i) {
    timer.expires_after(5ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

class ExchangeTest : public testing::ServerHarness {
 protected:
  void start(const std::function<void(HttpServer&)>& routes, Options options = {}) {
    startServer(std::move(options), "127.0.0.1:0", 2, routes);
  }

  std::atomic<bool> proceed_{false};
};

TEST_F(ExchangeTest, StreamsEachChunkAsItIsWritten) {
  start([this](HttpServer& s) {
    s.route("/logs", [this](Exchange& ex) -> asio::awaitable<Response> {
      Response head{200, "text/plain", "", {{"X-Log", "1"}}};
      auto started = co_await ex.startStream(head);
      auto first = co_await ex.write("one\n");
      note(started.ok() && first.ok() ? "written" : "failed");
      co_await waitFor(ex, proceed_);
      auto second = co_await ex.write("two\n");
      auto ended = co_await ex.endStream();
      note(second.ok() && ended.ok() ? "ended" : "failed");
      co_return Response{};  // ignored: the handler streamed
    });
  });
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /logs HTTP/1.1\r\nHost: t\r\n\r\n"));
  const std::string first = c.readUntil("one\n");
  EXPECT_NE(first.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << first;
  EXPECT_NE(first.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << first;
  EXPECT_NE(first.find("Connection: close\r\n"), std::string::npos) << first;
  EXPECT_NE(first.find("X-Log: 1\r\n"), std::string::npos) << first;
  EXPECT_NE(first.find("\r\n\r\n4\r\none\n"), std::string::npos) << first;
  // The handler waits for us: the second chunk cannot have been sent.
  EXPECT_EQ(first.find("two"), std::string::npos);
  proceed_ = true;
  const std::string rest = c.readUntil("0\r\n\r\n");
  EXPECT_NE(rest.find("4\r\ntwo\n\r\n0\r\n\r\n"), std::string::npos) << rest;
  EXPECT_TRUE(c.closedByServer());
  EXPECT_TRUE(eventually([this] { return notes() == "written;ended;"; })) << notes();
}

TEST_F(ExchangeTest, HandlerLearnsThatTheClientWentAway) {
  start([this](HttpServer& s) {
    s.route("/follow", [this](Exchange& ex) -> asio::awaitable<Response> {
      Response head;
      (void)co_await ex.startStream(head);
      (void)co_await ex.write("line\n");
      note(ex.clientGone() ? "gone early" : "streaming");
      // A follower waits for backend output that never comes; the client leaving ends it.
      co_await ex.untilClientGone();
      note(ex.clientGone() ? "gone" : "not gone");
      auto late = co_await ex.write("late\n");
      note(late.ok() ? "late write ok" : late.error().reason);
      co_return Response{};
    });
  });
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /follow HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_NE(c.readUntil("line\n").find("line\n"), std::string::npos);
  ASSERT_TRUE(eventually([this] { return notes() == "streaming;"; })) << notes();
  c.close();
  EXPECT_TRUE(eventually([this] { return notes() == "streaming;gone;ClientGone;"; })) << notes();
}

TEST_F(ExchangeTest, HeadAndHttp10Streams) {
  start([](HttpServer& s) {
    s.route("/logs", [](Exchange& ex) -> asio::awaitable<Response> {
      Response head{200, "text/plain", "one\n", {}};  // the body is the first chunk
      (void)co_await ex.startStream(head);
      (void)co_await ex.write("two\n");
      co_return Response{};  // the server ends the stream
    });
  });
  {
    Client c(server_->port());
    auto r = c.request("HEAD", "/logs");
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.res.result_int(), 200u);
    EXPECT_TRUE(r.res.chunked());
    EXPECT_TRUE(c.closedByServer()) << "a body was sent to HEAD";
  }
  {
    Client c(server_->port());
    auto r = c.request("GET", "/logs");
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.res.body(), "one\ntwo\n");
  }
  // HTTP/1.0 has no chunks: the body ends with the connection.
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /logs HTTP/1.0\r\n\r\n"));
  const std::string all = c.readUntil("two\n");
  EXPECT_EQ(all.find("Transfer-Encoding"), std::string::npos) << all;
  EXPECT_NE(all.find("\r\n\r\none\ntwo\n"), std::string::npos) << all;
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(ExchangeTest, OneAnswerPerRequest) {
  start([this](HttpServer& s) {
    s.route("/twice", [this](Exchange& ex) -> asio::awaitable<Response> {
      auto early = co_await ex.write("x");
      note(early.ok() ? "ok" : early.error().reason);
      Response head;
      (void)co_await ex.startStream(head);
      auto again = co_await ex.startStream(head);
      note(again.ok() ? "ok" : again.error().reason);
      const std::vector<std::string> protocols{"v5.channel.k8s.io"};
      auto ws = co_await ex.acceptWebSocket(protocols);
      note(ws.ok() ? "ok" : ws.error().reason);
      const Headers none;
      auto raw = co_await ex.upgrade("SPDY/3.1", none);
      note(raw.ok() ? "ok" : raw.error().reason);
      co_return Response{};
    });
  });
  Client c(server_->port());
  auto r = c.request("GET", "/twice");
  EXPECT_EQ(r.res.result_int(), 200u);
  EXPECT_EQ(notes(), "NotStreaming;AlreadyAnswered;AlreadyAnswered;AlreadyAnswered;");
}

TEST_F(ExchangeTest, AHandlerFailingMidStreamLeavesTheBodyUnfinished) {
  start([](HttpServer& s) {
    s.route("/logs", [](Exchange& ex) -> asio::awaitable<Response> {
      Response head;
      (void)co_await ex.startStream(head);
      (void)co_await ex.write("partial\n");
      throw std::runtime_error("backend failed");
    });
  });
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /logs HTTP/1.1\r\nHost: t\r\n\r\n"));
  const std::string got = c.readUntil("never");
  EXPECT_NE(got.find("partial\n"), std::string::npos) << got;
  EXPECT_EQ(got.find("0\r\n\r\n"), std::string::npos) << "the last chunk was sent: " << got;
}

TEST_F(ExchangeTest, StopClosesAnOpenStream) {
  start([this](HttpServer& s) {
    s.route("/follow", [this](Exchange& ex) -> asio::awaitable<Response> {
      Response head;
      (void)co_await ex.startStream(head);
      (void)co_await ex.write("line\n");
      co_await ex.untilClientGone();
      note("handler ended");
      co_return Response{};
    });
  });
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /follow HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_NE(c.readUntil("line\n").find("line\n"), std::string::npos);
  EXPECT_TRUE(stopAndJoin(3s));
  EXPECT_EQ(notes(), "handler ended;");
  EXPECT_TRUE(c.closedByServer(1s));
}

TEST_F(ExchangeTest, StreamsAreNotCutByTheRequestDeadlineButCountAsConnections) {
  Options o;
  o.idleTimeout = 100ms;
  o.maxConnections = 1;
  start(
      [this](HttpServer& s) {
        s.route("/logs", [this](Exchange& ex) -> asio::awaitable<Response> {
          Response head;
          (void)co_await ex.startStream(head);
          (void)co_await ex.write("one\n");
          co_await waitFor(ex, proceed_);  // longer than the idle timeout
          (void)co_await ex.write("two\n");
          co_return Response{};
        });
      },
      o);
  Client c(server_->port());
  ASSERT_FALSE(c.write("GET /logs HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_NE(c.readUntil("one\n").find("one\n"), std::string::npos);
  {
    Client extra(server_->port());
    EXPECT_TRUE(extra.closedByServer()) << "over the connection limit";
  }
  std::this_thread::sleep_for(300ms);  // three idle timeouts
  proceed_ = true;
  EXPECT_NE(c.readUntil("0\r\n\r\n").find("two\n\r\n0\r\n\r\n"), std::string::npos);
}

// Echoes what the raw stream carries until the client closes its side.
asio::awaitable<Response> rawEcho(Exchange& ex, ExchangeTest* test) {
  const Headers extra{{"X-Stream-Protocol-Version", "v4.channel.k8s.io"}};
  auto raw = co_await ex.upgrade("SPDY/3.1", extra);
  if (!raw.ok()) {
    co_return Response{500, "text/plain", raw.error().toString(), {}};
  }
  std::array<char, 256> buffer{};
  while (true) {
    auto n = co_await (*raw)->readSome(asio::buffer(buffer));
    if (!n.ok() || *n == 0) {
      test->note(n.ok() ? "eof" : n.error().reason);
      break;
    }
    const std::string echo = "<" + std::string(buffer.data(), *n) + ">";
    auto written = co_await (*raw)->write(asio::buffer(echo));
    if (!written.ok()) {
      break;
    }
  }
  co_return Response{};
}

TEST_F(ExchangeTest, RawUpgradeHandsOverTheByteStream) {
  start([this](HttpServer& s) {
    s.route("/exec/ns/pod/ctr", [this](Exchange& ex) { return rawEcho(ex, this); },
            {"GET", "POST"});
  });
  Client c(server_->port());
  // Bytes right behind the request reach the new owner first.
  ASSERT_FALSE(
      c.write("POST /exec/ns/pod/ctr HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
              "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
              "\r\nearly"));
  const std::string head = c.readUntil("<early>");
  EXPECT_NE(head.find("HTTP/1.1 101 Switching Protocols\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Upgrade: SPDY/3.1\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Connection: Upgrade\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\n\r\n<early>"), std::string::npos) << head;
  // Not HTTP any more: what looks like a request is just bytes.
  ASSERT_FALSE(c.write("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.readUntil(">"), "<GET / HTTP/1.1\r\n\r\n>");
  boost::system::error_code ec;
  c.stream().socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  EXPECT_TRUE(eventually([this] { return notes() == "eof;"; })) << notes();
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(ExchangeTest, StopClosesAnUpgradedStream) {
  start([this](HttpServer& s) {
    s.route("/exec", [this](Exchange& ex) { return rawEcho(ex, this); });
  });
  Client c(server_->port());
  ASSERT_FALSE(
      c.write("GET /exec HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
              "Upgrade: SPDY/3.1\r\n\r\nhi"));
  ASSERT_NE(c.readUntil("<hi>").find("<hi>"), std::string::npos);
  EXPECT_TRUE(stopAndJoin(3s));
  EXPECT_EQ(notes(), "ConnectionLost;");
  EXPECT_TRUE(c.closedByServer(1s));
}

}  // namespace
}  // namespace burstlet::server
