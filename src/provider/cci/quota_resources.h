// What the virtual node can really give, from the backend namespace's ResourceQuotas: the
// computation (no I/O), used by BackendQuota.
//
// The node's configured numbers (provider.cci cpu, memory, pods, ephemeralStorage) are a cap.
// Per resource, every quota key that limits it counts, each with the usage it measures:
//   cpu                cpu, requests.cpu (pod requests), limits.cpu (pod limits)
//   memory             memory, requests.memory, limits.memory
//   pods               pods, count/pods (pods that are not Succeeded or Failed)
//   ephemeral-storage  ephemeral-storage, requests.ephemeral-storage, limits.ephemeral-storage
// A quota's limit is its status.hard (what the quota controller enforces) when it has one, else
// its spec.hard; its usage is status.used, which counts every pod in the namespace: those of
// this node, of other virtual nodes sharing the namespace, and anyone else's.
//
//   capacity    = min(cap, every hard)
//   allocatable = min(capacity, every (hard - what others use)), where what others use is the
//                 quota's used less this node's own pods' usage (never below 0),
// so each node tells the scheduler what it can still get; allocatable is never below what this
// node's own pods request (a quota lowered under them does not make the node overcommitted),
// and capacity never below allocatable. Quotas with scopes or a scopeSelector count only some
// pods and are left out; a key whose quantity does not parse is left out (reported).
#pragma once

#include <array>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "common/quantity.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

// The resources of a node, in NodeCapacity's order.
enum class NodeResource { kCpu = 0, kMemory = 1, kPods = 2, kEphemeralStorage = 3 };
inline constexpr size_t kNodeResources = 4;

// What pods ask for, summed as a ResourceQuota counts it: per NodeResource, requests and limits
// (kPods: the number of pods, in both).
struct PodUsage {
  std::array<Quantity, kNodeResources> requests;
  std::array<Quantity, kNodeResources> limits;

  PodUsage& operator+=(const PodUsage& other);
  PodUsage& operator-=(const PodUsage& other);
  bool operator==(const PodUsage&) const = default;
};

// One backend pod's usage: per resource max(sum over app containers, largest init container)
// plus spec.overhead, as the scheduler and the quota count it; nothing for a pod that is
// Succeeded or Failed (the quota stops counting it). Quantities that do not parse count as 0.
PodUsage podUsage(const boost::json::value& pod);

// The node's resources under `quotas` (ResourceQuota objects) for a node capped at `cap` whose
// own pods use `own`. A cap that is not a quantity is kept as it is (the config check refuses
// one). What was left out, one line each ("quota q1: requests.cpu \"x\" is not a quantity"),
// goes to `ignored`.
NodeResources quotaResources(const NodeCapacity& cap, const std::vector<boost::json::value>& quotas,
                             const PodUsage& own, std::vector<std::string>* ignored);

}  // namespace burstlet::provider::cci
