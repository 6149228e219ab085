#include "kube/port_forward.h"

#include <fmt/format.h>

#include "kube/resource.h"
#include "kube/rest.h"

namespace burstlet::kube {

namespace {

constexpr uint8_t kDataChannel = 0;
constexpr uint8_t kErrorChannel = 1;
constexpr size_t kPortHeader = 2;
// As for exec sessions (remotecommand.cc): pings keep a quiet forwarded connection open.
constexpr std::chrono::seconds kStreamIdle{60};

}  // namespace

PortForwardStream::PortForwardStream(std::unique_ptr<WebSocketConnection> connection, uint16_t port)
    : connection_(std::move(connection)), port_(port) {}

PortForwardStream::~PortForwardStream() = default;

bool PortForwardStream::stripPort(std::string& data, std::string& header) const {
  if (header.size() < kPortHeader) {
    const size_t take = std::min(kPortHeader - header.size(), data.size());
    header.append(data, 0, take);
    data.erase(0, take);
    if (header.size() == kPortHeader) {
      const auto lo = static_cast<uint8_t>(header[0]);
      const auto hi = static_cast<uint8_t>(header[1]);
      return static_cast<uint16_t>(lo | (hi << 8)) == port_;
    }
  }
  return true;
}

asio::awaitable<Result<std::optional<std::string>>> PortForwardStream::read() {
  while (true) {
    auto message = co_await connection_->read();
    if (!message.ok()) {
      co_return std::move(message).error();
    }
    if (!message->has_value()) {
      if (!errorText_.empty()) {
        co_return Error::make(ErrorCode::kUnavailable, "PortForwardFailed", errorText_);
      }
      co_return std::optional<std::string>();
    }
    std::string& m = **message;
    if (m.empty()) {
      continue;
    }
    const auto channel = static_cast<uint8_t>(m[0]);
    m.erase(0, 1);
    if (channel == kDataChannel) {
      if (!stripPort(m, dataHeader_)) {
        co_return Error::make(ErrorCode::kInternal, "ProtocolError",
                              fmt::format("port-forward to port {}: the data channel is for "
                                          "another port",
                                          port_));
      }
      if (!m.empty()) {
        co_return std::optional<std::string>(std::move(m));
      }
    } else if (channel == kErrorChannel) {
      if (!stripPort(m, errorHeader_)) {
        co_return Error::make(ErrorCode::kInternal, "ProtocolError",
                              fmt::format("port-forward to port {}: the error channel is for "
                                          "another port",
                                          port_));
      }
      errorText_ += m;
      // The server writes its error once the forwarding ended: nothing follows on the data
      // channel, so say it now.
      if (!errorText_.empty()) {
        co_return Error::make(ErrorCode::kUnavailable, "PortForwardFailed", errorText_);
      }
    }
  }
}

asio::awaitable<Status> PortForwardStream::write(std::string data) {
  if (data.empty()) {
    co_return okStatus();
  }
  std::string message;
  message.reserve(data.size() + 1);
  message.push_back(static_cast<char>(kDataChannel));
  message += data;
  co_return co_await connection_->write(std::move(message));
}

asio::awaitable<Result<std::unique_ptr<PortForwardStream>>> openPortForward(
    RestClient& client, std::string ns, std::string pod, uint16_t port, std::string what) {
  WebSocketRequest request;
  request.target = resources::kPods.path(ns, pod, "portforward") + "?ports=" + std::to_string(port);
  request.subprotocols = {std::string(kPortForwardV4)};
  request.idleTimeout = kStreamIdle;
  const std::string name = what;
  auto connection = co_await client.websocket(std::move(request), std::move(what));
  if (!connection.ok()) {
    co_return std::move(connection).error();
  }
  if ((*connection)->subprotocol() != kPortForwardV4) {
    co_return Error::make(ErrorCode::kInternal, "UnexpectedSubprotocol",
                          fmt::format("{}: the server does not speak {} (it picked {:?})", name,
                                      kPortForwardV4, (*connection)->subprotocol()));
  }
  co_return std::make_unique<PortForwardStream>(std::move(*connection), port);
}

}  // namespace burstlet::kube
