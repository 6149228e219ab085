// The burst-to-cci policy (issue 12): which strategy applies to a pod, and the rule that chose it.
// Pure: the webhook feeds it the pod, its owners (from informer caches) and the profile that
// selects it.
//
// The label `virtual-kubelet.io/burst-to-cci` (the CCE add-on's) or `bursting.cci.io/burst-to-cci`
// (the CCI 2.0 add-on's) says, on the pod or an owning workload:
//   auto         the pod may run on a virtual node; the scheduler decides, ordinary nodes first
//   localPrefer  the pod goes to a virtual node only when no ordinary node can take it
//   enforce      the pod runs on a virtual node
//   off          the pod never runs on a virtual node (also: no label and no profile)
// The pod's own label wins over its owners' (nearest first: the ReplicaSet before its
// Deployment, the Job before its CronJob), and any label over a profile.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace burstlet::admission {

inline constexpr std::string_view kBurstLabel = "virtual-kubelet.io/burst-to-cci";
inline constexpr std::string_view kBurstLabelCci2 = "bursting.cci.io/burst-to-cci";

enum class Strategy { kOff, kAuto, kLocalPrefer, kEnforce };

// "auto", "localPrefer", "enforce", "off" (exactly, as the product documents them).
std::optional<Strategy> parseStrategy(std::string_view value);
std::string_view nameOf(Strategy s);

// An object whose labels may carry the strategy: the pod, or one of its owners.
struct Labelled {
  std::string kind;  // "Pod", "ReplicaSet", "Deployment", ...
  std::string name;
  const boost::json::value* labels = nullptr;  // metadata.labels; null when it has none
};

// A profile that selects the pod's workload, with its strategy.
struct ProfileChoice {
  std::string name;
  Strategy strategy = Strategy::kOff;
};

struct Choice {
  Strategy strategy = Strategy::kOff;
  // Which rule placed the pod, for its annotation and messages: `label
  // virtual-kubelet.io/burst-to-cci=auto on Deployment web`, `profile batch`, or `none`.
  std::string rule;
  bool byProfile = false;  // the profile chose it (no label did)
};

// The strategy for a pod: the first labelled object among `pod` and `owners` (nearest first),
// else the profile, else off. kInvalid "InvalidBurstLabel" naming the object, the key, the value
// and the allowed values when a label has another value, or when the two keys disagree on one
// object.
Result<Choice> choose(const Labelled& pod, std::span<const Labelled> owners,
                      const std::optional<ProfileChoice>& profile);

}  // namespace burstlet::admission
