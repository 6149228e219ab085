#include "provider/cci/storage_import.h"

#include <fmt/format.h>

#include <array>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/translate_internal.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using internal::ownLabels;
using internal::sourceAnnotations;
using kube::stringAt;

const kube::ResourceRef kExtendedPersistentVolumeClaims{"", "v1", "extended-persistentvolumeclaims",
                                                        true, "PersistentVolumeClaim"};

namespace {

// CCI's import classes (api-cci "Importing a Storage Volume", cci_02_2021): nfs-rw is SFS,
// efs-standard and efs-performance are SFS Turbo. CCE names an SFS Turbo file system's type in
// kTurboTypeAttribute; a volume without it is taken as standard.
constexpr std::array kClasses{
    ImportClass{"nas.csi.everest.io", "", "nfs-rw", "SFS"},
    ImportClass{"sfsturbo.csi.everest.io", "", "efs-standard", "SFS Turbo (standard)"},
    ImportClass{"sfsturbo.csi.everest.io", "STANDARD", "efs-standard", "SFS Turbo (standard)"},
    ImportClass{"sfsturbo.csi.everest.io", "PERFORMANCE", "efs-performance",
                "SFS Turbo (performance)"},
};

const json::value* attribute(const json::value& pv, std::string_view key) {
  const auto* attrs = kube::at(pv, {"spec", "csi", "volumeAttributes"});
  if (attrs == nullptr || !attrs->is_object()) {
    return nullptr;
  }
  return attrs->as_object().if_contains(key);
}

std::string attributeString(const json::value& pv, std::string_view key) {
  const auto* v = attribute(pv, key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

// The row for `pv`, or the reason there is none.
Result<const ImportClass*> classOf(const json::value& pv) {
  const std::string driver = stringAt(pv, {"spec", "csi", "driver"});
  const std::string type = attributeString(pv, kTurboTypeAttribute);
  bool driverKnown = false;
  for (const auto& c : kClasses) {
    if (c.driver != driver) {
      continue;
    }
    driverKnown = true;
    if (c.turboType == type) {
      return &c;
    }
  }
  if (!driverKnown) {
    return Error::make(ErrorCode::kInvalid, "VolumeNotImportable",
                       fmt::format("CCI imports SFS (nas.csi.everest.io) and SFS Turbo "
                                   "(sfsturbo.csi.everest.io) file systems only, not driver {}",
                                   driver.empty() ? "none" : "\"" + driver + "\""));
  }
  return Error::make(ErrorCode::kInvalid, "VolumeNotImportable",
                     fmt::format("CCI imports SFS Turbo file systems of type STANDARD or "
                                 "PERFORMANCE only, not {} \"{}\"",
                                 kTurboTypeAttribute, type));
}

Error notImportableError(std::string_view pvName, std::string_view why) {
  return Error::make(ErrorCode::kInvalid, "VolumeNotImportable",
                     fmt::format("volume {}: {}", pvName, why));
}

}  // namespace

std::span<const ImportClass> importClasses() { return kClasses; }

std::string notImportable(const json::value& clusterPv) {
  auto row = classOf(clusterPv);
  if (!row.ok()) {
    return row.error().message;
  }
  if (stringAt(clusterPv, {"spec", "csi", "volumeHandle"}).empty()) {
    return "no spec.csi.volumeHandle (the file system's ID, which CCI imports)";
  }
  if (attributeString(clusterPv, kExportLocationAttribute).empty()) {
    return fmt::format("no spec.csi.volumeAttributes[\"{}\"] (the share path CCI mounts)",
                       kExportLocationAttribute);
  }
  return "";
}

Result<json::value> toImportedClaim(const json::value& clusterPvc, const json::value& clusterPv,
                                    const TranslateOptions& options) {
  BURSTLET_RETURN_IF_ERROR(internal::checkBound(clusterPvc, clusterPv));
  const std::string ns = stringAt(clusterPvc, {"metadata", "namespace"});
  const std::string claim = stringAt(clusterPvc, {"metadata", "name"});
  const std::string pvName = stringAt(clusterPv, {"metadata", "name"});
  if (const std::string why = notImportable(clusterPv); !why.empty()) {
    return notImportableError(pvName, why);
  }
  const ImportClass* row = *classOf(clusterPv);
  json::object spec;
  if (!internal::copyModesAndSize(clusterPvc, clusterPv, spec)) {
    // CCI gives the size no meaning, but wants one.
    spec["resources"] = json::object{{"requests", json::object{{"storage", "1Gi"}}}};
  }
  spec["storageClassName"] = row->cciClass;
  json::object annotations = sourceAnnotations("PersistentVolumeClaim", ns, claim,
                                               stringAt(clusterPvc, {"metadata", "uid"}));
  annotations["fsType"] = "nfs";
  annotations["volumeID"] = stringAt(clusterPv, {"spec", "csi", "volumeHandle"});
  annotations["deviceMountPath"] = attributeString(clusterPv, kExportLocationAttribute);
  return json::value(json::object{
      {"apiVersion", "v1"},
      {"kind", "PersistentVolumeClaim"},
      {"metadata",
       json::object{{"name", copyName(options.nodeName, ns, claim)},
                    {"namespace", options.backendNamespace},
                    {"labels", ownLabels(options, stringAt(clusterPvc, {"metadata", "uid"}))},
                    {"annotations", std::move(annotations)}}},
      {"spec", std::move(spec)},
  });
}

kube::DeleteOptions unbindOptions() {
  kube::DeleteOptions o;
  o.query = "deleteVolume=false&storageType=nfs";
  return o;
}

}  // namespace burstlet::provider::cci
