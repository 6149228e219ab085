// The Kubernetes version the virtual node reports as nodeInfo.kubeletVersion: the cluster's own
// release, so that `kubectl get nodes`, version-skew checks and upgrade tooling see a node of
// the cluster's version, marked as burstlet's with burstlet's version, e.g.
// "v1.36.3-burstlet.0.1.0" in a v1.36.3 cluster.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/rest.h"

namespace burstlet::node {

// The release reported when the API server's version cannot be read or parsed: the Kubernetes
// minor burstlet is built and tested against.
inline constexpr std::string_view kDefaultKubernetesRelease = "v1.36.0";

// "v1.36.3" from a gitVersion such as "v1.36.3", "v1.36.3-rc.1", "v1.36.3+k3s1" or
// "1.36.3-eks-4c5b": major.minor.patch with a leading "v", any prerelease or build suffix cut.
// std::nullopt when it does not start with three numbers.
std::optional<std::string> kubernetesRelease(std::string_view gitVersion);

// "<release>-burstlet.<burstletVersion>", e.g. "v1.36.3-burstlet.0.1.0".
std::string kubeletVersionFor(std::string_view release, std::string_view burstletVersion);

// The API server's release: GET /version, its gitVersion cut by kubernetesRelease().
boost::asio::awaitable<Result<std::string>> clusterRelease(kube::RestClient& client);

}  // namespace burstlet::node
