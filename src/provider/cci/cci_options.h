// What the parts of the cci provider share: their settings (CciOptions), their counters
// (CciStats) and the labels that mark what burstlet owns on the backend.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/network_settings.h"
#include "provider/cci/translate.h"
#include "provider/cci/validate.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

// The provider's name: in the node's taint and labels, and in mirrored events.
inline constexpr const char* kCciProviderName = "cci";
// Ownership label of the backend namespace and of every object burstlet creates in it.
inline constexpr const char* kClusterIdLabel = "burstlet.io/cluster-id";
// The namespace annotation CCI reads to choose the flavor of its pods.
inline constexpr const char* kCciFlavorAnnotation = "namespace.kubernetes.io/flavor";

struct CciOptions {
  std::string clusterID;
  std::string backendNamespace;  // "cce-burst-<clusterID>" by default (see namespaceFor)
  std::string nodeName = "burstlet";
  std::string nodeIP;
  // CCI mode: the namespace carries the flavor annotation CCI requires, and holds a Network
  // made from `network` (which must then be set and valid).
  bool cci = false;
  std::string flavor = "general-computing";
  std::optional<NetworkSettings> network;
  ValidateOptions validate;
  // provider.cci.backendVersion: the Kubernetes release pods are checked against (api_fields.h);
  // "" reads it from the backend.
  std::string backendVersion;
  NodeCapacity capacity;
  // How often unreferenced copies are looked for.
  std::chrono::milliseconds sweepInterval{30'000};
};

// "<prefix><clusterID>", e.g. "cce-burst-3f2a".
std::string namespaceFor(std::string_view prefix, std::string_view clusterID);

// How the parts translate: into `o.backendNamespace`, for node `o.nodeName`.
TranslateOptions translateOptionsOf(const CciOptions& o);

// The label selector of the backend objects node `o.nodeName` owns.
std::string ourSelector(const CciOptions& o);

// Counted by the parts, read by anyone (atomics).
struct CciStats {
  std::atomic<uint64_t> podCreates{0};
  std::atomic<uint64_t> podDeletes{0};
  std::atomic<uint64_t> copyCreates{0};
  std::atomic<uint64_t> copyUpdates{0};
  std::atomic<uint64_t> copyDeletes{0};
  std::atomic<uint64_t> eventsMirrored{0};
};

// An informer on the objects of `resource` that node `o.nodeName` owns in the backend namespace.
std::unique_ptr<kube::Informer> ownInformer(kube::RestClient& backend, const CciOptions& o,
                                            const kube::ResourceRef& resource);

}  // namespace burstlet::provider::cci
