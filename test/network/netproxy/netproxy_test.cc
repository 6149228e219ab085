#include "network/netproxy/netproxy.h"

#include <gtest/gtest.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <fstream>

#include "mocks/memory_api.h"
#include "mocks/recording_rule_applier.h"
#include "mocks/temp_dir.h"
#include "network/netproxy/proxy_table.h"

namespace burstlet::network {
namespace {

namespace json = boost::json;

// MemoryApi answers lists across namespaces from their own collection.
constexpr const char* kSlices = "/apis/discovery.k8s.io/v1/endpointslices";
constexpr const char* kServices = "/api/v1/services";

json::value slice(const char* ip) {
  return json::parse(fmt::format(
      R"({{"metadata":{{"namespace":"shop","name":"web-a","labels":{{"kubernetes.io/service-name":"web"}}}},
          "addressType":"IPv4","endpoints":[{{"addresses":["{}"]}}],"ports":[{{"port":8080}}]}})",
      ip));
}

// Runs the io_context until `done` holds or a few seconds passed.
bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done) {
  for (int i = 0; i < 600 && !done(); ++i) {
    io.restart();
    io.run_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(NetProxy, RulesFollowServicesAndEndpoints) {
  boost::asio::io_context io;
  testing::MemoryApi api;
  api.put("/api/v1/namespaces", json::parse(R"({"metadata":{"name":"shop"}})"));
  api.put(kServices, json::parse(R"({"metadata":{"namespace":"shop","name":"web"},
      "spec":{"clusterIP":"10.96.0.20","ports":[{"port":80}]}})"));
  api.put(kSlices, slice("10.244.0.5"));
  kube::RestClient client(io.get_executor(), api.transport(), kube::ClientConfig{},
                          kube::RestOptions{});
  testing::RecordingRuleApplier rules;
  NetProxyOptions o;
  o.settle = std::chrono::milliseconds(1);
  NetProxy proxy(client, rules, o, realClock());
  Status result = okStatus();
  bool ended = false;
  boost::asio::co_spawn(io, proxy.run(), [&](const std::exception_ptr&, Status s) {
    result = std::move(s);
    ended = true;
  });
  ASSERT_TRUE(runUntil(io, [&] { return proxy.signals().ready.isSet(); }));
  ASSERT_EQ(rules.scripts.size(), 1u);
  EXPECT_NE(rules.scripts[0].find("ip daddr 10.96.0.20 tcp dport 80 dnat ip to numgen random mod 1 "
                                  "map { 0 : 10.244.0.5 . 8080 }"),
            std::string::npos)
      << rules.scripts[0];

  // The endpoint moves: a new ruleset with the new address.
  api.put(kSlices, slice("10.244.0.9"));
  ASSERT_TRUE(runUntil(io, [&] { return rules.scripts.size() == 2; }));
  EXPECT_NE(rules.scripts[1].find("0 : 10.244.0.9 . 8080"), std::string::npos);

  // The slice goes: the Service is refused, not left to time out.
  api.remove(kSlices, "web-a");
  ASSERT_TRUE(runUntil(io, [&] { return rules.scripts.size() == 3; }));
  EXPECT_NE(rules.scripts[2].find("ip daddr 10.96.0.20 tcp dport 80 reject with tcp reset"),
            std::string::npos);
  // A change that does not change the rules (another namespace's object) applies nothing.
  api.put("/api/v1/namespaces", json::parse(R"({"metadata":{"name":"other"}})"));
  api.put("/api/v1/namespaces/other/configmaps", json::parse(R"({"metadata":{"name":"x"}})"));
  api.put(kServices, json::parse(R"({"metadata":{"namespace":"shop","name":"web",
      "labels":{"touched":"yes"}},"spec":{"clusterIP":"10.96.0.20","ports":[{"port":80}]}})"));
  io.restart();
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(rules.scripts.size(), 3u);
  EXPECT_EQ(proxy.rulesetsApplied(), 3u);

  proxy.stop();
  ASSERT_TRUE(runUntil(io, [&] { return ended; }));
  EXPECT_TRUE(result.ok());
}

// A Job's pod: once the annotations say the pod's own containers are done, the proxy ends
// successfully (and the pod can complete).
TEST(NetProxy, TheStopFileEndsIt) {
  testing::TempDir dir;
  const std::string file = dir.write("annotations", "team=\"a\"\n");
  EXPECT_FALSE(stopRequested(file));
  EXPECT_FALSE(stopRequested(dir.path() + "/missing"));
  boost::asio::io_context io;
  testing::MemoryApi api;
  kube::RestClient client(io.get_executor(), api.transport(), kube::ClientConfig{},
                          kube::RestOptions{});
  testing::RecordingRuleApplier rules;
  NetProxyOptions o;
  o.settle = std::chrono::milliseconds(1);
  o.stopFile = file;
  NetProxy proxy(client, rules, o, realClock());
  std::optional<Status> result;
  boost::asio::co_spawn(io, proxy.run(),
                        [&](const std::exception_ptr&, Status s) { result = std::move(s); });
  ASSERT_TRUE(runUntil(io, [&] { return proxy.signals().ready.isSet(); }));
  EXPECT_FALSE(result.has_value());
  dir.write("annotations", "burstlet.io/injected-stop=\"true\"\nteam=\"a\"\n");
  ASSERT_TRUE(runUntil(io, [&] { return result.has_value(); }));  // within its 2 s poll
  EXPECT_TRUE(result->ok());
}

TEST(NetProxy, WithoutNetAdminItStops) {
  boost::asio::io_context io;
  testing::MemoryApi api;
  kube::RestClient client(io.get_executor(), api.transport(), kube::ClientConfig{},
                          kube::RestOptions{});
  testing::RecordingRuleApplier rules;
  rules.refuse = true;
  NetProxy proxy(client, rules, NetProxyOptions{}, realClock());
  std::optional<Status> result;
  boost::asio::co_spawn(io, proxy.run(),
                        [&](const std::exception_ptr&, Status s) { result = std::move(s); });
  ASSERT_TRUE(runUntil(io, [&] { return result.has_value(); }));
  ASSERT_FALSE(result->ok());
  EXPECT_EQ(result->error().reason, "NoNetAdmin");
}

TEST(NetProxy, CredentialsDirectory) {
  testing::TempDir dir;
  auto missing = proxyClientConfig(dir.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("server"), std::string::npos);
  std::ofstream(dir.path() + "/server") << "https://192.168.0.10:6443\n";
  std::ofstream(dir.path() + "/ca.crt") << "not a certificate";
  std::ofstream(dir.path() + "/token") << "secret-token-value";
  auto bad = proxyClientConfig(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("ca.crt"), std::string::npos);
  EXPECT_EQ(bad.error().message.find("secret-token-value"), std::string::npos);
  std::ofstream(dir.path() + "/ca.crt")
      << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  std::ofstream(dir.path() + "/tls-server-name") << "localhost\n";
  auto ok = proxyClientConfig(dir.path());
  ASSERT_TRUE(ok.ok()) << ok.error().toString();
  EXPECT_EQ(ok->server, "https://192.168.0.10:6443");
  EXPECT_EQ(ok->tlsServerName, "localhost");
  EXPECT_EQ(ok->tokenFile, dir.path() + "/token");
  EXPECT_TRUE(ok->token.empty());  // read by the transport, re-read as it is renewed
}

// The rendered rules against the real kernel, in a network namespace of a child process (root
// needed; the netns test bed runs as root).
TEST(NetProxy, TheKernelTakesTheRules) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root for a network namespace";
  }
  const ProxyTable table{
      {"kube-system/kube-dns", "10.96.0.10", 53, "udp", {{"10.244.0.5", 53}, {"10.244.0.6", 53}}},
      {"shop/web", "10.96.0.20", 80, "tcp", {{"10.244.0.7", 8080}}},
      {"shop/empty", "10.96.0.21", 80, "tcp", {}},
      // The longest names there are: nftables takes comments of 128 bytes at most, and refuses
      // the whole ruleset for one longer.
      {std::string(63, 'n') + "/" + std::string(63, 's'), "10.96.0.22", 80, "tcp", {}}};
  const std::string script = renderNftables(table);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNET) != 0) {
      ::_exit(3);
    }
    // The postStart hook's question: no table yet, then the table once applied.
    auto before = nftablesTableExists(kProxyTableName);
    if (!before.ok() || *before) {
      ::_exit(7);
    }
    auto applier = makeNftablesApplier();
    if (!applier.ok() || !(*applier)->apply(script).ok() || !(*applier)->apply(script).ok()) {
      ::_exit(4);  // applied twice: the second replaces the first
    }
    nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    nft_ctx_buffer_output(ctx);
    if (nft_run_cmd_from_buffer(ctx, "list table ip burstlet_netproxy") != 0) {
      ::_exit(5);
    }
    const std::string listed = nft_ctx_get_output_buffer(ctx);
    const bool good =
        listed.find("10.244.0.6 . 53") != std::string::npos &&
        listed.find("0 : 10.244.0.7 . 8080") != std::string::npos &&
        listed.find("10.96.0.21 tcp dport 80 reject with tcp reset") != std::string::npos;
    auto after = nftablesTableExists(kProxyTableName);
    ::_exit(!good ? 6 : (after.ok() && *after) ? 0 : 8);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: no netns, 4: rules refused, 5: list failed, 6: not "
                                       "as rendered, 7/8: table seen before / not after";
}

}  // namespace
}  // namespace burstlet::network
