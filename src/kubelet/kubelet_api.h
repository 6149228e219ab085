// The kubelet API of the virtual node: the routes the API server (kubectl logs/exec/attach/
// port-forward, nodes/proxy) and metrics-server call, each behind RequestAuth, answered from
// the node's pods (the cluster's view) and the provider (the backend's).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "kubelet/auth.h"
#include "provider/provider.h"
#include "server/http_server.h"

namespace burstlet::kube {
class Store;
}  // namespace burstlet::kube

namespace burstlet::kubelet {

namespace asio = boost::asio;
using PodPtr = std::shared_ptr<const boost::json::value>;

// The pods bound to the node, as the cluster shows them. Thread-safe.
class PodSource {
 public:
  virtual ~PodSource() = default;
  // Null when no such pod is bound to the node.
  virtual PodPtr pod(const std::string& ns, const std::string& name) const = 0;
  virtual std::vector<PodPtr> pods() const = 0;
};

// The pod controller's informer store (keys "<ns>/<name>").
class StorePodSource final : public PodSource {
 public:
  explicit StorePodSource(const kube::Store& store) : store_(store) {}
  PodPtr pod(const std::string& ns, const std::string& name) const override;
  std::vector<PodPtr> pods() const override;

 private:
  const kube::Store& store_;
};

// How SPDY upgrades (exec, attach, port-forward from API servers before
// ExtendWebSocketsToKubelet) are served; installed by spdy_routes.h. Null: WebSocket only.
class SpdyStreams {
 public:
  virtual ~SpdyStreams() = default;
  virtual asio::awaitable<server::Response> command(server::Exchange& exchange,
                                                    provider::ExecSession& session,
                                                    const provider::ExecOptions& options) = 0;
  virtual asio::awaitable<server::Response> portForward(server::Exchange& exchange,
                                                        provider::Provider& provider,
                                                        provider::PodRef pod) = 0;
};

struct KubeletApiOptions {
  std::string nodeName;
  // Containers burstlet adds to every pod on the backend (the network proxy sidecar): not in
  // the cluster's pod, so the API server never names them, but served when a caller of the
  // kubelet API itself asks for their logs (nodes/<node>/proxy/containerLogs/<ns>/<pod>/<name>).
  std::vector<std::string> injectedContainers;
  Clock::WallTime startTime = std::chrono::system_clock::now();
};

class KubeletApi {
 public:
  KubeletApi(provider::Provider& provider, const PodSource& pods, RequestAuth& auth,
             KubeletApiOptions options, SpdyStreams* spdy = nullptr);

  // Adds the kubelet's routes to `server`.
  void install(server::HttpServer& server);

  // The handlers (public for tests that call them without a listener).
  asio::awaitable<server::Response> containerLogs(server::Exchange& exchange);
  asio::awaitable<server::Response> command(server::Exchange& exchange, bool isExec);
  asio::awaitable<server::Response> portForward(server::Exchange& exchange);
  asio::awaitable<server::Response> statsSummary(server::Exchange& exchange);
  asio::awaitable<server::Response> resourceMetrics(server::Exchange& exchange);
  server::Response podList() const;
  asio::awaitable<server::Response> runningPods();

 private:
  // `handler` behind authentication and authorization.
  server::Handler guarded(server::Handler handler);
  // The pod the path names, or the 404/400 answer.
  // `logsOfInjected`: a container burstlet injected is found too (its logs only: exec into it
  // would hand out its capabilities and credentials).
  Result<provider::PodRef> findPod(const std::string& ns, const std::string& name,
                                   const std::string& uid, const std::string& container,
                                   bool logsOfInjected = false) const;
  asio::awaitable<Result<boost::json::value>> summary();

  provider::Provider& provider_;
  const PodSource& pods_;
  RequestAuth& auth_;
  const KubeletApiOptions options_;
  SpdyStreams* spdy_;
};

// The HTTP answer for a provider or request error: 400, 401, 403, 404, 409, 429, 500, 501,
// 503 or 504, with the error's message as plain text.
server::Response errorResponse(const Error& error);

}  // namespace burstlet::kubelet
