#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>
#include <string>

#include "provider/cci/translate.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

bool isDnsLabel(const std::string& s) {
  static const std::regex kLabel("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
  return s.size() <= 63 && std::regex_match(s, kLabel);
}

bool isLabelValue(const std::string& s) {
  static const std::regex kValue("^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$");
  return s.size() <= 63 && std::regex_match(s, kValue);
}

// --- naming -----------------------------------------------------------------------------------

TEST(TranslateNamingTest, ReadableValidAndDeterministic) {
  const auto name = backendName("default", "nginx-7d9f");
  EXPECT_TRUE(isDnsLabel(name)) << name;
  EXPECT_EQ(name.rfind("default-nginx-7d9f-", 0), 0U) << name;
  EXPECT_EQ(name.size(), std::string("default-nginx-7d9f-").size() + 10);
  EXPECT_EQ(name, backendName("default", "nginx-7d9f"));
}

TEST(TranslateNamingTest, NamespaceAndNameBoundariesDoNotCollide) {
  EXPECT_NE(backendName("a-b", "c"), backendName("a", "b-c"));
  EXPECT_NE(backendName("a", "b.c"), backendName("a", "b-c"));
  EXPECT_NE(backendName("ns", "Web"), backendName("ns", "web"));
  EXPECT_NE(backendName("ns1", "x"), backendName("ns2", "x"));
  EXPECT_NE(backendName("", "x"), backendName("x", ""));
}

TEST(TranslateNamingTest, LongNamesAreCutButStayDistinct) {
  const std::string longNs(63, 'n');
  const std::string longName = std::string(240, 'p') + ".example.com";
  std::set<std::string> seen;
  for (const auto& [ns, name] : std::vector<std::pair<std::string, std::string>>{
           {longNs, longName},
           {longNs, longName + "x"},
           {"default", std::string(253, 'a')},
           {"default", std::string(252, 'a')},
           {longNs, "short"},
       }) {
    const auto n = backendName(ns, name);
    EXPECT_TRUE(isDnsLabel(n)) << n;
    EXPECT_LE(n.size(), 63U);
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 5U);
  // A long namespace leaves room for the name, the more telling part.
  EXPECT_NE(backendName(longNs, "short").find("-short-"), std::string::npos);
}

TEST(TranslateNamingTest, DotsCapitalsAndEdgesAreSanitized) {
  for (const auto& name : {"my.config.v1", "-x-", "a..b", "...", "UPPER.case", "x_y"}) {
    const auto n = backendName("team.a", name);
    EXPECT_TRUE(isDnsLabel(n)) << name << " -> " << n;
  }
  EXPECT_EQ(backendName("ns", "my.config").rfind("ns-my-config-", 0), 0U);
  // Nothing readable left: the hash alone is a valid label.
  EXPECT_TRUE(isDnsLabel(backendName("", "...")));
}

TEST(TranslateNamingTest, PersistentVolumeNameCarriesTheBackendNamespaceAndNode) {
  const auto n = backendPersistentVolumeName("cce-burst-c1", "node-a", "pvc-1234");
  EXPECT_EQ(n, "cce-burst-c1-" + copyName("node-a", "", "pvc-1234"));
  EXPECT_NE(n, backendPersistentVolumeName("cce-burst-c2", "node-a", "pvc-1234"));
  EXPECT_NE(n, backendPersistentVolumeName("cce-burst-c1", "node-b", "pvc-1234"));
}

// Virtual nodes sharing a backend namespace each have copies of their own.
TEST(TranslateNamingTest, CopyNamesArePerNode) {
  const auto a = copyName("node-a", "default", "app.conf");
  EXPECT_TRUE(isDnsLabel(a)) << a;
  EXPECT_EQ(a.rfind("default-app-conf-", 0), 0U) << a;
  EXPECT_EQ(a, copyName("node-a", "default", "app.conf"));
  EXPECT_NE(a, copyName("node-b", "default", "app.conf"));
  EXPECT_NE(a, backendName("default", "app.conf"));
  // The triple's boundaries do not collide.
  EXPECT_NE(copyName("a-b", "c", "d"), copyName("a", "b-c", "d"));
  EXPECT_NE(copyName("a", "b", "c"), copyName("", "a", "b-c"));
  const std::string longNode = std::string(240, 'n') + ".example.com";
  const auto n = copyName(longNode, std::string(63, 'x'), std::string(253, 'y'));
  EXPECT_TRUE(isDnsLabel(n)) << n;
  EXPECT_LE(n.size(), 63U);
}

TEST(TranslateNamingTest, SafeLabelValue) {
  EXPECT_EQ(safeLabelValue("burst-node"), "burst-node");
  EXPECT_EQ(safeLabelValue("Node_1.zone"), "Node_1.zone");
  EXPECT_EQ(safeLabelValue(""), "");
  const std::string longNode = std::string(70, 'n') + ".example.com";
  const auto v = safeLabelValue(longNode);
  EXPECT_TRUE(isLabelValue(v)) << v;
  EXPECT_EQ(v, safeLabelValue(longNode));
  EXPECT_NE(v, safeLabelValue(longNode + "x"));
  EXPECT_TRUE(isLabelValue(safeLabelValue("-bad-")));
}

}  // namespace
}  // namespace burstlet::provider::cci
