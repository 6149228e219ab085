#include "kube/resource.h"

#include <fmt/format.h>

#include <array>
#include <utility>

namespace burstlet::kube {

std::string ResourceRef::groupVersionPath() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

std::string ResourceRef::apiVersion() const {
  return group.empty() ? version : group + "/" + version;
}

std::string ResourceRef::path(std::string_view ns, std::string_view name,
                              std::string_view subresource) const {
  std::string p = groupVersionPath();
  if (namespaced && !ns.empty()) {
    p += fmt::format("/namespaces/{}", ns);
  }
  p += "/" + resource;
  if (!name.empty()) {
    p += fmt::format("/{}", name);
    if (!subresource.empty()) {
      p += fmt::format("/{}", subresource);
    }
  }
  return p;
}

namespace resources {
const ResourceRef kPods{"", "v1", "pods", true, "Pod"};
const ResourceRef kConfigMaps{"", "v1", "configmaps", true, "ConfigMap"};
const ResourceRef kSecrets{"", "v1", "secrets", true, "Secret"};
const ResourceRef kServices{"", "v1", "services", true, "Service"};
const ResourceRef kNamespaces{"", "v1", "namespaces", false, "Namespace"};
const ResourceRef kNodes{"", "v1", "nodes", false, "Node"};
const ResourceRef kEvents{"", "v1", "events", true, "Event"};
const ResourceRef kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims", true,
                                          "PersistentVolumeClaim"};
const ResourceRef kPersistentVolumes{"", "v1", "persistentvolumes", false, "PersistentVolume"};
const ResourceRef kServiceAccounts{"", "v1", "serviceaccounts", true, "ServiceAccount"};
const ResourceRef kLeases{"coordination.k8s.io", "v1", "leases", true, "Lease"};
const ResourceRef kStorageClasses{"storage.k8s.io", "v1", "storageclasses", false, "StorageClass"};
const ResourceRef kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", true,
                                  "EndpointSlice"};
const ResourceRef kTokenReviews{"authentication.k8s.io", "v1", "tokenreviews", false,
                                "TokenReview"};
const ResourceRef kSubjectAccessReviews{"authorization.k8s.io", "v1", "subjectaccessreviews", false,
                                        "SubjectAccessReview"};
const ResourceRef kDeployments{"apps", "v1", "deployments", true, "Deployment"};

std::optional<ResourceRef> byName(std::string_view name) {
  struct Alias {
    std::string_view singular, shortName;
    const ResourceRef* ref;
  };
  static const std::array<Alias, 16> aliases = {{
      {"pod", "po", &kPods},
      {"configmap", "cm", &kConfigMaps},
      {"secret", "", &kSecrets},
      {"service", "svc", &kServices},
      {"namespace", "ns", &kNamespaces},
      {"node", "no", &kNodes},
      {"event", "ev", &kEvents},
      {"persistentvolumeclaim", "pvc", &kPersistentVolumeClaims},
      {"persistentvolume", "pv", &kPersistentVolumes},
      {"serviceaccount", "sa", &kServiceAccounts},
      {"lease", "", &kLeases},
      {"storageclass", "sc", &kStorageClasses},
      {"endpointslice", "", &kEndpointSlices},
      {"deployment", "deploy", &kDeployments},
      {"tokenreview", "", &kTokenReviews},
      {"subjectaccessreview", "", &kSubjectAccessReviews},
  }};
  for (const auto& a : aliases) {
    if (name == a.ref->resource || name == a.singular ||
        (!a.shortName.empty() && name == a.shortName)) {
      return *a.ref;
    }
  }
  return std::nullopt;
}
}  // namespace resources

std::string queryEscape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (unsigned char c : v) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace burstlet::kube
