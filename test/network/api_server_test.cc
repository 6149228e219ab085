#include "network/api_server.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "mocks/memory_api.h"
#include "mocks/run_sync.h"

namespace burstlet::network {
namespace {

namespace json = boost::json;

TEST(ApiServerEndpoint, Parses) {
  auto a = parseApiServerEndpoint("10.0.0.5:6443", "network.apiServer");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "10.0.0.5");
  EXPECT_EQ(a->port, 6443);
  EXPECT_EQ(a->url(), "https://10.0.0.5:6443");
  auto b = parseApiServerEndpoint("https://api.example.com:443/", "x");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "api.example.com");
  auto c = parseApiServerEndpoint("[fd00::1]:6443", "x");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "fd00::1");
  EXPECT_EQ(c->url(), "https://[fd00::1]:6443");
  for (const char* bad : {"10.0.0.5", ":6443", "h:0", "h:70000", "h:6443x", "fd00::1:6443", ""}) {
    auto r = parseApiServerEndpoint(bad, "network.apiServer");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("network.apiServer"), std::string::npos);
  }
}

TEST(ApiServerEndpoint, DiscoveredFromTheKubernetesEndpointSlice) {
  boost::asio::io_context io;
  testing::MemoryApi api;
  api.put("/api/v1/namespaces", json::parse(R"({"metadata":{"name":"default"}})"));
  kube::RestClient client(io.get_executor(), api.transport(), kube::ClientConfig{},
                          kube::RestOptions{});
  auto none = testing::runSync(io, discoverApiServer(client));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  api.put("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", json::parse(R"({
      "metadata":{"name":"kubernetes","namespace":"default"},"addressType":"IPv4",
      "endpoints":[{"addresses":["192.168.0.9"],"conditions":{"ready":false}},
                   {"addresses":["192.168.0.10"],"conditions":{"ready":true}}],
      "ports":[{"name":"https","port":6443,"protocol":"TCP"}]})"));
  auto found = testing::runSync(io, discoverApiServer(client));
  ASSERT_TRUE(found.ok()) << found.error().toString();
  EXPECT_EQ(found->host, "192.168.0.10");
  EXPECT_EQ(found->port, 6443);
}

TEST(ApiServerEndpoint, KubernetesServiceAtTheEndpoint) {
  const auto s = kubernetesServiceAt({"192.168.0.10", 6443, ""});
  EXPECT_EQ(s.at("metadata").at("name").as_string(), "kubernetes");
  EXPECT_EQ(s.at("spec").at("clusterIP").as_string(), "192.168.0.10");
  EXPECT_EQ(s.at("spec").at("ports").at(0).at("port").as_int64(), 6443);
}

}  // namespace
}  // namespace burstlet::network
