// Pure decisions of the pod controller, kept apart from I/O so that unit tests cover them:
// which status write a provider status calls for and what to do with the provider's pods after a
// restart.
#pragma once

#include <boost/json/value.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace burstlet::pod {

// The pod-level reason of a provider failure that is retried.
inline constexpr const char* kProviderFailedReason = "ProviderFailed";

// The strategic-merge patch body for pods/status that makes the cluster pod show
// `providerStatus`, or nullopt when it already does (no write). Conditions are merged by type
// (others' conditions stay), a reason or message a written condition no longer has is removed;
// container statuses are replaced; a terminal pod (Succeeded or
// Failed) never goes back to a running phase; a "ProviderFailed" reason left by an earlier
// failure is cleared.
std::optional<boost::json::value> statusPatch(const boost::json::value& clusterPod,
                                              const boost::json::value& providerStatus);

// The patch that records a provider failure on the pod: reason and message, phase unchanged
// (or Failed when permanent). nullopt when the pod already shows exactly that.
std::optional<boost::json::value> failurePatch(const boost::json::value& clusterPod,
                                               const std::string& reason,
                                               const std::string& message, bool permanent);

bool isTerminal(const boost::json::value& pod);
bool isBeingDeleted(const boost::json::value& pod);

// After a restart: provider pods whose source pod is gone (absent, or replaced by a pod with
// another UID) are deleted; the others are adopted.
struct ReconcilePlan {
  std::map<std::string, std::string> adopt;                 // key -> uid
  std::vector<std::pair<std::string, std::string>> remove;  // (key, provider pod's uid)
};
ReconcilePlan planReconcile(const std::map<std::string, std::string>& clusterUids,
                            const std::map<std::string, std::string>& providerUids);

}  // namespace burstlet::pod
