// BackendStreams: the kubelet API's streams of the node's pods, served by the backend's API server
// (CCI or any Kubernetes API server) on the backend pod that stands for the source pod:
//   logs         GET pods/log, streamed as it arrives (never held whole);
//   exec/attach  pods/exec, pods/attach over a WebSocket (kube/remotecommand.h: v5, else v4);
//   portForward  pods/portforward over a WebSocket (kube/port_forward.h, v4.channel.k8s.io).
// A pod this node does not run is kNotFound. The backend's refusals keep their class and message,
// with the backend's names for the pod and its namespace replaced by the source's, so a user sees
// the pod they asked for.
//
// Thread-safety: the calls may come from any thread; each stream they return has one reader and
// one writer at a time, and a cancel() from anywhere.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "kube/rest.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

// The query of a pods/log request for `options` ("?container=..&follow=true&..."); only what
// differs from the API's defaults.
std::string logQuery(const LogOptions& options);

class BackendStreams {
 public:
  // The backend name of the source pod, or kNotFound when this node runs no such pod.
  using Resolve = std::function<Result<std::string>(const PodRef&)>;

  // `backend` must outlive this and every stream it returns.
  BackendStreams(kube::RestClient& backend, std::string backendNamespace, Resolve resolve);

  // Provider::logs, exec, attach, portForward.
  asio::awaitable<Result<std::unique_ptr<ByteStream>>> logs(PodRef pod, LogOptions options);
  asio::awaitable<Result<std::unique_ptr<ExecSession>>> exec(PodRef pod, ExecOptions options);
  asio::awaitable<Result<std::unique_ptr<ExecSession>>> attach(PodRef pod, ExecOptions options);
  asio::awaitable<Result<std::unique_ptr<PortStream>>> portForward(PodRef pod, uint16_t port);

 private:
  asio::awaitable<Result<std::unique_ptr<ExecSession>>> remoteCommand(PodRef pod,
                                                                      ExecOptions options,
                                                                      bool attach);

  kube::RestClient& backend_;
  const std::string backendNamespace_;
  const Resolve resolve_;
};

}  // namespace burstlet::provider::cci
