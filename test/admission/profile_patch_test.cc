// profilePatch() per slot and pod shape, applied to the pod (labels, annotations, gate,
// tolerations, node selector, deletion costs), and grantPatch() applied to a held pod, also
// when the pod under that name is another one.
#include "admission/profile_patch.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "kube/json_path.h"
#include "mocks/json_patch_apply.h"

namespace burstlet::admission {
namespace {

namespace json = boost::json;
using kube::stringAt;

const PlacementOptions kOptions;

BurstProfile profile() {
  BurstProfile p;
  p.ns = "app";
  p.name = "web";
  p.strategy = Strategy::kAuto;
  p.localMax = 3;
  p.burstMax = 2;
  return p;
}

json::value bare() {
  return json::object{{"metadata", json::object{{"name", "p"}, {"uid", "u-1"}}},
                      {"spec", json::object{{"containers", json::array{}}}}};
}

json::value full() {
  return json::parse(R"({"metadata": {"name": "p", "uid": "u-1",
      "labels": {"app": "web"}, "annotations": {"keep": "me"}},
    "spec": {"containers": [], "tolerations": [{"key": "x", "operator": "Exists"}],
             "schedulingGates": [{"name": "other"}]}})");
}

json::value applied(const json::value& pod, Slot slot, const BurstProfile& p = profile(),
                    Strategy strategy = Strategy::kAuto) {
  const Choice choice{strategy, "profile web", true};
  auto r = testing::applyJsonPatch(pod, profilePatch(pod, choice, p, slot, "adm-1", kOptions));
  EXPECT_EQ(r.error, "");
  return std::move(r.doc);
}

bool tolerates(const json::value& pod, std::string_view key) {
  const auto* list = kube::at(pod, {"spec", "tolerations"});
  if (list == nullptr) {
    return false;
  }
  for (const auto& t : list->as_array()) {
    if (stringAt(t, {"key"}) == key) {
      return true;
    }
  }
  return false;
}

bool gated(const json::value& pod) {
  const auto* gates = kube::at(pod, {"spec", "schedulingGates"});
  if (gates == nullptr) {
    return false;
  }
  for (const auto& g : gates->as_array()) {
    if (stringAt(g, {"name"}) == kCapacityGate) {
      return true;
    }
  }
  return false;
}

TEST(ProfilePatchTest, EverySlotOnBothPodShapes) {
  for (const auto& pod : {bare(), full()}) {
    for (Slot slot : {Slot::kLocal, Slot::kCapped, Slot::kBurst, Slot::kBurstGated}) {
      SCOPED_TRACE(json::serialize(pod) + " slot " + std::string(slotLabel(slot)));
      const json::value out = applied(pod, slot);
      EXPECT_EQ(stringAt(out, {"metadata", "labels", kProfileLabel}), "web");
      EXPECT_EQ(stringAt(out, {"metadata", "labels", kSlotLabel}), slotLabel(slot));
      EXPECT_EQ(stringAt(out, {"metadata", "annotations", kAdmissionAnnotation}), "adm-1");
      const std::string rule = stringAt(out, {"metadata", "annotations", kRuleAnnotation});
      EXPECT_NE(rule.find("profile web"), std::string::npos);
      const bool burst = slot == Slot::kBurst || slot == Slot::kBurstGated;
      // Capped pods get no toleration until granted; local ones auto's; burst ones enforce's.
      EXPECT_EQ(tolerates(out, kOptions.taintKey), slot != Slot::kCapped);
      EXPECT_EQ(tolerates(out, kOptions.preferenceTaintKey), burst);
      EXPECT_EQ(stringAt(out, {"spec", "nodeSelector", "type"}), burst ? "virtual-kubelet" : "");
      EXPECT_EQ(gated(out), slot == Slot::kBurstGated);
      if (burst) {
        EXPECT_NE(rule.find("local.maxNum 3 reached"), std::string::npos) << rule;
      }
      if (slot == Slot::kCapped) {
        EXPECT_NE(rule.find("burst.maxNum 2"), std::string::npos) << rule;
      }
      if (slot == Slot::kBurstGated) {
        EXPECT_NE(rule.find("waits for burst.maxNum 2"), std::string::npos) << rule;
      }
      // What the pod had stays.
      if (kube::at(pod, {"metadata", "labels"}) != nullptr) {
        EXPECT_EQ(stringAt(out, {"metadata", "labels", "app"}), "web");
        EXPECT_EQ(stringAt(out, {"metadata", "annotations", "keep"}), "me");
        EXPECT_TRUE(tolerates(out, "x"));
        EXPECT_EQ(stringAt(out.at("spec").at("schedulingGates").as_array()[0], {"name"}), "other");
      }
      // No scale-down order in the profile: no deletion costs.
      EXPECT_EQ(kube::at(out, {"metadata", "annotations", kDeletionCostAnnotation}), nullptr);
      EXPECT_EQ(kube::at(out, {"metadata", "annotations", kBurstCostAnnotation}), nullptr);
    }
  }
}

TEST(ProfilePatchTest, EnforceProfileRuleDoesNotBlameLocalMaxNum) {
  auto p = profile();
  p.strategy = Strategy::kEnforce;
  const json::value out = applied(bare(), Slot::kBurst, p, Strategy::kEnforce);
  EXPECT_EQ(stringAt(out, {"metadata", "annotations", kRuleAnnotation}), "profile web");
}

TEST(ProfilePatchTest, ScaleDownOrderBecomesDeletionCosts) {
  auto p = profile();
  p.localScaleDownPriority = 5;
  p.burstScaleDownPriority = 20;
  json::value local = applied(bare(), Slot::kLocal, p);
  EXPECT_EQ(stringAt(local, {"metadata", "annotations", kDeletionCostAnnotation}), "-5");
  EXPECT_EQ(stringAt(local, {"metadata", "annotations", kBurstCostAnnotation}), "-20");
  // A burst pod gets its cost from the pod controller once it runs on the virtual node.
  json::value burst = applied(bare(), Slot::kBurst, p);
  EXPECT_EQ(kube::at(burst, {"metadata", "annotations", kDeletionCostAnnotation}), nullptr);
  EXPECT_EQ(stringAt(burst, {"metadata", "annotations", kBurstCostAnnotation}), "-20");
  // Only a local priority: burst pods keep the default order (before local ones).
  p.burstScaleDownPriority.reset();
  burst = applied(bare(), Slot::kBurst, p);
  EXPECT_EQ(stringAt(burst, {"metadata", "annotations", kBurstCostAnnotation}), "-100");
  // A cost the pod's author set is kept.
  json::value own = bare();
  own.as_object()["metadata"].as_object()["annotations"] =
      json::object{{kDeletionCostAnnotation, "7"}};
  local = applied(own, Slot::kLocal, p);
  EXPECT_EQ(stringAt(local, {"metadata", "annotations", kDeletionCostAnnotation}), "7");
}

json::value heldPod(bool gate, bool withTolerations) {
  json::value pod = json::parse(R"({"metadata": {"name": "p", "uid": "u-1",
      "labels": {"burstlet.io/profile": "web", "burstlet.io/burst-slot": "capped"}},
      "spec": {"containers": []}})");
  auto& spec = pod.as_object()["spec"].as_object();
  if (gate) {
    pod.as_object()["metadata"].as_object()["labels"].as_object()[kSlotLabel] = "burst";
    spec["schedulingGates"] =
        json::array{json::object{{"name", "other"}}, json::object{{"name", kCapacityGate}}};
  }
  if (withTolerations) {
    spec["tolerations"] = json::array{json::object{{"key", "x"}, {"operator", "Exists"}}};
  }
  return pod;
}

TEST(GrantPatchTest, UngateRemovesOnlyTheCapacityGate) {
  const json::value pod = heldPod(true, false);
  const Grant g{"app", "p", "u-1", true, 1, false};
  auto r = testing::applyJsonPatch(pod, grantPatch(g, kOptions));
  ASSERT_EQ(r.error, "");
  const auto& gates = r.doc.at("spec").at("schedulingGates").as_array();
  ASSERT_EQ(gates.size(), 1U);
  EXPECT_EQ(stringAt(gates[0], {"name"}), "other");

  // The gate moved (another controller removed one before it): the test fails, nothing changes.
  const Grant stale{"app", "p", "u-1", true, 0, false};
  EXPECT_NE(testing::applyJsonPatch(pod, grantPatch(stale, kOptions)).error, "");
}

TEST(GrantPatchTest, TolerateAddsTheTolerationAndMovesTheSlot) {
  for (bool withTolerations : {false, true}) {
    const json::value pod = heldPod(false, withTolerations);
    const Grant g{"app", "p", "u-1", false, -1, withTolerations};
    auto r = testing::applyJsonPatch(pod, grantPatch(g, kOptions));
    ASSERT_EQ(r.error, "");
    EXPECT_TRUE(tolerates(r.doc, kOptions.taintKey));
    EXPECT_EQ(tolerates(r.doc, "x"), withTolerations);
    EXPECT_EQ(stringAt(r.doc, {"metadata", "labels", kSlotLabel}), "burst");
  }
}

TEST(GrantPatchTest, AnotherPodUnderTheNameIsLeftAlone) {
  const json::value pod = heldPod(false, false);
  const Grant g{"app", "p", "u-other", false, -1, false};
  EXPECT_NE(testing::applyJsonPatch(pod, grantPatch(g, kOptions)).error, "");
  // Already granted (slot burst): the test on the slot fails too.
  json::value granted = heldPod(false, false);
  granted.as_object()["metadata"].as_object()["labels"].as_object()[kSlotLabel] = "burst";
  const Grant again{"app", "p", "u-1", false, -1, false};
  EXPECT_NE(testing::applyJsonPatch(granted, grantPatch(again, kOptions)).error, "");
}

}  // namespace
}  // namespace burstlet::admission
