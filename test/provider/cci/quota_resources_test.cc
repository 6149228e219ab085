// The node's resources under the backend namespace's ResourceQuotas: the cap, the quotas' limits,
// what other nodes' pods use, this node's own pods, and quotas that do not count.
#include "provider/cci/quota_resources.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

json::value quota(const std::string& name, json::object hard, json::object used = {},
                  std::optional<json::object> statusHard = std::nullopt) {
  json::object status{{"used", std::move(used)}};
  if (statusHard) {
    status["hard"] = std::move(*statusHard);
  }
  return json::object{{"apiVersion", "v1"},
                      {"kind", "ResourceQuota"},
                      {"metadata", {{"name", name}, {"namespace", "cce-burst-c1"}}},
                      {"spec", {{"hard", std::move(hard)}}},
                      {"status", std::move(status)}};
}

// What own pods use: `cpu` and `memory` requested, `limitCpu` as the CPU limit, `pods` pods.
PodUsage own(const std::string& cpu, const std::string& memory, int64_t pods,
             const std::string& limitCpu = "0") {
  PodUsage u;
  const auto q = [](const std::string& t) { return *Quantity::parse(t); };
  u.requests[0] = q(cpu);
  u.limits[0] = q(limitCpu);
  u.requests[1] = q(memory);
  u.limits[1] = q(memory);
  u.requests[2] = Quantity::fromValue(pods);
  u.limits[2] = Quantity::fromValue(pods);
  return u;
}

NodeResources compute(const std::vector<json::value>& quotas, const PodUsage& mine = {},
                      std::vector<std::string>* ignored = nullptr, const NodeCapacity& cap = {}) {
  return quotaResources(cap, quotas, mine, ignored);
}

TEST(QuotaResourcesTest, NoQuotaIsTheConfiguredNumbersAsWritten) {
  NodeCapacity cap{"2k", "8Ti", "10000", "20Ti"};
  const auto r = compute({}, own("3", "4Gi", 2), nullptr, cap);
  EXPECT_EQ(r.capacity, cap);
  EXPECT_EQ(r.allocatable, cap);
}

TEST(QuotaResourcesTest, HardLimitsLowerTheCap) {
  const auto r = compute({quota("q", {{"cpu", "8"}, {"requests.memory", "16Gi"}, {"pods", "20"}})});
  EXPECT_EQ(r.capacity.cpu, "8");
  EXPECT_EQ(r.capacity.memory, "16Gi");
  EXPECT_EQ(r.capacity.pods, "20");
  EXPECT_EQ(r.capacity.ephemeralStorage, "20Ti");  // no key for it: the cap
  EXPECT_EQ(r.allocatable, r.capacity);
}

TEST(QuotaResourcesTest, TheCapWinsOverALargerQuota) {
  NodeCapacity cap{"4", "8Gi", "10", "1Ti"};
  const auto r = compute({quota("q", {{"cpu", "8"},
                                      {"memory", "16Gi"},
                                      {"count/pods", "20"},
                                      {"requests.ephemeral-storage", "100Gi"}})},
                         {}, nullptr, cap);
  EXPECT_EQ(r.capacity, (NodeCapacity{"4", "8Gi", "10", "100Gi"}));
}

// Every key of a resource counts, in every quota: the smallest wins.
TEST(QuotaResourcesTest, TheSmallestOfKeysAndQuotasWins) {
  const auto r = compute({quota("a", {{"requests.cpu", "10"},
                                      {"limits.cpu", "6"},
                                      {"limits.memory", "64Gi"},
                                      {"pods", "50"}}),
                          quota("b", {{"cpu", "7"},
                                      {"memory", "32Gi"},
                                      {"count/pods", "30"},
                                      {"limits.ephemeral-storage", "10Gi"},
                                      {"ephemeral-storage", "20Gi"}})});
  EXPECT_EQ(r.capacity, (NodeCapacity{"6", "32Gi", "30", "10Gi"}));
}

// status.hard is what the quota controller enforces: it wins over a spec not yet synced.
TEST(QuotaResourcesTest, StatusHardWinsOverSpecHard) {
  const auto r = compute({quota("q", {{"cpu", "4"}}, {}, json::object{{"cpu", "6"}})});
  EXPECT_EQ(r.capacity.cpu, "6");
}

// status.used counts every pod in the namespace: what other nodes (and anyone else) use is out
// of this node's reach, what it runs itself is not.
TEST(QuotaResourcesTest, OthersUsageLowersAllocatableOwnDoesNot) {
  const auto r = compute({quota("q", {{"cpu", "10"}, {"memory", "16Gi"}, {"pods", "20"}},
                                {{"cpu", "4"}, {"memory", "6Gi"}, {"pods", "5"}})},
                         own("1", "2Gi", 2));
  EXPECT_EQ(r.capacity.cpu, "10");
  EXPECT_EQ(r.allocatable.cpu, "7");  // others use 3
  EXPECT_EQ(r.capacity.memory, "16Gi");
  EXPECT_EQ(r.allocatable.memory, "12Gi");  // others use 4Gi
  EXPECT_EQ(r.allocatable.pods, "17");      // others run 3
  EXPECT_EQ(r.allocatable.ephemeralStorage, "20Ti");
}

TEST(QuotaResourcesTest, FractionsComeOutInTheApisForm) {
  const auto r = compute({quota("q", {{"cpu", "10"}}, {{"cpu", "2250m"}})}, own("500m", "0", 1));
  EXPECT_EQ(r.allocatable.cpu, "8250m");
}

// A limits key is measured against the pods' limits.
TEST(QuotaResourcesTest, LimitsKeysCountOwnLimits) {
  const auto r =
      compute({quota("q", {{"limits.cpu", "10"}}, {{"limits.cpu", "6"}})}, own("1", "0", 1, "2"));
  EXPECT_EQ(r.allocatable.cpu, "6");  // others' limits: 6 - 2
}

TEST(QuotaResourcesTest, SeveralQuotasEachWithTheirUsage) {
  const auto r = compute({quota("a", {{"cpu", "10"}}, {{"cpu", "9"}}),  // others: 8 -> 2 left
                          quota("b", {{"cpu", "4"}}, {{"cpu", "1"}})},  // others: 0 -> 4 left
                         own("1", "0", 1));
  EXPECT_EQ(r.capacity.cpu, "4");
  EXPECT_EQ(r.allocatable.cpu, "2");
}

// Others use more than the quota holds (it was lowered under them): nothing is left, never less.
TEST(QuotaResourcesTest, AllocatableNeverGoesNegative) {
  const auto r =
      compute({quota("q", {{"cpu", "4"}, {"pods", "3"}}, {{"cpu", "6"}, {"pods", "5"}})});
  EXPECT_EQ(r.allocatable.cpu, "0");
  EXPECT_EQ(r.allocatable.pods, "0");
  EXPECT_EQ(r.capacity.cpu, "4");
}

// A quota lowered under what this node's own pods take: allocatable keeps what they use (the
// node is not overcommitted), and capacity holds allocatable.
TEST(QuotaResourcesTest, AllocatableNeverBelowOwnPods) {
  const auto r = compute({quota("q", {{"cpu", "4"}, {"pods", "2"}}, {{"cpu", "6"}, {"pods", "4"}})},
                         own("5", "0", 3));
  EXPECT_EQ(r.allocatable.cpu, "5");
  EXPECT_EQ(r.capacity.cpu, "5");
  EXPECT_EQ(r.allocatable.pods, "3");
  EXPECT_EQ(r.capacity.pods, "3");
}

// A used value that lags behind own pods (the quota's status not yet updated) is no negative
// usage of others.
TEST(QuotaResourcesTest, OwnPodsAheadOfTheQuotasUsedCountNoOthers) {
  const auto r = compute({quota("q", {{"cpu", "10"}}, {{"cpu", "1"}})}, own("3", "0", 3));
  EXPECT_EQ(r.allocatable.cpu, "10");
}

TEST(QuotaResourcesTest, MalformedValuesAreLeftOutAndReported) {
  std::vector<std::string> ignored;
  const auto r = compute({quota("q", {{"cpu", "lots"}, {"memory", "4Gi"}, {"pods", json::array{1}}},
                                {{"memory", "much"}})},
                         {}, &ignored);
  EXPECT_EQ(r.capacity.cpu, "2000");  // cpu left out: the cap
  EXPECT_EQ(r.capacity.memory, "4Gi");
  EXPECT_EQ(r.allocatable.memory, "4Gi");  // used unreadable: counted as 0
  EXPECT_EQ(r.capacity.pods, "10000");
  ASSERT_EQ(ignored.size(), 3U);
  EXPECT_EQ(ignored[0], R"(quota q: hard cpu "lots" is not a quantity: not counted)");
  EXPECT_EQ(ignored[1], R"(quota q: used memory "much" is not a quantity: counted as 0)");
  EXPECT_EQ(ignored[2], R"(quota q: hard pods [1] is not a quantity: not counted)");
}

TEST(QuotaResourcesTest, AQuotaWithoutHardChangesNothing) {
  json::value q = quota("q", {});
  q.as_object()["spec"].as_object().erase("hard");
  const auto r = compute({q});
  EXPECT_EQ(r.capacity, NodeCapacity{});
  EXPECT_EQ(r.allocatable, NodeCapacity{});
}

// A scoped quota counts only some pods (BestEffort, a priority class, ...): it says nothing about
// what the node as a whole can get.
TEST(QuotaResourcesTest, ScopedQuotasAreLeftOut) {
  std::vector<std::string> ignored;
  json::value a = quota("best-effort", {{"pods", "1"}});
  a.as_object()["spec"].as_object()["scopes"] = json::array{"BestEffort"};
  json::value b = quota("high", {{"cpu", "1"}});
  b.as_object()["spec"].as_object()["scopeSelector"] = json::object{
      {"matchExpressions",
       json::array{json::object{
           {"scopeName", "PriorityClass"}, {"operator", "In"}, {"values", json::array{"high"}}}}}};
  const auto r = compute({a, b}, {}, &ignored);
  EXPECT_EQ(r.capacity, NodeCapacity{});
  EXPECT_EQ(ignored.size(), 2U);
}

TEST(QuotaResourcesTest, PodUsageAsTheQuotaCountsIt) {
  const json::value pod = json::parse(R"({
    "spec": {
      "containers": [
        {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                    "limits": {"cpu": "1", "memory": "1Gi",
                                               "ephemeral-storage": "1Gi"}}},
        {"name": "b", "resources": {"requests": {"cpu": "250m", "ephemeral-storage": "2Gi"}}}
      ],
      "initContainers": [
        {"name": "i", "resources": {"requests": {"cpu": "2", "memory": "512Mi"}}}
      ],
      "overhead": {"cpu": "100m"}
    },
    "status": {"phase": "Running"}
  })");
  const PodUsage u = podUsage(pod);
  EXPECT_EQ(u.requests[0].toString(), "2100m");  // the init container's 2 + overhead
  EXPECT_EQ(u.requests[1].toString(), "1Gi");    // the app containers' sum
  EXPECT_EQ(u.requests[2].toString(), "1");
  EXPECT_EQ(u.requests[3].toString(), "2Gi");
  EXPECT_EQ(u.limits[0].toString(), "1100m");
  EXPECT_EQ(u.limits[3].toString(), "1Gi");

  json::value done = pod;
  done.as_object()["status"].as_object()["phase"] = "Succeeded";
  EXPECT_EQ(podUsage(done), PodUsage{});
  done.as_object()["status"].as_object()["phase"] = "Failed";
  EXPECT_EQ(podUsage(done), PodUsage{});

  PodUsage sum;
  sum += u;
  sum += u;
  sum -= u;
  EXPECT_EQ(sum, u);
}

}  // namespace
}  // namespace burstlet::provider::cci
