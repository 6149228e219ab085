#include "provider/cci/limits.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <string>

#include "kube/json_path.h"
#include "provider/cci/normalize.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::child;

namespace {

const json::array& arrayAt(const json::value* v) {
  static const json::array kEmpty;
  const auto* a = v != nullptr ? v->if_array() : nullptr;
  return a != nullptr ? *a : kEmpty;
}

Error invalid(const char* reason, std::string message) {
  return Error::make(ErrorCode::kInvalid, reason, std::move(message));
}

constexpr const char* kLists[] = {"containers", "initContainers"};

void checkPrivileged(const json::value* spec, std::vector<Error>& out) {
  for (const char* list : kLists) {
    const auto& containers = arrayAt(child(spec, list));
    for (size_t i = 0; i < containers.size(); ++i) {
      const auto* p = child(child(&containers[i], "securityContext"), "privileged");
      if (p != nullptr && p->is_bool() && p->get_bool()) {
        out.push_back(invalid("PrivilegedContainer",
                              fmt::format("spec.{}[{}].securityContext.privileged: CCI runs no "
                                          "privileged container",
                                          list, i)));
      }
    }
  }
}

void checkProbes(const json::value* spec, const CciLimits& limits, std::vector<Error>& out) {
  for (const char* list : kLists) {
    const auto& containers = arrayAt(child(spec, list));
    for (size_t i = 0; i < containers.size(); ++i) {
      for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"}) {
        const auto* p = child(&containers[i], probe);
        if (p == nullptr || p->is_null()) {
          continue;
        }
        const std::string at = fmt::format("spec.{}[{}].{}", list, i, probe);
        if (!limits.allowStartupProbes && std::string_view(probe) == "startupProbe") {
          out.push_back(invalid("UnsupportedProbe",
                                at + ": CCI runs liveness and readiness probes only (by HTTP "
                                     "GET or exec), no startup probe"));
        } else if (!limits.allowTcpProbes && child(p, "tcpSocket") != nullptr &&
                   !child(p, "tcpSocket")->is_null()) {
          out.push_back(
              invalid("UnsupportedProbe", at + ".tcpSocket: CCI checks by HTTP GET or exec only"));
        }
      }
    }
  }
}

// A container's ephemeral storage: its limit, else its request (malformed: none; the API
// server has refused such a pod already).
Quantity storageOf(const json::value& container) {
  const auto* resources = child(&container, "resources");
  for (const char* kind : {"limits", "requests"}) {
    auto q = resourceQuantity(child(child(resources, kind), "ephemeral-storage"), kind);
    if (q.ok() && *q) {
      return **q;
    }
  }
  return Quantity::fromValue(0);
}

void checkEphemeralStorage(const json::value* spec, const Quantity& max, std::vector<Error>& out) {
  Quantity apps = Quantity::fromValue(0);
  for (const auto& c : arrayAt(child(spec, "containers"))) {
    apps += storageOf(c);
  }
  Quantity pod = apps;
  for (const auto& c : arrayAt(child(spec, "initContainers"))) {
    pod = std::max(pod, storageOf(c));
  }
  if (pod > max) {
    out.push_back(invalid(
        "EphemeralStorageTooLarge",
        fmt::format("spec.containers[*].resources: the pod asks for {} of ephemeral storage, CCI "
                    "gives a pod at most {} (mount an SFS claim for more)",
                    pod.toString(), max.toString())));
  }
}

}  // namespace

void checkLimits(const json::value* spec, const CciLimits& limits, std::vector<Error>& out) {
  const auto apps = arrayAt(child(spec, "containers")).size();
  if (limits.maxContainers > 0 && apps > static_cast<size_t>(limits.maxContainers)) {
    out.push_back(invalid("TooManyContainers",
                          fmt::format("spec.containers: {} containers, CCI runs at most {} in a "
                                      "pod",
                                      apps, limits.maxContainers)));
  }
  if (!limits.allowPrivileged) {
    checkPrivileged(spec, out);
  }
  checkProbes(spec, limits, out);
  if (limits.maxEphemeralStorage) {
    checkEphemeralStorage(spec, *limits.maxEphemeralStorage, out);
  }
}

}  // namespace burstlet::provider::cci
