#include "provider/cci/pod_update.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <set>
#include <vector>

#include "kube/json_path.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::arrayAt;
using kube::at;
using kube::stringAt;

namespace {

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

}  // namespace burstlet::provider::cci
