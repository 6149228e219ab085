// Exec, attach and port-forward over SPDY/3.1, as the kubelet serves them to an API server
// that does not pass WebSockets through: remotecommand v4 .. channel.k8s.io (one SPDY stream per
// standard stream, the error stream carrying the end, a resize stream with a TTY) and
// portforward.k8s.io (a data and an error stream per forwarded connection, paired by
// requestID). Port-forward also comes as SPDY inside a WebSocket ("SPDY/3.1+portforward.k8s.io")
// from a 1.36 API server that passes the tunnel through.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "kubelet/kubelet_api.h"
#include "kubelet/spdy/session.h"

namespace burstlet::kubelet {

inline constexpr const char* kPortForwardProtocol = "portforward.k8s.io";
inline constexpr const char* kPortForwardTunnelProtocol = "SPDY/3.1+portforward.k8s.io";

// The remotecommand versions spoken over SPDY, preferred first (v5 is WebSocket only).
const std::vector<std::string>& spdyCommandProtocols();

// The version to speak: the first of the client's X-Stream-Protocol-Version values (one header
// each, or comma-separated) that we speak; channel.k8s.io when the client offered none; empty
// when it offered only others.
std::string negotiateStreamProtocol(const server::Request& request,
                                    const std::vector<std::string>& supported);

struct SpdyOptions {
  // Time the client gets to open the streams it announced.
  std::chrono::milliseconds streamCreationTimeout{std::chrono::seconds(30)};
  // Time the client gets to close the connection once the command ended.
  std::chrono::milliseconds closeGrace{std::chrono::seconds(10)};
  // A session without any frame for this long is closed (the kubelet's
  // streamingConnectionIdleTimeout).
  std::chrono::milliseconds idleTimeout{std::chrono::hours(4)};
};

class SpdyStreamsImpl final : public SpdyStreams {
 public:
  explicit SpdyStreamsImpl(SpdyOptions options = {}) : options_(options) {}
  asio::awaitable<server::Response> command(server::Exchange& exchange,
                                            provider::ExecSession& session,
                                            const provider::ExecOptions& options) override;
  asio::awaitable<server::Response> portForward(server::Exchange& exchange,
                                                provider::Provider& provider,
                                                provider::PodRef pod) override;

 private:
  const SpdyOptions options_;
};

// Serves one exec or attach on `session` (remotecommand `protocol`) until the command ended and
// the client closed (or the grace passed), or the client went away (then `exec` is cancelled).
asio::awaitable<void> serveCommand(std::shared_ptr<spdy::Session> session,
                                   provider::ExecSession& exec, provider::ExecOptions options,
                                   std::string protocol, SpdyOptions spdyOptions);

// Serves one port-forward session until it ends: each data/error stream pair forwarded to the
// pod's port through the provider.
asio::awaitable<void> servePortForward(std::shared_ptr<spdy::Session> session,
                                       provider::Provider& provider, provider::PodRef pod);

}  // namespace burstlet::kubelet
