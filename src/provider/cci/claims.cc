#include "provider/cci/claims.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::at;
using kube::stringAt;

ExistingVolume checkExistingVolume(const json::value& found, const json::value& wanted,
                                   std::string_view clusterID, std::string_view liveClaimUid) {
  const std::string name = stringAt(wanted, {"metadata", "name"});
  const std::string node = stringAt(wanted, {"metadata", "labels", kNodeLabel});
  if (stringAt(found, {"metadata", "labels", kManagedByLabel}) != kManagedByValue ||
      stringAt(found, {"metadata", "labels", kClusterIdLabel}) != clusterID ||
      stringAt(found, {"metadata", "labels", kNodeLabel}) != node) {
    return {ExistingVolume::Verdict::kNotOurs, "VolumeNotOwned",
            fmt::format("backend persistentvolume \"{}\" exists but was not made by burstlet "
                        "for node {} of cluster {}: it is left alone; delete it on the backend "
                        "if it is not needed",
                        name, node, clusterID)};
  }
  // The cluster volume was deleted and made again under its name (another file system, maybe):
  // never mount the old one. The sweep deletes it once no claim copy uses it.
  const auto sourceUid = [](const json::value& pv) {
    return stringAt(pv, {"metadata", "annotations", kSourceUidAnnotation});
  };
  if (sourceUid(found) != sourceUid(wanted) ||
      stringAt(found, {"spec", "csi", "driver"}) != stringAt(wanted, {"spec", "csi", "driver"}) ||
      stringAt(found, {"spec", "csi", "volumeHandle"}) !=
          stringAt(wanted, {"spec", "csi", "volumeHandle"})) {
    return {ExistingVolume::Verdict::kReplaced, "VolumeReplaced",
            fmt::format("backend persistentvolume \"{}\" was made from an earlier volume of that "
                        "name; it is removed once unused",
                        name)};
  }
  const json::value* claimRef = at(found, {"spec", "claimRef"});
  const std::string uid = claimRef != nullptr ? stringAt(*claimRef, {"uid"}) : "";
  const bool sameClaim =
      claimRef != nullptr &&
      stringAt(*claimRef, {"namespace"}) == stringAt(wanted, {"spec", "claimRef", "namespace"}) &&
      stringAt(*claimRef, {"name"}) == stringAt(wanted, {"spec", "claimRef", "name"});
  if (sameClaim && (uid.empty() || uid == liveClaimUid)) {
    return {ExistingVolume::Verdict::kUse, "", ""};
  }
  return {ExistingVolume::Verdict::kRebind, "", ""};
}

std::string rebindPatch(const json::value& found, const json::value& wanted) {
  json::object claimRef;
  if (const auto* want = at(wanted, {"spec", "claimRef"}); want != nullptr && want->is_object()) {
    claimRef = want->as_object();
  }
  claimRef["uid"] = nullptr;
  claimRef["resourceVersion"] = nullptr;
  return json::serialize(json::object{
      {"metadata", {{"resourceVersion", stringAt(found, {"metadata", "resourceVersion"})}}},
      {"spec", {{"claimRef", std::move(claimRef)}}}});
}

}  // namespace burstlet::provider::cci
