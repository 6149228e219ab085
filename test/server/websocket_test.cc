// WebSocket upgrades: subprotocol negotiation, messages both ways, close, limits, stop().
#include "server/websocket.h"

#include <gtest/gtest.h>

#include <boost/beast/websocket.hpp>

#include "server/server_harness.h"
#include "server/ws_client.h"

namespace burstlet::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using boost::system::error_code;
using testing::Client;
using testing::WsClient;
using namespace std::chrono_literals;

class WebSocketTest : public testing::ServerHarness {
 protected:
  // /exec accepts the kubelet's channel protocols and echoes every message.
  void start(Options options = {}) {
    startServer(std::move(options), "127.0.0.1:0", 2, [this](HttpServer& s) {
      s.routePrefix("/exec/", [this](Exchange& ex) { return echo(ex); });
    });
  }

  asio::awaitable<Response> echo(Exchange& ex) {
    const std::vector<std::string> protocols{"v5.channel.k8s.io", "v4.channel.k8s.io"};
    auto ws = co_await ex.acceptWebSocket(protocols);
    if (!ws.ok()) {
      note(ws.error().reason);
      co_return Response{400, "text/plain", ws.error().message, {}};
    }
    note("protocol=" + (*ws)->subprotocol());
    while (true) {
      auto message = co_await (*ws)->read();
      if (!message.ok()) {
        note(message.error().reason + " " + std::to_string((*ws)->closeCode()));
        break;
      }
      if (message->data == "bye") {
        auto closed = co_await (*ws)->close(4001, "done here");
        note(closed.ok() ? "closed" : closed.error().reason);
        break;
      }
      auto written = co_await (*ws)->write(message->data, message->binary);
      if (!written.ok()) {
        break;
      }
    }
    co_return Response{};
  }
};

using PlainWs = WsClient<beast::tcp_stream>;

TEST_F(WebSocketTest, ServerPreferenceWinsAndMessagesEcho) {
  start();
  PlainWs c(server_->port());
  // The client lists v4 first; the server prefers v5, which the client also offered.
  ASSERT_FALSE(c.handshake("/exec/ns/pod/ctr?command=sh", "v4.channel.k8s.io, v5.channel.k8s.io"));
  EXPECT_EQ(c.response[http::field::sec_websocket_protocol], "v5.channel.k8s.io");
  const std::string binary("\x00\x01stdin\xff", 8);
  ASSERT_FALSE(c.write(binary, true));
  auto m = c.read();
  ASSERT_FALSE(m.ec) << m.ec.message();
  EXPECT_EQ(m.data, binary);
  EXPECT_TRUE(m.binary);
  ASSERT_FALSE(c.write("text", false));
  m = c.read();
  EXPECT_EQ(m.data, "text");
  EXPECT_FALSE(m.binary);
  ASSERT_FALSE(c.close(websocket::close_code::normal));
  EXPECT_TRUE(eventually([this] {
    return notes() == "protocol=v5.channel.k8s.io;WebSocketClosed 1000;";
  })) << notes();
}

TEST_F(WebSocketTest, ClientsOfferAndWhatTheyGet) {
  start();
  {
    PlainWs c(server_->port());
    ASSERT_FALSE(c.handshake("/exec/a", "v4.channel.k8s.io"));
    EXPECT_EQ(c.response[http::field::sec_websocket_protocol], "v4.channel.k8s.io");
  }
  {
    // None offered: accepted without a subprotocol.
    PlainWs c(server_->port());
    ASSERT_FALSE(c.handshake("/exec/b", ""));
    EXPECT_EQ(c.response.count(http::field::sec_websocket_protocol), 0u);
  }
  {
    // Only others offered: refused, the handler answers.
    PlainWs c(server_->port());
    EXPECT_TRUE(c.handshake("/exec/c", "channel.k8s.io, base64.channel.k8s.io"));
    EXPECT_EQ(c.response.result_int(), 400u);
  }
  {
    Client plain(server_->port());
    EXPECT_EQ(plain.request("GET", "/exec/d").res.result_int(), 400u);
  }
  // Handlers of earlier connections may still be noting their end: order is not fixed.
  EXPECT_TRUE(eventually([this] {
    const std::string n = notes();
    return n.find("protocol=v4.channel.k8s.io;") != std::string::npos &&
           (n.starts_with("protocol=;") || n.find(";protocol=;") != std::string::npos) &&
           n.find("UnsupportedSubprotocol;") != std::string::npos &&
           n.find("NotWebSocket;") != std::string::npos;
  })) << notes();
}

TEST_F(WebSocketTest, HandlerClosesWithItsCode) {
  start();
  PlainWs c(server_->port());
  ASSERT_FALSE(c.handshake("/exec/x", ""));
  ASSERT_FALSE(c.write("bye", false));
  auto m = c.read();
  EXPECT_EQ(m.ec, websocket::error::closed);
  EXPECT_EQ(c.ws().reason().code, 4001);
  EXPECT_EQ(std::string(c.ws().reason().reason.data(), c.ws().reason().reason.size()), "done here");
  EXPECT_TRUE(eventually([this] { return notes() == "protocol=;closed;"; })) << notes();
}

TEST_F(WebSocketTest, MessageOverTheLimitClosesWith1009) {
  Options o;
  o.maxMessageBytes = 64;
  start(o);
  PlainWs c(server_->port());
  ASSERT_FALSE(c.handshake("/exec/x", ""));
  ASSERT_FALSE(c.write(std::string(64, 'a'), true));
  EXPECT_EQ(c.read().data, std::string(64, 'a'));
  ASSERT_FALSE(c.write(std::string(65, 'a'), true));
  auto m = c.read();
  EXPECT_EQ(m.ec, websocket::error::closed);
  EXPECT_EQ(c.ws().reason().code, websocket::close_code::too_big);
  EXPECT_TRUE(eventually([this] { return notes() == "protocol=;MessageTooBig 0;"; })) << notes();
}

TEST_F(WebSocketTest, StopClosesAnOpenWebSocket) {
  start();
  PlainWs c(server_->port());
  ASSERT_FALSE(c.handshake("/exec/x", "v5.channel.k8s.io"));
  ASSERT_FALSE(c.write("ping", true));
  ASSERT_EQ(c.read().data, "ping");
  EXPECT_TRUE(stopAndJoin(3s));
  EXPECT_TRUE(c.read().ec);
  EXPECT_EQ(notes().substr(0, 42), "protocol=v5.channel.k8s.io;ConnectionLost ") << notes();
}

TEST_F(WebSocketTest, OverTls) {
  Options o;
  o.tls = TlsOptions{};
  o.tls->selfSignedHosts = {"127.0.0.1"};
  start(o);
  auto ctx = testing::clientTlsContext(server_->tls()->certificatePem());
  WsClient<beast::ssl_stream<beast::tcp_stream>> c(server_->port(), *ctx);
  ASSERT_FALSE(c.error) << c.error.message();
  ASSERT_FALSE(c.handshake("/exec/x", "v5.channel.k8s.io"));
  EXPECT_EQ(c.response[http::field::sec_websocket_protocol], "v5.channel.k8s.io");
  ASSERT_FALSE(c.write("over tls", true));
  EXPECT_EQ(c.read().data, "over tls");
  ASSERT_FALSE(c.close(websocket::close_code::normal));
  EXPECT_TRUE(eventually([this] {
    return notes() == "protocol=v5.channel.k8s.io;WebSocketClosed 1000;";
  })) << notes();
}

}  // namespace
}  // namespace burstlet::server
