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

class PodPreparer {
 public:
  // `services` is an informer store of Services with an index "namespace" (see
  // kServiceNamespaceIndex); null means no service-link variables.
  PodPreparer(kube::RestClient& client, const kube::Store* services, kube::EventRecorder& events,
              std::string nodeIP, boost::json::object nodeAllocatable);

  // Errors: reason "CreateContainerConfigError" (a missing ConfigMap, Secret or key: the pod
  // waits, as on a kubelet), or API errors while reading them (retried).
  boost::asio::awaitable<Result<boost::json::value>> prepare(const boost::json::value& pod);

 private:
  kube::RestClient& client_;
  const kube::Store* services_;
  kube::EventRecorder& events_;
  std::string nodeIP_;
  boost::json::object nodeAllocatable_;
};

inline constexpr const char* kServiceNamespaceIndex = "namespace";

}  // namespace burstlet::pod
