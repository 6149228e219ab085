// Service-link environment variables, as the kubelet derives them from the Services of a pod's
// namespace (declared in env.h).
#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "kube/json_path.h"
#include "pod/env.h"

namespace burstlet::pod {

namespace {

namespace json = boost::json;
using kube::arrayAt;
using kube::intAt;
using kube::stringAt;

std::string toUpperAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return out;
}

std::string toLowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// Service and port names are DNS labels: upper-casing and '-' -> '_' make them variable names.
std::string serviceVariableName(std::string_view name) {
  std::string out = toUpperAscii(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

std::string joinHostPort(std::string_view host, int64_t port) {
  if (host.find(':') != std::string_view::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

}  // namespace

std::vector<EnvVar> serviceLinkVariables(const std::vector<json::value>& services) {
  std::vector<EnvVar> out;
  for (const auto& service : services) {
    const std::string ip = stringAt(service, {"spec", "clusterIP"});
    const json::array* ports = arrayAt(service, {"spec", "ports"});
    if (ip.empty() || ip == "None" || ports == nullptr || ports->empty()) {
      continue;
    }
    const std::string prefix = serviceVariableName(stringAt(service, {"metadata", "name"}));
    out.push_back({prefix + "_SERVICE_HOST", ip});
    out.push_back({prefix + "_SERVICE_PORT", std::to_string(intAt(ports->front(), {"port"}))});
    for (const auto& port : *ports) {
      const std::string portName = stringAt(port, {"name"});
      if (!portName.empty()) {
        out.push_back({prefix + "_SERVICE_PORT_" + serviceVariableName(portName),
                       std::to_string(intAt(port, {"port"}))});
      }
    }
    // Docker-link variables; the first port also gets the bare {NAME}_PORT.
    bool first = true;
    for (const auto& port : *ports) {
      const int64_t number = intAt(port, {"port"});
      std::string protocol = stringAt(port, {"protocol"});
      if (protocol.empty()) {
        protocol = "TCP";
      }
      const std::string lower = toLowerAscii(protocol);
      const std::string url = fmt::format("{}://{}", lower, joinHostPort(ip, number));
      if (first) {
        out.push_back({prefix + "_PORT", url});
        first = false;
      }
      const std::string portPrefix =
          fmt::format("{}_PORT_{}_{}", prefix, number, toUpperAscii(protocol));
      out.push_back({portPrefix, url});
      out.push_back({portPrefix + "_PROTO", lower});
      out.push_back({portPrefix + "_PORT", std::to_string(number)});
      out.push_back({portPrefix + "_ADDR", ip});
    }
  }
  return out;
}

}  // namespace burstlet::pod
