// The Kubernetes version the virtual node reports as nodeInfo.kubeletVersion: the cluster's own
// release, so that `kubectl get nodes`, version-skew checks and upgrade tooling see a node of
// the cluster's version, marked as burstlet's with burstlet's version, e.g.
// "v1.36.3-burstlet.0.1.0" in a v1.36.3 cluster.
#pragma once

#include <string>
#include <string_view>

#include "kube/server_version.h"

namespace burstlet::node {

// The release reported when the API server's version cannot be read or parsed: the Kubernetes
// minor burstlet is built and tested against.
inline constexpr std::string_view kDefaultKubernetesRelease = "v1.36.0";

// "<release>-burstlet.<burstletVersion>", e.g. "v1.36.3-burstlet.0.1.0".
std::string kubeletVersionFor(std::string_view release, std::string_view burstletVersion);

}  // namespace burstlet::node
