// PodPreparer: the pod as the provider gets it. Each container's environment is resolved the way
// the kubelet resolves it (env.h) against the cluster's ConfigMaps, Secrets and Services, so the
// backend receives plain values and needs none of the cluster's objects. Variables that read the
// pod's own IP (fieldRef status.podIP/podIPs) stay references: only the backend knows the IP.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "common/result.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/rest.h"

namespace burstlet::pod {

// What a prepared pod's service variables point at (docs/networking.md).
struct ServiceEnvironment {
  // The service-link variables and KUBERNETES_SERVICE_* name the ClusterIPs, as on a kubelet:
  // right when the pod can reach them (the network proxy sidecar runs in it).
  bool clusterIPs = true;
  // Otherwise the pod gets no service-link variables (they would name addresses it cannot
  // reach), and KUBERNETES_SERVICE_* come from this "kubernetes" Service (network/api_server.h
  // kubernetesServiceAt: the API server's own address), or none when null.
  boost::json::value kubernetes;
};

class PodPreparer {
 public:
  // `services` is an informer store of Services with an index "namespace" (see
  // kServiceNamespaceIndex); null means no service-link variables.
  PodPreparer(kube::RestClient& client, const kube::Store* services, kube::EventRecorder& events,
              std::string nodeIP, boost::json::object nodeAllocatable);

  // Errors: reason "CreateContainerConfigError" (a missing ConfigMap, Secret or key: the pod
  // waits, as on a kubelet), or API errors while reading them (retried).
  boost::asio::awaitable<Result<boost::json::value>> prepare(const boost::json::value& pod);

  // Before the first prepare().
  void setServiceEnvironment(ServiceEnvironment env) { serviceEnv_ = std::move(env); }

 private:
  kube::RestClient& client_;
  const kube::Store* services_;
  kube::EventRecorder& events_;
  std::string nodeIP_;
  boost::json::object nodeAllocatable_;
  ServiceEnvironment serviceEnv_;
};

inline constexpr const char* kServiceNamespaceIndex = "namespace";

}  // namespace burstlet::pod
