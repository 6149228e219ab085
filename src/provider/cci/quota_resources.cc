#include "provider/cci/quota_resources.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <optional>
#include <string_view>

#include "kube/informer.h"
#include "kube/json_path.h"
#include "provider/cci/normalize.h"

namespace burstlet::provider::cci {

namespace json = boost::json;

namespace {

// A quota key and whether it measures limits (else requests, or the pod count).
struct QuotaKey {
  std::string_view name;
  bool limits;
};

// The keys that limit each NodeResource (Kubernetes' "compute resource quota" and object count
// names; "cpu" and "memory" mean their requests).
const std::array<std::vector<QuotaKey>, kNodeResources>& quotaKeys() {
  static const std::array<std::vector<QuotaKey>, kNodeResources> keys = {{
      {{"cpu", false}, {"requests.cpu", false}, {"limits.cpu", true}},
      {{"memory", false}, {"requests.memory", false}, {"limits.memory", true}},
      {{"pods", false}, {"count/pods", false}},
      {{"ephemeral-storage", false},
       {"requests.ephemeral-storage", false},
       {"limits.ephemeral-storage", true}},
  }};
  return keys;
}

// The container resource names of the resources a pod asks for (pods: none).
constexpr std::array<std::string_view, kNodeResources> kContainerResource = {"cpu", "memory", "",
                                                                             "ephemeral-storage"};

// NodeCapacity's members in NodeResource order.
constexpr std::array<std::string NodeCapacity::*, kNodeResources> kFields = {
    &NodeCapacity::cpu, &NodeCapacity::memory, &NodeCapacity::pods,
    &NodeCapacity::ephemeralStorage};

// A quantity field of an object the API server stored (valid); 0 when absent or unreadable.
Quantity quantityAt(const json::value* v) {
  auto q = resourceQuantity(v, "");
  return q.ok() && q->has_value() ? **q : Quantity();
}

// A pod's request or limit (`kind`) of `resource`: max(sum of app containers, largest init
// container) plus the pod's overhead.
Quantity podValue(const json::value& pod, std::string_view kind, std::string_view resource) {
  Quantity sum;
  if (const auto* list = kube::arrayAt(pod, {"spec", "containers"})) {
    for (const auto& c : *list) {
      sum += quantityAt(kube::at(c, {"resources", kind, resource}));
    }
  }
  Quantity init;
  if (const auto* list = kube::arrayAt(pod, {"spec", "initContainers"})) {
    for (const auto& c : *list) {
      init = std::max(init, quantityAt(kube::at(c, {"resources", kind, resource})));
    }
  }
  return std::max(sum, init) + quantityAt(kube::at(pod, {"spec", "overhead", resource}));
}

bool scoped(const json::value& quota) {
  const auto* scopes = kube::arrayAt(quota, {"spec", "scopes"});
  const auto* selector = kube::at(quota, {"spec", "scopeSelector"});
  return (scopes != nullptr && !scopes->empty()) || (selector != nullptr && !selector->is_null());
}

// The quota's limits: what the quota controller enforces (status.hard) once it has seen the
// quota, the spec until then.
const json::object* hardOf(const json::value& quota) {
  if (const auto* h = kube::at(quota, {"status", "hard"}); h != nullptr && h->is_object()) {
    return &h->as_object();
  }
  const auto* h = kube::at(quota, {"spec", "hard"});
  return h != nullptr ? h->if_object() : nullptr;
}

}  // namespace

PodUsage& PodUsage::operator+=(const PodUsage& other) {
  for (size_t i = 0; i < kNodeResources; ++i) {
    requests[i] += other.requests[i];
    limits[i] += other.limits[i];
  }
  return *this;
}

PodUsage& PodUsage::operator-=(const PodUsage& other) {
  for (size_t i = 0; i < kNodeResources; ++i) {
    requests[i] -= other.requests[i];
    limits[i] -= other.limits[i];
  }
  return *this;
}

PodUsage podUsage(const json::value& pod) {
  PodUsage u;
  const std::string phase = kube::stringAt(pod, {"status", "phase"});
  if (phase == "Succeeded" || phase == "Failed") {
    return u;
  }
  for (size_t i = 0; i < kNodeResources; ++i) {
    if (static_cast<NodeResource>(i) == NodeResource::kPods) {
      u.requests[i] = Quantity::fromValue(1);
      u.limits[i] = Quantity::fromValue(1);
      continue;
    }
    u.requests[i] = podValue(pod, "requests", kContainerResource[i]);
    u.limits[i] = podValue(pod, "limits", kContainerResource[i]);
  }
  return u;
}

NodeResources quotaResources(const NodeCapacity& cap, const std::vector<json::value>& quotas,
                             const PodUsage& own, std::vector<std::string>* ignored) {
  std::array<std::optional<Quantity>, kNodeResources> capQ;
  std::array<Quantity, kNodeResources> limit;  // capacity
  std::array<Quantity, kNodeResources> avail;  // allocatable
  for (size_t i = 0; i < kNodeResources; ++i) {
    if (auto q = Quantity::parse(cap.*kFields[i]); q.ok()) {
      capQ[i] = *q;
      limit[i] = *q;
      avail[i] = *q;
    }
  }
  const auto report = [ignored](std::string line) {
    if (ignored != nullptr) {
      ignored->push_back(std::move(line));
    }
  };
  for (const auto& quota : quotas) {
    const std::string name(kube::objectName(quota));
    if (scoped(quota)) {
      report(fmt::format("quota {}: has scopes, so it limits only some pods: not counted", name));
      continue;
    }
    const json::object* hard = hardOf(quota);
    const auto* usedValue = kube::at(quota, {"status", "used"});
    const json::object* used = usedValue != nullptr ? usedValue->if_object() : nullptr;
    if (hard == nullptr) {
      continue;
    }
    for (size_t i = 0; i < kNodeResources; ++i) {
      if (!capQ[i]) {
        continue;
      }
      for (const auto& key : quotaKeys()[i]) {
        const auto* h = hard->if_contains(key.name);
        if (h == nullptr) {
          continue;
        }
        auto hq = resourceQuantity(h, std::string(key.name));
        if (!hq.ok() || !hq->has_value()) {
          report(fmt::format("quota {}: hard {} {} is not a quantity: not counted", name, key.name,
                             json::serialize(*h)));
          continue;
        }
        limit[i] = std::min(limit[i], **hq);
        Quantity u;
        if (const auto* uv = used != nullptr ? used->if_contains(key.name) : nullptr) {
          auto uq = resourceQuantity(uv, std::string(key.name));
          if (uq.ok() && uq->has_value()) {
            u = **uq;
          } else {
            report(fmt::format("quota {}: used {} {} is not a quantity: counted as 0", name,
                               key.name, json::serialize(*uv)));
          }
        }
        // status.used counts this node's pods too: only the rest is out of its reach.
        Quantity others = u - (key.limits ? own.limits[i] : own.requests[i]);
        if (others.sign() < 0) {
          others = Quantity();
        }
        avail[i] = std::min(avail[i], **hq - others);
      }
    }
  }
  NodeResources out{cap, cap};
  for (size_t i = 0; i < kNodeResources; ++i) {
    if (!capQ[i]) {
      continue;
    }
    if (avail[i].sign() < 0) {
      avail[i] = Quantity();
    }
    // What the node's own pods take stays allocatable: a quota lowered under them must not show
    // the node overcommitted. Capacity holds allocatable.
    avail[i] = std::max(avail[i], own.requests[i]);
    limit[i] = std::max(limit[i], avail[i]);
    // The configured text when nothing lowered it, so the fallback reads as configured.
    out.capacity.*kFields[i] = limit[i] == *capQ[i] ? cap.*kFields[i] : limit[i].toString();
    out.allocatable.*kFields[i] = avail[i] == *capQ[i] ? cap.*kFields[i] : avail[i].toString();
  }
  return out;
}

}  // namespace burstlet::provider::cci
