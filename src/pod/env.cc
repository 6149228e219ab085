#include "pod/env.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <boost/json/serialize.hpp>
#include <cstdint>
#include <map>
#include <utility>

#include "common/base64.h"
#include "common/quantity.h"
#include "kube/json_path.h"

namespace burstlet::pod {

namespace {

namespace json = boost::json;
using kube::arrayOf;
using kube::boolOf;
using kube::child;
using kube::objectOf;
using kube::path;
using kube::stringOf;

// A quantity field: the API writes strings, but accepts (and a hand-made object may hold)
// plain numbers. nullopt when `v` is null.
Result<std::optional<Quantity>> quantityOf(const json::value* v) {
  if (v == nullptr || v->is_null()) {
    return std::optional<Quantity>();
  }
  Result<Quantity> q =
      v->is_string() ? Quantity::parse(v->get_string()) : Quantity::parse(json::serialize(*v));
  if (!q.ok()) {
    return std::move(q).error();
  }
  return std::optional<Quantity>(*q);
}

Error configError(ErrorCode code, std::string message) {
  return Error::make(code, std::string(kCreateContainerConfigError), std::move(message));
}

bool isClassicEnvVarName(std::string_view name) {
  const auto leading = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_';
  };
  if (name.empty() || !leading(name[0])) {
    return false;
  }
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return leading(c) || (c >= '0' && c <= '9'); });
}

bool isRelaxedEnvVarName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(),
                                      [](char c) { return c >= ' ' && c <= '~' && c != '='; });
}

int ipFamily(const std::string& ip) {
  std::array<unsigned char, sizeof(in6_addr)> buf{};
  if (inet_pton(AF_INET, ip.c_str(), buf.data()) == 1) {
    return 4;
  }
  if (inet_pton(AF_INET6, ip.c_str(), buf.data()) == 1) {
    return 6;
  }
  return 0;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) {
      out += separator;
    }
    out += p;
  }
  return out;
}

// Addresses from a pod status list ([{"ip": "10.0.0.1"}, ...]), else from the single field.
std::vector<std::string> statusIPs(const json::object* status, std::string_view listKey,
                                   std::string_view singleKey) {
  std::vector<std::string> ips;
  if (const json::array* list = arrayOf(child(status, listKey))) {
    for (const auto& entry : *list) {
      const std::string_view ip = stringOf(child(&entry, "ip"));
      if (!ip.empty()) {
        ips.emplace_back(ip);
      }
    }
  }
  if (ips.empty()) {
    const std::string_view ip = stringOf(child(status, singleKey));
    if (!ip.empty()) {
      ips.emplace_back(ip);
    }
  }
  return ips;
}

// Variables in first-definition order, last value winning.
class OrderedEnv {
 public:
  void set(std::string_view name, std::string value) {
    if (auto it = index_.find(name); it != index_.end()) {
      vars_[it->second].value = std::move(value);
      return;
    }
    index_.emplace(std::string(name), vars_.size());
    vars_.push_back(EnvVar{std::string(name), std::move(value)});
  }
  const std::string* find(std::string_view name) const {
    auto it = index_.find(name);
    return it != index_.end() ? &vars_[it->second].value : nullptr;
  }
  const std::vector<EnvVar>& vars() const { return vars_; }
  std::vector<EnvVar> take() && { return std::move(vars_); }

 private:
  std::vector<EnvVar> vars_;
  std::map<std::string, size_t, std::less<>> index_;
};

struct ContainerRef {
  const json::object* container = nullptr;
  // Whether missing limits read as node allocatable. The kubelet defaults the app containers
  // and the container being resolved, not an init container that another one names.
  bool defaultsLimits = false;
};

ContainerRef findContainer(const json::object* spec, std::string_view name, bool withEphemeral) {
  const std::array<std::string_view, 3> lists{"containers", "initContainers",
                                              "ephemeralContainers"};
  for (size_t i = 0; i < (withEphemeral ? lists.size() : 2); ++i) {
    const json::array* list = arrayOf(child(spec, lists[i]));
    if (list == nullptr) {
      continue;
    }
    for (const auto& c : *list) {
      if (const json::object* o = c.if_object();
          o != nullptr && stringOf(child(o, "name")) == name) {
        return ContainerRef{o, i == 0};
      }
    }
  }
  return {};
}

class Resolver {
 public:
  Resolver(const json::object& pod, EnvSources& sources, const EnvOptions& options)
      : metadata_(objectOf(child(&pod, "metadata"))),
        spec_(objectOf(child(&pod, "spec"))),
        status_(objectOf(child(&pod, "status"))),
        ns_(stringOf(child(metadata_, "namespace"))),
        sources_(sources),
        options_(options) {}

  Result<EnvResult> resolve(std::string_view containerName) {
    const ContainerRef self = findContainer(spec_, containerName, true);
    if (self.container == nullptr) {
      return configError(ErrorCode::kInvalid,
                         fmt::format("container \"{}\" not found in pod {}/{}", containerName, ns_,
                                     stringOf(child(metadata_, "name"))));
    }
    self_ = self.container;
    serviceEnv_ = serviceEnvironment();

    EnvResult result;
    if (const json::array* envFrom = arrayOf(child(self_, "envFrom"))) {
      for (const auto& source : *envFrom) {
        if (const json::object* o = source.if_object()) {
          BURSTLET_RETURN_IF_ERROR(addEnvFrom(*o, result.events));
        }
      }
    }
    if (const json::array* env = arrayOf(child(self_, "env"))) {
      for (const auto& var : *env) {
        if (const json::object* o = var.if_object()) {
          BURSTLET_RETURN_IF_ERROR(addEnv(*o));
        }
      }
    }
    // Service variables never override what the container defines.
    for (const auto& var : serviceEnv_.vars()) {
      if (env_.find(var.name) == nullptr) {
        env_.set(var.name, var.value);
      }
    }
    result.vars = std::move(env_).take();
    return result;
  }

 private:
  OrderedEnv serviceEnvironment() {
    // By name, so that the output order does not depend on the lister's.
    std::map<std::string, json::value> byName;
    const auto add = [&](const std::vector<json::value>& services, bool masterOnly) {
      for (const auto& service : services) {
        const std::string_view name = stringOf(path(&service, {"metadata", "name"}));
        const std::string_view ip = stringOf(path(&service, {"spec", "clusterIP"}));
        if (ip.empty() || ip == "None") {
          continue;  // before shadowing: a headless "kubernetes" does not hide the master
        }
        if (!masterOnly || name == "kubernetes") {
          byName[std::string(name)] = service;
        }
      }
    };
    const std::vector<json::value> defaults = sources_.services("default");
    add(defaults, true);
    if (boolOf(child(spec_, "enableServiceLinks"), true)) {
      // A Service named "kubernetes" in the pod's own namespace shadows the master, as in the
      // kubelet.
      add(ns_ == "default" ? defaults : sources_.services(std::string(ns_)), false);
    }
    std::vector<json::value> ordered;
    ordered.reserve(byName.size());
    for (auto& [name, service] : byName) {
      ordered.push_back(std::move(service));
    }
    OrderedEnv env;
    for (auto& var : serviceLinkVariables(ordered)) {
      env.set(var.name, std::move(var.value));
    }
    return env;
  }

  // A cached lookup: the kubelet reads each referenced object once per container.
  const json::object* lookup(bool secret, const std::string& name) {
    auto& cache = secret ? secrets_ : configMaps_;
    auto it = cache.find(name);
    if (it == cache.end()) {
      const std::string ns(ns_);
      it = cache.emplace(name, secret ? sources_.secret(ns, name) : sources_.configMap(ns, name))
               .first;
    }
    return it->second ? &*it->second : nullptr;
  }

  Error notFound(bool secret, std::string_view name) const {
    return configError(ErrorCode::kNotFound,
                       fmt::format("{} \"{}\" not found", secret ? "secret" : "configmap", name));
  }

  Error keyNotFound(bool secret, std::string_view key, std::string_view name) const {
    return configError(ErrorCode::kNotFound,
                       fmt::format("couldn't find key {} in {} {}/{}", key,
                                   secret ? "Secret" : "ConfigMap", ns_, name));
  }

  // The value of `key` in a ConfigMap's data or a Secret's (decoded) data; nullopt when absent.
  // ConfigMap binaryData is not environment material, as in the kubelet.
  Result<std::optional<std::string>> dataValue(const json::object& object, bool secret,
                                               std::string_view key, std::string_view name) const {
    const json::value* v = path(&object, {"data", key});
    const json::string* raw = v != nullptr ? v->if_string() : nullptr;
    if (raw == nullptr) {
      return std::optional<std::string>();
    }
    if (!secret) {
      return std::optional<std::string>(std::string(*raw));
    }
    std::optional<std::string> decoded = base64Decode(*raw);
    if (!decoded) {
      return configError(ErrorCode::kInvalid,
                         fmt::format("couldn't decode key {} in Secret {}/{}", key, ns_, name));
    }
    return decoded;
  }

  Status addEnvFrom(const json::object& source, std::vector<EnvEvent>& events) {
    const json::object* ref = objectOf(child(&source, "configMapRef"));
    bool secret = false;
    if (ref == nullptr) {
      ref = objectOf(child(&source, "secretRef"));
      secret = true;
    }
    if (ref == nullptr) {
      return okStatus();
    }
    const std::string name(stringOf(child(ref, "name")));
    const json::object* object = lookup(secret, name);
    if (object == nullptr) {
      if (boolOf(child(ref, "optional"), false)) {
        return okStatus();
      }
      return notFound(secret, name);
    }
    const json::object* data = objectOf(child(object, "data"));
    if (data == nullptr) {
      return okStatus();
    }
    std::vector<std::string_view> keys;
    for (const auto& entry : *data) {
      if (entry.value().is_string()) {
        keys.push_back(entry.key());
      }
    }
    std::sort(keys.begin(), keys.end());
    const std::string_view prefix = stringOf(child(&source, "prefix"));
    std::vector<std::string> invalid;
    for (const std::string_view key : keys) {
      std::string varName = std::string(prefix) + std::string(key);
      if (options_.relaxedNames ? !isRelaxedEnvVarName(varName) : !isClassicEnvVarName(varName)) {
        invalid.push_back(std::move(varName));
        continue;
      }
      auto value = dataValue(*object, secret, key, name);
      if (!value.ok()) {
        return std::move(value).error();
      }
      env_.set(varName, std::move(**value));
    }
    if (!invalid.empty()) {
      std::sort(invalid.begin(), invalid.end());
      events.push_back(EnvEvent{
          kube::EventType::kWarning, std::string(kInvalidEnvironmentVariableNames),
          fmt::format("Keys [{}] from the EnvFrom {} {}/{} were skipped since they are considered "
                      "invalid environment variable names.",
                      join(invalid, ", "), secret ? "secret" : "configMap", ns_, name)});
    }
    return okStatus();
  }

  Status addEnv(const json::object& var) {
    const std::string_view name = stringOf(child(&var, "name"));
    const std::string_view value = stringOf(child(&var, "value"));
    if (!value.empty()) {
      env_.set(name, expandVariables(value, [this](std::string_view ref) -> const std::string* {
                 const std::string* found = env_.find(ref);
                 return found != nullptr ? found : serviceEnv_.find(ref);
               }));
      return okStatus();
    }
    const json::object* from = objectOf(child(&var, "valueFrom"));
    if (from == nullptr) {
      env_.set(name, "");
      return okStatus();
    }
    auto resolved = valueFrom(*from);
    if (!resolved.ok()) {
      return std::move(resolved).error();
    }
    // An optional reference that does not resolve leaves any earlier definition in place.
    if (resolved->has_value()) {
      env_.set(name, std::move(**resolved));
    }
    return okStatus();
  }

  Result<std::optional<std::string>> valueFrom(const json::object& from) {
    if (const json::object* ref = objectOf(child(&from, "fieldRef"))) {
      auto v = fieldRef(*ref);
      if (!v.ok()) {
        return std::move(v).error();
      }
      return std::optional<std::string>(std::move(*v));
    }
    if (const json::object* ref = objectOf(child(&from, "resourceFieldRef"))) {
      auto v = resourceFieldRef(*ref);
      if (!v.ok()) {
        return std::move(v).error();
      }
      return std::optional<std::string>(std::move(*v));
    }
    const json::object* ref = objectOf(child(&from, "configMapKeyRef"));
    const bool secret = ref == nullptr;
    if (secret) {
      ref = objectOf(child(&from, "secretKeyRef"));
    }
    if (ref == nullptr) {
      if (from.if_contains("fileKeyRef") != nullptr) {
        return configError(ErrorCode::kInvalid,
                           "fileKeyRef is not supported: env files live on the backend's volumes");
      }
      return std::optional<std::string>(std::string());
    }
    const std::string name(stringOf(child(ref, "name")));
    const std::string_view key = stringOf(child(ref, "key"));
    const bool optional = boolOf(child(ref, "optional"), false);
    const json::object* object = lookup(secret, name);
    if (object == nullptr) {
      if (optional) {
        return std::optional<std::string>();
      }
      return notFound(secret, name);
    }
    auto value = dataValue(*object, secret, key, name);
    if (!value.ok() || value->has_value() || optional) {
      return value;
    }
    return keyNotFound(secret, key, name);
  }

  Result<std::string> fieldRef(const json::object& ref) const {
    const std::string_view version = stringOf(child(&ref, "apiVersion"));
    if (!version.empty() && version != "v1") {
      return configError(ErrorCode::kInvalid, fmt::format("unsupported pod version: {}", version));
    }
    const std::string_view path = stringOf(child(&ref, "fieldPath"));
    constexpr std::string_view kClose = "']";
    if (path.size() > kClose.size() && path.substr(path.size() - kClose.size()) == kClose) {
      const std::string_view inner = path.substr(0, path.size() - kClose.size());
      const size_t open = inner.find("['");
      if (open != std::string_view::npos && open > 0) {
        const std::string_view base = inner.substr(0, open);
        const std::string_view key = inner.substr(open + 2);
        if (base == "metadata.labels" || base == "metadata.annotations") {
          return std::string(stringOf(kube::path(metadata_, {base.substr(9), key})));
        }
        return configError(ErrorCode::kInvalid,
                           fmt::format("field label does not support subscript: {}", path));
      }
    }
    if (path == "metadata.name" || path == "metadata.namespace" || path == "metadata.uid") {
      return std::string(stringOf(child(metadata_, path.substr(9))));
    }
    if (path == "spec.nodeName" || path == "spec.host") {
      return std::string(stringOf(child(spec_, "nodeName")));
    }
    if (path == "spec.serviceAccountName") {
      return std::string(stringOf(child(spec_, "serviceAccountName")));
    }
    if (path == "status.hostIP" || path == "status.hostIPs") {
      const std::vector<std::string> ips = hostIPs();
      if (ips.empty()) {
        return configError(ErrorCode::kUnavailable,
                           fmt::format("{}: the node's address is not known yet", path));
      }
      return path == "status.hostIP" ? ips.front() : join(ips, ",");
    }
    if (path == "status.podIP" || path == "status.podIPs") {
      const std::vector<std::string> ips = podIPs();
      if (path == "status.podIPs") {
        return join(ips, ",");
      }
      return ips.empty() ? std::string() : ips.front();
    }
    // Paths the downward API knows but does not offer to environment variables.
    if (path == "metadata.labels" || path == "metadata.annotations" ||
        path == "spec.restartPolicy" || path == "spec.schedulerName" || path == "status.phase") {
      return configError(ErrorCode::kInvalid, fmt::format("unsupported fieldPath: {}", path));
    }
    return configError(ErrorCode::kInvalid, fmt::format("field label not supported: {}", path));
  }

  std::vector<std::string> hostIPs() const {
    return !options_.hostIPs.empty() ? options_.hostIPs : statusIPs(status_, "hostIPs", "hostIP");
  }

  // One address per family, the node's primary family first (the kubelet's order).
  std::vector<std::string> podIPs() const {
    const std::vector<std::string> all =
        !options_.podIPs.empty() ? options_.podIPs : statusIPs(status_, "podIPs", "podIP");
    const std::vector<std::string> host = hostIPs();
    const int primary = !host.empty() && ipFamily(host.front()) == 6 ? 6 : 4;
    std::vector<std::string> sorted;
    for (const int family : {primary, 10 - primary}) {
      auto it = std::find_if(all.begin(), all.end(),
                             [&](const std::string& ip) { return ipFamily(ip) == family; });
      if (it != all.end()) {
        sorted.push_back(*it);
      }
    }
    return sorted;
  }

  // The limit the kubelet assumes for a container that sets none: the pod-level limit, else the
  // node's allocatable amount.
  Result<std::optional<Quantity>> defaultLimit(std::string_view resource) const {
    if (resource != "cpu" && resource != "memory" && resource != "ephemeral-storage") {
      return std::optional<Quantity>();
    }
    auto allocatable = quantityOf(child(&options_.nodeAllocatable, resource));
    if (!allocatable.ok() || !allocatable->has_value() || resource == "ephemeral-storage") {
      return allocatable;
    }
    auto podLimit = quantityOf(path(spec_, {"resources", "limits", resource}));
    if (!podLimit.ok() || (podLimit->has_value() && !(*podLimit)->isZero())) {
      return podLimit;
    }
    return allocatable;
  }

  Result<std::string> resourceFieldRef(const json::object& ref) const {
    const std::string_view containerName = stringOf(child(&ref, "containerName"));
    ContainerRef target{self_, true};
    if (!containerName.empty()) {
      target = findContainer(spec_, containerName, false);
      if (target.container == nullptr) {
        return configError(ErrorCode::kInvalid,
                           fmt::format("container {} not found", containerName));
      }
    }
    const std::string_view resource = stringOf(child(&ref, "resource"));
    const size_t dot = resource.find('.');
    const std::string_view kind = resource.substr(0, dot == std::string_view::npos ? 0 : dot);
    const std::string_view name =
        dot == std::string_view::npos ? std::string_view() : resource.substr(dot + 1);
    const bool isCpu = name == "cpu";
    const bool supported = isCpu || name == "memory" || name == "ephemeral-storage" ||
                           name.substr(0, 10) == "hugepages-";
    if ((kind != "limits" && kind != "requests") || !supported) {
      return configError(ErrorCode::kInvalid,
                         fmt::format("unsupported container resource : {}", resource));
    }

    auto divisor = quantityOf(child(&ref, "divisor"));
    if (!divisor.ok()) {
      return configError(ErrorCode::kInvalid, std::move(divisor).error().message);
    }
    const Quantity one = Quantity::fromValue(1);
    const Quantity by = divisor->has_value() && !(*divisor)->isZero() ? **divisor : one;

    auto amount = quantityOf(path(target.container, {"resources", kind, name}));
    if (!amount.ok()) {
      return configError(ErrorCode::kInvalid, std::move(amount).error().message);
    }
    if (kind == "limits" && target.defaultsLimits &&
        (!amount->has_value() || (*amount)->isZero())) {
      amount = defaultLimit(name);
      if (!amount.ok()) {
        return configError(ErrorCode::kInvalid, std::move(amount).error().message);
      }
    }
    const Quantity value = amount->value_or(Quantity());

    const int64_t numerator = isCpu ? value.milliValue() : value.value();
    const int64_t denominator = isCpu ? by.milliValue() : by.value();
    if (denominator <= 0) {
      return configError(ErrorCode::kInvalid,
                         fmt::format("invalid divisor {} for {}", by.toString(), resource));
    }
    // Ceiling, as the kubelet's math.Ceil on the quotient.
    int64_t quotient = numerator / denominator;
    if (numerator % denominator != 0 && numerator > 0) {
      ++quotient;
    }
    return std::to_string(quotient);
  }

  const json::object* metadata_;
  const json::object* spec_;
  const json::object* status_;
  std::string_view ns_;
  EnvSources& sources_;
  const EnvOptions& options_;
  const json::object* self_ = nullptr;
  OrderedEnv env_;
  OrderedEnv serviceEnv_;
  std::map<std::string, std::optional<json::object>> configMaps_;
  std::map<std::string, std::optional<json::object>> secrets_;
};

}  // namespace

std::string expandVariables(std::string_view input,
                            const std::function<const std::string*(std::string_view)>& lookup) {
  std::string out;
  out.reserve(input.size());
  size_t i = 0;
  while (i < input.size()) {
    if (input[i] != '$' || i + 1 == input.size()) {
      out.push_back(input[i++]);
      continue;
    }
    const char next = input[i + 1];
    if (next == '$') {
      out.push_back('$');
      i += 2;
    } else if (next == '(') {
      const size_t close = input.find(')', i + 2);
      if (close == std::string_view::npos) {
        // Unterminated: keep "$(" and go on scanning after it.
        out.append("$(");
        i += 2;
        continue;
      }
      const std::string_view name = input.substr(i + 2, close - i - 2);
      if (const std::string* value = lookup(name)) {
        out.append(*value);
      } else {
        out.append(input.substr(i, close + 1 - i));
      }
      i = close + 1;
    } else {
      out.push_back('$');
      out.push_back(next);
      i += 2;
    }
  }
  return out;
}

Result<EnvResult> resolveEnvironment(const json::value& pod, std::string_view container,
                                     EnvSources& sources, const EnvOptions& options) {
  const json::object* object = pod.if_object();
  if (object == nullptr) {
    return configError(ErrorCode::kInvalid, "pod is not a JSON object");
  }
  Resolver resolver(*object, sources, options);
  return resolver.resolve(container);
}

}  // namespace burstlet::pod
