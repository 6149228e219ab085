#include "provider/cci/events.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "kube/json_path.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::at;
using kube::stringAt;

namespace {

// Components that speak only of the backend's nodes.
constexpr std::array<std::string_view, 4> kNodeComponents = {
    "node-controller", "taint-eviction-controller", "taint-controller", "cluster-autoscaler"};

// Reasons only a scheduler gives, whatever it calls itself.
constexpr std::array<std::string_view, 3> kSchedulerReasons = {"Scheduled", "FailedScheduling",
                                                               "Preempted"};

bool contains(const auto& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// Characters of a name (node, pod, namespace, uid): a match with one of these beside it is part
// of a longer name.
bool nameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// `text` with every name of `names` that stands alone replaced by its counterpart. Longer names
// are tried first, so one that contains another is replaced whole; replaced text is not looked
// at again.
std::string reword(std::string_view text, std::vector<std::pair<std::string, std::string>> names) {
  std::erase_if(names, [](const auto& n) { return n.first.empty() || n.first == n.second; });
  if (names.empty()) {
    return std::string(text);
  }
  std::stable_sort(names.begin(), names.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const bool startsName = i == 0 || !nameChar(text[i - 1]);
    const std::pair<std::string, std::string>* match = nullptr;
    if (startsName) {
      for (const auto& n : names) {
        const size_t end = i + n.first.size();
        if (text.substr(i).starts_with(n.first) && (end == text.size() || !nameChar(text[end]))) {
          match = &n;
          break;
        }
      }
    }
    if (match != nullptr) {
      out += match->second;
      i += match->first.size();
    } else {
      out += text[i];
      ++i;
    }
  }
  return out;
}

// The container list and name a fieldPath such as "spec.containers{app}" points at; empty when
// it points at no container.
std::pair<std::string_view, std::string_view> containerOf(std::string_view fieldPath) {
  constexpr std::string_view kSpec = "spec.";
  const size_t open = fieldPath.find('{');
  if (!fieldPath.starts_with(kSpec) || open == std::string_view::npos ||
      !fieldPath.ends_with('}')) {
    return {};
  }
  return {fieldPath.substr(kSpec.size(), open - kSpec.size()),
          fieldPath.substr(open + 1, fieldPath.size() - open - 2)};
}

}  // namespace

void trimBackendEvent(json::value& event) {
  json::object out;
  json::object meta;
  for (const char* k : {"name", "namespace", "uid", "resourceVersion"}) {
    if (const auto* v = at(event, {"metadata", k})) {
      meta[k] = *v;
    }
  }
  out["metadata"] = std::move(meta);
  json::object involved;
  for (const char* k : {"kind", "name", "uid", "fieldPath"}) {
    if (const auto* v = at(event, {"involvedObject", k})) {
      involved[k] = *v;
    }
  }
  out["involvedObject"] = std::move(involved);
  for (const char* k :
       {"type", "reason", "message", "count", "reportingComponent", "reportingInstance"}) {
    if (const auto* v = at(event, {k})) {
      out[k] = *v;
    }
  }
  if (const auto* series = at(event, {"series", "count"})) {
    out["count"] = *series;
  }
  json::object source;
  for (const char* k : {"component", "host"}) {
    if (const auto* v = at(event, {"source", k})) {
      source[k] = *v;
    }
  }
  if (!source.empty()) {
    out["source"] = std::move(source);
  }
  event = std::move(out);
}

int64_t backendEventCount(const json::value& event) {
  // Events written through events.k8s.io (the scheduler's) carry no count in the core view.
  const auto* c = at(event, {"count"});
  return c != nullptr && c->is_int64() && c->as_int64() > 0 ? c->as_int64() : 1;
}

std::optional<MirroredEvent> mirroredEvent(const json::value& event, const json::value& backendPod,
                                           const PodRef& source, const MirrorOptions& options) {
  const std::string component = stringAt(event, {"source", "component"});
  const std::string reporting = stringAt(event, {"reportingComponent"});
  const std::string reason = stringAt(event, {"reason"});
  const std::string fieldPath = stringAt(event, {"involvedObject", "fieldPath"});
  if (contains(kNodeComponents, component) || contains(kNodeComponents, reporting)) {
    return std::nullopt;
  }
  // An injected container's trouble (the network proxy failing to start) is the pod's: its
  // Warning events are shown, about the pod (the cluster pod has no such container).
  std::string injected;
  if (const auto [list, name] = containerOf(fieldPath);
      !list.empty() && !isSourceContainer(backendPod, list, name)) {
    if (!isInjectedContainer(backendPod, name) || stringAt(event, {"type"}) != "Warning") {
      return std::nullopt;
    }
    injected = std::string(name);
  }

  // The backend's names for what the cluster knows as the virtual node and the source pod.
  std::vector<std::pair<std::string, std::string>> names = {
      {stringAt(backendPod, {"metadata", "name"}), source.name},
      {stringAt(backendPod, {"metadata", "namespace"}), source.ns},
      {stringAt(backendPod, {"metadata", "uid"}), source.uid},
  };
  if (!options.nodeName.empty()) {
    names.emplace_back(stringAt(backendPod, {"spec", "nodeName"}), options.nodeName);
    names.emplace_back(stringAt(event, {"source", "host"}), options.nodeName);
    if (reporting == "kubelet") {
      names.emplace_back(stringAt(event, {"reportingInstance"}), options.nodeName);
    }
  }
  const std::string message = reword(stringAt(event, {"message"}), std::move(names));

  MirroredEvent out;
  out.fieldPath = fieldPath;
  const bool scheduler = component.find("scheduler") != std::string::npos ||
                         reporting.find("scheduler") != std::string::npos ||
                         contains(kSchedulerReasons, reason);
  if (scheduler) {
    if (reason == "FailedScheduling") {
      out.type = kube::EventType::kWarning;
      out.reason = kBackendPendingReason;
      out.message = fmt::format("the {} backend has not placed the pod yet", options.provider);
      if (!message.empty()) {
        out.message += ": " + message;
      }
      out.once = true;
      return out;
    }
    if (reason == "Preempted") {
      out.type = kube::EventType::kWarning;
      out.reason = kBackendPreemptedReason;
      out.message = fmt::format(
          "the {} backend stopped the pod to make room for another of its pods", options.provider);
      out.once = true;
      return out;
    }
    return std::nullopt;
  }
  out.type =
      stringAt(event, {"type"}) == "Warning" ? kube::EventType::kWarning : kube::EventType::kNormal;
  out.reason = reason;
  out.message = message;
  if (!injected.empty()) {
    out.fieldPath.clear();
    out.message = fmt::format("burstlet's container {}: {}", injected, message);
  }
  return out;
}

}  // namespace burstlet::provider::cci
