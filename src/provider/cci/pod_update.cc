#include "provider/cci/pod_update.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "kube/json_path.h"
#include "provider/cci/translate.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::arrayAt;
using kube::at;
using kube::stringAt;

namespace {

// The labels or annotations (`key`) part of labelsAndImagesPatch.
json::object keysPatch(const json::value& backendPod, const json::value& translated,
                       const std::optional<SourceKeys>& previous, const char* key) {
  json::object patch;
  const auto* want = at(translated, {"metadata", key});
  const auto* have = at(backendPod, {"metadata", key});
  const bool isLabels = std::string_view(key) == "labels";
  if (have != nullptr && have->is_object()) {
    for (const auto& [k, v] : have->as_object()) {
      if (want != nullptr && want->is_object() && want->as_object().contains(k)) {
        continue;
      }
      // Only keys that came from the source go; the backend's own keys stay.
      const std::string name(k);
      if (previous && (isLabels ? previous->labels : previous->annotations).count(name) == 0) {
        continue;
      }
      patch[k] = nullptr;
    }
  }
  if (want != nullptr && want->is_object()) {
    for (const auto& [k, v] : want->as_object()) {
      patch[k] = v;
    }
  }
  return patch;
}

std::set<std::string> namesIn(const json::array* list) {
  std::set<std::string> out;
  if (list != nullptr) {
    for (const auto& c : *list) {
      out.insert(stringAt(c, {"name"}));
    }
  }
  return out;
}

}  // namespace

json::value labelsAndImagesPatch(const json::value& backendPod, const json::value& translated) {
  json::object metadata;
  const auto previous = sourceKeysOf(backendPod);
  for (const char* key : {"labels", "annotations"}) {
    metadata[key] = keysPatch(backendPod, translated, previous, key);
  }
  json::object spec;
  for (const char* list : {"initContainers", "containers"}) {
    if (const auto* cs = arrayAt(translated, {"spec", list})) {
      // Only containers the backend pod has: a pod cannot gain one (the network proxy sidecar
      // turned on after the pod was made), and asking for it would be refused every time.
      const std::set<std::string> have = namesIn(arrayAt(backendPod, {"spec", list}));
      json::array images;
      for (const auto& c : *cs) {
        if (!have.contains(stringAt(c, {"name"}))) {
          continue;
        }
        images.push_back(
            json::object{{"name", stringAt(c, {"name"})}, {"image", stringAt(c, {"image"})}});
      }
      spec[list] = std::move(images);
    }
  }
  return json::value{{"metadata", std::move(metadata)}, {"spec", std::move(spec)}};
}

bool patchChanges(const json::value& backendPod, const json::value& patch) {
  for (const char* key : {"labels", "annotations"}) {
    const auto* want = at(patch, {"metadata", key});
    if (want == nullptr || !want->is_object()) {
      continue;
    }
    const auto* have = at(backendPod, {"metadata", key});
    const auto* haveObject = have != nullptr ? have->if_object() : nullptr;
    for (const auto& [k, v] : want->as_object()) {
      const auto* current = haveObject != nullptr ? haveObject->if_contains(k) : nullptr;
      if (v.is_null() ? current != nullptr : (current == nullptr || *current != v)) {
        return true;
      }
    }
  }
  const auto* spec = at(patch, {"spec"});
  if (spec == nullptr || !spec->is_object()) {
    return false;
  }
  for (const auto& [list, containers] : spec->as_object()) {
    if (!containers.is_array()) {
      continue;
    }
    const auto* have = arrayAt(backendPod, {"spec", list});
    for (const auto& c : containers.as_array()) {
      const std::string name = stringAt(c, {"name"});
      const json::value* found = nullptr;
      if (have != nullptr) {
        for (const auto& h : *have) {
          if (stringAt(h, {"name"}) == name) {
            found = &h;
          }
        }
      }
      if (found == nullptr || stringAt(*found, {"image"}) != stringAt(c, {"image"})) {
        return true;
      }
    }
  }
  return false;
}

json::array missingEphemeralContainers(const json::value& backendPod, const json::array& wanted) {
  const auto have = namesIn(arrayAt(backendPod, {"spec", "ephemeralContainers"}));
  json::array out;
  for (const auto& c : wanted) {
    if (have.count(stringAt(c, {"name"})) == 0) {
      out.push_back(c);
    }
  }
  return out;
}

bool hasEphemeralContainers(const json::value& answer, const json::array& added) {
  const auto have = namesIn(arrayAt(answer, {"spec", "ephemeralContainers"}));
  for (const auto& c : added) {
    if (have.count(stringAt(c, {"name"})) == 0) {
      return false;
    }
  }
  return true;
}

Error ephemeralContainersNotSupported(std::string_view backend, std::string_view podKey,
                                      const json::array& added, std::string_view why) {
  std::vector<std::string> names;
  for (const auto& c : added) {
    names.push_back(stringAt(c, {"name"}));
  }
  return Error::make(
      ErrorCode::kInvalid, kEphemeralContainersNotSupported,
      fmt::format("the backend {} does not support ephemeral containers ({}): ephemeral "
                  "container{} {} of pod {} not added (kubectl debug cannot attach to pods "
                  "on this node; labels, annotations and images were updated)",
                  backend, why, names.size() == 1 ? "" : "s", fmt::join(names, ", "), podKey));
}

bool injectedShouldStop(const json::value& backendPod) {
  if (kube::at(backendPod, {"metadata", "deletionTimestamp"}) != nullptr ||
      kube::at(backendPod, {"metadata", "annotations", kInjectedStopAnnotation}) != nullptr) {
    return false;
  }
  const std::string policy = kube::stringAt(backendPod, {"spec", "restartPolicy"});
  if (policy != "Never" && policy != "OnFailure") {
    return false;
  }
  const std::string phase = kube::stringAt(backendPod, {"status", "phase"});
  if (phase == "Succeeded" || phase == "Failed") {
    return false;
  }
  const auto* containers = kube::arrayAt(backendPod, {"spec", "containers"});
  if (containers == nullptr) {
    return false;
  }
  bool injected = false;
  size_t own = 0;
  for (const auto& c : *containers) {
    const std::string name = kube::stringAt(c, {"name"});
    if (!isSourceContainer(backendPod, "containers", name)) {
      injected = true;
      continue;
    }
    ++own;
    const json::value* status = nullptr;
    if (const auto* statuses = kube::arrayAt(backendPod, {"status", "containerStatuses"})) {
      for (const auto& st : *statuses) {
        if (kube::stringAt(st, {"name"}) == name) {
          status = &st;
        }
      }
    }
    const auto* terminated =
        status != nullptr ? kube::at(*status, {"state", "terminated"}) : nullptr;
    if (terminated == nullptr ||
        (policy == "OnFailure" && kube::intAt(*terminated, {"exitCode"}) != 0)) {
      return false;
    }
  }
  return injected && own > 0;
}

}  // namespace burstlet::provider::cci
