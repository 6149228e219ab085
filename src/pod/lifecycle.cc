#include "pod/lifecycle.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "kube/json_path.h"

namespace burstlet::pod {

namespace json = boost::json;
using kube::arrayAt;
using kube::at;
using kube::stringAt;

namespace {

constexpr const char* kStatusLists[] = {"initContainerStatuses", "containerStatuses",
                                        "ephemeralContainerStatuses"};
// The lastState message of a run whose backend pod disappeared.
constexpr const char* kLostRunMessage =
    "The container could not be located: its backend pod disappeared";

const json::object* containerStatusNamed(const json::value* status, std::string_view name) {
  if (status == nullptr) {
    return nullptr;
  }
  for (const char* list : kStatusLists) {
    if (const auto* items = arrayAt(*status, {list})) {
      for (const auto& s : *items) {
        if (stringAt(s, {"name"}) == name && s.is_object()) {
          return &s.as_object();
        }
      }
    }
  }
  return nullptr;
}

json::object lostState(Clock::WallTime now, std::string_view message) {
  return json::object{{"terminated", json::object{{"exitCode", kLostContainerExitCode},
                                                  {"reason", kLostContainerReason},
                                                  {"message", message},
                                                  {"startedAt", nullptr},
                                                  {"finishedAt", formatRfc3339(now)}}}};
}

// Conditions written with a lost pod: the pod is not ready.
json::array notReadyConditions(const json::value& clusterPod, std::string_view reason,
                               Clock::WallTime now) {
  json::array out;
  const json::value* status = at(clusterPod, {"status"});
  for (const char* type : {"ContainersReady", "Ready"}) {
    const json::object* have = status != nullptr ? findCondition(*status, type) : nullptr;
    std::string since = formatRfc3339(now);
    if (have != nullptr && have->contains("lastTransitionTime") &&
        have->at("lastTransitionTime").is_string() && have->contains("status") &&
        have->at("status") == "False") {
      since = std::string(have->at("lastTransitionTime").as_string());
    }
    out.push_back(json::object{{"type", type},
                               {"status", "False"},
                               {"reason", reason},
                               {"message", nullptr},
                               {"lastProbeTime", nullptr},
                               {"lastTransitionTime", since}});
  }
  return out;
}

// The restart count the cluster pod shows for container `name` (0 when none).
int64_t shownRestartCount(const json::value& clusterPod, const std::string& name) {
  const json::object* had = containerStatusNamed(at(clusterPod, {"status"}), name);
  const auto* rc = had != nullptr ? had->if_contains("restartCount") : nullptr;
  return rc != nullptr && rc->is_int64() ? rc->as_int64() : 0;
}

// The container statuses of a pod whose backend pod was lost, into `status`
// (initContainerStatuses, containerStatuses): each container not ready, not started, waiting
// with `waiting(name)`, its restart count `restarts(name)`, the lost run as its last state.
template <typename Restarts, typename Waiting>
void putLostContainerStatuses(json::object& status, const json::value& clusterPod,
                              Clock::WallTime lostAt, const Restarts& restarts,
                              const Waiting& waiting) {
  for (const char* specList : {"initContainers", "containers"}) {
    const auto* specs = arrayAt(clusterPod, {"spec", specList});
    if (specs == nullptr) {
      continue;
    }
    json::array out;
    for (const auto& c : *specs) {
      const std::string name = stringAt(c, {"name"});
      out.push_back(json::object{{"name", name},
                                 {"image", stringAt(c, {"image"})},
                                 {"imageID", ""},
                                 {"ready", false},
                                 {"started", false},
                                 {"restartCount", restarts(name)},
                                 {"state", json::object{{"waiting", waiting(name)}}},
                                 {"lastState", lostState(lostAt, kLostRunMessage)}});
    }
    status[std::string_view(specList) == "containers" ? "containerStatuses"
                                                      : "initContainerStatuses"] = std::move(out);
  }
}

}  // namespace

const json::object* findCondition(const json::value& status, std::string_view type) {
  if (const auto* list = arrayAt(status, {"conditions"})) {
    for (const auto& c : *list) {
      if (stringAt(c, {"type"}) == type && c.is_object()) {
        return &c.as_object();
      }
    }
  }
  return nullptr;
}

bool kubeletOwnedCondition(std::string_view type) {
  return type == "PodReadyToStartContainers" || type == "Initialized" ||
         type == "ContainersReady" || type == "Ready";
}

std::map<std::string, int64_t> restartBaseOf(const json::value& providerPod) {
  std::map<std::string, int64_t> out;
  const std::string text =
      stringAt(providerPod, {"metadata", "annotations", kRestartBaseAnnotation});
  if (text.empty()) {
    return out;
  }
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_object()) {
    return out;
  }
  for (const auto& [name, count] : parsed.as_object()) {
    if (count.is_int64() && count.as_int64() > 0) {
      out.emplace(std::string(name), count.as_int64());
    }
  }
  return out;
}

void dropRestartBase(json::value& providerPod) {
  auto* meta = providerPod.is_object() ? providerPod.as_object().if_contains("metadata") : nullptr;
  auto* annotations =
      meta != nullptr && meta->is_object() ? meta->as_object().if_contains("annotations") : nullptr;
  if (annotations == nullptr || !annotations->is_object()) {
    return;
  }
  annotations->as_object().erase(kRestartBaseAnnotation);
  if (annotations->as_object().empty()) {
    meta->as_object().erase("annotations");
  }
}

void setRestartBase(json::value& pod, const std::map<std::string, int64_t>& base) {
  if (base.empty() || !pod.is_object()) {
    return;
  }
  json::object counts;
  for (const auto& [name, count] : base) {
    counts[name] = count;
  }
  auto& meta = pod.as_object()["metadata"];
  if (!meta.is_object()) {
    meta = json::object{};
  }
  auto& annotations = meta.as_object()["annotations"];
  if (!annotations.is_object()) {
    annotations = json::object{};
  }
  annotations.as_object()[kRestartBaseAnnotation] = json::serialize(counts);
}

bool ranOnProvider(const json::value& clusterPod) {
  if (stringAt(clusterPod, {"status", "phase"}) == "Running") {
    return true;
  }
  for (const char* list : kStatusLists) {
    if (const auto* items = arrayAt(clusterPod, {"status", list})) {
      for (const auto& s : *items) {
        for (const char* state : {"running", "terminated"}) {
          if (at(s, {"state", state}) != nullptr || at(s, {"lastState", state}) != nullptr) {
            return true;
          }
        }
      }
    }
  }
  return false;
}

bool restartsLostContainers(const json::value& clusterPod) {
  return stringAt(clusterPod, {"spec", "restartPolicy"}) != "Never";
}

json::value lostPodFailedPatch(const json::value& clusterPod, const std::string& message,
                               Clock::WallTime now) {
  json::object status{{"phase", "Failed"},
                      {"reason", kBackendPodLostReason},
                      {"message", message},
                      {"conditions", notReadyConditions(clusterPod, "PodFailed", now)}};
  const json::value* current = at(clusterPod, {"status"});
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    const auto* items = current != nullptr ? arrayAt(*current, {list}) : nullptr;
    const char* specList =
        std::string_view(list) == "containerStatuses" ? "containers" : "initContainers";
    const auto* specs = arrayAt(clusterPod, {"spec", specList});
    if (specs == nullptr) {
      continue;
    }
    json::array out;
    for (const auto& c : *specs) {
      const std::string name = stringAt(c, {"name"});
      json::object s;
      if (items != nullptr) {
        for (const auto& have : *items) {
          if (stringAt(have, {"name"}) == name && have.is_object()) {
            s = have.as_object();
          }
        }
      }
      if (s.empty()) {
        s = json::object{{"name", name},
                         {"image", stringAt(c, {"image"})},
                         {"imageID", ""},
                         {"restartCount", 0}};
      }
      const auto* state = s.if_contains("state");
      if (state == nullptr || !state->is_object() || !state->as_object().contains("terminated")) {
        s["state"] = lostState(
            now, "The container could not be located when the pod was terminated: " + message);
      }
      s["ready"] = false;
      s["started"] = false;
      out.push_back(std::move(s));
    }
    status[list] = std::move(out);
  }
  return json::value(json::object{{"status", std::move(status)}});
}

std::map<std::string, int64_t> nextRestartBase(const json::value& clusterPod) {
  std::map<std::string, int64_t> out;
  for (const char* list : {"initContainers", "containers"}) {
    if (const auto* specs = arrayAt(clusterPod, {"spec", list})) {
      for (const auto& c : *specs) {
        const std::string name = stringAt(c, {"name"});
        out[name] = shownRestartCount(clusterPod, name) + 1;
      }
    }
  }
  return out;
}

json::value lostPodRestartPatch(const json::value& clusterPod,
                                const std::map<std::string, int64_t>& base, Clock::WallTime lostAt,
                                Clock::WallTime now) {
  json::object status{{"conditions", notReadyConditions(clusterPod, "ContainersNotReady", now)}};
  putLostContainerStatuses(
      status, clusterPod, lostAt,
      [&base](const std::string& name) {
        auto it = base.find(name);
        return it != base.end() ? it->second : int64_t{0};
      },
      [](const std::string&) {
        return json::object{{"reason", "ContainerCreating"}};
      });
  return json::value(json::object{{"status", std::move(status)}});
}

std::chrono::nanoseconds restartWait(const RestartBackOff& backOff, Clock::SteadyTime now,
                                     const RestartBackOffOptions& options) {
  if (!backOff.lostAt || backOff.delay.count() == 0 ||
      *backOff.lostAt - backOff.lastRestart > options.reset) {
    return std::chrono::nanoseconds(0);
  }
  const auto left = *backOff.lostAt + backOff.delay - now;
  return std::max(std::chrono::duration_cast<std::chrono::nanoseconds>(left),
                  std::chrono::nanoseconds(0));
}

void noteRestart(RestartBackOff& backOff, Clock::SteadyTime now,
                 const RestartBackOffOptions& options) {
  const Clock::SteadyTime lostAt = backOff.lostAt.value_or(now);
  if (backOff.delay.count() == 0 || lostAt - backOff.lastRestart > options.reset) {
    backOff.delay = std::min(options.initial, options.max);
  } else {
    backOff.delay = std::min(backOff.delay * 2, options.max);
  }
  backOff.lastRestart = now;
  backOff.lostAt.reset();
  backOff.warned = false;
}

std::string goDuration(std::chrono::nanoseconds d) {
  using std::chrono::duration_cast;
  const auto ms = duration_cast<std::chrono::milliseconds>(d).count();
  if (ms < 1000) {
    return fmt::format("{}ms", ms);
  }
  const int64_t hours = ms / 3'600'000;
  const int64_t minutes = ms / 60'000 % 60;
  std::string seconds = fmt::format("{}", ms / 1000 % 60);
  if (const int64_t frac = ms % 1000; frac != 0) {
    std::string digits = fmt::format("{:03}", frac);
    digits.erase(digits.find_last_not_of('0') + 1);
    seconds += "." + digits;
  }
  if (hours > 0) {
    return fmt::format("{}h{}m{}s", hours, minutes, seconds);
  }
  if (minutes > 0) {
    return fmt::format("{}m{}s", minutes, seconds);
  }
  return seconds + "s";
}

namespace {

// The kubelet's format.Pod: "name_namespace(uid)".
std::string kubeletPodName(const json::value& clusterPod) {
  return fmt::format("{}_{}({})", stringAt(clusterPod, {"metadata", "name"}),
                     stringAt(clusterPod, {"metadata", "namespace"}),
                     stringAt(clusterPod, {"metadata", "uid"}));
}

}  // namespace

std::string crashLoopMessage(const json::value& clusterPod, std::string_view container,
                             std::chrono::nanoseconds backOff) {
  return fmt::format("back-off {} restarting failed container={} pod={}", goDuration(backOff),
                     container, kubeletPodName(clusterPod));
}

std::string backOffEventMessage(const json::value& clusterPod, std::string_view container) {
  return fmt::format("Back-off restarting failed container {} in pod {}", container,
                     kubeletPodName(clusterPod));
}

json::value lostPodWaiting(const json::value& clusterPod,
                           std::optional<std::chrono::nanoseconds> backOff,
                           Clock::WallTime lostAt) {
  json::object status;
  for (const char* key : {"reason", "message"}) {
    if (const auto* v = at(clusterPod, {"status", key}); v != nullptr && v->is_string()) {
      status[key] = *v;
    }
  }
  putLostContainerStatuses(
      status, clusterPod, lostAt,
      [&clusterPod](const std::string& name) { return shownRestartCount(clusterPod, name); },
      [&](const std::string& name) {
        json::object waiting{{"reason", backOff ? kCrashLoopBackOffReason : "ContainerCreating"}};
        if (backOff) {
          waiting["message"] = crashLoopMessage(clusterPod, name, *backOff);
        }
        return waiting;
      });
  return json::value(json::object{{"status", std::move(status)}});
}

bool isUidMismatch(const Error& error) {
  if (error.code != ErrorCode::kConflict && error.code != ErrorCode::kInvalid) {
    return false;
  }
  // 409 "Precondition failed: UID in precondition: ..., UID in object meta: ..." or 422
  // "metadata.uid: Invalid value: ...: field is immutable".
  return error.message.find("UID in precondition") != std::string::npos ||
         error.message.find("metadata.uid") != std::string::npos;
}

int64_t deletionGracePeriodOf(const json::value& pod) {
  const auto* g = at(pod, {"metadata", "deletionGracePeriodSeconds"});
  return g != nullptr && g->is_int64() ? g->as_int64() : -1;
}

Clock::WallTime terminationDeadline(const json::value& pod, std::chrono::seconds slack,
                                    Clock::WallTime now) {
  const auto when = parseRfc3339(stringAt(pod, {"metadata", "deletionTimestamp"}));
  return (when ? *when : now) + slack;
}

std::vector<std::string> ephemeralContainerNames(const json::value& pod) {
  std::vector<std::string> out;
  if (const auto* list = arrayAt(pod, {"spec", "ephemeralContainers"})) {
    for (const auto& c : *list) {
      out.push_back(stringAt(c, {"name"}));
    }
  }
  return out;
}

json::value unsupportedEphemeralStatus(const json::value& container, const std::string& reason,
                                       const std::string& message) {
  return json::object{
      {"name", stringAt(container, {"name"})},
      {"image", stringAt(container, {"image"})},
      {"imageID", ""},
      {"ready", false},
      {"restartCount", 0},
      {"state", json::object{{"terminated", json::object{{"exitCode", 128},
                                                         {"reason", reason},
                                                         {"message", message},
                                                         {"startedAt", nullptr},
                                                         {"finishedAt", nullptr}}}}}};
}

}  // namespace burstlet::pod
