#include "daemon/api_cluster_objects.h"

#include <boost/json.hpp>

namespace burstlet::daemon {

namespace asio = boost::asio;
namespace json = boost::json;
namespace resources = kube::resources;

asio::awaitable<Result<json::value>> ApiClusterObjects::configMap(const std::string& ns,
                                                                  const std::string& name) {
  co_return co_await client_.get(resources::kConfigMaps, ns, name);
}

asio::awaitable<Result<json::value>> ApiClusterObjects::secret(const std::string& ns,
                                                               const std::string& name) {
  co_return co_await client_.get(resources::kSecrets, ns, name);
}

asio::awaitable<Result<json::value>> ApiClusterObjects::persistentVolumeClaim(
    const std::string& ns, const std::string& name) {
  co_return co_await client_.get(resources::kPersistentVolumeClaims, ns, name);
}

asio::awaitable<Result<json::value>> ApiClusterObjects::persistentVolume(const std::string& name) {
  std::string none;
  co_return co_await client_.get(resources::kPersistentVolumes, none, name);
}

asio::awaitable<Result<json::value>> ApiClusterObjects::storageClass(const std::string& name) {
  std::string none;
  co_return co_await client_.get(resources::kStorageClasses, none, name);
}

namespace {

// Identity only: the feed says "this object changed", the provider reads it when it matters.
void keepIdentity(json::value& object) {
  json::object meta;
  const auto* o = object.if_object();  // a malformed event must not end the feed
  if (const auto* m = o != nullptr ? o->if_contains("metadata") : nullptr; m && m->is_object()) {
    for (const char* k : {"name", "namespace", "uid", "resourceVersion"}) {
      if (const auto* v = m->as_object().if_contains(k)) {
        meta[k] = *v;
      }
    }
  }
  object = json::object{{"metadata", std::move(meta)}};
}

}  // namespace

std::unique_ptr<kube::Informer> makeChangeFeed(kube::RestClient& client,
                                               const kube::ResourceRef& resource,
                                               provider::Provider& provider) {
  kube::InformerOptions o;
  o.resource = resource;
  o.transform = keepIdentity;
  auto informer = std::make_unique<kube::Informer>(client, o);
  const std::string kind = resource.kind;
  informer->addHandlers(kube::InformerHandlers{
      [&provider, kind](const kube::ObjectPtr& o) { provider.clusterObjectChanged(kind, *o); },
      [&provider, kind](const kube::ObjectPtr&, const kube::ObjectPtr& o) {
        provider.clusterObjectChanged(kind, *o);
      },
      nullptr});
  return informer;
}

const kube::ResourceRef* followedResource(std::string_view kind) {
  for (const auto* r : {&kube::resources::kConfigMaps, &kube::resources::kSecrets}) {
    if (r->kind == kind) {
      return r;
    }
  }
  return nullptr;
}

}  // namespace burstlet::daemon
