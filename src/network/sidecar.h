// The network proxy sidecar (the product's "network interworking" option): a container burstlet
// adds to every backend pod that runs `burstlet netproxy` (same binary and image) inside the
// pod's network namespace, so that the pod's processes reach the cluster's ClusterIP Services.
// It reads its credentials (a cluster token for a read-only identity, the API server's address
// and CA; proxy_credentials.h) from the provider's node secret, mounted read-only.
//
// It is the pod's first container, and its postStart hook waits (up to kProxyStartSeconds) for
// the proxy's first ruleset, so the pod's own containers start with Services and DNS working.
// It is an ordinary container of the pod: its restarts follow the pod's restartPolicy, and its
// resources count in the pod's size before the backend's normalization. It carries the
// NET_ADMIN capability, and only it: that is what programming the pod's NAT takes
// (netproxy.h says why not a userspace proxy). It is listed under provider::kInjectedKey, so the
// cluster never sees it in the pod's containers or statuses.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace burstlet::network {

inline constexpr std::string_view kProxyContainerName = "burstlet-netproxy";
inline constexpr std::string_view kProxyVolumeName = "burstlet-netproxy";
// Pods that do not restart their containers (restartPolicy Never, OnFailure) also get the pod's
// annotations (downward API) here: the proxy exits once the provider marks the pod's own
// containers done (provider::kInjectedStopAnnotation), so that the pod can end.
inline constexpr std::string_view kProxyPodInfoVolumeName = "burstlet-netproxy-pod";
inline constexpr std::string_view kProxyPodInfoPath = "/var/run/burstlet/netproxy-pod";
// Provider::putNodeSecret's purpose for the proxy's credentials.
inline constexpr std::string_view kProxySecretPurpose = "netproxy";
// Where the sidecar finds its credentials.
inline constexpr std::string_view kProxyCredentialsPath = "/var/run/burstlet/netproxy";
// How long the sidecar's postStart hook waits for the first ruleset.
inline constexpr int kProxyStartSeconds = 60;

struct ProxySidecarOptions {
  std::string image;                                // burstlet's own image
  std::vector<std::string> command = {"burstlet"};  // the image's burstlet binary
  std::string cpu = "100m";                         // requests = limits
  std::string memory = "64Mi";
  std::string secretName;  // Provider::nodeSecretName(kProxySecretPurpose)
  std::string logLevel = "info";
};

// Adds the sidecar container and its credentials volume to `pod` (a prepared Pod object) and
// lists them under provider::kInjectedKey. kInvalid (reason "ReservedName") when the pod already
// has a container or volume of that name: the names are burstlet's.
Status injectProxySidecar(boost::json::value& pod, const ProxySidecarOptions& options);

}  // namespace burstlet::network
