// CCI's storage import: how an SFS or SFS Turbo claim of the cluster reaches CCI, which has no
// PersistentVolume API. A file system is *imported* into the backend namespace as a claim
// (POST .../extended-persistentvolumeclaims, CCI's storage class and the volume's ID and share
// path in annotations); CCI gives the imported claim reclaim policy Delete, so a plain DELETE of
// it deletes the user's file system. Burstlet therefore never deletes a claim copy plainly in
// CCI mode: it *unbinds* it (DELETE ...?deleteVolume=false&storageType=nfs), which removes the
// claim and keeps the file system. docs/cci.md "Storage import" has the facts and their pages.
//
// Pure functions, unit-tested per class; ClaimCopies, CopySweep and cleanupBackend use them.
#pragma once

#include <boost/json/value.hpp>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/resource.h"
#include "kube/rest.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

// POST target of an import (namespaced): /api/v1/namespaces/{ns}/extended-persistentvolumeclaims.
extern const kube::ResourceRef kExtendedPersistentVolumeClaims;

// The CCE CSI volume attribute holding a file system's share path ("host:/path").
inline constexpr std::string_view kExportLocationAttribute = "everest.io/share-export-location";
// The CCE attribute naming an SFS Turbo file system's type (STANDARD, PERFORMANCE, ...).
inline constexpr std::string_view kTurboTypeAttribute = "everest.io/share-volume-type";

// One row of the mapping from CCE's volume to CCI's import class.
struct ImportClass {
  std::string_view driver;      // the cluster PV's spec.csi.driver
  std::string_view turboType;   // kTurboTypeAttribute value; "" matches an absent one
  std::string_view cciClass;    // spec.storageClassName of the import
  std::string_view fileSystem;  // for messages: "SFS", "SFS Turbo (standard)"
};
// The table, in match order.
std::span<const ImportClass> importClasses();

// The import request for cluster claim `clusterPvc` bound to `clusterPv`: the claim copy's name,
// labels and source annotations as for any copy (translate.h), CCI's annotations fsType "nfs",
// volumeID (the CSI volume handle) and deviceMountPath (the export location), the storage class
// of the table, the claim's access modes and size (the volume's capacity when the claim asks for
// none; 1Gi when neither says). kInvalid "VolumeNotImportable" naming what is missing or has no
// CCI class (a driver outside the table, an SFS Turbo type CCI does not import, no volume handle
// or export location), and ClaimNotBound (kUnavailable) when the claim is not bound to it.
Result<boost::json::value> toImportedClaim(const boost::json::value& clusterPvc,
                                           const boost::json::value& clusterPv,
                                           const TranslateOptions& options);

// Why `clusterPv` cannot be imported ("" when it can): the message of toImportedClaim's
// VolumeNotImportable, without the claim.
std::string notImportable(const boost::json::value& clusterPv);

// CCI's unbind: the delete options that remove an imported claim and keep its file system.
// storageType nfs for SFS and SFS Turbo alike (the unbind page lists bs and nfs only).
kube::DeleteOptions unbindOptions();

}  // namespace burstlet::provider::cci
