// The daemon's share of service networking (src/network): what a prepared pod gets after its
// environment (cluster DNS, the proxy sidecar), what its service variables point at, and the
// proxy's credentials kept on the backend.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <optional>

#include "common/clock.h"
#include "common/result.h"
#include "daemon/config.h"
#include "kube/events.h"
#include "kube/rest.h"
#include "network/dns.h"
#include "network/proxy_credentials.h"
#include "network/sidecar.h"
#include "pod/prepare.h"
#include "provider/provider.h"

namespace burstlet::daemon {

struct NetworkParts {
  network::DnsOptions dns;
  std::optional<network::ProxySidecarOptions> sidecar;
  pod::ServiceEnvironment serviceEnv;
  std::unique_ptr<network::ProxyCredentials> credentials;  // with the sidecar
};

// Builds them. Runs `io` until the API server's address is known (network.apiServer, else the
// EndpointSlice default/kubernetes): call before anything else runs on `io`. Without that
// address KUBERNETES_SERVICE_* are left out (logged) unless the proxy needs it: then an error.
Result<NetworkParts> makeNetwork(boost::asio::io_context& io, const Config& config,
                                 kube::RestClient& cluster, provider::Provider& provider,
                                 const Clock& clock);

// The last steps of preparing `pod` (after pod::PodPreparer): cluster DNS, then the sidecar.
// DNS notes become Warning events on the pod.
Result<boost::json::value> finishPreparing(boost::json::value pod, const NetworkParts& parts,
                                           kube::EventRecorder& events);

}  // namespace burstlet::daemon
