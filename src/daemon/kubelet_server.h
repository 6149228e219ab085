// The kubelet API's part of `burstlet run`: its HTTPS listener (certificate files, or a
// self-signed one for the node's address and name), the cluster's TokenReview and
// SubjectAccessReview behind it, and the routes over the pod controller's pods and the provider.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "daemon/config.h"
#include "daemon/kubelet_certs.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "kubelet/auth.h"
#include "kubelet/kubelet_api.h"
#include "kubelet/spdy_streams.h"
#include "provider/provider.h"
#include "server/http_server.h"

namespace burstlet::daemon {

struct KubeletParts {
  std::unique_ptr<kubelet::ApiReviews> reviews;
  std::unique_ptr<kubelet::RequestAuth> auth;
  std::unique_ptr<kubelet::StorePodSource> pods;
  std::unique_ptr<kubelet::SpdyStreamsImpl> spdy;
  std::unique_ptr<kubelet::KubeletApi> api;
  std::unique_ptr<server::HttpServer> server;  // listening, not started
  // With kubeletApi.serverTLSBootstrap: run() it until shutdown.
  std::unique_ptr<KubeletServingCertificates> certificates;
  std::string address;  // where it listens
};

// The listen address: config.kubeletApi.listen, else <nodeIP>:<kubeletPort>.
std::string kubeletListenAddress(const Config& config, const std::string& nodeIP);

// Listening (not started) with the kubelet's routes. Errors name the listener or certificate
// problem (address in use, unreadable files).
Result<KubeletParts> makeKubeletApi(const boost::asio::any_io_executor& executor,
                                    const Config& config, kube::RestClient& cluster,
                                    provider::Provider& provider, const kube::Store& pods,
                                    const std::string& nodeIP, const Clock& clock);

}  // namespace burstlet::daemon
