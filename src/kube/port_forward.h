// Port-forward over a WebSocket without SPDY (pods/portforward, subprotocol v4.channel.k8s.io):
// the kubelet's WebSocket port-forward, which the API server proxies to the kubelet as it is
// when the request does not ask for the tunneling subprotocol (SPDY/3.1+portforward.k8s.io).
// One port per connection here: channel 0 carries its data both ways, channel 1 the server's
// error text; the server starts each channel with the port, 2 bytes little-endian. The client's
// data goes on channel 0 as it is (no port prefix). The protocol has no half-close.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/http.h"

namespace burstlet::kube {

class RestClient;

inline constexpr std::string_view kPortForwardV4 = "v4.channel.k8s.io";

// One forwarded connection to a port of a pod. One reader and one writer at a time, on any
// threads.
class PortForwardStream {
 public:
  PortForwardStream(std::unique_ptr<WebSocketConnection> connection, uint16_t port);
  ~PortForwardStream();

  uint16_t port() const { return port_; }
  // The next bytes from the pod's port; std::nullopt when the connection ended. What the server
  // reports on the error channel (the port refused the connection, ...) is kUnavailable
  // "PortForwardFailed" with its text; bytes that do not start with the port are kInternal
  // "ProtocolError".
  asio::awaitable<Result<std::optional<std::string>>> read();
  // Sends bytes to the pod's port. "" would half-close, which the protocol cannot say: nothing
  // is sent (the port sees its input end when the connection closes).
  asio::awaitable<Status> write(std::string data);
  // Ends the connection at once. Thread-safe.
  void cancel() { connection_->cancel(); }

 private:
  // Takes the 2-byte port header off the start of a channel (it may come in pieces); false
  // when the bytes are not this port.
  bool stripPort(std::string& data, std::string& header) const;

  std::unique_ptr<WebSocketConnection> connection_;
  const uint16_t port_;
  // The reader's: header bytes seen so far on the data and error channels, the error text.
  std::string dataHeader_;
  std::string errorHeader_;
  std::string errorText_;
};

// Opens pods/portforward of `pod` in `ns` to `port` through `client`. `what` names the request
// in error messages.
asio::awaitable<Result<std::unique_ptr<PortForwardStream>>> openPortForward(
    RestClient& client, std::string ns, std::string pod, uint16_t port, std::string what);

}  // namespace burstlet::kube
