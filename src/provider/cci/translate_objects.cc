// ConfigMap and Secret copies, and the backend's SFS volume and claim pair.
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/translate.h"
#include "provider/cci/translate_internal.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::child;
using kube::path;
using kube::stringAt;
using kube::stringOf;
using namespace internal;  // NOLINT(google-build-using-namespace): this area's own helpers

// --- ConfigMaps and Secrets -------------------------------------------------------------------

std::string backendSecretType(std::string_view clusterType) {
  static constexpr std::string_view kKept[] = {
      "Opaque",
      "kubernetes.io/dockerconfigjson",
      "kubernetes.io/dockercfg",
      "kubernetes.io/tls",
      "kubernetes.io/basic-auth",
      "kubernetes.io/ssh-auth",
  };
  for (auto t : kKept) {
    if (clusterType == t) {
      return std::string(t);
    }
  }
  // service-account-token copies would be rewritten or deleted by the backend's token
  // controller (their service account is not there), bootstrap tokens are only valid in
  // kube-system, and custom types may be refused: the data is all the pod reads.
  return "Opaque";
}

Result<json::value> toBackendConfigMap(const json::value& clusterConfigMap,
                                       const TranslateOptions& options) {
  auto meta = copyMetadata("ConfigMap", clusterConfigMap, options);
  if (!meta.ok()) {
    return std::move(meta).error();
  }
  json::object out{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", std::move(*meta)}};
  copyIfPresent(clusterConfigMap, out, {"data", "binaryData", "immutable"});
  return json::value(std::move(out));
}

Result<json::value> toBackendSecret(const json::value& clusterSecret,
                                    const TranslateOptions& options) {
  auto meta = copyMetadata("Secret", clusterSecret, options);
  if (!meta.ok()) {
    return std::move(meta).error();
  }
  json::object out{{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", std::move(*meta)},
                   {"type", backendSecretType(stringOf(child(&clusterSecret, "type")))}};
  copyIfPresent(clusterSecret, out, {"data", "immutable"});
  return json::value(std::move(out));
}

bool sameContent(const json::value& backendCopy, const json::value& clusterObject) {
  for (const char* key : {"data", "binaryData"}) {
    if (!sameOptional(child(&backendCopy, key), child(&clusterObject, key))) {
      return false;
    }
  }
  auto immutable = [](const json::value& o) {
    const auto* v = child(&o, "immutable");
    return v != nullptr && v->is_bool() && v->as_bool();
  };
  if (immutable(backendCopy) != immutable(clusterObject)) {
    return false;
  }
  const bool secret =
      stringOf(child(&backendCopy, "kind")) == "Secret" ||
      stringOf(path(&backendCopy, {"metadata", "annotations",
                                   std::string_view(kSourceKindAnnotation)})) == "Secret" ||
      child(&clusterObject, "type") != nullptr;
  if (secret) {
    std::string have(stringOf(child(&backendCopy, "type")));
    if (have.empty()) {
      have = "Opaque";  // the API's default
    }
    if (have != backendSecretType(stringOf(child(&clusterObject, "type")))) {
      return false;
    }
  }
  // A source deleted and created again under the same name is another object: the copy's
  // identity follows it even when the data happens to match.
  const auto uid = stringAt(clusterObject, {"metadata", "uid"});
  return uid.empty() ||
         stringOf(path(&backendCopy,
                       {"metadata", "annotations", std::string_view(kSourceUidAnnotation)})) == uid;
}

// --- SFS volumes ------------------------------------------------------------------------------

namespace {

// Checks that `pvc` is bound to `pv` and that `pv` can be reproduced in the backend.
Status checkClaim(const json::value& pvc, const json::value& pv) {
  BURSTLET_RETURN_IF_ERROR(checkBound(pvc, pv));
  const std::string ns = stringAt(pvc, {"metadata", "namespace"});
  const std::string claim = stringAt(pvc, {"metadata", "name"});
  const std::string pvName = stringAt(pv, {"metadata", "name"});
  const auto* csi = path(&pv, {"spec", "csi"});
  if (csi == nullptr || !csi->is_object()) {
    return Error::make(ErrorCode::kInvalid, "UnsupportedVolume",
                       "volume " + pvName + " of claim " + ns + "/" + claim +
                           " has no CSI source (only SFS / SFS Turbo CSI volumes run on CCI)");
  }
  return okStatus();
}

}  // namespace

Result<json::value> toBackendPersistentVolume(const json::value& clusterPvc,
                                              const json::value& clusterPv,
                                              const TranslateOptions& options) {
  BURSTLET_RETURN_IF_ERROR(checkClaim(clusterPvc, clusterPv));
  const std::string pvName = stringAt(clusterPv, {"metadata", "name"});
  const std::string uid = stringAt(clusterPv, {"metadata", "uid"});
  const json::value* source = child(&clusterPv, "spec");
  json::object spec;
  copyIfPresent(
      *source, spec,
      {"capacity", "accessModes", "mountOptions", "csi", "volumeMode", "storageClassName"});
  spec["persistentVolumeReclaimPolicy"] = "Retain";
  // Pre-bound by name: the claim's uid is not known before it is created.
  spec["claimRef"] = json::object{
      {"apiVersion", "v1"},
      {"kind", "PersistentVolumeClaim"},
      {"namespace", options.backendNamespace},
      {"name", copyName(options.nodeName, stringAt(clusterPvc, {"metadata", "namespace"}),
                        stringAt(clusterPvc, {"metadata", "name"}))},
  };
  return json::value(json::object{
      {"apiVersion", "v1"},
      {"kind", "PersistentVolume"},
      {"metadata",
       json::object{{"name", backendPersistentVolumeName(options.backendNamespace, options.nodeName,
                                                         pvName)},
                    {"labels", ownLabels(options, uid)},
                    {"annotations", sourceAnnotations("PersistentVolume", "", pvName, uid)}}},
      {"spec", std::move(spec)},
  });
}

Result<json::value> toBackendPersistentVolumeClaim(const json::value& clusterPvc,
                                                   const json::value& clusterPv,
                                                   const TranslateOptions& options) {
  BURSTLET_RETURN_IF_ERROR(checkClaim(clusterPvc, clusterPv));
  const std::string ns = stringAt(clusterPvc, {"metadata", "namespace"});
  const std::string claim = stringAt(clusterPvc, {"metadata", "name"});
  const std::string uid = stringAt(clusterPvc, {"metadata", "uid"});
  const json::value* pvcSpec = child(&clusterPvc, "spec");
  const json::value* pvSpec = child(&clusterPv, "spec");
  json::object spec;
  copyModesAndSize(clusterPvc, clusterPv, spec);
  // Explicit even when empty: an absent class would get the backend's default one and no
  // longer match the volume.
  spec["storageClassName"] = json::string(stringOf(child(pvSpec, "storageClassName")));
  spec["volumeName"] = backendPersistentVolumeName(options.backendNamespace, options.nodeName,
                                                   stringAt(clusterPv, {"metadata", "name"}));
  if (const auto* mode = child(pvcSpec, "volumeMode"); mode != nullptr) {
    spec["volumeMode"] = *mode;
  }
  return json::value(json::object{
      {"apiVersion", "v1"},
      {"kind", "PersistentVolumeClaim"},
      {"metadata",
       json::object{{"name", copyName(options.nodeName, ns, claim)},
                    {"namespace", options.backendNamespace},
                    {"labels", ownLabels(options, uid)},
                    {"annotations", sourceAnnotations("PersistentVolumeClaim", ns, claim, uid)}}},
      {"spec", std::move(spec)},
  });
}

}  // namespace burstlet::provider::cci
