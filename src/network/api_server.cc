#include "network/api_server.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>

#include "kube/json_path.h"

namespace burstlet::network {

namespace json = boost::json;
using kube::arrayAt;
using kube::intAt;
using kube::stringAt;

std::string ApiServerEndpoint::url() const {
  if (host.find(':') != std::string::npos) {
    return fmt::format("https://[{}]:{}", host, port);
  }
  return fmt::format("https://{}:{}", host, port);
}

Result<ApiServerEndpoint> parseApiServerEndpoint(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("{}: {:?} {}", what, text, why));
  };
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  }
  if (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  ApiServerEndpoint out;
  std::string_view portText;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad("is not [address]:port");
    }
    out.host = std::string(rest.substr(1, close - 1));
    portText = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || rest.find(':') != colon) {
      return bad("is not host:port");
    }
    out.host = std::string(rest.substr(0, colon));
    portText = rest.substr(colon + 1);
  }
  int port = 0;
  auto [p, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (out.host.empty() || ec != std::errc() || p != portText.data() + portText.size() || port < 1 ||
      port > 65535) {
    return bad("is not host:port with a port from 1 to 65535");
  }
  out.port = port;
  return out;
}

boost::asio::awaitable<Result<ApiServerEndpoint>> discoverApiServer(kube::RestClient& cluster) {
  const std::string ns = "default";
  const std::string name = "kubernetes";
  auto slice = co_await cluster.get(kube::resources::kEndpointSlices, ns, name);
  if (!slice.ok()) {
    co_return std::move(slice).error();
  }
  int port = 0;
  if (const auto* ports = arrayAt(*slice, {"ports"})) {
    for (const auto& p : *ports) {
      if (stringAt(p, {"name"}) == "https" || port == 0) {
        port = static_cast<int>(intAt(p, {"port"}));
      }
    }
  }
  if (const auto* endpoints = arrayAt(*slice, {"endpoints"}); endpoints != nullptr && port > 0) {
    for (const auto& e : *endpoints) {
      const auto* ready = kube::at(e, {"conditions", "ready"});
      const auto* addresses = arrayAt(e, {"addresses"});
      if ((ready != nullptr && ready->is_bool() && !ready->as_bool()) || addresses == nullptr ||
          addresses->empty() || !addresses->front().is_string()) {
        continue;
      }
      co_return ApiServerEndpoint{std::string(addresses->front().as_string()), port, ""};
    }
  }
  co_return Error::make(ErrorCode::kNotFound, "NoApiServerEndpoint",
                        "the EndpointSlice default/kubernetes lists no ready API server address");
}

json::value kubernetesServiceAt(const ApiServerEndpoint& endpoint) {
  return json::object{
      {"metadata", json::object{{"name", "kubernetes"}, {"namespace", "default"}}},
      {"spec", json::object{{"clusterIP", endpoint.host},
                            {"ports", json::array{json::object{{"name", "https"},
                                                               {"port", endpoint.port},
                                                               {"protocol", "TCP"}}}}}}};
}

}  // namespace burstlet::network
