#include "pod/prepare.h"

#include <boost/json.hpp>
#include <map>
#include <set>

#include "kube/json_path.h"
#include "pod/env.h"

namespace burstlet::pod {

namespace asio = boost::asio;
namespace json = boost::json;
namespace resources = kube::resources;

namespace {

std::string nameAt(const json::value* ref) {
  const auto* o = ref != nullptr ? ref->if_object() : nullptr;
  const auto* n = o != nullptr ? o->if_contains("name") : nullptr;
  const auto* s = n != nullptr ? n->if_string() : nullptr;
  return s != nullptr ? std::string(*s) : std::string();
}

// ConfigMaps and Secrets a pod's containers read their environment from.
void collectRefs(const json::value& pod, std::set<std::string>* configMaps,
                 std::set<std::string>* secrets) {
  const auto* spec = kube::at(pod, {"spec"});
  if (spec == nullptr) {
    return;
  }
  for (const char* list : {"initContainers", "containers"}) {
    const auto* containers = kube::arrayAt(*spec, {list});
    if (containers == nullptr) {
      continue;
    }
    for (const auto& c : *containers) {
      if (const auto* from = kube::arrayAt(c, {"envFrom"})) {
        for (const auto& f : *from) {
          if (auto n = nameAt(kube::at(f, {"configMapRef"})); !n.empty()) {
            configMaps->insert(n);
          }
          if (auto n = nameAt(kube::at(f, {"secretRef"})); !n.empty()) {
            secrets->insert(n);
          }
        }
      }
      if (const auto* env = kube::arrayAt(c, {"env"})) {
        for (const auto& e : *env) {
          if (auto n = nameAt(kube::at(e, {"valueFrom", "configMapKeyRef"})); !n.empty()) {
            configMaps->insert(n);
          }
          if (auto n = nameAt(kube::at(e, {"valueFrom", "secretKeyRef"})); !n.empty()) {
            secrets->insert(n);
          }
        }
      }
    }
  }
}

class FetchedSources final : public EnvSources {
 public:
  std::map<std::string, std::optional<json::object>> configMaps;
  std::map<std::string, std::optional<json::object>> secrets;
  const kube::Store* serviceStore = nullptr;
  const ServiceEnvironment* serviceEnv = nullptr;

  std::optional<json::object> configMap(const std::string& /*ns*/,
                                        const std::string& name) override {
    auto it = configMaps.find(name);
    return it == configMaps.end() ? std::nullopt : it->second;
  }
  std::optional<json::object> secret(const std::string& /*ns*/, const std::string& name) override {
    auto it = secrets.find(name);
    return it == secrets.end() ? std::nullopt : it->second;
  }
  std::vector<json::value> services(const std::string& ns) override {
    std::vector<json::value> out;
    if (serviceEnv != nullptr && !serviceEnv->clusterIPs) {
      // Only the master Service, at an address the pod reaches.
      if (ns == "default" && serviceEnv->kubernetes.is_object()) {
        out.push_back(serviceEnv->kubernetes);
      }
      return out;
    }
    if (serviceStore == nullptr) {
      return out;
    }
    for (const auto& s : serviceStore->byIndex(kServiceNamespaceIndex, ns)) {
      out.push_back(*s);
    }
    return out;
  }
};

bool readsPodIP(const json::value& envEntry) {
  const auto* path = kube::at(envEntry, {"valueFrom", "fieldRef", "fieldPath"});
  const auto* s = path != nullptr ? path->if_string() : nullptr;
  return s != nullptr && (*s == "status.podIP" || *s == "status.podIPs");
}

}  // namespace

PodPreparer::PodPreparer(kube::RestClient& client, const kube::Store* services,
                         kube::EventRecorder& events, std::string nodeIP,
                         json::object nodeAllocatable)
    : client_(client),
      services_(services),
      events_(events),
      nodeIP_(std::move(nodeIP)),
      nodeAllocatable_(std::move(nodeAllocatable)) {}

asio::awaitable<Result<json::value>> PodPreparer::prepare(const json::value& pod) {
  std::set<std::string> cmNames;
  std::set<std::string> secretNames;
  collectRefs(pod, &cmNames, &secretNames);
  const std::string ns(kube::objectNamespace(pod));
  FetchedSources sources;
  sources.serviceStore = services_;
  sources.serviceEnv = &serviceEnv_;
  for (const auto& name : cmNames) {
    auto got = co_await client_.get(resources::kConfigMaps, ns, name);
    if (got.ok()) {
      sources.configMaps[name] = got->as_object();
    } else if (got.error().code == ErrorCode::kNotFound) {
      sources.configMaps[name] = std::nullopt;
    } else {
      co_return std::move(got).error();
    }
  }
  for (const auto& name : secretNames) {
    auto got = co_await client_.get(resources::kSecrets, ns, name);
    if (got.ok()) {
      sources.secrets[name] = got->as_object();
    } else if (got.error().code == ErrorCode::kNotFound) {
      sources.secrets[name] = std::nullopt;
    } else {
      co_return std::move(got).error();
    }
  }
  EnvOptions options;
  options.nodeAllocatable = nodeAllocatable_;
  options.hostIPs = {nodeIP_};
  json::value out = pod;
  auto& spec = out.as_object()["spec"];
  if (!spec.is_object()) {
    co_return out;
  }
  for (const char* list : {"initContainers", "containers"}) {
    auto* containers = spec.as_object().if_contains(list);
    if (containers == nullptr || !containers->is_array()) {
      continue;
    }
    for (auto& c : containers->as_array()) {
      if (!c.is_object()) {
        continue;
      }
      const auto* nameValue = c.as_object().if_contains("name");
      if (nameValue == nullptr || !nameValue->is_string()) {
        continue;
      }
      const std::string name(nameValue->as_string());
      auto resolved = resolveEnvironment(pod, name, sources, options);
      if (!resolved.ok()) {
        co_return std::move(resolved).error();
      }
      for (const auto& e : resolved->events) {
        events_.record(kube::referenceTo(pod), e.type, e.reason, e.message);
      }
      // Entries that read the pod IP stay references, resolved by the backend.
      std::map<std::string, json::value> podIPRefs;
      if (const auto* env = kube::arrayAt(c, {"env"})) {
        for (const auto& e : *env) {
          if (readsPodIP(e)) {
            podIPRefs[nameAt(&e)] = e;
          }
        }
      }
      json::array env;
      for (const auto& v : resolved->vars) {
        if (auto it = podIPRefs.find(v.name); it != podIPRefs.end()) {
          env.push_back(it->second);
        } else {
          env.push_back(json::object{{"name", v.name}, {"value", v.value}});
        }
      }
      c.as_object().erase("envFrom");
      if (env.empty()) {
        c.as_object().erase("env");
      } else {
        c.as_object()["env"] = std::move(env);
      }
    }
  }
  co_return out;
}

}  // namespace burstlet::pod
