#include "network/dns.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

namespace burstlet::network {
namespace {

namespace json = boost::json;

DnsOptions cluster() {
  DnsOptions o;
  o.clusterDNS = {"10.96.0.10"};
  return o;
}

json::value pod(std::string_view spec) {
  return json::parse(std::string(R"({"metadata":{"namespace":"shop","name":"web"},"spec":)") +
                     std::string(spec) + "}");
}

std::vector<std::string> strings(const json::value& v) {
  std::vector<std::string> out;
  for (const auto& s : v.as_array()) {
    out.emplace_back(s.as_string());
  }
  return out;
}

TEST(ClusterDns, ClusterFirstPodGetsTheClusterResolver) {
  auto p = pod(R"({"dnsPolicy":"ClusterFirst","containers":[]})");
  auto notes = applyClusterDns(p, cluster());
  ASSERT_TRUE(notes.ok());
  EXPECT_TRUE(notes->empty());
  const auto& spec = p.at("spec");
  EXPECT_EQ(spec.at("dnsPolicy").as_string(), "None");
  EXPECT_EQ(strings(spec.at("dnsConfig").at("nameservers")),
            (std::vector<std::string>{"10.96.0.10"}));
  EXPECT_EQ(
      strings(spec.at("dnsConfig").at("searches")),
      (std::vector<std::string>{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local"}));
  EXPECT_EQ(json::serialize(spec.at("dnsConfig").at("options")),
            R"([{"name":"ndots","value":"5"}])");
}

TEST(ClusterDns, NoPolicyMeansClusterFirst) {
  auto p = pod(R"({"containers":[]})");
  ASSERT_TRUE(applyClusterDns(p, cluster()).ok());
  EXPECT_EQ(p.at("spec").at("dnsPolicy").as_string(), "None");
}

TEST(ClusterDns, DefaultAndNoneAreKept) {
  for (const char* spec : {R"({"dnsPolicy":"Default"})",
                           R"({"dnsPolicy":"None","dnsConfig":{"nameservers":["1.1.1.1"]}})"}) {
    auto p = pod(spec);
    const auto before = p;
    ASSERT_TRUE(applyClusterDns(p, cluster()).ok());
    EXPECT_EQ(p, before) << spec;
  }
}

TEST(ClusterDns, WithoutClusterDnsTheBackendDecides) {
  auto p = pod(R"({"dnsPolicy":"ClusterFirst"})");
  const auto before = p;
  ASSERT_TRUE(applyClusterDns(p, DnsOptions{}).ok());
  EXPECT_EQ(p, before);
}

TEST(ClusterDns, PodsOwnConfigIsMergedAndItsOptionsWin) {
  auto p = pod(R"({"dnsConfig":{"nameservers":["1.1.1.1","10.96.0.10"],
      "searches":["corp.example","svc.cluster.local"],
      "options":[{"name":"ndots","value":"2"},{"name":"edns0"}]}})");
  ASSERT_TRUE(applyClusterDns(p, cluster()).ok());
  const auto& c = p.at("spec").at("dnsConfig");
  EXPECT_EQ(strings(c.at("nameservers")), (std::vector<std::string>{"10.96.0.10", "1.1.1.1"}));
  EXPECT_EQ(strings(c.at("searches")),
            (std::vector<std::string>{"shop.svc.cluster.local", "svc.cluster.local",
                                      "cluster.local", "corp.example"}));
  EXPECT_EQ(json::serialize(c.at("options")), R"([{"name":"edns0"},{"name":"ndots","value":"2"}])");
}

TEST(ClusterDns, NameserversBeyondThreeAreCutWithANote) {
  auto o = cluster();
  o.clusterDNS = {"10.96.0.10", "10.96.0.11"};
  auto p = pod(R"({"dnsConfig":{"nameservers":["1.1.1.1","8.8.8.8"]}})");
  auto notes = applyClusterDns(p, o);
  ASSERT_TRUE(notes.ok());
  EXPECT_EQ(strings(p.at("spec").at("dnsConfig").at("nameservers")),
            (std::vector<std::string>{"10.96.0.10", "10.96.0.11", "1.1.1.1"}));
  ASSERT_EQ(notes->size(), 1u);
  EXPECT_EQ(notes->front().reason, "DNSConfigForming");
  EXPECT_EQ(notes->front().message,
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied "
            "nameserver line is: 10.96.0.10 10.96.0.11 1.1.1.1");
}

TEST(ClusterDns, SearchesAreCutToTheBackendsLimits) {
  // CCI's 1.19 API: 6 searches.
  const auto o = withApiLimits(cluster(), 19);
  auto p = pod(R"({"dnsConfig":{"searches":["a.example","b.example","c.example","d.example"]}})");
  auto notes = applyClusterDns(p, o);
  ASSERT_TRUE(notes.ok());
  EXPECT_EQ(strings(p.at("spec").at("dnsConfig").at("searches")),
            (std::vector<std::string>{"shop.svc.cluster.local", "svc.cluster.local",
                                      "cluster.local", "a.example", "b.example", "c.example"}));
  ASSERT_EQ(notes->size(), 1u);
  EXPECT_NE(notes->front().message.find("Search Line limits were exceeded"), std::string::npos);
  // And 256 characters: long searches go from the end.
  auto q = pod(R"({"dnsConfig":{"searches":[")" + std::string(120, 'x') + R"(.example",")" +
               std::string(120, 'y') + R"(.example"]}})");
  ASSERT_TRUE(applyClusterDns(q, o).ok());
  EXPECT_EQ(q.at("spec").at("dnsConfig").at("searches").as_array().size(), 4u);
  // 1.36: 32 searches, 2048 characters: nothing cut.
  auto r = pod(R"({"dnsConfig":{"searches":["a.example","b.example","c.example","d.example"]}})");
  auto none = applyClusterDns(r, withApiLimits(cluster(), 36));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(r.at("spec").at("dnsConfig").at("searches").as_array().size(), 7u);
}

TEST(ClusterDns, AnOtherDomain) {
  auto o = cluster();
  o.clusterDomain = "corp.local";
  auto p = pod(R"({})");
  ASSERT_TRUE(applyClusterDns(p, o).ok());
  EXPECT_EQ(strings(p.at("spec").at("dnsConfig").at("searches")),
            (std::vector<std::string>{"shop.svc.corp.local", "svc.corp.local", "corp.local"}));
}

TEST(ClusterDns, APodWithoutSpecIsInvalid) {
  auto p = json::parse(R"({"metadata":{}})");
  auto r = applyClusterDns(p, cluster());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
}

TEST(ClusterDns, OptionsAreValidated) {
  auto o = cluster();
  EXPECT_TRUE(validateDnsOptions(o).ok());
  o.clusterDNS = {"kube-dns"};
  auto bad = validateDnsOptions(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("network.clusterDNS"), std::string::npos);
  o.clusterDNS = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"};
  EXPECT_FALSE(validateDnsOptions(o).ok());
  o = cluster();
  o.clusterDomain = "Cluster.Local.";
  bad = validateDnsOptions(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("network.clusterDomain"), std::string::npos);
}

}  // namespace
}  // namespace burstlet::network
