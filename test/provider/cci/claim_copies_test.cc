// ClaimCopies, through the provider: SFS claims read, and their backend pairs made.
#include <gtest/gtest.h>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

// A claim whose storage class cannot be read yet is retried, never refused for good.
TEST(ClaimCopiesTest, UnknownStorageClassIsRetriedNotRefused) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.claims["app/data"] =
      json::value{{"metadata", {{"namespace", "app"}, {"name", "data"}, {"uid", "pvc-1"}}},
                  {"spec", {{"storageClassName", "csi-nas"}}}};
  auto pod = clusterPod("web", "u1");
  pod.as_object()["spec"].as_object()["volumes"] = json::array{
      json::object{{"name", "d"}, {"persistentVolumeClaim", json::object{{"claimName", "data"}}}}};
  const auto writesBefore = h.api.writes();
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().toString();
  EXPECT_EQ(s.error().reason, "StorageClassNotFound");
  EXPECT_EQ(h.api.writes(), writesBefore);
}

// A claim copy deleted (by the sweep) while its Retain volume stays Released: a new pod for the
// same claim makes the claim copy again and hands it the volume (the old binding cleared), so
// the PV controller binds them instead of leaving the new claim Pending for ever.
TEST(ClaimCopiesTest, ReleasedVolumeIsHandedToTheNewClaimCopy) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  ASSERT_TRUE(h.createPod(claimPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  const std::string pvName = backendVolumeName(h.objects);
  ASSERT_TRUE(h.api.get(volumes(), pvName).has_value()) << pvName;
  ASSERT_EQ(h.api.names(claims()).size(), 1u);
  const std::string claimCopy = h.api.names(claims())[0];
  const std::string oldClaimUid = stringAt(*h.api.get(claims(), claimCopy), {"metadata", "uid"});

  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 0).ok());
  ASSERT_TRUE(h.api.remove(claims(), claimCopy));
  releaseVolume(h, pvName, oldClaimUid);
  ASSERT_TRUE(h.settle());

  const auto s = h.createPod(claimPod("web2", "u2"));
  ASSERT_TRUE(s.ok()) << errorText(s);
  const auto pv = *h.api.get(volumes(), pvName);
  EXPECT_EQ(stringAt(pv, {"spec", "claimRef", "uid"}), "") << json::serialize(pv);
  EXPECT_EQ(stringAt(pv, {"spec", "claimRef", "resourceVersion"}), "");
  EXPECT_EQ(stringAt(pv, {"spec", "claimRef", "name"}), claimCopy);
  EXPECT_EQ(stringAt(pv, {"spec", "claimRef", "namespace"}), kNs);
  EXPECT_EQ(stringAt(pv, {"spec", "csi", "volumeHandle"}), "h1");
  ASSERT_TRUE(h.api.get(claims(), claimCopy).has_value());
  EXPECT_NE(stringAt(*h.api.get(claims(), claimCopy), {"metadata", "uid"}), oldClaimUid);
  EXPECT_TRUE(h.backendPod("app", "web2").has_value());
}

// A volume bound to the claim copy that exists now (made by another create a moment ago, not yet
// in the informer) is not touched.
TEST(ClaimCopiesTest, VolumeBoundToTheLiveClaimCopyIsLeftAlone) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(claimPod("web", "u1")).ok());
  const std::string pvName = backendVolumeName(h.objects);
  const std::string claimCopy = h.api.names(claims())[0];
  releaseVolume(h, pvName, stringAt(*h.api.get(claims(), claimCopy), {"metadata", "uid"}));
  const int patches = h.api.count(Verb::patch, volumes());
  ASSERT_TRUE(h.createPod(claimPod("web2", "u2")).ok());
  EXPECT_EQ(h.api.count(Verb::patch, volumes()), patches);
  h.api.holdWatches(false);
}

// A volume of that name that this node did not make is never taken over.
TEST(ClaimCopiesTest, VolumeOfThatNameNotOursIsRefused) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  const std::string pvName = backendVolumeName(h.objects);
  h.api.put(volumes(), json::value{{"metadata", {{"name", pvName}}},
                                   {"spec", {{"claimRef", {{"name", "someone"}, {"uid", "x"}}}}}});
  const auto before = *h.api.get(volumes(), pvName);
  const auto s = h.createPod(claimPod("web", "u1"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "VolumeNotOwned") << errorText(s);
  EXPECT_NE(s.error().code, ErrorCode::kInvalid);  // the operator may remove it: retried
  EXPECT_NE(s.error().message.find(pvName), std::string::npos) << s.error().message;
  EXPECT_EQ(*h.api.get(volumes(), pvName), before);
  EXPECT_TRUE(h.api.names(claims()).empty());
  EXPECT_FALSE(h.backendPod("app", "web").has_value());
}

}  // namespace
}  // namespace burstlet::provider::cci
