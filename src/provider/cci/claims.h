// The backend PersistentVolume of an SFS claim copy, when its create meets one of that name.
//
// A claim copy's volume is pre-bound (claimRef by name) and Retain: when the claim copy goes (the
// sweep, once no pod mounts it), the PV controller marks the volume Released and keeps the old
// claim's uid in claimRef, so a claim made again under the same name would never bind to it. The
// sweep deletes such a volume two passes later, but a pod for the same claim may come first:
// then the volume must be handed to the new claim (its stale binding cleared), or refused when it
// is not the one this claim needs.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace burstlet::provider::cci {

struct ExistingVolume {
  enum class Verdict {
    kUse,       // ours, for this claim, unbound or bound to the live claim copy
    kRebind,    // ours and for this claim, but bound to an earlier claim copy: clear that binding
    kReplaced,  // ours, made from an earlier cluster volume of that name: wait for the sweep
    kNotOurs,   // not made by this node of this cluster: never touched
  };
  Verdict verdict = Verdict::kUse;
  std::string reason;   // for an error: "VolumeReplaced", "VolumeNotOwned"
  std::string message;  // names the volume and what is wrong
};

// Compares `found` (the backend volume of that name) with `wanted` (what toBackendPersistentVolume
// made). `liveClaimUid` is the uid of the backend claim named by wanted's claimRef when it exists
// now ("" when it does not): a binding to it is no stale one (another create made the pair a
// moment ago).
ExistingVolume checkExistingVolume(const boost::json::value& found,
                                   const boost::json::value& wanted, std::string_view clusterID,
                                   std::string_view liveClaimUid);

// The JSON merge patch that hands `found` to wanted's claim: claimRef as wanted's (its uid and
// resourceVersion removed, so the PV controller binds the claim of that name once it exists),
// with found's resourceVersion as precondition, so a concurrent change by the PV controller
// makes it fail (409) rather than be overwritten.
std::string rebindPatch(const boost::json::value& found, const boost::json::value& wanted);

}  // namespace burstlet::provider::cci
