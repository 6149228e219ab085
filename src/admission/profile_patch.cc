#include "admission/profile_patch.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "admission/json_patch.h"
#include "kube/json_path.h"

namespace burstlet::admission {

namespace json = boost::json;

namespace {

// The deletion cost burst pods get when the profile orders nothing for them (the pod
// controller's default).
constexpr int64_t kDefaultBurstPriority = 100;

bool hasMap(const json::value& pod, std::string_view map) {
  const auto* m = kube::at(pod, {"metadata", map});
  return m != nullptr && m->is_object();
}

json::object test(std::string path, json::value value) {
  return json::object{{"op", "test"}, {"path", std::move(path)}, {"value", std::move(value)}};
}

}  // namespace

json::array profilePatch(const json::value& pod, const Choice& choice, const BurstProfile& profile,
                         Slot slot, std::string_view admissionUid,
                         const PlacementOptions& options) {
  Choice placed = choice;
  switch (slot) {
    case Slot::kLocal:
      break;
    case Slot::kCapped:
      placed.strategy = Strategy::kOff;
      placed.rule = fmt::format("{} (burst.maxNum {}: bursts when no ordinary node fits)",
                                choice.rule, profile.burstMax.value_or(0));
      break;
    case Slot::kBurst:
    case Slot::kBurstGated:
      if (choice.strategy != Strategy::kEnforce) {
        placed.rule =
            fmt::format("{} (local.maxNum {} reached)", choice.rule, profile.localMax.value_or(0));
      }
      placed.strategy = Strategy::kEnforce;
      if (slot == Slot::kBurstGated) {
        placed.rule += fmt::format(" (waits for burst.maxNum {})", profile.burstMax.value_or(0));
      }
      break;
  }
  json::array ops = placementPatch(pod, placed, options);
  bool annotations = hasMap(pod, "annotations") || placed.strategy != Strategy::kOff;
  bool labels = hasMap(pod, "labels");
  if (placed.strategy == Strategy::kOff) {
    setMetadata(ops, "annotations", annotations, kRuleAnnotation, placed.rule);
  }
  setMetadata(ops, "labels", labels, kProfileLabel, profile.name);
  setMetadata(ops, "labels", labels, kSlotLabel, slotLabel(slot));
  setMetadata(ops, "annotations", annotations, kAdmissionAnnotation, admissionUid);
  if (slot == Slot::kBurstGated) {
    appendTo(ops, kube::at(pod, {"spec"}), "/spec", "schedulingGates",
             json::object{{"name", kCapacityGate}});
  }
  if (profile.localScaleDownPriority || profile.burstScaleDownPriority) {
    const bool burst = slot == Slot::kBurst || slot == Slot::kBurstGated;
    if (!burst && profile.localScaleDownPriority &&
        kube::at(pod, {"metadata", "annotations", kDeletionCostAnnotation}) == nullptr) {
      setMetadata(ops, "annotations", annotations, kDeletionCostAnnotation,
                  fmt::format("{}", -*profile.localScaleDownPriority));
    }
    setMetadata(ops, "annotations", annotations, kBurstCostAnnotation,
                fmt::format("{}", -profile.burstScaleDownPriority.value_or(kDefaultBurstPriority)));
  }
  return ops;
}

json::array grantPatch(const Grant& grant, const PlacementOptions& options) {
  json::array ops{test("/metadata/uid", json::string(grant.uid))};
  if (grant.ungate) {
    const std::string at = fmt::format("/spec/schedulingGates/{}", grant.gateIndex);
    ops.push_back(test(at + "/name", json::string(kCapacityGate)));
    ops.push_back(json::object{{"op", "remove"}, {"path", at}});
    return ops;
  }
  const std::string slot = "/metadata/labels/" + pointerToken(kSlotLabel);
  ops.push_back(test(slot, json::string(slotLabel(Slot::kCapped))));
  json::value toleration =
      json::object{{"key", options.taintKey}, {"operator", "Exists"}, {"effect", "NoSchedule"}};
  if (grant.hasTolerations) {
    ops.push_back(add("/spec/tolerations/-", std::move(toleration)));
  } else {
    ops.push_back(add("/spec/tolerations", json::array{std::move(toleration)}));
  }
  ops.push_back(json::object{
      {"op", "replace"}, {"path", slot}, {"value", json::string(slotLabel(Slot::kBurst))}});
  return ops;
}

}  // namespace burstlet::admission
