#include "provider/cci/claims.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "provider/cci/cci_provider.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

const TranslateOptions kOptions{"cce-burst-c1", "node-a", ""};

// The volume node-a wants for claim shop/data bound to cluster volume pv1.
json::value wanted() {
  const auto pvc = json::parse(R"({"metadata":{"namespace":"shop","name":"data","uid":"u-pvc"},
      "spec":{"volumeName":"pv1"}})");
  const auto pv = json::parse(R"({"metadata":{"name":"pv1","uid":"u-pv"},
      "spec":{"capacity":{"storage":"1Gi"},"csi":{"driver":"nas.csi.everest.io","volumeHandle":"fs-1"}}})");
  auto out = toBackendPersistentVolume(pvc, pv, kOptions);
  EXPECT_TRUE(out.ok());
  return out.ok() ? *out : json::value();
}

// What the backend holds: `want` as created (our cluster label added), then changed by `edit`.
json::value found(const json::value& want) {
  json::value pv = want;
  pv.at("metadata").at("labels").as_object()[kClusterIdLabel] = "c1";
  pv.at("metadata").as_object()["resourceVersion"] = "41";
  return pv;
}

ExistingVolume::Verdict verdictOf(const json::value& pv, std::string_view liveClaimUid = "") {
  return checkExistingVolume(pv, wanted(), "c1", liveClaimUid).verdict;
}

TEST(ExistingVolumeTest, OursAndUnboundOrBoundToTheLiveClaimIsUsed) {
  auto pv = found(wanted());
  EXPECT_EQ(verdictOf(pv), ExistingVolume::Verdict::kUse);
  pv.at("spec").at("claimRef").as_object()["uid"] = "u-live";
  EXPECT_EQ(verdictOf(pv, "u-live"), ExistingVolume::Verdict::kUse);
}

TEST(ExistingVolumeTest, BindingToAnEarlierClaimCopyIsStale) {
  auto pv = found(wanted());
  pv.at("spec").at("claimRef").as_object()["uid"] = "u-old";
  pv.as_object()["status"] = json::object{{"phase", "Released"}};
  EXPECT_EQ(verdictOf(pv), ExistingVolume::Verdict::kRebind);           // the claim copy is gone
  EXPECT_EQ(verdictOf(pv, "u-new"), ExistingVolume::Verdict::kRebind);  // made again since
  // Bound to another claim by name (not burstlet's doing): handed back to ours as well.
  pv = found(wanted());
  pv.at("spec").at("claimRef").as_object()["name"] = "other";
  EXPECT_EQ(verdictOf(pv), ExistingVolume::Verdict::kRebind);
}

TEST(ExistingVolumeTest, AnotherNodesClustersOrNobodysVolumeIsNotOurs) {
  for (const auto& [key, value] :
       {std::pair{kManagedByLabel, "someone"}, std::pair{kClusterIdLabel, "c2"},
        std::pair{kNodeLabel, "node-b"}}) {
    auto pv = found(wanted());
    pv.at("metadata").at("labels").as_object()[key] = value;
    const auto check = checkExistingVolume(pv, wanted(), "c1", "");
    EXPECT_EQ(check.verdict, ExistingVolume::Verdict::kNotOurs) << key;
    EXPECT_EQ(check.reason, "VolumeNotOwned");
    EXPECT_NE(check.message.find(wanted().at("metadata").at("name").as_string().c_str()),
              std::string::npos)
        << check.message;
  }
  EXPECT_EQ(verdictOf(json::parse(R"({"metadata":{"name":"x"}})")),
            ExistingVolume::Verdict::kNotOurs);
}

TEST(ExistingVolumeTest, VolumeOfAnEarlierClusterVolumeIsReplaced) {
  auto pv = found(wanted());
  pv.at("metadata").at("annotations").as_object()[kSourceUidAnnotation] = "u-pv-before";
  EXPECT_EQ(verdictOf(pv), ExistingVolume::Verdict::kReplaced);
  pv = found(wanted());
  pv.at("spec").at("csi").as_object()["volumeHandle"] = "fs-0";
  const auto check = checkExistingVolume(pv, wanted(), "c1", "");
  EXPECT_EQ(check.verdict, ExistingVolume::Verdict::kReplaced);
  EXPECT_EQ(check.reason, "VolumeReplaced");
}

TEST(ExistingVolumeTest, RebindPatchClearsTheBindingUnderAPrecondition) {
  auto pv = found(wanted());
  pv.at("spec").at("claimRef").as_object()["uid"] = "u-old";
  pv.at("spec").at("claimRef").as_object()["resourceVersion"] = "7";
  const auto patch = json::parse(rebindPatch(pv, wanted()));
  EXPECT_EQ(patch.at("metadata").at("resourceVersion"), "41");
  const auto& ref = patch.at("spec").at("claimRef").as_object();
  EXPECT_TRUE(ref.at("uid").is_null());
  EXPECT_TRUE(ref.at("resourceVersion").is_null());
  EXPECT_EQ(ref.at("name"), wanted().at("spec").at("claimRef").at("name"));
  EXPECT_EQ(ref.at("namespace"), "cce-burst-c1");
}

}  // namespace
}  // namespace burstlet::provider::cci
