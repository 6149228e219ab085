// The cluster side of the backend provider: ConfigMaps, Secrets, claims, volumes and storage
// classes read from the cluster API when a pod needs them (fresh reads; nothing cached, so a
// cluster full of large Secrets costs no memory here), and metadata-only informers that tell the
// provider when a ConfigMap or Secret changes so that backend copies follow.
#pragma once

#include <memory>

#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/cluster_objects.h"
#include "provider/provider.h"

namespace burstlet::daemon {

class ApiClusterObjects final : public provider::cci::ClusterObjects {
 public:
  explicit ApiClusterObjects(kube::RestClient& client) : client_(client) {}
  boost::asio::awaitable<Result<boost::json::value>> configMap(const std::string& ns,
                                                               const std::string& name) override;
  boost::asio::awaitable<Result<boost::json::value>> secret(const std::string& ns,
                                                            const std::string& name) override;
  boost::asio::awaitable<Result<boost::json::value>> persistentVolumeClaim(
      const std::string& ns, const std::string& name) override;
  boost::asio::awaitable<Result<boost::json::value>> persistentVolume(
      const std::string& name) override;
  boost::asio::awaitable<Result<boost::json::value>> storageClass(const std::string& name) override;

 private:
  kube::RestClient& client_;
};

// An informer on `resource` (ConfigMaps or Secrets) in all namespaces that keeps only each
// object's identity and reports adds and updates to provider.clusterObjectChanged(kind, ...).
std::unique_ptr<kube::Informer> makeChangeFeed(kube::RestClient& client,
                                               const kube::ResourceRef& resource,
                                               provider::Provider& provider);

// The resource of a kind the provider follows (Provider::followedKinds); null for one the
// daemon cannot watch.
const kube::ResourceRef* followedResource(std::string_view kind);

}  // namespace burstlet::daemon
