#include "daemon/network_parts.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <charconv>

#include "daemon/webhook_certs.h"
#include "network/api_server.h"

namespace burstlet::daemon {

namespace asio = boost::asio;

namespace {

// The Kubernetes release burstlet is built against (the testbed's).
constexpr int kCurrentMinor = 36;

asio::awaitable<void> discover(kube::RestClient* cluster, Result<network::ApiServerEndpoint>* out) {
  *out = co_await network::discoverApiServer(*cluster);
}

int backendMinor(const Config& config) {
  if (config.provider != "cci") {
    return kCurrentMinor;
  }
  const std::string& v = config.backend.backendVersion;
  int minor = 0;
  if (v.starts_with("1.") &&
      std::from_chars(v.data() + 2, v.data() + v.size(), minor).ec == std::errc() && minor > 0) {
    return minor;
  }
  return config.backend.cciApi() ? 19 : kCurrentMinor;
}

}  // namespace

Result<NetworkParts> makeNetwork(asio::io_context& io, const Config& config,
                                 kube::RestClient& cluster, provider::Provider& provider,
                                 const Clock& clock) {
  const auto& w = config.network;
  NetworkParts parts;
  parts.dns.clusterDNS = w.clusterDNS;
  parts.dns.clusterDomain = w.clusterDomain;
  // CCI's API is Kubernetes 1.19's, with its tighter limits on a pod's DNS searches; another
  // backend's release is provider.cci.backendVersion when given ("1.25"), else a current one.
  parts.dns = network::withApiLimits(parts.dns, backendMinor(config));

  Result<network::ApiServerEndpoint> endpoint =
      Error::make(ErrorCode::kNotFound, "Unset", "not looked up");
  if (!w.apiServer.empty()) {
    endpoint = network::parseApiServerEndpoint(w.apiServer, "network.apiServer");
  } else {
    asio::co_spawn(io, discover(&cluster, &endpoint), asio::detached);
    io.run();
    io.restart();
  }
  if (endpoint.ok()) {
    endpoint->serverName = w.apiServerName;
    spdlog::info("msg=\"backend pods reach the API server here\" address={} source={}",
                 endpoint->url(),
                 w.apiServer.empty() ? "EndpointSlice default/kubernetes" : "network.apiServer");
  } else if (w.proxy.enabled) {
    return Error::make(endpoint.error().code, endpoint.error().reason,
                       fmt::format("the network proxy needs the API server's address: {} (set "
                                   "network.apiServer)",
                                   endpoint.error().message));
  } else {
    spdlog::warn(
        "msg=\"API server address unknown: backend pods get no KUBERNETES_SERVICE_*\" "
        "error=\"{}\"",
        endpoint.error().toString());
  }

  parts.serviceEnv.clusterIPs = w.proxy.enabled;
  if (!w.proxy.enabled && endpoint.ok()) {
    parts.serviceEnv.kubernetes = network::kubernetesServiceAt(*endpoint);
  }
  if (w.proxy.enabled) {
    const std::string secret = provider.nodeSecretName(network::kProxySecretPurpose);
    if (secret.empty()) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         fmt::format("network.proxy: provider {} cannot hold the proxy's "
                                     "credentials",
                                     provider.name()));
    }
    network::ProxySidecarOptions s;
    s.image = w.proxy.image;
    s.command = w.proxy.command;
    s.cpu = w.proxy.cpu;
    s.memory = w.proxy.memory;
    s.secretName = secret;
    s.logLevel = config.logLevel.empty() ? "info" : config.logLevel;
    parts.sidecar = std::move(s);
    network::ProxyCredentialsOptions c;
    c.serviceAccountNamespace = ownNamespace(w.proxy.ns);
    c.serviceAccount = w.proxy.serviceAccount;
    c.tokenLifetime = std::chrono::duration_cast<std::chrono::seconds>(w.proxy.tokenLifetime);
    c.apiServer = *endpoint;
    parts.credentials =
        std::make_unique<network::ProxyCredentials>(cluster, provider, std::move(c), clock);
  }
  return parts;
}

Result<boost::json::value> finishPreparing(boost::json::value pod, const NetworkParts& parts,
                                           kube::EventRecorder& events) {
  auto notes = network::applyClusterDns(pod, parts.dns);
  if (!notes.ok()) {
    return std::move(notes).error();
  }
  for (const auto& n : *notes) {
    events.record(kube::referenceTo(pod), kube::EventType::kWarning, n.reason, n.message);
  }
  if (parts.sidecar) {
    if (auto s = network::injectProxySidecar(pod, *parts.sidecar); !s.ok()) {
      return std::move(s).error();
    }
  }
  return pod;
}

}  // namespace burstlet::daemon
