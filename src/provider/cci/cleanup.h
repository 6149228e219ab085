// `burstlet cleanup`: what uninstalling one virtual node removes from the backend.
//
// Several virtual nodes (burstlet processes with the same cluster id) share the backend namespace
// `<prefix><clusterID>`. Another node uses it while an object there carries that node's label
// (kNodeLabel, kNodeSecretLabel) or marker (kNodeMarkerLabel, translate.h nodeMarkerName, which
// every running node keeps there, pods or not). While one does, a node's cleanup removes only
// what that node made (its pods, waited for until gone; its ConfigMap, Secret and claim copies;
// its volumes; its node secrets; its marker, last) and leaves the namespace. The last node's
// cleanup, or one with `allNodes`, deletes the namespace (its Networks first), which takes
// everything in it: so a node whose burstlet still runs is uninstalled too (its creates fail
// from then on), as before there were several nodes. One node among others whose burstlet
// still runs makes its pods again: cleanup stops with kConflict "NodeStillRunning" and leaves
// the rest (stop the process, then run cleanup again).
//
// A namespace without burstlet's labels for the cluster is never touched (kForbidden
// NamespaceNotOwned). In CCI mode claims are unbound, never deleted plainly (storage_import.h):
// the file systems stay, and the namespace stays when a claim cannot be unbound. A node starting
// while the last one's cleanup deletes the namespace waits until it is gone and makes it again
// (backend_namespace.h).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "kube/rest.h"

namespace burstlet::provider::cci {

struct CleanupOptions {
  std::string ns;         // the backend namespace
  std::string clusterID;  // its owner, by label
  std::string nodeName;   // the virtual node being uninstalled
  bool allNodes = false;  // remove the namespace whatever other nodes use it
  bool cciApi = false;    // CCI mode: claims are unbound; there are no volumes
  // How long the node's pods and then the namespace may take to go (one deadline for both).
  std::chrono::milliseconds timeout{600'000};
};

struct CleanupReport {
  bool namespaceFound = false;    // the namespace existed when cleanup began
  bool namespaceDeleted = false;  // and cleanup deleted it; it is gone
  // This node's objects removed, by what they are ("pods", "ConfigMap copies", "Secret copies",
  // "claim copies", "volumes", "node secrets", "node marker"); kinds with none are left out.
  std::map<std::string, int> removed;
  // Other nodes found in the namespace: their names as their markers give them, else their label
  // values. Without allNodes, the namespace stayed for them.
  std::vector<std::string> otherNodes;
};

// Cleans up after node `options.nodeName` as described above; waits until its pods (and, when
// deleted, the namespace) are gone, forcing pods stuck terminating past their grace period.
// kTimeout "CleanupTimeout" after options.timeout. Idempotent: an absent namespace is success
// (outside CCI mode the volumes labelled for the cluster are deleted then: no claim is left).
boost::asio::awaitable<Result<CleanupReport>> cleanupBackend(kube::RestClient& backend,
                                                             CleanupOptions options,
                                                             const Clock& clock);

// What cleanup did, in lines for its output: what was removed for the node, and whether the
// namespace went or stayed (and for which nodes).
std::vector<std::string> describeCleanup(const CleanupReport& report,
                                         const CleanupOptions& options);

}  // namespace burstlet::provider::cci
