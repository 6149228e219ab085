// The node's resources follow the backend namespace's ResourceQuotas (BackendQuota, through the
// provider): appear, change, go; other nodes' pods on the shared namespace; quotas burstlet may
// not read.
#include "provider/cci/backend_quota.h"

#include <gtest/gtest.h>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

inline std::string quotas() { return kResourceQuotas.path(kNs); }

json::value quota(const std::string& name, json::object hard, json::object used = {}) {
  return json::object{{"apiVersion", "v1"},
                      {"kind", "ResourceQuota"},
                      {"metadata", {{"name", name}, {"namespace", kNs}}},
                      {"spec", {{"hard", std::move(hard)}}},
                      {"status", {{"used", std::move(used)}}}};
}

const NodeResources kConfigured{NodeCapacity{}, NodeCapacity{}};

std::string cpuOf(const NodeResources& r) { return r.capacity.cpu + "/" + r.allocatable.cpu; }

TEST(BackendQuotaTest, FollowsTheNamespacesQuotas) {
  Harness h;
  int changes = 0;
  h.provider->onResourcesChange([&] { ++changes; });
  ASSERT_TRUE(h.startAndSettle());
  EXPECT_EQ(h.provider->resources(), kConfigured);
  EXPECT_EQ(h.provider->capacity(), NodeCapacity{});

  h.api.put(quotas(), quota("q", {{"cpu", "8"}, {"requests.memory", "16Gi"}, {"pods", "20"}}));
  ASSERT_TRUE(h.runUntil([&] { return h.provider->resources().capacity.cpu == "8"; }));
  const auto r = h.provider->resources();
  EXPECT_EQ(r.capacity, (NodeCapacity{"8", "16Gi", "20", "20Ti"}));
  EXPECT_EQ(r.allocatable, r.capacity);
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(h.provider->capacity(), NodeCapacity{});  // the configured numbers stay as they are

  h.api.put(quotas(), quota("q", {{"cpu", "4"}}));
  ASSERT_TRUE(h.runUntil([&] { return cpuOf(h.provider->resources()) == "4/4"; }));
  EXPECT_EQ(h.provider->resources().capacity.memory, "8Ti");
  EXPECT_EQ(changes, 2);

  ASSERT_TRUE(h.api.remove(quotas(), "q"));
  ASSERT_TRUE(h.runUntil([&] { return h.provider->resources() == kConfigured; }));
  EXPECT_EQ(changes, 3);

  // A quota whose change leaves the answer as it is (a label) calls nobody.
  h.api.put(quotas(), quota("big", {{"cpu", "1M"}}));
  ASSERT_TRUE(h.settle());
  json::value labelled = quota("big", {{"cpu", "1M"}});
  labelled.as_object()["metadata"].as_object()["labels"] = json::object{{"team", "a"}};
  h.api.put(quotas(), labelled);
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.provider->resources(), kConfigured);
  EXPECT_EQ(changes, 3);
}

// Two virtual nodes share the namespace and its quota: each counts the other's pods as taken and
// its own as its own. The in-memory backend has no quota controller: the test writes status.used.
TEST(BackendQuotaTest, OtherNodesPodsLowerAllocatableOwnDoNot) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.addNode("node-b"));
  h.api.put(quotas(), quota("q", {{"cpu", "10"}, {"pods", "20"}}));
  ASSERT_TRUE(h.runUntil([&] {
    return cpuOf(h.provider->resources()) == "10/10" && cpuOf(h.other->resources()) == "10/10";
  }));

  auto a = clusterPod("a", "ua", "1");
  ASSERT_TRUE(h.createPod(a).ok());
  auto b = clusterPod("b", "ub", "3");
  b.as_object()["spec"].as_object()["nodeName"] = "node-b";
  ASSERT_TRUE(h.call(h.other->createPod(b)).ok());
  ASSERT_TRUE(h.settle());
  const auto backendA = h.backendPod("app", "a");
  const auto backendB = h.backendPod("app", "b");
  ASSERT_TRUE(backendA && backendB);
  const Quantity cpuA = podUsage(*backendA).requests[0];
  const Quantity cpuB = podUsage(*backendB).requests[0];
  ASSERT_FALSE(cpuA.isZero());
  ASSERT_FALSE(cpuB.isZero());
  // Before the quota counts them, nothing is taken by others.
  EXPECT_EQ(cpuOf(h.provider->resources()), "10/10");

  // What the quota controller writes: both nodes' pods, and a pod of someone else (1 cpu).
  const Quantity one = Quantity::fromValue(1);
  h.api.put(quotas(), quota("q", {{"cpu", "10"}, {"pods", "20"}},
                            {{"cpu", (cpuA + cpuB + one).toString()}, {"pods", "3"}}));
  const std::string wantA = (Quantity::fromValue(10) - cpuB - one).toString();
  const std::string wantB = (Quantity::fromValue(10) - cpuA - one).toString();
  ASSERT_TRUE(h.runUntil([&] {
    return cpuOf(h.provider->resources()) == "10/" + wantA &&
           cpuOf(h.other->resources()) == "10/" + wantB;
  })) << cpuOf(h.provider->resources())
      << " " << cpuOf(h.other->resources());
  EXPECT_EQ(h.provider->resources().allocatable.pods, "18");
  EXPECT_EQ(h.other->resources().allocatable.pods, "18");

  // Node a's pod goes, and the quota counts it no more: a can still get what b leaves, b gets
  // back what a's pod took.
  ASSERT_TRUE(h.deletePod(PodRef{"app", "a", "ua"}, 0).ok());
  h.api.put(quotas(), quota("q", {{"cpu", "10"}, {"pods", "20"}},
                            {{"cpu", (cpuB + one).toString()}, {"pods", "2"}}));
  ASSERT_TRUE(h.runUntil([&] { return cpuOf(h.other->resources()) == "10/9"; }))
      << cpuOf(h.other->resources());
  EXPECT_EQ(h.other->resources().allocatable.pods, "19");
  EXPECT_EQ(cpuOf(h.provider->resources()), "10/" + wantA);
  EXPECT_EQ(h.provider->resources().allocatable.pods, "18");
}

// 403 (RBAC, or CCI's permissions): said once, the configured numbers, the provider ready as
// ever; asked again after kUnreadableRetry, and followed from then on.
TEST(BackendQuotaTest, QuotasItMayNotReadFallBackToTheConfiguredNumbers) {
  Harness h;
  h.api.failNext(Verb::get, quotas(), 1, 403, "Forbidden");
  h.api.put(quotas(), quota("q", {{"cpu", "8"}}));
  h.start();
  ASSERT_TRUE(h.runUntil([&] { return h.provider->ready(); }));
  ASSERT_TRUE(h.runUntil([&] { return h.api.openWatches() == 5 && h.api.watchesIdle(); }));
  h.runFor(std::chrono::milliseconds(200));
  EXPECT_EQ(h.api.count(Verb::get, quotas()), 1);  // not tried again and again
  EXPECT_EQ(h.provider->resources(), kConfigured);
  EXPECT_TRUE(h.call(h.provider->ping()).ok());

  h.clock.advance(kUnreadableRetry);
  ASSERT_TRUE(h.runUntil([&] { return h.provider->resources().capacity.cpu == "8"; }));
  EXPECT_TRUE(h.settle());
}

// CCI answers a missing permission with its own error code: the same fallback.
TEST(BackendQuotaTest, CcisRefusalFallsBackToo) {
  Harness h(cciModeOptions());
  putCciBackend(h.api);
  h.api.failNextWithBody(Verb::get, quotas(), 1, 403,
                         json::serialize(json::object{{"kind", "Status"},
                                                      {"apiVersion", "v1"},
                                                      {"status", "Failure"},
                                                      {"code", 403},
                                                      {"reason", "Forbidden"},
                                                      {"message", "current user has no right"},
                                                      {"errorCode", "CCI.01.403104"}}));
  h.api.put(quotas(), quota("q", {{"cpu", "8"}}));
  h.start();
  ASSERT_TRUE(h.runUntil([&] { return h.provider->ready(); }));
  h.runFor(std::chrono::milliseconds(200));
  EXPECT_EQ(h.api.count(Verb::get, quotas()), 1);
  EXPECT_EQ(h.provider->resources(), kConfigured);
}

// A backend that does not answer yet is the informer's to retry (not the 5-minute wait).
TEST(BackendQuotaTest, AnUnavailableBackendIsRetriedSoon) {
  Harness h;
  h.api.failNext(Verb::get, quotas(), 1, 503);
  h.api.put(quotas(), quota("q", {{"cpu", "8"}}));
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.runUntil([&] { return h.provider->resources().capacity.cpu == "8"; }));
}

// A quota burstlet cannot make sense of is left out (and logged once), the rest still counts.
TEST(BackendQuotaTest, MalformedQuotaKeysAreLeftOut) {
  Harness h;
  h.api.put(quotas(), quota("odd", {{"cpu", "lots"}, {"memory", "4Gi"}}));
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.runUntil([&] { return h.provider->resources().capacity.memory == "4Gi"; }));
  EXPECT_EQ(h.provider->resources().capacity.cpu, "2000");
  EXPECT_TRUE(h.provider->ready());
}

// Stopping ends the quota follower with the rest, also while it waits to ask again.
TEST(BackendQuotaTest, StopEndsTheWaitForPermission) {
  Harness h;
  h.api.failNext(Verb::get, quotas(), 1, 403);
  h.start();
  ASSERT_TRUE(h.runUntil([&] { return h.provider->ready(); }));
  h.provider->stop();
  ASSERT_TRUE(h.runUntil([&] { return h.runDone; }));
  EXPECT_EQ(h.api.openWatches(), 0);
}

}  // namespace
}  // namespace burstlet::provider::cci
