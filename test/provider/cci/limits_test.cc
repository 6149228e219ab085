// CCI's further limits (limits.h): each rule on its own, at and over its bound, and none for a
// plain Kubernetes backend.
#include "provider/cci/limits.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

std::vector<Error> violations(const std::string& spec, const CciLimits& limits = {}) {
  const json::value v = json::parse(spec);
  std::vector<Error> out;
  checkLimits(&v, limits, out);
  return out;
}

std::string containers(int n, const std::string& extra = "") {
  std::string out = R"({"containers":[)";
  for (int i = 0; i < n; ++i) {
    out += fmt::format(R"({}{{"name":"c{}","image":"i"{}}})", i == 0 ? "" : ",", i, extra);
  }
  return out + "]}";
}

TEST(LimitsTest, FiveContainersAtMost) {
  EXPECT_TRUE(violations(containers(5)).empty());
  const auto v = violations(containers(6));
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].code, ErrorCode::kInvalid);
  EXPECT_EQ(v[0].reason, "TooManyContainers");
  EXPECT_EQ(v[0].message, "spec.containers: 6 containers, CCI runs at most 5 in a pod");
}

TEST(LimitsTest, NoPrivilegedContainer) {
  EXPECT_TRUE(violations(containers(1, R"(,"securityContext":{"privileged":false})")).empty());
  const auto v = violations(R"({"containers":[{"name":"a"}],
      "initContainers":[{"name":"i","securityContext":{"privileged":true}}]})");
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].reason, "PrivilegedContainer");
  EXPECT_EQ(v[0].message,
            "spec.initContainers[0].securityContext.privileged: CCI runs no privileged container");
}

TEST(LimitsTest, LivenessAndReadinessByHttpOrExecOnly) {
  EXPECT_TRUE(violations(containers(1, R"(,"livenessProbe":{"httpGet":{"port":80}},
      "readinessProbe":{"exec":{"command":["true"]}})"))
                  .empty());
  auto v = violations(containers(1, R"(,"startupProbe":{"httpGet":{"port":80}})"));
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].reason, "UnsupportedProbe");
  EXPECT_EQ(v[0].message,
            "spec.containers[0].startupProbe: CCI runs liveness and readiness probes only (by "
            "HTTP GET or exec), no startup probe");
  v = violations(containers(1, R"(,"readinessProbe":{"tcpSocket":{"port":80}})"));
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].message,
            "spec.containers[0].readinessProbe.tcpSocket: CCI checks by HTTP GET or exec only");
}

TEST(LimitsTest, TwentyGiOfEphemeralStorageAtMost) {
  // Apps are summed, an init container counts when it is larger; limits win over requests.
  EXPECT_TRUE(violations(R"({"containers":[
      {"name":"a","resources":{"requests":{"ephemeral-storage":"10Gi"}}},
      {"name":"b","resources":{"limits":{"ephemeral-storage":"10Gi"},
                               "requests":{"ephemeral-storage":"1Gi"}}}]})")
                  .empty());
  auto v = violations(R"({"containers":[
      {"name":"a","resources":{"requests":{"ephemeral-storage":"10Gi"}}},
      {"name":"b","resources":{"limits":{"ephemeral-storage":"11Gi"}}}]})");
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].reason, "EphemeralStorageTooLarge");
  EXPECT_EQ(v[0].message,
            "spec.containers[*].resources: the pod asks for 21Gi of ephemeral storage, CCI gives "
            "a pod at most 20Gi (mount an SFS claim for more)");
  v = violations(R"({"containers":[{"name":"a"}],
      "initContainers":[{"name":"i","resources":{"limits":{"ephemeral-storage":"30Gi"}}}]})");
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].reason, "EphemeralStorageTooLarge");
}

TEST(LimitsTest, PlainBackendChecksNone) {
  const std::string all = R"({"containers":[{"name":"a","securityContext":{"privileged":true},
      "startupProbe":{"tcpSocket":{"port":1}},
      "resources":{"limits":{"ephemeral-storage":"1Ti"}}},
      {"name":"b"},{"name":"c"},{"name":"d"},{"name":"e"},{"name":"f"}]})";
  EXPECT_EQ(violations(all).size(), 4U);
  EXPECT_TRUE(violations(all, CciLimits::none()).empty());
}

}  // namespace
}  // namespace burstlet::provider::cci
