#include "pod/kubelet_status.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <vector>

#include "kube/json_path.h"
#include "pod/lifecycle.h"

namespace burstlet::pod {

namespace json = boost::json;
using kube::arrayAt;
using kube::at;
using kube::stringAt;

namespace {

bool terminalPhase(std::string_view phase) { return phase == "Succeeded" || phase == "Failed"; }

int64_t intOf(const json::value* v) { return v != nullptr && v->is_int64() ? v->as_int64() : 0; }

bool isTrue(const json::value* v) { return v != nullptr && v->is_bool() && v->as_bool(); }

bool hasState(const json::value& containerStatus, std::string_view state) {
  const auto* s = at(containerStatus, {"state"});
  return s != nullptr && s->is_object() && s->as_object().contains(state);
}

bool isRestartableInit(const json::value& container) {
  return stringAt(container, {"restartPolicy"}) == "Always";
}

// The kubelet prints container name lists with Go's %s of a []string: "[a b]".
std::string nameList(const std::vector<std::string>& names) {
  return fmt::format("[{}]", fmt::join(names, " "));
}

const json::object* statusIn(const json::value* status, const char* list, std::string_view name) {
  const auto* items = status != nullptr ? arrayAt(*status, {list}) : nullptr;
  if (items == nullptr) {
    return nullptr;
  }
  for (const auto& s : *items) {
    if (s.is_object() && stringAt(s, {"name"}) == name) {
      return &s.as_object();
    }
  }
  return nullptr;
}

// The kubelet's VolumeMountStatus list: every mount of the spec, a read-only one with its
// recursive read-only mode (Enabled only when asked for; burstlet cannot promise IfPossible).
json::array volumeMountStatuses(const json::value& container) {
  json::array out;
  if (const auto* mounts = arrayAt(container, {"volumeMounts"})) {
    for (const auto& m : *mounts) {
      json::object s{{"name", stringAt(m, {"name"})}, {"mountPath", stringAt(m, {"mountPath"})}};
      if (isTrue(at(m, {"readOnly"}))) {
        s["readOnly"] = true;
        s["recursiveReadOnly"] =
            stringAt(m, {"recursiveReadOnly"}) == "Enabled" ? "Enabled" : "Disabled";
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

struct Lists {
  const char* spec;
  const char* status;
  bool sortByName;  // the kubelet sorts regular and ephemeral containers; init ones keep order
};
constexpr Lists kLists[] = {{"initContainers", "initContainerStatuses", false},
                            {"containers", "containerStatuses", true},
                            {"ephemeralContainers", "ephemeralContainerStatuses", true}};

struct BuildContext {
  const json::value& clusterPod;
  const json::value* provided;  // provider pod's status
  const json::value* current;   // cluster pod's status
  std::map<std::string, int64_t> base;
  std::string_view waitingReason;
  std::string_view waitingMessage;
};

json::object reportedStatus(const BuildContext& ctx, const json::value& container,
                            const json::object& reported, const json::object* old) {
  const std::string name = stringAt(container, {"name"});
  json::object s = reported;
  int64_t count = intOf(reported.if_contains("restartCount"));
  if (auto it = ctx.base.find(name); it != ctx.base.end()) {
    count += it->second;
  }
  if (old != nullptr) {
    count = std::max(count, intOf(old->if_contains("restartCount")));  // never goes back
  }
  s["restartCount"] = count;
  const auto* last = s.if_contains("lastState");
  const bool noLast = last == nullptr || !last->is_object() || last->as_object().empty();
  if (noLast && count > 0 && old != nullptr && old->contains("lastState")) {
    s["lastState"] = old->at("lastState");  // a run the provider's pod did not see
  }
  if (!s.contains("lastState")) {
    s["lastState"] = json::object{};
  }
  if (!s.contains("imageID")) {
    s["imageID"] = "";
  }
  if (!s.contains("ready")) {
    s["ready"] = false;
  }
  // What the cluster allocated: burstlet's provider may run a normalized size, but the pod is
  // admitted, scheduled and charged with its spec.
  const json::value* resources = at(container, {"resources"});
  s["resources"] = resources != nullptr && resources->is_object() ? *resources : json::object{};
  s.erase("allocatedResources");
  if (const auto* requests = at(container, {"resources", "requests"});
      requests != nullptr && requests->is_object() && !requests->as_object().empty()) {
    s["allocatedResources"] = *requests;
  }
  return s;
}

json::object defaultStatus(const BuildContext& ctx, const json::value& container,
                           const json::object* old) {
  const bool hasInit = arrayAt(ctx.clusterPod, {"spec", "initContainers"}) != nullptr &&
                       !arrayAt(ctx.clusterPod, {"spec", "initContainers"})->empty();
  json::object waiting;
  if (!ctx.waitingReason.empty()) {
    waiting["reason"] = ctx.waitingReason;
    if (!ctx.waitingMessage.empty()) {
      waiting["message"] = ctx.waitingMessage;
    }
  } else {
    waiting["reason"] = hasInit ? kPodInitializing : kContainerCreating;
  }
  json::object s{{"name", stringAt(container, {"name"})},
                 {"image", stringAt(container, {"image"})},
                 {"imageID", ""},
                 {"ready", false},
                 {"restartCount", old != nullptr ? intOf(old->if_contains("restartCount")) : 0},
                 {"state", json::object{{"waiting", std::move(waiting)}}},
                 {"lastState", old != nullptr && old->contains("lastState") ? old->at("lastState")
                                                                            : json::object{}}};
  return s;
}

// One status per container of `lists.spec`, in the kubelet's order.
json::array buildStatuses(const BuildContext& ctx, const Lists& lists) {
  json::array out;
  const auto* specs = arrayAt(ctx.clusterPod, {"spec", lists.spec});
  if (specs == nullptr) {
    return out;
  }
  for (const auto& c : *specs) {
    const std::string name = stringAt(c, {"name"});
    const json::object* reported = statusIn(ctx.provided, lists.status, name);
    const json::object* old = statusIn(ctx.current, lists.status, name);
    json::object s;
    if (reported != nullptr) {
      s = reportedStatus(ctx, c, *reported, old);
    } else if (old != nullptr && hasState(*old, "terminated")) {
      s = *old;  // the kubelet keeps a finished container's last word
    } else {
      s = defaultStatus(ctx, c, old);
    }
    if (json::array mounts = volumeMountStatuses(c); !mounts.empty()) {
      s["volumeMounts"] = std::move(mounts);
    } else {
      s.erase("volumeMounts");
    }
    out.push_back(std::move(s));
  }
  if (lists.sortByName) {
    std::stable_sort(out.begin(), out.end(), [](const json::value& a, const json::value& b) {
      return stringAt(a, {"name"}) < stringAt(b, {"name"});
    });
  }
  return out;
}

struct Condition {
  const char* type;
  bool status;
  std::string reason;
  std::string message;
};

Condition containersReady(const json::value& pod, const json::object& status,
                          std::string_view phase) {
  if (phase == "Succeeded") {
    return {"ContainersReady", false, "PodCompleted", ""};
  }
  if (phase == "Failed") {
    return {"ContainersReady", false, "PodFailed", ""};
  }
  std::vector<std::string> unready;
  const json::value statusValue = status;
  if (const auto* inits = arrayAt(pod, {"spec", "initContainers"})) {
    for (const auto& c : *inits) {
      if (!isRestartableInit(c)) {
        continue;
      }
      const auto* s = statusIn(&statusValue, "initContainerStatuses", stringAt(c, {"name"}));
      if (s == nullptr || !isTrue(s->if_contains("ready"))) {
        unready.push_back(stringAt(c, {"name"}));
      }
    }
  }
  if (const auto* containers = arrayAt(pod, {"spec", "containers"})) {
    for (const auto& c : *containers) {
      const auto* s = statusIn(&statusValue, "containerStatuses", stringAt(c, {"name"}));
      if (s == nullptr || !isTrue(s->if_contains("ready"))) {
        unready.push_back(stringAt(c, {"name"}));
      }
    }
  }
  if (!unready.empty()) {
    return {"ContainersReady", false, "ContainersNotReady",
            "containers with unready status: " + nameList(unready)};
  }
  return {"ContainersReady", true, "", ""};
}

// Kubelet's message for readiness gates not (yet) True, or "" when all are.
std::string unmetGates(const json::value& clusterPod) {
  const auto* gates = arrayAt(clusterPod, {"spec", "readinessGates"});
  if (gates == nullptr) {
    return "";
  }
  const json::value* status = at(clusterPod, {"status"});
  std::vector<std::string> problems;
  for (const auto& g : *gates) {
    const std::string type = stringAt(g, {"conditionType"});
    if (type.empty()) {
      continue;
    }
    const json::object* c = status != nullptr ? findCondition(*status, type) : nullptr;
    if (c == nullptr) {
      problems.push_back(fmt::format(
          "corresponding condition of pod readiness gate \"{}\" does not exist.", type));
    } else if (const auto* s = c->if_contains("status");
               s == nullptr || !s->is_string() || s->as_string() != "True") {
      problems.push_back(fmt::format(
          "the status of pod readiness gate \"{}\" is not \"True\", but {}", type,
          s != nullptr && s->is_string() ? std::string(s->as_string()) : std::string("Unknown")));
    }
  }
  return fmt::format("{}", fmt::join(problems, ", "));
}

Condition initialized(const json::value& pod, const json::object& status, std::string_view phase) {
  if (phase == "Succeeded") {
    return {"Initialized", true, "PodCompleted", ""};
  }
  const json::value statusValue = status;
  if (const auto* list = arrayAt(statusValue, {"containerStatuses"})) {
    for (const auto& s : *list) {
      if (hasState(s, "running") || hasState(s, "terminated")) {
        return {"Initialized", true, "", ""};  // a regular container started
      }
    }
  }
  std::vector<std::string> incomplete;
  if (const auto* inits = arrayAt(pod, {"spec", "initContainers"})) {
    for (const auto& c : *inits) {
      const auto* s = statusIn(&statusValue, "initContainerStatuses", stringAt(c, {"name"}));
      bool done = false;
      if (s != nullptr) {
        if (isRestartableInit(c)) {
          done = isTrue(s->if_contains("started"));
        } else {
          const json::value sv = *s;
          done = isTrue(s->if_contains("ready")) ||
                 (hasState(sv, "terminated") &&
                  intOf(at(sv, {"state", "terminated", "exitCode"})) == 0);
        }
      }
      if (!done) {
        incomplete.push_back(stringAt(c, {"name"}));
      }
    }
  }
  if (!incomplete.empty()) {
    return {"Initialized", false, "ContainersNotInitialized",
            "containers with incomplete status: " + nameList(incomplete)};
  }
  return {"Initialized", true, "", ""};
}

bool readyToStartContainers(const json::value* provided, const json::object& status,
                            std::string_view phase) {
  if (terminalPhase(phase)) {
    return false;  // its sandbox is gone
  }
  if (provided != nullptr) {
    if (const json::object* c = findCondition(*provided, "PodReadyToStartContainers")) {
      return c->contains("status") && c->at("status") == "True";
    }
  }
  if (const auto* ip = status.if_contains("podIP"); ip != nullptr && ip->is_string()) {
    return !ip->as_string().empty();
  }
  const json::value statusValue = status;
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    if (const auto* items = arrayAt(statusValue, {list})) {
      for (const auto& s : *items) {
        if (hasState(s, "running") || hasState(s, "terminated")) {
          return true;
        }
      }
    }
  }
  return false;
}

// The state the kubelet's TerminatePod gives a container it did not see end.
json::object unknownEnd() {
  return json::object{{"terminated", json::object{{"exitCode", kLostContainerExitCode},
                                                  {"reason", kLostContainerReason},
                                                  {"message", kTerminatedUnknownMessage},
                                                  {"startedAt", nullptr},
                                                  {"finishedAt", nullptr}}}};
}

json::object conditionObject(const Condition& c, const json::value& clusterPod,
                             const json::value* provided, const json::value* current,
                             Clock::WallTime now) {
  const char* status = c.status ? "True" : "False";
  json::object o{{"type", c.type}, {"status", status}, {"lastProbeTime", nullptr}};
  if (const auto* g = at(clusterPod, {"metadata", "generation"}); g != nullptr && g->is_int64()) {
    o["observedGeneration"] = g->as_int64();
  }
  if (!c.reason.empty()) {
    o["reason"] = c.reason;
  }
  if (!c.message.empty()) {
    o["message"] = c.message;
  }
  const json::object* had = current != nullptr ? findCondition(*current, c.type) : nullptr;
  const json::object* theirs = provided != nullptr ? findCondition(*provided, c.type) : nullptr;
  const auto sameStatusWithTime = [status](const json::object* x) {
    return x != nullptr && x->contains("status") && x->at("status") == status &&
           x->contains("lastTransitionTime") && x->at("lastTransitionTime").is_string();
  };
  if (had != nullptr) {
    o["lastTransitionTime"] =
        sameStatusWithTime(had) ? had->at("lastTransitionTime") : json::value(formatRfc3339(now));
  } else if (sameStatusWithTime(theirs)) {
    o["lastTransitionTime"] = theirs->at("lastTransitionTime");  // when it really happened
  } else {
    o["lastTransitionTime"] = formatRfc3339(now);
  }
  return o;
}

}  // namespace

json::value kubeletStatus(const json::value& clusterPod, const json::value& providerPod,
                          Clock::WallTime now, std::string_view waitingReason,
                          std::string_view waitingMessage) {
  const json::value* provided = at(providerPod, {"status"});
  const json::value* current = at(clusterPod, {"status"});
  json::object status;
  if (provided != nullptr && provided->is_object()) {
    for (const char* key :
         {"phase", "reason", "message", "podIP", "podIPs", "hostIP", "hostIPs", "startTime"}) {
      if (const auto* v = provided->as_object().if_contains(key); v != nullptr && !v->is_null()) {
        status[key] = *v;
      }
    }
  }
  const std::string had = current != nullptr ? stringAt(*current, {"phase"}) : std::string();
  std::string phase = stringAt(status, {"phase"});
  if (phase.empty() || (phase == "Pending" && had == "Running")) {
    phase = had == "Running" ? "Running" : "Pending";  // a provider pod made again starts over
  }
  status["phase"] = phase;
  if (const auto* start = current != nullptr ? at(*current, {"startTime"}) : nullptr;
      start != nullptr && start->is_string()) {
    status["startTime"] = *start;  // set once
  }
  if (const auto* g = at(clusterPod, {"metadata", "generation"}); g != nullptr && g->is_int64()) {
    status["observedGeneration"] = g->as_int64();
  }

  const BuildContext ctx{clusterPod,    provided,      current, restartBaseOf(providerPod),
                         waitingReason, waitingMessage};
  for (const auto& lists : kLists) {
    if (arrayAt(clusterPod, {"spec", lists.spec}) != nullptr) {
      status[lists.status] = buildStatuses(ctx, lists);
    }
  }

  const Condition containers = containersReady(clusterPod, status, phase);
  Condition ready{"Ready", containers.status, containers.reason, containers.message};
  if (containers.status) {
    if (std::string unmet = unmetGates(clusterPod); !unmet.empty()) {
      ready = {"Ready", false, "ReadinessGatesNotReady", std::move(unmet)};
    }
  }
  const Condition conditions[] = {
      {"PodReadyToStartContainers", readyToStartContainers(provided, status, phase), "", ""},
      initialized(clusterPod, status, phase),
      ready,
      containers};
  json::array list;
  for (const auto& c : conditions) {
    list.push_back(conditionObject(c, clusterPod, provided, current, now));
  }
  status["conditions"] = std::move(list);
  return status;
}

json::value terminalStatus(const json::value& clusterPod, Clock::WallTime now) {
  // The last status the cluster holds, with what the kubelet's TerminatePod does to it, run
  // through kubeletStatus as if the provider had reported it.
  json::object last;
  if (const auto* s = at(clusterPod, {"status"}); s != nullptr && s->is_object()) {
    last = s->as_object();
  }
  bool allSucceeded = true;
  bool anyApp = false;
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    auto* items = last.if_contains(list);
    if (items == nullptr || !items->is_array()) {
      continue;
    }
    for (auto& s : items->as_array()) {
      if (!s.is_object()) {
        continue;
      }
      auto& o = s.as_object();
      if (!hasState(s, "terminated")) {
        o["state"] = unknownEnd();
      }
      o["ready"] = false;
      o["started"] = false;
      if (std::string_view(list) == "containerStatuses") {
        anyApp = true;
        allSucceeded = allSucceeded && intOf(at(s, {"state", "terminated", "exitCode"})) == 0;
      }
    }
  }
  const std::string phase = stringAt(last, {"phase"});
  if (!terminalPhase(phase)) {
    last["phase"] = anyApp && allSucceeded ? "Succeeded" : "Failed";
  }
  const json::value asReported = json::object{{"status", std::move(last)}};
  json::value out = kubeletStatus(clusterPod, asReported, now);
  // Containers with no status at all (never reported) get the kubelet's unknown end too.
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    auto* items = out.as_object().if_contains(list);
    if (items == nullptr || !items->is_array()) {
      continue;
    }
    for (auto& s : items->as_array()) {
      if (s.is_object() && !hasState(s, "terminated")) {
        s.as_object()["state"] = unknownEnd();
      }
    }
  }
  return out;
}

}  // namespace burstlet::pod
