// WebSocketClient: WebSockets to an API server (Boost.Beast), for the subresources that stream
// both ways: pods/exec, pods/attach (remotecommand.h) and pods/portforward (port_forward.h).
// It reaches the server exactly as the HTTP transport does (connector.h: same TLS settings,
// same credentials: bearer token, exec plugin, client certificate, a RequestSigner such as
// CCI's), without a proxy, within a deadline for connecting and the upgrade. A refused upgrade
// carries the server's answer (a Kubernetes Status), which connect() classifies like any API
// error (errors.h): 404 kNotFound, 403 kForbidden, 400 kBadRequest, ...
//
// Each connection runs its I/O on a strand of its own, so a read waiting for the peer never
// holds up a write from another coroutine or thread (WebSocketConnection in http.h).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "kube/config.h"
#include "kube/credentials.h"
#include "kube/http.h"

namespace burstlet::kube {

class Connector;

class WebSocketClient {
 public:
  // Fails (kInvalid) on a malformed server URL or unusable TLS material. `credentials` may be
  // null (anonymous).
  static Result<std::unique_ptr<WebSocketClient>> create(
      asio::any_io_executor executor, const ClientConfig& config,
      std::shared_ptr<CredentialSource> credentials);
  // On a connector shared with an HTTP transport (transport.cc).
  explicit WebSocketClient(std::shared_ptr<Connector> connector);
  ~WebSocketClient();

  // Opens the WebSocket; a refused upgrade is the classified error of the server's answer.
  // Errors: kTimeout when the deadline passed, kUnavailable ("ConnectFailed", "ConnectionLost",
  // "TLSError", "WebSocketHandshakeFailed"), kInternal "UnexpectedSubprotocol" when the server
  // picked a subprotocol that was not offered, and the answer's class.
  asio::awaitable<Result<std::unique_ptr<WebSocketConnection>>> connect(WebSocketRequest request);
  // The same, with a refused upgrade as the answer (for callers with errors of their own
  // dialect: the RestClient).
  asio::awaitable<Result<WebSocketUpgrade>> upgrade(WebSocketRequest request);

 private:
  std::shared_ptr<Connector> connector_;
};

}  // namespace burstlet::kube
