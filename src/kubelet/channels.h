// SPDY sessions over what the HTTP server hands out: the raw stream after a 101 (SPDY/3.1
// upgrades), or a WebSocket whose binary messages carry the SPDY bytes (the tunnel of
// "SPDY/3.1+portforward.k8s.io" that a 1.36 API server passes through).
#pragma once

#include <memory>

#include "kubelet/spdy/session.h"
#include "server/websocket.h"

namespace burstlet::kubelet {

std::unique_ptr<spdy::ByteChannel> rawStreamChannel(std::unique_ptr<server::RawStream> stream);
std::unique_ptr<spdy::ByteChannel> webSocketChannel(std::unique_ptr<server::WebSocket> socket);

}  // namespace burstlet::kubelet
