#include "daemon/kubelet_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "network/sidecar.h"

namespace burstlet::daemon {

std::string kubeletListenAddress(const Config& config, const std::string& nodeIP) {
  if (!config.kubeletApi.listen.empty()) {
    return config.kubeletApi.listen;
  }
  if (nodeIP.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", nodeIP, config.kubeletPort);
  }
  return fmt::format("{}:{}", nodeIP, config.kubeletPort);
}

Result<KubeletParts> makeKubeletApi(const boost::asio::any_io_executor& executor,
                                    const Config& config, kube::RestClient& cluster,
                                    provider::Provider& provider, const kube::Store& pods,
                                    const std::string& nodeIP, const Clock& clock) {
  const auto& k = config.kubeletApi;
  server::TlsOptions tls;
  tls.certFile = k.certFile;
  tls.keyFile = k.keyFile;
  if (k.certFile.empty()) {
    tls.selfSignedHosts = {nodeIP, config.nodeName};
  }
  tls.clientCaFile = k.clientCAFile;
  server::Options options;
  options.tls = std::move(tls);
  options.clock = &clock;
  // Long exec commands and the API server's headers; log streams and exec sessions of many
  // users at once.
  options.maxHeaderBytes = size_t{64} * 1024;
  options.maxConnections = 1024;
  KubeletParts parts;
  parts.address = kubeletListenAddress(config, nodeIP);
  auto server = server::HttpServer::create(executor, parts.address, std::move(options));
  if (!server.ok()) {
    return server.error();
  }
  parts.server = std::move(*server);
  parts.reviews = std::make_unique<kubelet::ApiReviews>(cluster);
  kubelet::AuthOptions authOptions;
  authOptions.enabled = k.authentication;
  authOptions.nodeName = config.nodeName;
  if (!k.authentication) {
    spdlog::warn(
        "msg=\"kubelet API authentication is off: anyone who reaches {} may read logs and run "
        "commands in the node's pods; for local debugging only\"",
        parts.address);
  }
  parts.auth = std::make_unique<kubelet::RequestAuth>(*parts.reviews, authOptions, clock);
  parts.pods = std::make_unique<kubelet::StorePodSource>(pods);
  kubelet::KubeletApiOptions apiOptions;
  apiOptions.nodeName = config.nodeName;
  apiOptions.startTime = clock.now();
  if (config.network.proxy.enabled) {
    apiOptions.injectedContainers.emplace_back(network::kProxyContainerName);
  }
  parts.spdy = std::make_unique<kubelet::SpdyStreamsImpl>();
  parts.api = std::make_unique<kubelet::KubeletApi>(provider, *parts.pods, *parts.auth, apiOptions,
                                                    parts.spdy.get());
  parts.api->install(*parts.server);
  if (k.serverTLSBootstrap) {
    KubeletCertOptions certOptions;
    certOptions.nodeName = config.nodeName;
    certOptions.hosts = {nodeIP, config.nodeName};
    certOptions.approve = k.approveOwnRequest;
    parts.certificates = std::make_unique<KubeletServingCertificates>(cluster, *parts.server->tls(),
                                                                      certOptions, clock);
  }
  return parts;
}

}  // namespace burstlet::daemon
