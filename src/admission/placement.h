// What a strategy does to a pod at admission: JSON patch operations (RFC 6902) that let the
// scheduler place it as the strategy says, and the decision the webhook answers with.
//
// Every virtual node carries the NoSchedule taint `virtual-kubelet.io/provider` (no pod lands
// there unless it tolerates it) and the label `type=virtual-kubelet`. Per strategy the pod gets:
//   auto         the NoSchedule toleration; the virtual node's PreferNoSchedule taint
//                (`preferenceTaintKey`) stays untolerated, so the scheduler's TaintToleration
//                score ranks ordinary nodes first
//   localPrefer  as auto, and a preferred node affinity (weight 100) away from virtual nodes
//   enforce      both tolerations and the node selector type=virtual-kubelet
//   off          nothing
// and the annotation kRuleAnnotation naming the rule that placed it.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "admission/burst_policy.h"

namespace burstlet::admission {

inline constexpr std::string_view kRuleAnnotation = "burstlet.io/burst-rule";

struct PlacementOptions {
  std::string nodeLabelKey = "type";
  std::string nodeLabelValue = "virtual-kubelet";
  std::string taintKey = "virtual-kubelet.io/provider";
  std::string preferenceTaintKey = "virtual-kubelet.io/burst-preference";
};

// The operations that apply `choice` to `pod` (empty for off). Paths are JSON pointers into the
// pod as it is: a list or map the pod lacks is added whole.
boost::json::array placementPatch(const boost::json::value& pod, const Choice& choice,
                                  const PlacementOptions& options);

// DaemonSets never run on virtual nodes, but one that tolerates every taint (log and metrics
// agents do) would get a pod there that the backend refuses, again and again. The operations
// that keep `daemonSet`'s pods off virtual nodes (a required node affinity term `type NotIn
// [virtual-kubelet]` in each of its node selector terms) when its pod template tolerates the
// virtual node's NoSchedule taint; empty when it does not, or has them already.
boost::json::array daemonSetPatch(const boost::json::value& daemonSet,
                                  const PlacementOptions& options);

// Why the backend could not run `pod` ("" when it could): the provider's validation.
using BackendCheck = std::function<std::string(const boost::json::value& pod)>;

// The webhook's answer for a pod.
struct Decision {
  bool allowed = true;
  std::string message;  // why it is denied
  std::vector<std::string> warnings;
  boost::json::array patch;
  Choice choice;
};

// The decision for creating `pod`, owned by `owners` (nearest first), selected by `profile`:
//   - an invalid label: denied, naming it and the allowed values;
//   - a DaemonSet's pod: never made eligible (a warning when a rule asked for it);
//   - a pod the backend cannot run (`check`): denied when enforce, left local with a warning
//     when auto or localPrefer;
//   - else allowed with placementPatch.
Decision decide(const boost::json::value& pod, std::span<const Labelled> owners,
                const std::optional<ProfileChoice>& profile, const PlacementOptions& options,
                const BackendCheck& check);

}  // namespace burstlet::admission
