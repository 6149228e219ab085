// CopySweep, through the provider: unreferenced copies and volumes deleted, never one in use.
#include <gtest/gtest.h>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

TEST(CopySweepTest, SweepDeletesUnreferencedCopiesOnSecondPass) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/a"] = configMap("a", "1");
  h.objects.configMaps["app/b"] = configMap("b", "2");
  auto podA = clusterPod("pa", "ua");
  addConfigMapVolume(podA, "a");
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "b");
  ASSERT_TRUE(h.createPod(podA).ok());
  ASSERT_TRUE(h.createPod(podB).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.deletePod(PodRef{"app", "pa", "ua"}, 0).ok());
  ASSERT_TRUE(h.settle());

  ASSERT_EQ(h.sweeps(), 0);
  ASSERT_TRUE(h.sweepPass(1));
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 0);  // first pass only marks
  EXPECT_TRUE(h.copy("a").has_value());

  ASSERT_TRUE(h.sweepPass(2));
  EXPECT_FALSE(h.copy("a").has_value());
  EXPECT_TRUE(h.copy("b").has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 1);
  EXPECT_EQ(h.provider->stats().copyDeletes.load(), 1u);
  ASSERT_TRUE(h.settle());

  ASSERT_TRUE(h.sweepPass(3));
  EXPECT_TRUE(h.copy("b").has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 1);
}

TEST(CopySweepTest, SweepForgetsMarkWhenCopyIsUsedAgain) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(leaveUnreferencedCopy(h, "a"));

  ASSERT_TRUE(h.sweepPass(1));  // marked

  // A new pod uses the copy between the passes.
  auto podC = clusterPod("pc", "uc");
  addConfigMapVolume(podC, "a");
  ASSERT_TRUE(h.createPod(podC).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.sweepPass(2));
  EXPECT_TRUE(h.copy("a").has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 0);
}

// The sweep deletes a copy; before its informer shows the delete, a new pod needs that copy:
// it is made again, not trusted from the stale cache.
TEST(CopySweepTest, CopyDeletedBySweepIsMadeAgainForANewPod) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(leaveUnreferencedCopy(h, "a"));
  ASSERT_TRUE(h.sweepPass(1));
  h.api.holdWatches(true);  // the informer lags behind the sweep's delete
  ASSERT_TRUE(h.sweepPass(2));
  ASSERT_FALSE(h.copy("a").has_value());
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "a");
  ASSERT_TRUE(h.createPod(podB).ok());
  EXPECT_TRUE(h.copy("a").has_value());
  h.api.holdWatches(false);
  ASSERT_TRUE(h.settle());
  EXPECT_TRUE(h.backendPod("app", "pb").has_value());
  EXPECT_TRUE(h.copy("a").has_value());
}

// The backend volume of a claim made a moment ago survives a sweep that runs before the claim
// shows in the informer.
TEST(CopySweepTest, SweepKeepsTheVolumeOfAFreshClaim) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  const auto pod = claimPod("web", "u1");
  const std::string pvs = resources::kPersistentVolumes.path("");
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_EQ(h.api.names(pvs).size(), 1u);
  for (int pass = 1; pass <= 2; ++pass) {
    ASSERT_TRUE(h.sweepPass(pass));
  }
  h.api.holdWatches(false);
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.api.names(pvs).size(), 1u) << "volume deleted while its claim and pod exist";
  EXPECT_EQ(h.api.names(resources::kPersistentVolumeClaims.path(kNs)).size(), 1u);
}

// The sweep decided to delete an unused volume and is on its way (its delete is retried); a
// create that needs the volume meanwhile waits for that delete and makes the volume again,
// instead of binding a claim copy to a volume about to vanish.
TEST(CopySweepTest, SweepNeverDeletesAVolumeACreateHolds) {
  Harness h(defaultOptions(), std::chrono::milliseconds(200));
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  ASSERT_TRUE(h.createPod(claimPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  const std::string pvName = backendVolumeName(h.objects);
  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 0).ok());
  ASSERT_TRUE(h.api.remove(claims(), h.api.names(claims())[0]));
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.sweepPass(1));  // marks the volume
  // The second pass deletes it; its first DELETE answers 503, so it waits before trying again.
  h.api.failNext(Verb::delete_, resources::kPersistentVolumes.path("", pvName), 1, 503);
  ASSERT_TRUE(h.sweepPass(2));
  ASSERT_TRUE(h.api.get(volumes(), pvName).has_value());
  const auto s = h.createPod(claimPod("web2", "u2"));
  ASSERT_TRUE(s.ok()) << errorText(s);
  h.runFor(std::chrono::milliseconds(800));  // the sweep's retry, if it is still to come
  EXPECT_TRUE(h.api.get(volumes(), pvName).has_value()) << "the claim copy's volume was deleted";
  EXPECT_EQ(h.api.names(claims()).size(), 1u);
}

// Two virtual nodes (two burstlet processes with the same cluster id, so one backend namespace)
// whose pods mount the same ConfigMap: each node has a copy of its own, so one node's sweep never
// deletes what the other's pods mount, and an edit reaches the other node's copy too.
TEST(CopySweepTest, NodesSharingANamespaceKeepAndRefreshTheirOwnCopies) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.addNode("other-node"));
  h.objects.configMaps["app/shared"] = configMap("shared", "v1");
  auto podA = clusterPod("pa", "ua");
  addConfigMapVolume(podA, "shared");
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "shared");
  ASSERT_TRUE(h.createPod(podA).ok());
  const auto createdB = h.call(h.other->createPod(podB));
  ASSERT_TRUE(createdB.ok()) << errorText(createdB);
  ASSERT_TRUE(h.settle());
  auto backendB = h.backendPod("app", "pb");
  ASSERT_TRUE(backendB.has_value());
  // The copy node B's pod mounts.
  const std::string copyB =
      stringAt(backendB->at("spec").at("volumes").at(0), {"configMap", "name"});
  ASSERT_TRUE(h.api.get(kConfigMaps, copyB).has_value()) << copyB;

  // Node A's pod goes: A's sweeps find its own copy unused, never B's.
  ASSERT_TRUE(h.deletePod(PodRef{"app", "pa", "ua"}, 0).ok());
  ASSERT_TRUE(h.settle());
  for (int pass = 1; pass <= 3; ++pass) {
    ASSERT_TRUE(h.sweepPass(pass));
    ASSERT_TRUE(h.settle());
  }
  EXPECT_TRUE(h.api.get(kConfigMaps, copyB).has_value()) << "a sweep deleted node B's copy";
  EXPECT_FALSE(h.copy("shared").has_value()) << "node A's unused copy stayed";

  h.objects.configMaps["app/shared"] = configMap("shared", "v2");
  h.provider->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/shared"]);
  h.other->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/shared"]);
  EXPECT_TRUE(h.runUntil([&] {
    auto copy = h.api.get(kConfigMaps, copyB);
    return copy && stringAt(*copy, {"data", "key"}) == "v2";
  })) << "node B's copy was not refreshed";
}

}  // namespace
}  // namespace burstlet::provider::cci
