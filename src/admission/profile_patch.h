// The patches of pods a BurstProfile places: at admission (profilePatch: the placement of the
// pod's slot, the profile and slot labels, the admission uid, the capacity gate, the deletion
// costs of the profile's scale-down order) and when a waiting pod may burst (grantPatch).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <string_view>

#include "admission/placement.h"
#include "admission/profile.h"
#include "admission/profile_ledger.h"

namespace burstlet::admission {

inline constexpr std::string_view kDeletionCostAnnotation =
    "controller.kubernetes.io/pod-deletion-cost";
// The deletion cost burstlet gives the pod once it runs on a virtual node (pod controller).
inline constexpr std::string_view kBurstCostAnnotation = "burstlet.io/burst-deletion-cost";

// The operations for `pod`, which `choice` (by a profile, strategy not off) places through
// `profile` in `slot`, admitted under `admissionUid`:
//   local   the strategy's placement
//   capped  no placement yet (the rule annotation only)
//   burst   enforce's placement, the rule naming local.maxNum when the strategy was not enforce
//   gated   as burst, with the scheduling gate kCapacityGate
// plus kProfileLabel, kSlotLabel, kAdmissionAnnotation, and the deletion costs: the pod's
// (unless it has one) from local.scaleDownPriority, or burst's for burst slots, and
// kBurstCostAnnotation from burst.scaleDownPriority (cost = -priority).
boost::json::array profilePatch(const boost::json::value& pod, const Choice& choice,
                                const BurstProfile& profile, Slot slot,
                                std::string_view admissionUid, const PlacementOptions& options);

// The operations that let `grant`'s pod burst: remove the capacity gate (checked by name), or
// add the virtual node's NoSchedule toleration and set the slot label to burst (checked to be
// capped). Both test the pod's uid first, so a pod recreated under the name is left alone.
boost::json::array grantPatch(const Grant& grant, const PlacementOptions& options);

}  // namespace burstlet::admission
