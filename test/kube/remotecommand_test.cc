#include "kube/remotecommand.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <mutex>

#include "kube/rest.h"
#include "mocks/run_sync.h"
#include "mocks/websocket_server.h"

namespace burstlet::kube {
namespace {

namespace asio = boost::asio;
using burstlet::testing::LocalWebSocketServer;
using burstlet::testing::runDone;
using burstlet::testing::ServerSocket;
using burstlet::testing::statusBody;
using burstlet::testing::UpgradeDecision;

TEST(RemoteCommandTest, Query) {
  RemoteCommandOptions o;
  o.container = "app";
  o.command = {"sh", "-c", "echo a&b"};
  o.stdinOpen = true;
  o.tty = true;
  EXPECT_EQ(remoteCommandQuery(RemoteCommandKind::kExec, o),
            "?command=sh&command=-c&command=echo%20a%26b&container=app&stdin=true&stdout=true"
            "&stderr=true&tty=true");
  o.stderrOpen = false;
  EXPECT_EQ(remoteCommandQuery(RemoteCommandKind::kAttach, o),
            "?container=app&stdin=true&stdout=true&stderr=false&tty=true");
}

TEST(RemoteCommandTest, ExitCodeFromTheErrorChannel) {
  EXPECT_EQ(*exitCodeOf(""), 0);
  EXPECT_EQ(*exitCodeOf(R"({"metadata":{},"status":"Success"})"), 0);
  EXPECT_EQ(*exitCodeOf(R"({"metadata":{},"status":"Failure","message":"command terminated with )"
                        R"(non-zero exit code: error executing command [false], exit code 7",)"
                        R"("reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode",)"
                        R"("message":"7"}]}})"),
            7);
  auto failed = exitCodeOf(
      R"({"status":"Failure","message":"OCI runtime exec failed: executable file not found",)"
      R"("reason":"InternalError","code":500})");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kInternal);
  EXPECT_EQ(failed.error().message, "OCI runtime exec failed: executable file not found");
  auto noCode = exitCodeOf(R"({"status":"Failure","message":"boom"})");
  ASSERT_FALSE(noCode.ok());
  EXPECT_EQ(noCode.error().message, "boom");
  EXPECT_EQ(exitCodeOf("not json").error().reason, "ProtocolError");
  EXPECT_EQ(exitCodeOf(R"({"status":"Failure","reason":"NonZeroExitCode"})").error().reason,
            "ProtocolError");
}

// What the server got, for the test thread.
struct Seen {
  std::mutex mu;  // guards messages
  std::vector<std::string> messages;

  void add(const std::string& m) {
    std::lock_guard lock(mu);
    messages.push_back(m);
  }
  std::vector<std::string> all() {
    std::lock_guard lock(mu);
    return messages;
  }
};

std::string ch(int channel, const std::string& data) {
  return std::string(1, static_cast<char>(channel)) + data;
}

const std::string kExit7 =
    R"({"metadata":{},"status":"Failure","message":"exit code 7","reason":"NonZeroExitCode",)"
    R"("details":{"causes":[{"reason":"ExitCode","message":"7"}]}})";

// A kubelet-like session: the "connected" signal, output on both streams, then it takes the
// client's messages until stdin ends (v5) or three came (v4), and reports exit code 7.
asio::awaitable<void> shell(ServerSocket& s, Seen* seen, bool v5) {
  s.push(ch(1, ""));
  s.push(ch(1, "out"));
  s.push(ch(2, "err"));
  co_await s.flush();
  for (int i = 0; i < 3; ++i) {
    auto m = co_await s.read();
    if (!m) {
      co_return;
    }
    seen->add(*m);
    if (v5 && *m == std::string("\xff\x00", 2)) {
      break;
    }
  }
  s.push(ch(3, kExit7.substr(0, 20)));
  s.push(ch(3, kExit7.substr(20)));
  co_await s.flush();
  co_await s.close();
}

std::unique_ptr<RestClient> restFor(asio::io_context& io, const std::string& url) {
  ClientConfig config;
  config.server = url;
  auto c = RestClient::create(io.get_executor(), config);
  EXPECT_TRUE(c.ok());
  return std::move(*c);
}

UpgradeDecision pick(const LocalWebSocketServer::Request& req, const std::string& want) {
  UpgradeDecision d;
  const std::string offered(req[boost::beast::http::field::sec_websocket_protocol]);
  if (offered.find(want) != std::string::npos) {
    d.subprotocol = want;
  }
  return d;
}

asio::awaitable<Result<std::unique_ptr<RemoteCommandSession>>> open(RestClient& client,
                                                                    RemoteCommandKind kind) {
  RemoteCommandOptions o;
  o.container = "app";
  if (kind == RemoteCommandKind::kExec) {
    o.command = {"sh", "-c", "cat"};
  }
  o.stdinOpen = true;
  std::string ns = "ns";
  std::string pod = "p";
  std::string what = "exec pod ns/p";
  co_return co_await openRemoteCommand(client, ns, pod, kind, o, what);
}

TEST(RemoteCommandTest, V5SessionBothWays) {
  Seen seen;
  LocalWebSocketServer server([](const auto& req) { return pick(req, "v5.channel.k8s.io"); },
                              [&seen](ServerSocket& s) { return shell(s, &seen, true); });
  asio::io_context io;
  auto client = restFor(io, server.url());
  auto session = runDone(io, open(*client, RemoteCommandKind::kExec));
  ASSERT_TRUE(session.ok()) << session.error().toString();
  EXPECT_EQ((*session)->protocol(), kRemoteCommandV5);
  auto out = runDone(io, (*session)->read());
  ASSERT_TRUE(out.ok() && out->has_value());
  EXPECT_EQ((*out)->stream, 1);
  EXPECT_EQ((*out)->data, "out");
  auto err = runDone(io, (*session)->read());
  ASSERT_TRUE(err.ok() && err->has_value());
  EXPECT_EQ((*err)->stream, 2);
  EXPECT_EQ((*err)->data, "err");
  EXPECT_EQ((*session)->exitCode().error().reason, "SessionNotEnded");
  ASSERT_TRUE(runDone(io, (*session)->writeStdin("in")).ok());
  ASSERT_TRUE(runDone(io, (*session)->resize(80, 24)).ok());
  ASSERT_TRUE(runDone(io, (*session)->writeStdin("")).ok());
  auto end = runDone(io, (*session)->read());
  ASSERT_TRUE(end.ok()) << end.error().toString();
  EXPECT_FALSE(end->has_value());
  auto code = (*session)->exitCode();
  ASSERT_TRUE(code.ok()) << code.error().toString();
  EXPECT_EQ(*code, 7);

  EXPECT_EQ(seen.all(), (std::vector<std::string>{ch(0, "in"), ch(4, R"({"Width":80,"Height":24})"),
                                                  std::string("\xff\x00", 2)}));
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0].target(),
            "/api/v1/namespaces/ns/pods/p/exec?command=sh&command=-c&command=cat&container=app"
            "&stdin=true&stdout=true&stderr=true&tty=false");
  EXPECT_EQ(reqs[0][boost::beast::http::field::sec_websocket_protocol],
            "v5.channel.k8s.io, v4.channel.k8s.io");
}

TEST(RemoteCommandTest, V4HasNoHalfCloseAndAttachHasNoCommand) {
  Seen seen;
  LocalWebSocketServer server([](const auto& req) { return pick(req, "v4.channel.k8s.io"); },
                              [&seen](ServerSocket& s) { return shell(s, &seen, false); });
  asio::io_context io;
  auto client = restFor(io, server.url());
  auto session = runDone(io, open(*client, RemoteCommandKind::kAttach));
  ASSERT_TRUE(session.ok()) << session.error().toString();
  EXPECT_EQ((*session)->protocol(), kRemoteCommandV4);
  ASSERT_TRUE(runDone(io, (*session)->writeStdin("a")).ok());
  ASSERT_TRUE(runDone(io, (*session)->writeStdin("")).ok());  // nothing sent
  ASSERT_TRUE(runDone(io, (*session)->writeStdin("b")).ok());
  ASSERT_TRUE(runDone(io, (*session)->writeStdin("c")).ok());
  std::string output;
  while (true) {
    auto r = runDone(io, (*session)->read());
    ASSERT_TRUE(r.ok()) << r.error().toString();
    if (!r->has_value()) {
      break;
    }
    output += (*r)->data;
  }
  EXPECT_EQ(output, "outerr");
  EXPECT_EQ(*(*session)->exitCode(), 7);
  EXPECT_EQ(seen.all(), (std::vector<std::string>{ch(0, "a"), ch(0, "b"), ch(0, "c")}));
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0].target(),
            "/api/v1/namespaces/ns/pods/p/attach?container=app&stdin=true&stdout=true&stderr=true"
            "&tty=false");
}

TEST(RemoteCommandTest, RefusalIsClassified) {
  LocalWebSocketServer server(
      [](const LocalWebSocketServer::Request&) {
        UpgradeDecision d;
        d.kind = UpgradeDecision::kRefuse;
        d.status = 400;
        d.body = statusBody(400, "BadRequest", "container app is not valid for pod p");
        return d;
      },
      [](ServerSocket&) -> asio::awaitable<void> { co_return; });
  asio::io_context io;
  auto client = restFor(io, server.url());
  auto refused = runDone(io, open(*client, RemoteCommandKind::kExec));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kBadRequest);
  EXPECT_NE(refused.error().message.find("container app is not valid"), std::string::npos);
}

}  // namespace
}  // namespace burstlet::kube
