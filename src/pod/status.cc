#include "pod/status.h"

#include <boost/json.hpp>

namespace burstlet::pod {

namespace json = boost::json;

namespace {

const json::value* field(const json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  return o != nullptr ? o->if_contains(key) : nullptr;
}

std::string_view stringAt(const json::value* v) {
  const auto* s = v != nullptr ? v->if_string() : nullptr;
  return s != nullptr ? std::string_view(*s) : std::string_view();
}

const json::value kNull;

const json::value& fieldOrNull(const json::value* v, std::string_view key) {
  const json::value* f = v != nullptr ? field(*v, key) : nullptr;
  return f != nullptr ? *f : kNull;
}

bool terminalPhase(std::string_view phase) { return phase == "Succeeded" || phase == "Failed"; }

// Condition equality for our purposes: the probe time changes without meaning anything.
bool sameCondition(const json::value& a, const json::value& b) {
  for (const char* key :
       {"status", "reason", "message", "lastTransitionTime", "observedGeneration"}) {
    if (fieldOrNull(&a, key) != fieldOrNull(&b, key)) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool isTerminal(const json::value& pod) {
  return terminalPhase(stringAt(field(fieldOrNull(&pod, "status"), "phase")));
}

bool isBeingDeleted(const json::value& pod) {
  const auto& ts = fieldOrNull(field(pod, "metadata"), "deletionTimestamp");
  return !ts.is_null();
}

std::optional<json::value> statusPatch(const json::value& clusterPod,
                                       const json::value& providerStatus) {
  const json::value* current = field(clusterPod, "status");
  const std::string_view currentPhase = stringAt(current ? field(*current, "phase") : nullptr);
  const std::string_view wantedPhase = stringAt(field(providerStatus, "phase"));
  if (terminalPhase(currentPhase) && !terminalPhase(wantedPhase)) {
    return std::nullopt;  // the kubelet never brings a finished pod back
  }
  json::object patch;
  for (const char* key :
       {"phase", "podIP", "podIPs", "hostIP", "hostIPs", "startTime", "observedGeneration",
        "containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
    const json::value* want = field(providerStatus, key);
    if (want == nullptr) {
      continue;
    }
    if (fieldOrNull(current, key) == *want) {
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
    const json::value& want = fieldOrNull(&providerStatus, key);
    const json::value& have = fieldOrNull(current, key);
    if (want != have &&
        (!want.is_null() || stringAt(&fieldOrNull(current, "reason")) == "ProviderFailed")) {
      patch[key] = want;  // null deletes the field
    }
  }
  if (const auto* wanted = field(providerStatus, "conditions"); wanted && wanted->is_array()) {
    const json::value& have = fieldOrNull(current, "conditions");
    json::array changed;
    for (const auto& c : wanted->as_array()) {
      const auto type = stringAt(field(c, "type"));
      bool same = false;
      if (have.is_array()) {
        for (const auto& h : have.as_array()) {
          if (stringAt(field(h, "type")) == type) {
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
            if (stringAt(field(h, "type")) != type) {
              continue;
            }
            for (const char* key : {"reason", "message"}) {
              if (field(h, key) != nullptr && field(c, key) == nullptr) {
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
  const json::value& current = fieldOrNull(&clusterPod, "status");
  json::object patch;
  if (stringAt(field(current, "reason")) != reason) {
    patch["reason"] = reason;
  }
  if (stringAt(field(current, "message")) != message) {
    patch["message"] = message;
  }
  if (permanent && stringAt(field(current, "phase")) != "Failed") {
    patch["phase"] = "Failed";
  }
  if (patch.empty()) {
    return std::nullopt;
  }
  return json::value(json::object{{"status", std::move(patch)}});
}

bool needsProviderUpdate(const json::value& clusterPod, const json::value& providerPod) {
  const json::value* cm = field(clusterPod, "metadata");
  const json::value* pm = field(providerPod, "metadata");
  for (const char* key : {"labels", "annotations"}) {
    const json::value& a = fieldOrNull(cm, key);
    const json::value& b = fieldOrNull(pm, key);
    const bool aEmpty = a.is_null() || (a.is_object() && a.as_object().empty());
    const bool bEmpty = b.is_null() || (b.is_object() && b.as_object().empty());
    if (!(aEmpty && bEmpty) && a != b) {
      return true;
    }
  }
  const json::value* cs = field(clusterPod, "spec");
  const json::value* ps = field(providerPod, "spec");
  for (const char* list : {"containers", "initContainers"}) {
    const json::value& a = fieldOrNull(cs, list);
    const json::value& b = fieldOrNull(ps, list);
    if (!a.is_array() || !b.is_array() || a.as_array().size() != b.as_array().size()) {
      if (a.is_array() != b.is_array()) {
        return true;
      }
      if (a.is_array() && a.as_array().size() != b.as_array().size()) {
        return true;
      }
      continue;
    }
    for (size_t i = 0; i < a.as_array().size(); ++i) {
      if (fieldOrNull(&a.as_array()[i], "image") != fieldOrNull(&b.as_array()[i], "image")) {
        return true;
      }
    }
  }
  // Ephemeral containers can only be added: one the provider lacks needs an update.
  const json::value& want = fieldOrNull(cs, "ephemeralContainers");
  if (want.is_array() && !want.as_array().empty()) {
    const json::value& have = fieldOrNull(ps, "ephemeralContainers");
    for (const auto& c : want.as_array()) {
      bool found = false;
      if (have.is_array()) {
        for (const auto& h : have.as_array()) {
          found = found || fieldOrNull(&h, "name") == fieldOrNull(&c, "name");
        }
      }
      if (!found) {
        return true;
      }
    }
  }
  return false;
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
