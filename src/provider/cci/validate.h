// Admission to CCI: what the backend cannot run, found before anything is written there. A pod
// that breaks a rule is never created on the backend; the caller records a Warning event and a
// status reason, which is the rule's name (Error::reason) so users can search for it.
//
// Rules, in the order they are reported (DESIGN.md section 7, and the product doc's
// "约束及限制"):
//   "DaemonSetPod"            metadata.ownerReferences names a DaemonSet.
//   "HostNetwork"             spec.hostNetwork.
//   "HostPID", "HostIPC"      spec.hostPID / spec.hostIPC. The doc names only HostNetwork, but a
//                             CCI pod runs in its own sandbox with no host to share a PID or IPC
//                             namespace with, so such a pod could not behave as written.
//   "NoCPURequest"            no app container has requests.cpu or limits.cpu above 0 (the doc:
//                             "Pod中至少有1个容器配置CPU大于0"), checked on the pod as written.
//   "UnsupportedVolume"       a volume other than configMap, secret, emptyDir, downwardAPI,
//                             projected or persistentVolumeClaim (or a claim volume without a
//                             claimName).
//   "EmptyDirSubPath"         a container or init container mounts an emptyDir with subPath or
//                             subPathExpr.
//   "UnsupportedStorageClass" a claim whose CSI driver (or StorageClass name) is not allowed; the
//                             doc allows SFS and SFS Turbo claims of CSI StorageClasses only.
//   then CCI's further limits (limits.h): TooManyContainers, PrivilegedContainer,
//                             UnsupportedProbe, EphemeralStorageTooLarge.
// All of these are kInvalid: the same pod will never pass, so it is not retried. A malformed cpu
// quantity met on the way is kInvalid "InvalidQuantity".
//
// "ClaimNotFound" is different: a claim that does not exist (yet) may be created a moment later,
// as a StatefulSet's claims are, so it is kNotFound, which callers retry. It is reported only
// when no permanent rule is broken, so a pod that can never run is not retried in vain.
//
// Resource sizes (32 cores, 256Gi) are not checked here: they apply after normalization, which
// normalizePod does (normalize.h). admit() runs both.
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "provider/cci/limits.h"

namespace burstlet::provider::cci {

struct ClaimInfo {
  std::string storageClass;
  // The bound PV's spec.csi.driver, or the StorageClass provisioner when unbound. Empty for a
  // PV that is not a CSI volume, which CCI cannot mount.
  std::string driver;
  // False when the claim does not exist; treated like an empty optional.
  bool found = true;
  // CCI mode: why the bound volume cannot be imported into CCI (storage_import.h); "" when it
  // can, or when that is not known yet (unbound).
  std::string notImportable;
};

// Answers for a claim in the pod's own namespace (the caller binds the namespace). An empty
// optional, or found == false, means the claim does not exist (yet). An empty function knows no
// claims.
using ClaimLookup = std::function<std::optional<ClaimInfo>(const std::string& claimName)>;

struct ValidateOptions {
  // CSI drivers whose volumes CCI mounts: SFS and SFS Turbo.
  std::vector<std::string> storageDrivers = {"nas.csi.everest.io", "sfsturbo.csi.everest.io"};
  // StorageClass names accepted whatever their driver, for classes known to be SFS.
  std::vector<std::string> storageClasses;
  // CCI's further limits (limits.h); BackendPods uses CciLimits::none() outside CCI mode.
  CciLimits limits;
};

// Every rule `pod` breaks, in the order above (each offending volume or mount once), with
// ClaimNotFound errors last. Empty when CCI can run the pod.
std::vector<Error> allViolations(const boost::json::value& pod, const ValidateOptions& options,
                                 const ClaimLookup& lookup);

// The first of allViolations(): OK, a kInvalid rule violation, or kNotFound "ClaimNotFound".
Status validatePod(const boost::json::value& pod, const ValidateOptions& options,
                   const ClaimLookup& lookup);

// validatePod, then normalizePod (which modifies `pod` only when it succeeds): the pod is ready
// for the backend when this returns OK.
Status admit(boost::json::value& pod, const ValidateOptions& options, const ClaimLookup& lookup);

}  // namespace burstlet::provider::cci
