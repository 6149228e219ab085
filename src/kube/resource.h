// Resource references and URL paths of the Kubernetes REST API.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace burstlet::kube {

struct ResourceRef {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string resource;  // plural, lower case: "pods"
  bool namespaced = true;
  std::string kind;  // "Pod"

  // "/api/v1" or "/apis/<group>/<version>"
  std::string groupVersionPath() const;
  // apiVersion field value: "v1" or "<group>/<version>"
  std::string apiVersion() const;
  // Path of the collection or of one object (name non-empty), optionally a subresource.
  // namespace_ empty on a namespaced resource means all namespaces.
  std::string path(std::string_view ns, std::string_view name = {},
                   std::string_view subresource = {}) const;
};

namespace resources {
extern const ResourceRef kPods;
extern const ResourceRef kConfigMaps;
extern const ResourceRef kSecrets;
extern const ResourceRef kServices;
extern const ResourceRef kNamespaces;
extern const ResourceRef kNodes;
extern const ResourceRef kEvents;
extern const ResourceRef kPersistentVolumeClaims;
extern const ResourceRef kPersistentVolumes;
extern const ResourceRef kServiceAccounts;
extern const ResourceRef kLeases;
extern const ResourceRef kStorageClasses;
extern const ResourceRef kEndpointSlices;
extern const ResourceRef kTokenReviews;
extern const ResourceRef kSubjectAccessReviews;
extern const ResourceRef kDeployments;

// Looks a resource up by plural, singular or short name ("pods", "pod", "po", "cm", ...).
std::optional<ResourceRef> byName(std::string_view name);
}  // namespace resources

// Percent-encodes a query parameter value.
std::string queryEscape(std::string_view v);

}  // namespace burstlet::kube
