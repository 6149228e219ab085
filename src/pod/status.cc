#include "pod/status.h"

#include <boost/json.hpp>

#include "kube/json_path.h"

namespace burstlet::pod {

namespace json = boost::json;
using kube::at;
using kube::stringAt;
using kube::valueAt;

namespace {

bool terminalPhase(std::string_view phase) { return phase == "Succeeded" || phase == "Failed"; }

// Condition equality for our purposes: the probe time changes without meaning anything.
bool sameCondition(const json::value& a, const json::value& b) {
  for (const char* key :
       {"status", "reason", "message", "lastTransitionTime", "observedGeneration"}) {
    if (valueAt(a, {key}) != valueAt(b, {key})) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool isTerminal(const json::value& pod) {
  return terminalPhase(stringAt(pod, {"status", "phase"}));
}

bool isBeingDeleted(const json::value& pod) {
  return !valueAt(pod, {"metadata", "deletionTimestamp"}).is_null();
}

std::optional<json::value> statusPatch(const json::value& clusterPod,
                                       const json::value& providerStatus) {
  const json::value& current = valueAt(clusterPod, {"status"});
  const std::string currentPhase = stringAt(current, {"phase"});
  const std::string wantedPhase = stringAt(providerStatus, {"phase"});
  if (terminalPhase(currentPhase) && !terminalPhase(wantedPhase)) {
    return std::nullopt;  // the kubelet never brings a finished pod back
  }
  json::object patch;
  for (const char* key :
       {"phase", "podIP", "podIPs", "hostIP", "hostIPs", "startTime", "observedGeneration",
        "containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
    const json::value* want = at(providerStatus, {key});
    if (want == nullptr) {
      continue;
    }
    if (valueAt(current, {key}) == *want) {
      continue;
    }
    const std::string_view k(key);
    if ((k == "podIPs" || k == "hostIPs") && want->is_array()) {
      // These lists merge by "ip": a changed address would be added beside the old one, which
      // the API server refuses (one IP per family). Replaced whole instead.
      json::array replaced{json::object{{"$patch", "replace"}}};
      for (const auto& ip : want->as_array()) {
        replaced.push_back(ip);
      }
      patch[key] = std::move(replaced);
      continue;
    }
    patch[key] = *want;
  }
  // Our reason/message (a failure shown earlier) give way to the provider's.
  for (const char* key : {"reason", "message"}) {
    const json::value& want = valueAt(providerStatus, {key});
    const json::value& have = valueAt(current, {key});
    if (want != have &&
        (!want.is_null() || stringAt(current, {"reason"}) == kProviderFailedReason)) {
      patch[key] = want;  // null deletes the field
    }
  }
  if (const auto* wanted = kube::arrayAt(providerStatus, {"conditions"})) {
    const json::value& have = valueAt(current, {"conditions"});
    json::array changed;
    for (const auto& c : *wanted) {
      const auto type = stringAt(c, {"type"});
      bool same = false;
      if (have.is_array()) {
        for (const auto& h : have.as_array()) {
          if (stringAt(h, {"type"}) == type) {
            same = sameCondition(c, h);
            break;
          }
        }
      }
      if (!same) {
        json::value sent = c;
        // Conditions merge by type: a reason or message the condition no longer has must be
        // removed explicitly (null), or a True condition keeps the text of its False past.
        if (have.is_array() && sent.is_object()) {
          for (const auto& h : have.as_array()) {
            if (stringAt(h, {"type"}) != type) {
              continue;
            }
            for (const char* key : {"reason", "message"}) {
              if (at(h, {key}) != nullptr && at(c, {key}) == nullptr) {
                sent.as_object()[key] = nullptr;
              }
            }
          }
        }
        changed.push_back(std::move(sent));
      }
    }
    if (!changed.empty()) {
      patch["conditions"] = std::move(changed);  // merged by type: others' conditions stay
    }
  }
  if (patch.empty()) {
    return std::nullopt;
  }
  return json::value(json::object{{"status", std::move(patch)}});
}

std::optional<json::value> failurePatch(const json::value& clusterPod, const std::string& reason,
                                        const std::string& message, bool permanent) {
  const json::value& current = valueAt(clusterPod, {"status"});
  json::object patch;
  if (stringAt(current, {"reason"}) != reason) {
    patch["reason"] = reason;
  }
  if (stringAt(current, {"message"}) != message) {
    patch["message"] = message;
  }
  if (permanent && stringAt(current, {"phase"}) != "Failed") {
    patch["phase"] = "Failed";
  }
  if (patch.empty()) {
    return std::nullopt;
  }
  return json::value(json::object{{"status", std::move(patch)}});
}

ReconcilePlan planReconcile(const std::map<std::string, std::string>& clusterUids,
                            const std::map<std::string, std::string>& providerUids) {
  ReconcilePlan plan;
  for (const auto& [key, uid] : providerUids) {
    auto it = clusterUids.find(key);
    if (it != clusterUids.end() && it->second == uid) {
      plan.adopt.emplace(key, uid);
    } else {
      plan.remove.emplace_back(key, uid);
    }
  }
  return plan;
}

}  // namespace burstlet::pod
