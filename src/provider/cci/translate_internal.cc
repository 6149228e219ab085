#include "provider/cci/translate_internal.h"

#include "kube/json_path.h"

namespace burstlet::provider::cci::internal {

namespace json = boost::json;
using kube::child;
using kube::stringAt;

bool emptyOrNull(const json::value* v) {
  return v == nullptr || v->is_null() || (v->is_object() && v->as_object().empty()) ||
         (v->is_array() && v->as_array().empty());
}

bool sameOptional(const json::value* a, const json::value* b) {
  if (emptyOrNull(a) || emptyOrNull(b)) {
    return emptyOrNull(a) && emptyOrNull(b);
  }
  return *a == *b;
}

json::object ownLabels(const TranslateOptions& options, std::string_view sourceUid) {
  json::object labels;
  labels[kManagedByLabel] = kManagedByValue;
  labels[kNodeLabel] = safeLabelValue(options.nodeName);
  if (!sourceUid.empty()) {
    labels[kSourceUidLabel] = safeLabelValue(sourceUid);
  }
  return labels;
}

json::object sourceAnnotations(std::string_view kind, std::string_view ns, std::string_view name,
                               std::string_view uid) {
  json::object a;
  if (!kind.empty()) {
    a[kSourceKindAnnotation] = kind;
  }
  if (!ns.empty()) {
    a[kSourceNamespaceAnnotation] = ns;
  }
  a[kSourceNameAnnotation] = name;
  if (!uid.empty()) {
    a[kSourceUidAnnotation] = uid;
  }
  return a;
}

Error invalid(std::string_view kind, std::string_view what) {
  return Error::make(ErrorCode::kInvalid, "Invalid" + std::string(kind),
                     std::string(kind) + " " + std::string(what));
}

// A ConfigMap or Secret copy's metadata; kInvalid without a namespace or name.
Result<json::object> copyMetadata(std::string_view kind, const json::value& source,
                                  const TranslateOptions& options) {
  const std::string ns = stringAt(source, {"metadata", "namespace"});
  const std::string name = stringAt(source, {"metadata", "name"});
  if (ns.empty() || name.empty()) {
    return invalid(kind, "without namespace or name");
  }
  const std::string uid = stringAt(source, {"metadata", "uid"});
  json::object meta;
  meta["name"] = copyName(options.nodeName, ns, name);
  meta["namespace"] = options.backendNamespace;
  meta["labels"] = ownLabels(options, uid);
  meta["annotations"] = sourceAnnotations(kind, ns, name, uid);
  return meta;
}

void copyIfPresent(const json::value& from, json::object& to,
                   std::initializer_list<std::string_view> keys) {
  for (auto k : keys) {
    if (const auto* v = child(&from, k); v != nullptr && !v->is_null()) {
      to[k] = *v;
    }
  }
}

Status checkBound(const json::value& pvc, const json::value& pv) {
  const std::string ns = kube::stringAt(pvc, {"metadata", "namespace"});
  const std::string claim = kube::stringAt(pvc, {"metadata", "name"});
  const std::string pvName = kube::stringAt(pv, {"metadata", "name"});
  if (ns.empty() || claim.empty() || pvName.empty()) {
    return invalid("PersistentVolumeClaim", "or its volume without namespace or name");
  }
  if (kube::stringAt(pvc, {"spec", "volumeName"}) != pvName) {
    return Error::make(ErrorCode::kUnavailable, "ClaimNotBound",
                       "claim " + ns + "/" + claim + " is not bound to volume " + pvName);
  }
  return okStatus();
}

bool copyModesAndSize(const json::value& pvc, const json::value& pv, json::object& spec) {
  const json::value* modes = kube::at(pvc, {"spec", "accessModes"});
  if (emptyOrNull(modes)) {
    modes = kube::at(pv, {"spec", "accessModes"});
  }
  if (!emptyOrNull(modes)) {
    spec["accessModes"] = *modes;
  }
  const json::value* storage = kube::at(pvc, {"spec", "resources", "requests", "storage"});
  if (storage == nullptr) {
    storage = kube::at(pv, {"spec", "capacity", "storage"});
  }
  if (storage == nullptr) {
    return false;
  }
  spec["resources"] = json::object{{"requests", json::object{{"storage", *storage}}}};
  return true;
}

}  // namespace burstlet::provider::cci::internal
