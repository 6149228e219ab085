#include "network/netproxy/proxy_table.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::network {
namespace {

namespace json = boost::json;

json::value service(const char* ns, const char* name, const char* ip, const char* ports,
                    const char* type = "ClusterIP") {
  return json::parse(fmt::format(
      R"({{"metadata":{{"namespace":"{}","name":"{}"}},"spec":{{"type":"{}","clusterIP":"{}",
          "clusterIPs":["{}"],"ports":{}}}}})",
      ns, name, type, ip, ip, ports));
}

json::value slice(const char* ns, const char* service, const char* name, const char* endpoints,
                  const char* ports, const char* type = "IPv4") {
  return json::parse(fmt::format(
      R"({{"metadata":{{"namespace":"{}","name":"{}","labels":{{"kubernetes.io/service-name":"{}"}}}},
          "addressType":"{}","endpoints":{},"ports":{}}})",
      ns, name, service, type, endpoints, ports));
}

TEST(ProxyTable, ServicePortsGoToReadyEndpointsOnTheirTargetPorts) {
  const std::vector<json::value> services{service(
      "shop", "web", "10.96.0.20",
      R"([{"name":"http","port":80,"protocol":"TCP"},{"name":"dns","port":53,"protocol":"UDP"}])")};
  const std::vector<json::value> slices{
      slice(
          "shop", "web", "web-a",
          R"([{"addresses":["10.244.0.5"],"conditions":{"ready":true}},
                {"addresses":["10.244.0.6"]},
                {"addresses":["10.244.0.7"],"conditions":{"ready":false}}])",
          R"([{"name":"http","port":8080,"protocol":"TCP"},{"name":"dns","port":5353,"protocol":"UDP"}])"),
      slice("shop", "web", "web-b", R"([{"addresses":["10.245.1.9"],"conditions":{"ready":true}}])",
            R"([{"name":"http","port":8080,"protocol":"TCP"}])")};
  const auto table = buildProxyTable(services, slices);
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[0].protocol, "tcp");
  EXPECT_EQ(table[0].port, 80);
  EXPECT_EQ(table[0].service, "shop/web");
  EXPECT_EQ(table[0].endpoints,
            (std::vector<ProxyEndpoint>{
                {"10.244.0.5", 8080}, {"10.244.0.6", 8080}, {"10.245.1.9", 8080}}));
  EXPECT_EQ(table[1].protocol, "udp");
  EXPECT_EQ(table[1].endpoints,
            (std::vector<ProxyEndpoint>{{"10.244.0.5", 5353}, {"10.244.0.6", 5353}}));
}

TEST(ProxyTable, TerminatingEndpointsServeOnlyWhenNoneIsReady) {
  const std::vector<json::value> services{service("shop", "web", "10.96.0.20", R"([{"port":80}])")};
  auto endpoints = [](const char* list) {
    return std::vector<json::value>{slice("shop", "web", "web-a", list, R"([{"port":8080}])")};
  };
  auto t = buildProxyTable(services, endpoints(R"([
      {"addresses":["10.244.0.5"],"conditions":{"ready":false,"serving":true,"terminating":true}},
      {"addresses":["10.244.0.6"],"conditions":{"ready":true}}])"));
  EXPECT_EQ(t[0].endpoints, (std::vector<ProxyEndpoint>{{"10.244.0.6", 8080}}));
  t = buildProxyTable(services, endpoints(R"([
      {"addresses":["10.244.0.5"],"conditions":{"ready":false,"serving":true,"terminating":true}},
      {"addresses":["10.244.0.7"],"conditions":{"ready":false,"serving":false,"terminating":true}}])"));
  EXPECT_EQ(t[0].endpoints, (std::vector<ProxyEndpoint>{{"10.244.0.5", 8080}}));
}

TEST(ProxyTable, WhatIsLeftOut) {
  const std::vector<json::value> services{
      service("a", "headless", "None", R"([{"port":80}])"),
      service("a", "external", "", R"([{"port":80}])", "ExternalName"),
      service("a", "v6", "fd00::10", R"([{"port":80}])"),
      service("a", "sctp", "10.96.0.30", R"([{"port":80,"protocol":"SCTP"}])"),
      service("a", "empty", "10.96.0.31", R"([{"port":80}])")};
  const std::vector<json::value> slices{
      slice("a", "v6", "v6-a", R"([{"addresses":["fd00::5"]}])", R"([{"port":80}])", "IPv6"),
      // Another namespace's slice for a Service of that name does not count.
      slice("b", "empty", "empty-a", R"([{"addresses":["10.244.0.5"]}])", R"([{"port":80}])")};
  const auto table = buildProxyTable(services, slices);
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[0].service, "a/empty");
  EXPECT_TRUE(table[0].endpoints.empty());
}

TEST(ProxyTable, TheMasterServiceGoesWhereTheProxyReachesTheApiServer) {
  const std::vector<json::value> services{
      service("default", "kubernetes", "10.96.0.1", R"([{"name":"https","port":443}])")};
  const std::vector<json::value> slices{slice("default", "kubernetes", "kubernetes",
                                              R"([{"addresses":["172.16.0.2"]}])",
                                              R"([{"name":"https","port":6443}])")};
  EXPECT_EQ(buildProxyTable(services, slices)[0].endpoints,
            (std::vector<ProxyEndpoint>{{"172.16.0.2", 6443}}));
  EXPECT_EQ(buildProxyTable(services, slices, ProxyEndpoint{"192.168.0.10", 5443})[0].endpoints,
            (std::vector<ProxyEndpoint>{{"192.168.0.10", 5443}}));
}

TEST(ProxyTable, RendersOneTransaction) {
  ProxyTable t{
      {"kube-system/kube-dns", "10.96.0.10", 53, "udp", {{"10.244.0.5", 53}, {"10.244.0.6", 53}}},
      {"shop/web", "10.96.0.20", 80, "tcp", {}}};
  const std::string script = renderNftables(t);
  EXPECT_EQ(script,
            "add table ip burstlet_netproxy\n"
            "delete table ip burstlet_netproxy\n"
            "table ip burstlet_netproxy {\n"
            "  chain nat_output {\n"
            "    type nat hook output priority -100; policy accept;\n"
            "    ip daddr 10.96.0.10 udp dport 53 dnat ip to numgen random mod 2 map { 0 : "
            "10.244.0.5 . 53, 1 : 10.244.0.6 . 53 } comment \"kube-system/kube-dns\"\n"
            "  }\n"
            "  chain filter_output {\n"
            "    type filter hook output priority 0; policy accept;\n"
            "    ip daddr 10.96.0.20 tcp dport 80 reject with tcp reset comment \"shop/web\"\n"
            "  }\n"
            "}\n");
}

}  // namespace
}  // namespace burstlet::network
