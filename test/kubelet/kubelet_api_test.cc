// The kubelet API's routes on a real listener: authentication in front of every route, logs
// streamed (and cancelled when the client goes), exec and attach over WebSocket (v5, v4 and
// channel.k8s.io), stats and resource metrics, pod lists.
#include "kubelet/kubelet_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>

#include "mocks/fake_clock.h"
#include "mocks/streaming_provider.h"
#include "server/server_harness.h"
#include "server/ws_client.h"

namespace burstlet::kubelet {
namespace {

namespace json = boost::json;
using server::testing::Client;
using server::testing::ServerHarness;
using server::testing::WsClient;
using testing::StreamingProvider;
using PlainWs = WsClient<boost::beast::tcp_stream>;
using namespace std::chrono_literals;

class FakePods final : public PodSource {
 public:
  PodPtr pod(const std::string& ns, const std::string& name) const override {
    auto it = byKey.find(ns + "/" + name);
    return it == byKey.end() ? nullptr : it->second;
  }
  std::vector<PodPtr> pods() const override {
    std::vector<PodPtr> out;
    for (const auto& [k, v] : byKey) {
      out.push_back(v);
    }
    return out;
  }
  void add(const std::string& ns, const std::string& name, const std::string& uid) {
    byKey[ns + "/" + name] = std::make_shared<json::value>(json::object{
        {"metadata", json::object{{"namespace", ns}, {"name", name}, {"uid", uid}}},
        {"spec", json::object{{"containers", json::array{json::object{{"name", "app"}}}}}}});
  }
  std::map<std::string, PodPtr> byKey;
};

// Token "admin" may do everything, "viewer" only stats; others are unknown.
class Reviews final : public ReviewApi {
 public:
  asio::awaitable<Result<std::optional<UserInfo>>> reviewToken(std::string token) override {
    if (token == "admin" || token == "viewer") {
      co_return std::optional<UserInfo>(UserInfo{token, "", {}, {}});
    }
    co_return std::optional<UserInfo>();
  }
  asio::awaitable<Result<AccessDecision>> reviewAccess(UserInfo user, std::string,
                                                       RequestAttributes attributes) override {
    co_return AccessDecision{user.name == "admin" || attributes.subresource == "stats", ""};
  }
};

class KubeletApiTest : public ServerHarness {
 protected:
  void SetUp() override {
    pods_.add("shop", "web-0", "uid-0");
    startServer({}, "127.0.0.1:0", 2, [this](server::HttpServer& s) { api_.install(s); });
  }

  Client::Reply get(const std::string& target, const std::string& token = "admin") {
    Client c(server_->port());
    std::string raw = "GET " + target + " HTTP/1.1\r\nHost: test\r\n";
    if (!token.empty()) {
      raw += "Authorization: Bearer " + token + "\r\n";
    }
    raw += "\r\n";
    EXPECT_FALSE(c.write(raw));
    return c.read();
  }

  std::unique_ptr<PlainWs> exec(const std::string& target, const std::string& protocols) {
    auto ws = std::make_unique<PlainWs>(server_->port());
    ws->headers.emplace_back("Authorization", "Bearer admin");
    auto ec = ws->handshake(target, protocols);
    EXPECT_FALSE(ec) << ec.message();
    return ws;
  }

  // Messages until the server closes; the channel byte kept.
  static std::vector<std::string> drain(PlainWs& ws) {
    std::vector<std::string> out;
    for (int i = 0; i < 50; ++i) {
      auto m = ws.read();
      if (m.ec) {
        break;
      }
      out.push_back(m.data);
    }
    return out;
  }

  StreamingProvider provider_;
  FakePods pods_;
  Reviews reviews_;
  testing::FakeClock clock_;
  RequestAuth auth_{reviews_, AuthOptions{.nodeName = "vk-1"}, clock_};
  KubeletApi api_{
      provider_, pods_, auth_,
      KubeletApiOptions{.nodeName = "vk-1", .injectedContainers = {"burstlet-netproxy"}}};
};

TEST_F(KubeletApiTest, EveryRouteNeedsCredentials) {
  for (const char* target :
       {"/healthz", "/pods", "/runningpods/", "/containerLogs/shop/web-0/app", "/stats/summary",
        "/metrics/resource", "/exec/shop/web-0/app?command=ls&output=1"}) {
    EXPECT_EQ(get(target, "").res.result_int(), 401) << target;
    EXPECT_EQ(get(target, "stranger").res.result_int(), 401) << target;
  }
  // viewer may read stats, nothing through proxy.
  EXPECT_EQ(get("/containerLogs/shop/web-0/app", "viewer").res.result_int(), 403);
  EXPECT_EQ(get("/pods", "viewer").res.result_int(), 403);
  EXPECT_EQ(get("/healthz", "admin").res.body(), "ok\n");
}

TEST_F(KubeletApiTest, LogsStreamWithTheQueryOptions) {
  provider_.logChunks = {"line 1\n", "line 2\n"};
  auto r = get("/containerLogs/shop/web-0/app?tailLines=5&timestamps=true&sinceSeconds=30");
  ASSERT_EQ(r.res.result_int(), 200) << r.res.body();
  EXPECT_EQ(r.res.body(), "line 1\nline 2\n");
  ASSERT_EQ(provider_.logPods.size(), 1u);
  EXPECT_EQ(provider_.logPods[0], (provider::PodRef{"shop", "web-0", "uid-0"}));
  EXPECT_EQ(provider_.lastLogOptions.container, "app");
  EXPECT_EQ(provider_.lastLogOptions.tailLines, 5);
  EXPECT_TRUE(provider_.lastLogOptions.timestamps);
  EXPECT_EQ(provider_.lastLogOptions.sinceSeconds, 30);
}

TEST_F(KubeletApiTest, LogsOfUnknownPodsContainersAndBadQueries) {
  auto pod = get("/containerLogs/shop/web-9/app");
  EXPECT_EQ(pod.res.result_int(), 404);
  EXPECT_NE(pod.res.body().find("shop/web-9 is not on node vk-1"), std::string::npos);
  auto ctr = get("/containerLogs/shop/web-0/sidecar");
  EXPECT_EQ(ctr.res.result_int(), 404);
  EXPECT_NE(ctr.res.body().find("\"sidecar\""), std::string::npos);
  auto uid = get("/containerLogs/shop/web-0/other-uid/app");
  EXPECT_EQ(uid.res.result_int(), 404);
  auto bad = get("/containerLogs/shop/web-0/app?tailLines=-3");
  EXPECT_EQ(bad.res.result_int(), 400);
  EXPECT_NE(bad.res.body().find("tailLines"), std::string::npos);
  provider_.logError = Error::make(ErrorCode::kUnavailable, "BackendUnreachable", "backend down");
  auto down = get("/containerLogs/shop/web-0/app");
  EXPECT_EQ(down.res.result_int(), 503);
  EXPECT_EQ(down.res.body(), "backend down\n");
  EXPECT_TRUE(provider_.logPods.size() == 1u);  // only the last request reached the provider
}

// burstlet's injected container (the network proxy): its logs when asked for by name, no exec.
TEST_F(KubeletApiTest, AnInjectedContainerShowsItsLogsOnly) {
  provider_.logChunks = {"rules applied\n"};
  auto logs = get("/containerLogs/shop/web-0/burstlet-netproxy");
  ASSERT_EQ(logs.res.result_int(), 200) << logs.res.body();
  EXPECT_EQ(provider_.lastLogOptions.container, "burstlet-netproxy");
  PlainWs ws(server_->port());
  ws.headers.emplace_back("Authorization", "Bearer admin");
  auto ec = ws.handshake("/exec/shop/web-0/burstlet-netproxy?command=sh&stdin=1&output=1",
                         "v5.channel.k8s.io");
  EXPECT_TRUE(ec);
  EXPECT_EQ(ws.response.result_int(), 404);
  EXPECT_TRUE(provider_.execOptions.empty());
}

TEST_F(KubeletApiTest, FollowedLogIsCancelledWhenTheClientGoes) {
  provider_.logChunks = {"first\n"};
  {
    Client c(server_->port());
    ASSERT_FALSE(
        c.write("GET /containerLogs/shop/web-0/app?follow=true HTTP/1.1\r\nHost: t\r\n"
                "Authorization: Bearer admin\r\n\r\n"));
    auto got = c.readUntil("first\n");
    EXPECT_NE(got.find("first\n"), std::string::npos) << got;
    EXPECT_EQ(provider_.logCancels.load(), 0);
    c.close();
  }
  EXPECT_TRUE(eventually([this] { return provider_.logCancels.load() == 1; }));
}

TEST_F(KubeletApiTest, ExecOverWebSocketV5) {
  provider_.exitCode = 0;
  auto ws = exec("/exec/shop/web-0/app?command=cat&input=1&output=1&error=1",
                 "v5.channel.k8s.io, v4.channel.k8s.io");
  EXPECT_EQ(ws->response[boost::beast::http::field::sec_websocket_protocol], "v5.channel.k8s.io");
  auto first = ws->read();
  EXPECT_EQ(first.data, std::string("\x01") + "cat\n");
  ASSERT_FALSE(ws->write(std::string("\x00", 1) + "hello", true));
  EXPECT_EQ(ws->read().data, std::string("\x01") + "hello");
  ASSERT_FALSE(ws->write(std::string("\x00", 1) + "err:oops", true));
  EXPECT_EQ(ws->read().data, std::string("\x02") + "oops");
  ASSERT_FALSE(ws->write(std::string("\x04") + R"({"Width":80,"Height":24})", true));
  EXPECT_EQ(ws->read().data, std::string("\x01") + "resize 80x24\n");
  // Close stdin (v5's close signal): the command ends, the status follows.
  ASSERT_FALSE(ws->write(std::string("\xff\x00", 2), true));
  auto rest = drain(*ws);
  ASSERT_EQ(rest.size(), 1u);
  ASSERT_EQ(rest[0][0], '\x03');
  auto status = json::parse(rest[0].substr(1));
  EXPECT_EQ(status.at("status").as_string(), "Success");
  ASSERT_EQ(provider_.execOptions.size(), 1u);
  EXPECT_EQ(provider_.execOptions[0].command, std::vector<std::string>{"cat"});
  EXPECT_TRUE(provider_.execOptions[0].stdinOpen);
}

TEST_F(KubeletApiTest, ExecExitCodeInTheV4Status) {
  provider_.exitCode = 3;
  auto ws = exec("/exec/shop/web-0/app?command=sh&command=-c&command=exit+3&output=1",
                 "v4.channel.k8s.io");
  auto all = drain(*ws);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], std::string("\x01") + "sh -c exit 3\n");
  auto status = json::parse(all[1].substr(1));
  EXPECT_EQ(status.at("status").as_string(), "Failure");
  EXPECT_EQ(status.at("reason").as_string(), "NonZeroExitCode");
  const auto& cause = status.at("details").at("causes").at(0);
  EXPECT_EQ(cause.at("reason").as_string(), "ExitCode");
  EXPECT_EQ(cause.at("message").as_string(), "3");
}

TEST_F(KubeletApiTest, AttachWithTheOldestProtocolGetsPlainErrorText) {
  provider_.exitCode = 2;
  auto ws = exec("/attach/shop/web-0/app?output=1", "channel.k8s.io");
  auto all = drain(*ws);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], std::string("\x03") + "command [] exited with code 2");
  ASSERT_EQ(provider_.execOptions.size(), 1u);
  EXPECT_TRUE(provider_.execOptions[0].command.empty());
}

TEST_F(KubeletApiTest, ClientCloseEndsAnAttach) {
  auto ws = exec("/attach/shop/web-0/app?output=1&input=1", "v4.channel.k8s.io");
  ASSERT_FALSE(ws->write(std::string("\x00", 1) + "x", true));
  EXPECT_EQ(ws->read().data, std::string("\x01") + "x");
  ASSERT_FALSE(ws->close(boost::beast::websocket::close_code::normal));
  EXPECT_TRUE(eventually([this] { return provider_.sessionCancels.load() == 1; }));
}

TEST_F(KubeletApiTest, ExecNeedsAnUpgradeAndAKnownPod) {
  auto plain = get("/exec/shop/web-0/app?command=ls&output=1");
  EXPECT_EQ(plain.res.result_int(), 400);
  EXPECT_NE(plain.res.body().find("WebSocket"), std::string::npos);
  auto unknown = get("/exec/shop/web-7/app?command=ls&output=1");
  EXPECT_EQ(unknown.res.result_int(), 404);
  auto noCommand = get("/exec/shop/web-0/app?output=1");
  EXPECT_EQ(noCommand.res.result_int(), 400);
  EXPECT_TRUE(provider_.execOptions.empty());
  provider_.execError = Error::make(ErrorCode::kNotSupported, "NotSupported", "no exec here");
  PlainWs ws(server_->port());
  ws.headers.emplace_back("Authorization", "Bearer admin");
  auto ec = ws.handshake("/exec/shop/web-0/app?command=ls&output=1", "v5.channel.k8s.io");
  EXPECT_TRUE(ec);  // refused before the upgrade
  EXPECT_EQ(ws.response.result_int(), 501);
}

TEST_F(KubeletApiTest, ClientGoneCancelsTheSession) {
  auto ws = exec("/exec/shop/web-0/app?command=cat&input=1&output=1", "v5.channel.k8s.io");
  EXPECT_EQ(ws->read().data, std::string("\x01") + "cat\n");
  boost::beast::get_lowest_layer(ws->ws()).close();
  EXPECT_TRUE(eventually([this] { return provider_.sessionCancels.load() == 1; }));
}

TEST_F(KubeletApiTest, StatsAndResourceMetricsOfTheNodesPods) {
  provider_.stats = json::parse(R"({"pods":[
    {"podRef":{"name":"web-0","namespace":"shop","uid":"uid-0"},
     "containers":[{"name":"app","startTime":"2026-12-06T09:00:00Z",
       "cpu":{"time":"2026-12-06T10:00:00Z","usageNanoCores":5,"usageCoreNanoSeconds":2000000000},
       "memory":{"time":"2026-12-06T10:00:00Z","workingSetBytes":4096}}],
     "cpu":{"time":"2026-12-06T10:00:00Z","usageNanoCores":5,"usageCoreNanoSeconds":2000000000},
     "memory":{"time":"2026-12-06T10:00:00Z","workingSetBytes":4096}},
    {"podRef":{"name":"gone","namespace":"shop","uid":"x"},"containers":[]}]})");
  auto summary = get("/stats/summary", "viewer");
  ASSERT_EQ(summary.res.result_int(), 200) << summary.res.body();
  auto doc = json::parse(summary.res.body());
  ASSERT_EQ(doc.at("pods").as_array().size(), 1u);  // "gone" is not on this node
  EXPECT_EQ(doc.at("node").at("nodeName").as_string(), "vk-1");
  EXPECT_EQ(doc.at("node").at("memory").at("workingSetBytes").to_number<int64_t>(), 4096);
  auto metrics = get("/metrics/resource");
  ASSERT_EQ(metrics.res.result_int(), 200);
  EXPECT_NE(metrics.res.body().find(
                "container_memory_working_set_bytes{container=\"app\",namespace=\"shop\","
                "pod=\"web-0\"} 4096"),
            std::string::npos)
      << metrics.res.body();
  EXPECT_EQ(metrics.res.body().find("gone"), std::string::npos);
  provider_.statsError = Error::make(ErrorCode::kUnavailable, "Down", "metrics API down");
  EXPECT_EQ(get("/stats/summary").res.result_int(), 503);
  auto failed = get("/metrics/resource");
  EXPECT_EQ(failed.res.result_int(), 200);
  EXPECT_NE(failed.res.body().find("resource_scrape_error 1"), std::string::npos);
}

TEST_F(KubeletApiTest, PodListsOfTheCluster) {
  auto pods = json::parse(get("/pods").res.body());
  EXPECT_EQ(pods.at("kind").as_string(), "PodList");
  ASSERT_EQ(pods.at("items").as_array().size(), 1u);
  EXPECT_EQ(pods.at("items").at(0).at("metadata").at("uid").as_string(), "uid-0");
  provider_.running = {json::parse(R"({"metadata":{"name":"web-0","namespace":"shop","uid":"uid-0"},
          "spec":{"containers":[{"name":"app","image":"nginx"}]},"status":{"phase":"Running"}})"),
                       json::parse(R"({"metadata":{"name":"job-0","namespace":"shop","uid":"uid-j"},
          "spec":{"containers":[{"name":"c","image":"busybox"}]},"status":{"phase":"Succeeded"}})")};
  auto running = json::parse(get("/runningpods/").res.body());
  ASSERT_EQ(running.at("items").as_array().size(), 1u);
  EXPECT_EQ(running.at("items").at(0).at("spec").at("containers").at(0).at("image").as_string(),
            "nginx");
}

}  // namespace
}  // namespace burstlet::kubelet
