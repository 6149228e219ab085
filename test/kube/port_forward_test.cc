#include "kube/port_forward.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "kube/rest.h"
#include "mocks/run_sync.h"
#include "mocks/websocket_server.h"

namespace burstlet::kube {
namespace {

namespace asio = boost::asio;
using burstlet::testing::LocalWebSocketServer;
using burstlet::testing::runDone;
using burstlet::testing::ServerSocket;
using burstlet::testing::UpgradeDecision;

std::string ch(int channel, const std::string& data) {
  return std::string(1, static_cast<char>(channel)) + data;
}

// Port 8080 = 0x1f90: little-endian 0x90 0x1f.
const std::string kPort8080("\x90\x1f", 2);

// As the kubelet: the port on both channels first, then the data; answers "ping" with "pong".
asio::awaitable<void> pong(ServerSocket& s) {
  s.push(ch(0, kPort8080));
  s.push(ch(1, kPort8080));
  co_await s.flush();
  auto m = co_await s.read();
  if (m && *m == ch(0, "ping")) {
    s.push(ch(0, "pong"));
    co_await s.flush();
  }
  co_await s.close();
}

// The port header in two pieces, data behind it in the same message, then an error.
asio::awaitable<void> refused(ServerSocket& s) {
  s.push(ch(0, kPort8080.substr(0, 1)));
  s.push(ch(0, kPort8080.substr(1) + "early"));
  s.push(ch(1, kPort8080));
  s.push(ch(1, "error forwarding port 8080 to pod p: connection refused"));
  co_await s.flush();
  co_await s.close();
}

asio::awaitable<void> otherPort(ServerSocket& s) {
  s.push(ch(0, std::string("\x50\x00", 2)));
  co_await s.flush();
  co_await s.close();
}

UpgradeDecision v4() {
  UpgradeDecision d;
  d.subprotocol = "v4.channel.k8s.io";
  return d;
}

asio::awaitable<Result<std::unique_ptr<PortForwardStream>>> open(RestClient& client) {
  std::string ns = "ns";
  std::string pod = "p";
  std::string what = "port-forward pod ns/p";
  co_return co_await openPortForward(client, ns, pod, 8080, what);
}

std::unique_ptr<RestClient> restFor(asio::io_context& io, const std::string& url) {
  ClientConfig config;
  config.server = url;
  auto c = RestClient::create(io.get_executor(), config);
  EXPECT_TRUE(c.ok());
  return std::move(*c);
}

TEST(PortForwardTest, DataBothWays) {
  LocalWebSocketServer server([](const auto&) { return v4(); }, pong);
  asio::io_context io;
  auto client = restFor(io, server.url());
  auto stream = runDone(io, open(*client));
  ASSERT_TRUE(stream.ok()) << stream.error().toString();
  ASSERT_TRUE(runDone(io, (*stream)->write("")).ok());  // no half-close in this protocol
  ASSERT_TRUE(runDone(io, (*stream)->write("ping")).ok());
  auto r = runDone(io, (*stream)->read());
  ASSERT_TRUE(r.ok()) << r.error().toString();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, "pong");
  auto end = runDone(io, (*stream)->read());
  ASSERT_TRUE(end.ok()) << end.error().toString();
  EXPECT_FALSE(end->has_value());
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0].target(), "/api/v1/namespaces/ns/pods/p/portforward?ports=8080");
  EXPECT_EQ(reqs[0][boost::beast::http::field::sec_websocket_protocol], "v4.channel.k8s.io");
}

TEST(PortForwardTest, ErrorChannelIsTheError) {
  LocalWebSocketServer server([](const auto&) { return v4(); }, refused);
  asio::io_context io;
  auto client = restFor(io, server.url());
  auto stream = runDone(io, open(*client));
  ASSERT_TRUE(stream.ok()) << stream.error().toString();
  auto early = runDone(io, (*stream)->read());
  ASSERT_TRUE(early.ok() && early->has_value());
  EXPECT_EQ(**early, "early");
  auto failed = runDone(io, (*stream)->read());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(failed.error().reason, "PortForwardFailed");
  EXPECT_NE(failed.error().message.find("connection refused"), std::string::npos);
}

TEST(PortForwardTest, AnotherPortIsAProtocolError) {
  LocalWebSocketServer server([](const auto&) { return v4(); }, otherPort);
  asio::io_context io;
  auto client = restFor(io, server.url());
  auto stream = runDone(io, open(*client));
  ASSERT_TRUE(stream.ok());
  auto r = runDone(io, (*stream)->read());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "ProtocolError");
}

TEST(PortForwardTest, ServerWithoutTheProtocolIsRefused) {
  LocalWebSocketServer server([](const auto&) { return UpgradeDecision{}; }, pong);
  asio::io_context io;
  auto client = restFor(io, server.url());
  auto stream = runDone(io, open(*client));
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.error().reason, "UnexpectedSubprotocol");
}

}  // namespace
}  // namespace burstlet::kube
