#include "kube/websocket_client.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>

#include "kube/rest.h"
#include "mocks/run_sync.h"
#include "mocks/websocket_server.h"
#include "server/certificates.h"

namespace burstlet::kube {
namespace {

namespace asio = boost::asio;
using burstlet::testing::LocalWebSocketServer;
using burstlet::testing::runSync;
using burstlet::testing::ServerSocket;
using burstlet::testing::statusBody;
using burstlet::testing::UpgradeDecision;

// Echoes every message until the client closes.
asio::awaitable<void> echo(ServerSocket& s) {
  while (true) {
    auto m = co_await s.read();
    if (!m) {
      co_return;
    }
    s.push(std::move(*m));
    co_await s.flush();
  }
}

UpgradeDecision accept(std::string subprotocol) {
  UpgradeDecision d;
  d.subprotocol = std::move(subprotocol);
  return d;
}

std::unique_ptr<WebSocketClient> clientFor(asio::io_context& io, ClientConfig config) {
  config.source = "test";
  std::shared_ptr<CredentialSource> creds = makeCredentialSource(config);
  auto c = WebSocketClient::create(io.get_executor(), config, std::move(creds));
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().toString());
  return std::move(*c);
}

WebSocketRequest request(std::string target, std::vector<std::string> protocols = {"p1", "p2"}) {
  WebSocketRequest r;
  r.target = std::move(target);
  r.subprotocols = std::move(protocols);
  r.timeout = std::chrono::seconds(5);
  return r;
}

TEST(WebSocketClientTest, OpensWithCredentialsAndSubprotocolAndEchoes) {
  LocalWebSocketServer server([](const auto&) { return accept("p2"); }, echo);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  config.token = "token-abc-123";
  config.userAgent = "burstlet-test";
  auto client = clientFor(io, config);
  auto conn = runSync(io, client->connect(request("/api/v1/namespaces/ns/pods/p/exec?command=ls")));
  ASSERT_TRUE(conn.ok()) << conn.error().toString();
  EXPECT_EQ((*conn)->subprotocol(), "p2");
  std::string binary("\x01hello\x00world", 12);
  ASSERT_TRUE(runSync(io, (*conn)->write(binary)).ok());
  auto back = runSync(io, (*conn)->read());
  ASSERT_TRUE(back.ok()) << back.error().toString();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(**back, binary);
  ASSERT_TRUE(runSync(io, (*conn)->close()).ok());

  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0].target(), "/api/v1/namespaces/ns/pods/p/exec?command=ls");
  EXPECT_EQ(reqs[0][boost::beast::http::field::authorization], "Bearer token-abc-123");
  EXPECT_EQ(reqs[0][boost::beast::http::field::sec_websocket_protocol], "p1, p2");
  EXPECT_EQ(reqs[0][boost::beast::http::field::user_agent], "burstlet-test");
}

// The same credential path as the HTTP transport: a RequestSigner signs the upgrade request as
// written (here: a header over the method and target).
class TargetSigner final : public RequestSigner {
 public:
  Status sign(SignableRequest& request) const override {
    request.setHeader("X-Signed", std::string(request.method) + " " + std::string(request.target));
    return okStatus();
  }
};

class SigningSource final : public CredentialSource {
 public:
  Result<Credential> current() override {
    Credential c;
    c.headers = {{"X-Auth-Token", "tok"}};
    c.signer = std::make_shared<TargetSigner>();
    return c;
  }
  void invalidate() override {}
};

TEST(WebSocketClientTest, SignerSignsTheUpgradeRequest) {
  LocalWebSocketServer server([](const auto&) { return accept("p1"); }, echo);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url() + "/base";
  auto client =
      WebSocketClient::create(io.get_executor(), config, std::make_shared<SigningSource>());
  ASSERT_TRUE(client.ok());
  auto conn = runSync(io, (*client)->connect(request("/api/v1/x")));
  ASSERT_TRUE(conn.ok()) << conn.error().toString();
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0]["X-Signed"], "GET /base/api/v1/x");
  EXPECT_EQ(reqs[0]["X-Auth-Token"], "tok");
}

struct Tls {
  server::PemPair ca;
  server::PemPair leaf;
};

Tls makeTls() {
  server::CertificateSpec caSpec;
  caSpec.commonName = "test-ca";
  caSpec.isCa = true;
  auto ca = server::generateCertificate(caSpec, realClock());
  EXPECT_TRUE(ca.ok());
  server::CertificateSpec leafSpec;
  leafSpec.hosts = {"127.0.0.1"};
  auto leaf = server::generateCertificate(leafSpec, realClock(), &*ca);
  EXPECT_TRUE(leaf.ok());
  return Tls{*ca, *leaf};
}

TEST(WebSocketClientTest, TlsWithTheConfiguredCa) {
  const Tls tls = makeTls();
  LocalWebSocketServer server([](const auto&) { return accept("p1"); }, echo, tls.leaf.certificate,
                              tls.leaf.key);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  config.caPem = tls.ca.certificate;
  auto client = clientFor(io, config);
  auto conn = runSync(io, client->connect(request("/x")));
  ASSERT_TRUE(conn.ok()) << conn.error().toString();
  ASSERT_TRUE(runSync(io, (*conn)->write("over tls")).ok());
  auto back = runSync(io, (*conn)->read());
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ(**back, "over tls");

  // Another CA: the server is not trusted. The insecure flag skips the check.
  ClientConfig other = config;
  other.caPem = makeTls().ca.certificate;
  auto refused = runSync(io, clientFor(io, other)->connect(request("/x")));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "TLSError");
  ClientConfig insecure = other;
  insecure.caPem.clear();
  insecure.insecureSkipTlsVerify = true;
  auto skipped = runSync(io, clientFor(io, insecure)->connect(request("/x")));
  EXPECT_TRUE(skipped.ok()) << skipped.error().toString();
}

TEST(WebSocketClientTest, RefusedUpgradeIsTheClassifiedStatus) {
  LocalWebSocketServer server(
      [](const LocalWebSocketServer::Request& req) {
        UpgradeDecision d;
        d.kind = UpgradeDecision::kRefuse;
        if (req.target().find("missing") != std::string::npos) {
          d.status = 404;
          d.body = statusBody(404, "NotFound", "pods \\\"missing\\\" not found");
        } else {
          d.status = 403;
          d.body = statusBody(403, "Forbidden", "pods \\\"p\\\" is forbidden: no exec for you");
        }
        return d;
      },
      echo);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  auto client = clientFor(io, config);
  auto forbidden =
      runSync(io, client->connect(request("/api/v1/namespaces/ns/pods/p/exec?command=secret")));
  ASSERT_FALSE(forbidden.ok());
  EXPECT_EQ(forbidden.error().code, ErrorCode::kForbidden);
  EXPECT_EQ(forbidden.error().reason, "Forbidden");
  EXPECT_NE(forbidden.error().message.find("no exec for you"), std::string::npos)
      << forbidden.error().message;
  // The query (a command line) stays out of the message.
  EXPECT_EQ(forbidden.error().message.find("secret"), std::string::npos)
      << forbidden.error().message;
  auto missing = runSync(io, client->connect(request("/api/v1/namespaces/ns/pods/missing/exec")));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  // Through the RestClient: the same classes, and the answer goes through the dialect.
  RestOptions options;
  options.dialect = [](Error e, const HttpResponse& r) {
    e.message += " (dialect saw " + std::to_string(r.status) + ")";
    return e;
  };
  auto rest = RestClient::create(io.get_executor(), config, options);
  ASSERT_TRUE(rest.ok());
  auto viaRest = runSync(
      io, (*rest)->websocket(request("/api/v1/namespaces/ns/pods/p/exec"), "exec pod ns/p"));
  ASSERT_FALSE(viaRest.ok());
  EXPECT_EQ(viaRest.error().code, ErrorCode::kForbidden);
  EXPECT_NE(viaRest.error().message.find("exec pod ns/p: "), std::string::npos);
  EXPECT_NE(viaRest.error().message.find("dialect saw 403"), std::string::npos);
}

asio::awaitable<void> cutMidMessage(ServerSocket& s) {
  s.push("whole");
  co_await s.flush();
  // A binary frame announcing 100 bytes, 10 of them sent, then the connection drops.
  std::string frame("\x82\x64", 2);
  frame += std::string(10, 'x');
  co_await s.writeRaw(frame);
  s.drop();
}

TEST(WebSocketClientTest, ServerClosingMidMessageIsConnectionLost) {
  LocalWebSocketServer server([](const auto&) { return accept("p1"); }, cutMidMessage);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  auto conn = runSync(io, clientFor(io, config)->connect(request("/x")));
  ASSERT_TRUE(conn.ok());
  auto first = runSync(io, (*conn)->read());
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ(**first, "whole");
  auto cut = runSync(io, (*conn)->read());
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(cut.error().reason, "ConnectionLost");
}

asio::awaitable<void> closeAfterOne(ServerSocket& s) {
  s.push("last words");
  co_await s.flush();
  co_await s.close();
}

TEST(WebSocketClientTest, CloseFrameEndsReads) {
  LocalWebSocketServer server([](const auto&) { return accept(""); }, closeAfterOne);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  auto conn = runSync(io, clientFor(io, config)->connect(request("/x")));
  ASSERT_TRUE(conn.ok());
  EXPECT_EQ((*conn)->subprotocol(), "");
  auto first = runSync(io, (*conn)->read());
  ASSERT_TRUE(first.ok() && first->has_value());
  auto end = runSync(io, (*conn)->read());
  ASSERT_TRUE(end.ok()) << end.error().toString();
  EXPECT_FALSE(end->has_value());
}

TEST(WebSocketClientTest, ServerThatNeverAnswersHitsTheDeadline) {
  LocalWebSocketServer server(
      [](const auto&) {
        UpgradeDecision d;
        d.kind = UpgradeDecision::kSilent;
        return d;
      },
      echo);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  auto r = request("/x");
  r.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  auto conn = runSync(io, clientFor(io, config)->connect(r));
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().code, ErrorCode::kTimeout) << conn.error().toString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(WebSocketClientTest, UnofferedSubprotocolIsRefused) {
  LocalWebSocketServer server([](const auto&) { return accept("p9"); }, echo);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  auto conn = runSync(io, clientFor(io, config)->connect(request("/x")));
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().reason, "UnexpectedSubprotocol");
}

// The server answers only after it got the client's message: a read pending meanwhile must not
// hold up the write.
asio::awaitable<void> answerAfterMessage(ServerSocket& s) {
  auto m = co_await s.read();
  if (m) {
    s.push("got " + *m);
    co_await s.flush();
  }
  co_await echo(s);
}

asio::awaitable<void> readInto(WebSocketConnection& conn,
                               std::optional<Result<std::optional<std::string>>>* out) {
  auto r = co_await conn.read();
  out->emplace(std::move(r));
}

asio::awaitable<Status> writeSoon(WebSocketConnection& conn, std::string message) {
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
  co_await t.async_wait(asio::use_awaitable);
  co_return co_await conn.write(std::move(message));
}

TEST(WebSocketClientTest, PendingReadDoesNotBlockWrites) {
  LocalWebSocketServer server([](const auto&) { return accept("p1"); }, answerAfterMessage);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  auto conn = runSync(io, clientFor(io, config)->connect(request("/x")));
  ASSERT_TRUE(conn.ok());
  std::optional<Result<std::optional<std::string>>> got;
  asio::co_spawn(io, readInto(**conn, &got), asio::detached);
  // Several writers at once take turns.
  std::vector<std::optional<Status>> wrote(3);
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(io, writeSoon(**conn, "m" + std::to_string(i)),
                   [&wrote, i](const std::exception_ptr&, Status s) { wrote[i] = std::move(s); });
  }
  ASSERT_TRUE(
      testing::runUntil(io, [&] { return got.has_value() && wrote[0] && wrote[1] && wrote[2]; }));
  ASSERT_TRUE(got->ok()) << got->error().toString();
  ASSERT_TRUE((*got)->has_value());
  EXPECT_EQ((**got)->substr(0, 5), "got m");
  for (const auto& w : wrote) {
    EXPECT_TRUE(w->ok()) << w->error().toString();
  }
}

TEST(WebSocketClientTest, CancelEndsAPendingRead) {
  LocalWebSocketServer server([](const auto&) { return accept("p1"); }, echo);
  asio::io_context io;
  ClientConfig config;
  config.server = server.url();
  auto conn = runSync(io, clientFor(io, config)->connect(request("/x")));
  ASSERT_TRUE(conn.ok());
  std::optional<Result<std::optional<std::string>>> got;
  asio::co_spawn(io, readInto(**conn, &got), asio::detached);
  testing::runUntil(
      io, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_FALSE(got.has_value());
  std::thread other([&] { (*conn)->cancel(); });
  other.join();
  ASSERT_TRUE(testing::runUntil(io, [&] { return got.has_value(); }));
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().code, ErrorCode::kCancelled);
  EXPECT_EQ(runSync(io, (*conn)->write("late")).error().code, ErrorCode::kCancelled);
}

}  // namespace
}  // namespace burstlet::kube
