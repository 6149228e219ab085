// What the network proxy makes of the cluster's Services and EndpointSlices: for every
// ClusterIP:port (TCP, UDP) the endpoints a new connection may go to, and the nftables ruleset
// that does it. Pure functions; netproxy.h feeds them from informers and applies the result.
//
// Endpoints are chosen like kube-proxy chooses them: the ready ones; when a Service has none,
// those still serving while they terminate; a Service port without any is refused (TCP reset,
// ICMP port unreachable) rather than left to time out. IPv4 only: IPv6 ClusterIPs and SCTP
// ports are left out (docs/networking.md).
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace burstlet::network {

struct ProxyEndpoint {
  std::string ip;
  int port = 0;

  bool operator==(const ProxyEndpoint&) const = default;
  bool operator<(const ProxyEndpoint& o) const {
    return std::tie(ip, port) < std::tie(o.ip, o.port);
  }
};

struct ProxyServicePort {
  std::string service;  // "namespace/name", for logs
  std::string clusterIP;
  int port = 0;
  std::string protocol;                  // "tcp" or "udp"
  std::vector<ProxyEndpoint> endpoints;  // sorted, unique; empty: refused

  bool operator==(const ProxyServicePort&) const = default;
};

// Sorted by clusterIP, protocol, port.
using ProxyTable = std::vector<ProxyServicePort>;

// The table of `services` (Service objects) and `slices` (EndpointSlice objects, matched to
// their Service by the kubernetes.io/service-name label and namespace). `apiServer`, when set,
// is where the master Service (default/kubernetes) goes instead of its EndpointSlice: the
// address the backend reaches the API server at, which the API server's own (advertised)
// address may not be.
ProxyTable buildProxyTable(const std::vector<boost::json::value>& services,
                           const std::vector<boost::json::value>& slices,
                           const std::optional<ProxyEndpoint>& apiServer = std::nullopt);

inline constexpr std::string_view kProxyTableName = "burstlet_netproxy";

bool isIPv4(std::string_view ip);

// The nftables script that replaces table `ip <tableName>` whole, in one transaction: DNAT in
// the output hook (the pod's own connections), each ClusterIP:port to a random endpoint, and
// refusals in a filter chain.
std::string renderNftables(const ProxyTable& table, std::string_view tableName = kProxyTableName);

}  // namespace burstlet::network
