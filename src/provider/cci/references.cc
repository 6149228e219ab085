#include "provider/cci/references.h"

#include <fmt/format.h>

#include "kube/json_path.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;
using kube::arrayAt;
using kube::at;
using kube::boolAt;
using kube::stringAt;

std::string copyId(std::string_view kind, std::string_view name) {
  return fmt::format("{}/{}", kind, name);
}

namespace {

// The ConfigMaps and Secrets of a projected volume, unless it is the ServiceAccount token
// volume (kube-api-access-*): that one is dropped on the way to the backend, and with it the
// kube-root-ca.crt it projects.
template <typename Add>
void projectedReferences(const json::array& sources, const Add& add) {
  for (const auto& src : sources) {
    if (at(src, {"serviceAccountToken"}) != nullptr) {
      return;
    }
  }
  for (const auto& src : sources) {
    if (const auto* cm = at(src, {"configMap"})) {
      add("ConfigMap", stringAt(*cm, {"name"}), boolAt(*cm, {"optional"}));
    }
    if (const auto* s = at(src, {"secret"})) {
      add("Secret", stringAt(*s, {"name"}), boolAt(*s, {"optional"}));
    }
  }
}

}  // namespace

void referencesOf(const json::value& pod, std::set<std::string>* all,
                  std::set<std::string>* required) {
  auto add = [&](std::string_view kind, const std::string& name, bool optional) {
    if (name.empty()) {
      return;
    }
    const std::string id = copyId(kind, name);
    all->insert(id);
    if (!optional && required != nullptr) {
      required->insert(id);
    }
  };
  if (const auto* volumes = arrayAt(pod, {"spec", "volumes"})) {
    const std::set<std::string> injected = injectedNames(pod, "volumes");
    for (const auto& v : *volumes) {
      if (injected.contains(stringAt(v, {"name"}))) {
        continue;  // burstlet's own: the node secret, not a copy
      }
      if (const auto* cm = at(v, {"configMap"})) {
        add("ConfigMap", stringAt(*cm, {"name"}), boolAt(*cm, {"optional"}));
      }
      if (const auto* s = at(v, {"secret"})) {
        add("Secret", stringAt(*s, {"secretName"}), boolAt(*s, {"optional"}));
      }
      if (const auto* c = at(v, {"persistentVolumeClaim"})) {
        add("PersistentVolumeClaim", stringAt(*c, {"claimName"}), false);
      }
      if (const auto* sources = arrayAt(v, {"projected", "sources"})) {
        projectedReferences(*sources, add);
      }
    }
  }
  if (const auto* pulls = arrayAt(pod, {"spec", "imagePullSecrets"})) {
    for (const auto& p : *pulls) {
      add("Secret", stringAt(p, {"name"}), true);
    }
  }
}

const kube::ResourceRef& copyResource(std::string_view kind) {
  if (kind == "ConfigMap") {
    return resources::kConfigMaps;
  }
  if (kind == "Secret") {
    return resources::kSecrets;
  }
  return resources::kPersistentVolumeClaims;
}

}  // namespace burstlet::provider::cci
