#include "provider/cci/backend_streams.h"

#include <gtest/gtest.h>

#include "cci_harness.h"
#include "mocks/fake_transport.h"
#include "mocks/websocket_server.h"

namespace burstlet::provider::cci::test {
namespace {

using burstlet::testing::FakeTransport;
using burstlet::testing::LocalWebSocketServer;
using burstlet::testing::ScriptedStream;
using burstlet::testing::ServerSocket;
using burstlet::testing::statusBody;
using burstlet::testing::UpgradeDecision;

const PodRef kWeb{"app", "web", "u1"};
const std::string kBackendWeb = backendName("app", "web");

// The provider's mapping, for BackendStreams alone: only app/web runs here.
Result<std::string> resolveWeb(const PodRef& ref) {
  if (ref.ns == "app" && ref.name == "web") {
    return kBackendWeb;
  }
  return Error::make(ErrorCode::kNotFound, "NotFound", "pod " + ref.key() + " is not here");
}

template <typename T>
T runDone(asio::io_context& io, asio::awaitable<T> work) {
  return burstlet::testing::runDone(io, std::move(work));
}

TEST(BackendStreamsTest, LogQuery) {
  LogOptions o;
  EXPECT_EQ(logQuery(o), "");
  o.container = "app";
  o.follow = true;
  o.previous = true;
  o.timestamps = true;
  o.tailLines = 10;
  o.limitBytes = 2048;
  o.sinceSeconds = 60;
  o.sinceTime = "2024-01-02T03:04:05Z";
  EXPECT_EQ(logQuery(o),
            "?container=app&follow=true&previous=true&timestamps=true&tailLines=10&limitBytes=2048"
            "&sinceSeconds=60&sinceTime=2024-01-02T03%3A04%3A05Z");
}

struct LogFixture {
  asio::io_context io;
  FakeTransport* transport = nullptr;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<BackendStreams> streams;

  explicit LogFixture(FakeTransport::StreamFn stream) {
    auto t = std::make_unique<FakeTransport>(
        [](const kube::HttpRequest&) { return burstlet::testing::jsonResponse(500, "{}"); },
        std::move(stream));
    transport = t.get();
    client = std::make_unique<kube::RestClient>(io.get_executor(), std::move(t),
                                                kube::ClientConfig{}, kube::RestOptions{});
    streams = std::make_unique<BackendStreams>(*client, kNs, resolveWeb);
  }
};

TEST(BackendStreamsTest, LogsAreTheBackendPodsLogAsItArrives) {
  LogFixture f([](const kube::HttpRequest&) -> Result<std::unique_ptr<kube::ResponseStream>> {
    // A followed log: two pieces, then silence until cancelled.
    return std::unique_ptr<kube::ResponseStream>(std::make_unique<ScriptedStream>(
        200, std::vector<std::string>{"line 1\n", "line 2\n"}, false));
  });
  LogOptions o;
  o.container = "c";
  o.follow = true;
  o.tailLines = 5;
  auto logs = runDone(f.io, f.streams->logs(kWeb, o));
  ASSERT_TRUE(logs.ok()) << logs.error().toString();
  for (const char* want : {"line 1\n", "line 2\n"}) {
    auto piece = runDone(f.io, (*logs)->read());
    ASSERT_TRUE(piece.ok() && piece->has_value());
    EXPECT_EQ(**piece, want);
  }
  (*logs)->cancel();
  auto after = runDone(f.io, (*logs)->read());
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code, ErrorCode::kCancelled);

  const auto reqs = f.transport->requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0].method, kube::Verb::get);
  EXPECT_EQ(reqs[0].target, "/api/v1/namespaces/" + std::string(kNs) + "/pods/" + kBackendWeb +
                                "/log?container=c&follow=true&tailLines=5");
  // A followed log may be quiet for hours: no silence limit.
  EXPECT_EQ(reqs[0].timeout, kube::kNoTimeout);
}

TEST(BackendStreamsTest, LogWithoutFollowEndsAndKeepsTheDefaultLimit) {
  LogFixture f([](const kube::HttpRequest&) -> Result<std::unique_ptr<kube::ResponseStream>> {
    return std::unique_ptr<kube::ResponseStream>(
        std::make_unique<ScriptedStream>(200, std::vector<std::string>{"all\n"}, true));
  });
  auto logs = runDone(f.io, f.streams->logs(kWeb, LogOptions{}));
  ASSERT_TRUE(logs.ok());
  auto piece = runDone(f.io, (*logs)->read());
  ASSERT_TRUE(piece.ok() && piece->has_value());
  auto end = runDone(f.io, (*logs)->read());
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
  EXPECT_EQ(f.transport->requests()[0].timeout.count(), 0);
}

TEST(BackendStreamsTest, LogRefusalKeepsItsClassWithTheSourceNames) {
  LogFixture f([](const kube::HttpRequest&) -> Result<std::unique_ptr<kube::ResponseStream>> {
    const std::string body = statusBody(
        400, "BadRequest", "container x is not valid for pod " + kBackendWeb + " in " + kNs);
    return std::unique_ptr<kube::ResponseStream>(
        std::make_unique<ScriptedStream>(400, std::vector<std::string>{body}, true));
  });
  LogOptions o;
  o.container = "x";
  auto logs = runDone(f.io, f.streams->logs(kWeb, o));
  ASSERT_FALSE(logs.ok());
  EXPECT_EQ(logs.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(logs.error().message,
            "logs of pod app/web: container x is not valid for pod web in app");

  auto unknown = runDone(f.io, f.streams->logs(PodRef{"app", "db", ""}, o));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(f.transport->requests().size(), 1U);  // nothing asked of the backend for it
}

// BackendStreams on a real client against a local WebSocket server (the backend API server).
struct WsFixture {
  asio::io_context io;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<BackendStreams> streams;

  explicit WsFixture(const std::string& url) {
    kube::ClientConfig config;
    config.server = url;
    auto c = kube::RestClient::create(io.get_executor(), config);
    EXPECT_TRUE(c.ok());
    client = std::move(*c);
    streams = std::make_unique<BackendStreams>(*client, kNs, resolveWeb);
  }
};

std::string ch(int channel, const std::string& data) {
  return std::string(1, static_cast<char>(channel)) + data;
}

UpgradeDecision pick(const std::string& protocol) {
  UpgradeDecision d;
  d.subprotocol = protocol;
  return d;
}

asio::awaitable<void> exitThree(ServerSocket& s) {
  s.push(ch(1, ""));
  s.push(ch(1, "hi\n"));
  s.push(ch(3, R"({"status":"Failure","reason":"NonZeroExitCode","message":"exit 3",)"
               R"("details":{"causes":[{"reason":"ExitCode","message":"3"}]}})"));
  co_await s.flush();
  co_await s.close();
}

TEST(BackendStreamsTest, ExecRunsInTheBackendPod) {
  LocalWebSocketServer server([](const auto&) { return pick("v5.channel.k8s.io"); }, exitThree);
  WsFixture f(server.url());
  ExecOptions o;
  o.container = "c";
  o.command = {"echo", "hi"};
  auto session = runDone(f.io, f.streams->exec(kWeb, o));
  ASSERT_TRUE(session.ok()) << session.error().toString();
  auto out = runDone(f.io, (*session)->read());
  ASSERT_TRUE(out.ok() && out->has_value());
  EXPECT_EQ((*out)->stream, 1);
  EXPECT_EQ((*out)->data, "hi\n");
  auto end = runDone(f.io, (*session)->read());
  ASSERT_TRUE(end.ok() && !end->has_value());
  auto code = runDone(f.io, (*session)->exitCode());
  ASSERT_TRUE(code.ok()) << code.error().toString();
  EXPECT_EQ(*code, 3);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0].target(), "/api/v1/namespaces/" + std::string(kNs) + "/pods/" + kBackendWeb +
                                  "/exec?command=echo&command=hi&container=c&stdin=false"
                                  "&stdout=true&stderr=true&tty=false");
}

asio::awaitable<void> failToStart(ServerSocket& s) {
  s.push(ch(3, R"({"status":"Failure","reason":"InternalError","code":500,)"
               R"("message":"failed to exec in container of pod )" +
                   kBackendWeb + R"(: executable file not found"})"));
  co_await s.flush();
  co_await s.close();
}

TEST(BackendStreamsTest, AttachFailureIsTheStatusMessage) {
  LocalWebSocketServer server([](const auto&) { return pick("v4.channel.k8s.io"); }, failToStart);
  WsFixture f(server.url());
  ExecOptions o;
  o.command = {"ignored"};
  auto session = runDone(f.io, f.streams->attach(kWeb, o));
  ASSERT_TRUE(session.ok()) << session.error().toString();
  auto end = runDone(f.io, (*session)->read());
  ASSERT_TRUE(end.ok() && !end->has_value());
  auto code = runDone(f.io, (*session)->exitCode());
  ASSERT_FALSE(code.ok());
  EXPECT_EQ(code.error().code, ErrorCode::kInternal);
  EXPECT_EQ(code.error().message,
            "failed to exec in container of pod web: executable file not found");
  EXPECT_EQ(server.requests()[0].target(),
            "/api/v1/namespaces/" + std::string(kNs) + "/pods/" + kBackendWeb +
                "/attach?stdin=false&stdout=true&stderr=true&tty=false");
}

TEST(BackendStreamsTest, RefusedExecIsClassified) {
  LocalWebSocketServer server(
      [](const auto&) {
        UpgradeDecision d;
        d.kind = UpgradeDecision::kRefuse;
        d.status = 404;
        d.body = statusBody(404, "NotFound", "pods \\\"" + kBackendWeb + "\\\" not found");
        return d;
      },
      exitThree);
  WsFixture f(server.url());
  ExecOptions o;
  o.command = {"sh"};
  auto session = runDone(f.io, f.streams->exec(kWeb, o));
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(session.error().message, "exec in pod app/web: pods \"web\" not found");
}

asio::awaitable<void> forwardEcho(ServerSocket& s) {
  const std::string port("\x50\x00", 2);  // 80
  s.push(ch(0, port));
  s.push(ch(1, port));
  co_await s.flush();
  while (true) {
    auto m = co_await s.read();
    if (!m) {
      co_return;
    }
    s.push(std::move(*m));
    co_await s.flush();
  }
}

TEST(BackendStreamsTest, PortForwardToTheBackendPod) {
  LocalWebSocketServer server([](const auto&) { return pick("v4.channel.k8s.io"); }, forwardEcho);
  WsFixture f(server.url());
  auto stream = runDone(f.io, f.streams->portForward(kWeb, 80));
  ASSERT_TRUE(stream.ok()) << stream.error().toString();
  ASSERT_TRUE(runDone(f.io, (*stream)->write("GET / HTTP/1.0\r\n\r\n")).ok());
  auto back = runDone(f.io, (*stream)->read());
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ(**back, "GET / HTTP/1.0\r\n\r\n");
  (*stream)->cancel();
  EXPECT_EQ(server.requests()[0].target(), "/api/v1/namespaces/" + std::string(kNs) + "/pods/" +
                                               kBackendWeb + "/portforward?ports=80");
}

// Through the provider: its pods' names come from the backend pods it runs.
TEST(BackendStreamsTest, ProviderServesOnlyItsPods) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());

  const PodRef other{"app", "db", "u2"};
  auto logs = h.call(h.provider->logs(other, LogOptions{}));
  ASSERT_FALSE(logs.ok());
  EXPECT_EQ(logs.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(logs.error().message, "pod app/db does not run on virtual node burst-node");
  EXPECT_EQ(h.call(h.provider->exec(other, ExecOptions{})).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(h.call(h.provider->attach(other, ExecOptions{})).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(h.call(h.provider->portForward(other, 80)).error().code, ErrorCode::kNotFound);
  // Another pod of the same name (another UID) is not this node's either.
  EXPECT_EQ(h.call(h.provider->logs(PodRef{"app", "web", "u9"}, LogOptions{})).error().code,
            ErrorCode::kNotFound);

  // Its own pod's log is asked of the backend pod (the in-memory backend has no logs: its
  // refusal comes back with its class).
  LogOptions o;
  o.container = "c";
  auto own = h.call(h.provider->logs(kWeb, o));
  ASSERT_FALSE(own.ok());
  EXPECT_EQ(own.error().code, ErrorCode::kBadRequest);
  EXPECT_GE(firstRequest(h.api, Verb::get, kPods + "/" + kBackendWeb + "/log"), 0);
}

}  // namespace
}  // namespace burstlet::provider::cci::test
