// Pure translation between the cluster's objects and their backend copies. Every object burstlet
// writes lives in one backend namespace, so names are rewritten (backendName, copyName) and the
// source's identity travels in our labels and annotations; toSourcePod reverses the pod
// translation so the controllers see the pod in the cluster's shape (provider.h).
//
// What stays cluster-side: scheduling (nodeName, affinity, tolerations, priority, ...), the
// service account (its token is signed by the cluster and means nothing to the backend), readiness
// gates (the cluster's controllers set them on the cluster's pod). Ephemeral containers are not
// in the created pod (the API refuses them on create): updatePod adds them later through the
// pod's ephemeralcontainers subresource (toBackendEphemeralContainers). dnsPolicy is kept as
// written: ClusterFirst resolves through the backend's DNS, which is what a pod running there can
// reach.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/result.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

// Every object burstlet creates in the backend carries these two labels: the provider lists its
// own objects with them and never touches others.
inline constexpr const char* kManagedByLabel = "burstlet.io/managed-by";
inline constexpr const char* kManagedByValue = "burstlet";
// Value: safeLabelValue(virtual node name).
inline constexpr const char* kNodeLabel = "burstlet.io/node";
// Value: the source object's uid (a uid is always a valid label value).
inline constexpr const char* kSourceUidLabel = "burstlet.io/source-uid";

// The source object's identity, in full (label values are limited to 63 characters).
inline constexpr const char* kSourceNamespaceAnnotation = "burstlet.io/source-namespace";
inline constexpr const char* kSourceNameAnnotation = "burstlet.io/source-name";
inline constexpr const char* kSourceUidAnnotation = "burstlet.io/source-uid";
// On copies: "ConfigMap", "Secret", "PersistentVolumeClaim", "PersistentVolume".
inline constexpr const char* kSourceKindAnnotation = "burstlet.io/source-kind";
// On backend pods: the source's container names, {"initContainers":[..],"containers":[..]}, so
// that containers the backend injects can be told apart without the cluster's spec.
inline constexpr const char* kContainersAnnotation = "burstlet.io/containers";
// The label and annotation keys the backend pod got from its source pod, as JSON
// {"labels":[...],"annotations":[...]}: keys the backend adds itself (a webhook, CCI) are
// neither shown as the pod's nor removed by an update.
inline constexpr const char* kSourceKeysAnnotation = "burstlet.io/source-keys";
// Annotations the resource normalization writes on the backend pod (normalize.h); not the
// source's, so hidden from the controllers.
inline constexpr std::string_view kBurstPodAnnotationPrefix = "virtual-kubelet.cci.io/burst-pod-";

// The backend name of the source pod `ns`/`name`: a DNS-1123 label of at most 63 characters,
// the same on every run, and distinct for distinct (ns, name) pairs: "<ns>-<name>" sanitized and
// cut to 52 characters, then "-" and the first 10 hex digits of sha256("<ns>/<name>"). Names with
// dots or capitals are sanitized for the readable part only; the hash keeps them apart. `ns` may
// be empty (cluster-scoped sources). A pod runs on one virtual node, so its name needs no node.
std::string backendName(std::string_view ns, std::string_view name);

// The backend name of the copy of ConfigMap, Secret or PersistentVolumeClaim `ns`/`name` made by
// virtual node `node`: the same readable part as backendName, then "-" and the first 10 hex
// digits of sha256("<node>/<ns>/<name>"); a DNS-1123 label of at most 63 characters, the same on
// every run. Each node has copies of its own: several virtual nodes (burstlet processes with the
// same cluster id) share one backend namespace, and each refreshes and sweeps only the copies
// labelled with its node (kNodeLabel), so a copy shared by two nodes would be deleted by one while
// the other's pods still mount it, and never refreshed by the other. Every place that names a
// copy (the copy itself, the pod's references to it, the sweep, the refresh) uses this function.
std::string copyName(std::string_view node, std::string_view ns, std::string_view name);

// The Secret node `node` keeps for its pods' injected containers (Provider::putNodeSecret):
// "burstlet-<purpose>-<hash>", never a copy's name. Labelled kNodeSecretLabel, not kNodeLabel,
// so that the copy sweep never sees it.
std::string nodeSecretName(std::string_view node, std::string_view purpose);
inline constexpr const char* kNodeSecretLabel = "burstlet.io/node-secret";
// The ConfigMap that says virtual node `node` uses the backend namespace, made when its provider
// starts and deleted by its `burstlet cleanup` (cleanup.h), so that another node's cleanup leaves
// the namespace while this node runs, pods or not: "burstlet-node-<node>-<hash>", never a copy's
// name. Labelled kNodeMarkerLabel (safeLabelValue of the node), not kNodeLabel: the copy sweep
// never sees it. Its data holds the node's full name under key "node".
std::string nodeMarkerName(std::string_view node);
inline constexpr const char* kNodeMarkerLabel = "burstlet.io/node-marker";
// The containers burstlet injected into a backend pod (provider::kInjectedKey), comma-separated:
// their Warning events reach the cluster pod (events.h), other non-source containers' do not.
inline constexpr const char* kInjectedContainersAnnotation = "burstlet.io/injected-containers";
// Whether `name` is a container burstlet injected into `backendPod`.
bool isInjectedContainer(const boost::json::value& backendPod, std::string_view name);

// The backend PersistentVolume that node `node` makes for the cluster PV `clusterPvName`: PVs are
// cluster-scoped in the backend too, so the name carries the backend namespace:
// "<backendNamespace>-<copyName(node, "", pv)>" (a DNS subdomain of at most 127 characters). Per
// node like the claim copies it is bound to.
std::string backendPersistentVolumeName(std::string_view backendNamespace, std::string_view node,
                                        std::string_view clusterPvName);

// `value` itself when it is a valid label value, else a valid one derived from it the same way
// as backendName (readable prefix + hash). Used for kNodeLabel: node names may be DNS subdomains
// of up to 253 characters. List selectors must use the same function.
std::string safeLabelValue(std::string_view value);

struct TranslateOptions {
  std::string backendNamespace;
  std::string nodeName;  // the virtual node
  std::string nodeIP;    // the virtual node's address: the pods' hostIP
};

// Whether toBackendPod keeps the pod spec field `key` (a top-level key of spec); the others
// belong to the cluster and never reach the backend.
bool keptSpecField(std::string_view key);

// The backend pod for a (prepared: environment resolved) cluster pod. kInvalid "InvalidPod" when
// the pod has no namespace or name.
Result<boost::json::value> toBackendPod(const boost::json::value& clusterPod,
                                        const TranslateOptions& options);

// The pod's ephemeral containers (kubectl debug) as the backend gets them: translated like its
// containers in toBackendPod (mounts of the volumes toBackendPod drops removed, ConfigMap and
// Secret references named as this node's copies), without resources, which the API refuses on
// ephemeral containers (they share the pod's). Empty when the pod has none.
boost::json::array toBackendEphemeralContainers(const boost::json::value& clusterPod,
                                                const TranslateOptions& options);

// Source names (in the pod's namespace) of the objects a pod needs copied to the backend.
struct Dependencies {
  std::set<std::string> configMaps;
  std::set<std::string> secrets;
  std::set<std::string> claims;  // PersistentVolumeClaims
};
// Read from volumes (with projected sources), env valueFrom, envFrom and imagePullSecrets of all
// containers (init, app, ephemeral). Volumes that toBackendPod drops (service account token
// volumes) contribute nothing. Applied to a backend pod it gives the backend names.
Dependencies dependenciesOf(const boost::json::value& pod);

// Backend copies of a cluster ConfigMap / Secret: same data, binaryData and immutable flag, our
// labels and annotations only (the source's annotations may hold the data in plain text, e.g.
// kubectl's last-applied-configuration). Secret types that depend on cluster-side objects
// (service-account-token, bootstrap tokens) or that the backend may not know (custom types)
// become Opaque. kInvalid when the object has no namespace or name.
Result<boost::json::value> toBackendConfigMap(const boost::json::value& clusterConfigMap,
                                              const TranslateOptions& options);
Result<boost::json::value> toBackendSecret(const boost::json::value& clusterSecret,
                                           const TranslateOptions& options);
// Whether `backendCopy` already holds what `clusterObject` (ConfigMap or Secret) would be
// copied as: data, binaryData, type, immutable, and source uid. False means update (or, when
// the copy is immutable, delete and recreate).
bool sameContent(const boost::json::value& backendCopy, const boost::json::value& clusterObject);

// The Secret type a cluster Secret's copy gets.
std::string backendSecretType(std::string_view clusterType);

// The source pod a backend pod stands for; nullopt when the pod is not ours (no managed-by
// label or no source annotations).
std::optional<PodRef> sourceRefOf(const boost::json::value& backendPod);

// The source's label and annotation keys recorded on a backend pod (kSourceKeysAnnotation);
// nullopt when absent or unreadable.
struct SourceKeys {
  std::set<std::string> labels;
  std::set<std::string> annotations;
};
std::optional<SourceKeys> sourceKeysOf(const boost::json::value& backendPod);

// The backend pod as the Provider seam returns it: the source's namespace, name and uid; labels
// and annotations as the source has them (ours and the normalization's removed); spec containers
// and initContainers (name, image) of the source's containers only, and ephemeralContainers
// (name, image) the backend runs, with ephemeralContainerStatuses; the backend's status, with
// containers the backend injected left out and hostIP/hostIPs the virtual node's. qosClass and
// observedGeneration are left out: the cluster computed its own, the backend's describe another
// object. Container statuses keep what a kubelet reports of the running container (state,
// restarts, image, volumeMounts, user, allocatedResourcesStatus, stopSignal) but not `resources`
// nor `allocatedResources`: on the backend they are the normalized pod's sizes (normalize.h), and
// the cluster's scheduler and ResourceQuota count a pod as the larger of its spec and these, so
// passing them on would charge the cluster for CCI's rounding; what was allocated is the cluster
// spec's, for the pod controller to fill in. Conditions and the pod's reason/message are the
// backend's as they are (PodScheduled too: the pod controller keeps only the kubelet's own
// conditions). `clusterSpec` (the source pod's spec, or the whole source pod; may be null) names
// the source's containers when the backend pod lacks kContainersAnnotation.
boost::json::value toSourcePod(const boost::json::value& backendPod,
                               const boost::json::value* clusterSpec,
                               const TranslateOptions& options);

// Whether `name`, a container of list `list` ("initContainers", "containers" or
// "ephemeralContainers") of `backendPod`, is one of the source pod's: false for a container the
// backend injected. True when the backend pod does not record the source's container names.
bool isSourceContainer(const boost::json::value& backendPod, std::string_view list,
                       std::string_view name);

// A cluster SFS claim and its bound PV as a backend PV/PVC pair. The PV is pre-bound (claimRef)
// to the backend claim and always Retain: deleting the copy must never delete the user's file
// system. The claim keeps the PV's storageClassName (even empty, so no default class is applied)
// and names the PV (volumeName). kUnavailable "ClaimNotBound" while the claim is not bound to
// `clusterPv`; kInvalid "UnsupportedVolume" for a PV without a CSI source.
Result<boost::json::value> toBackendPersistentVolume(const boost::json::value& clusterPvc,
                                                     const boost::json::value& clusterPv,
                                                     const TranslateOptions& options);
Result<boost::json::value> toBackendPersistentVolumeClaim(const boost::json::value& clusterPvc,
                                                          const boost::json::value& clusterPv,
                                                          const TranslateOptions& options);

}  // namespace burstlet::provider::cci
