#include "network/netproxy/proxy_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <map>
#include <set>
#include <tuple>

#include "kube/json_path.h"

namespace burstlet::network {

namespace json = boost::json;
using kube::arrayAt;
using kube::at;
using kube::intAt;
using kube::stringAt;

namespace {

constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

// A condition that is absent counts as true (the API's rule for ready and serving).
bool conditionTrue(const json::value& endpoint, std::string_view name, bool absent) {
  const auto* v = at(endpoint, {"conditions", name});
  return v == nullptr || !v->is_bool() ? absent : v->as_bool();
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

struct SlicePorts {
  // (name, protocol) -> port number
  std::map<std::pair<std::string, std::string>, int> ports;
  std::vector<const json::value*> endpoints;
};

// nftables refuses comments over 128 bytes (and with them the whole ruleset): Service keys
// ("<ns>/<name>", up to 127 characters) are cut to fit.
std::string comment(std::string_view service) {
  constexpr size_t kMax = 100;
  return std::string(service.substr(0, kMax));
}

}  // namespace

bool isIPv4(std::string_view ip) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(ip, ec);
  return !ec && a.is_v4();
}

ProxyTable buildProxyTable(const std::vector<json::value>& services,
                           const std::vector<json::value>& slices,
                           const std::optional<ProxyEndpoint>& apiServer) {
  // The slices of each Service, by "namespace/name".
  std::map<std::string, std::vector<const json::value*>> byService;
  for (const auto& slice : slices) {
    const std::string service = stringAt(slice, {"metadata", "labels", kServiceNameLabel});
    const std::string type = stringAt(slice, {"addressType"});
    if (service.empty() || type != "IPv4") {
      continue;
    }
    byService[stringAt(slice, {"metadata", "namespace"}) + "/" + service].push_back(&slice);
  }
  ProxyTable table;
  for (const auto& service : services) {
    if (stringAt(service, {"spec", "type"}) == "ExternalName") {
      continue;
    }
    std::set<std::string> ips;
    if (const auto* list = arrayAt(service, {"spec", "clusterIPs"})) {
      for (const auto& ip : *list) {
        if (ip.is_string() && isIPv4(ip.as_string())) {
          ips.emplace(ip.as_string());
        }
      }
    }
    if (const std::string ip = stringAt(service, {"spec", "clusterIP"}); isIPv4(ip)) {
      ips.insert(ip);
    }
    const auto* ports = arrayAt(service, {"spec", "ports"});
    if (ips.empty() || ports == nullptr) {
      continue;  // headless or IPv6 only: DNS names the endpoints themselves
    }
    const std::string key = stringAt(service, {"metadata", "namespace"}) + "/" +
                            stringAt(service, {"metadata", "name"});
    const auto found = byService.find(key);
    for (const auto& port : *ports) {
      std::string protocol = stringAt(port, {"protocol"});
      protocol = protocol.empty() ? "tcp" : lower(protocol);
      if (protocol != "tcp" && protocol != "udp") {
        continue;
      }
      const std::string portName = stringAt(port, {"name"});
      std::set<ProxyEndpoint> ready;
      std::set<ProxyEndpoint> terminating;
      if (found != byService.end()) {
        for (const auto* slice : found->second) {
          int target = 0;
          if (const auto* slicePorts = arrayAt(*slice, {"ports"})) {
            for (const auto& sp : *slicePorts) {
              std::string spProtocol = stringAt(sp, {"protocol"});
              spProtocol = spProtocol.empty() ? "tcp" : lower(spProtocol);
              if (stringAt(sp, {"name"}) == portName && spProtocol == protocol) {
                target = static_cast<int>(intAt(sp, {"port"}));
              }
            }
          }
          const auto* endpoints = arrayAt(*slice, {"endpoints"});
          if (target <= 0 || endpoints == nullptr) {
            continue;
          }
          for (const auto& e : *endpoints) {
            const auto* addresses = arrayAt(e, {"addresses"});
            if (addresses == nullptr || addresses->empty() || !addresses->front().is_string() ||
                !isIPv4(addresses->front().as_string())) {
              continue;
            }
            ProxyEndpoint ep{std::string(addresses->front().as_string()), target};
            if (conditionTrue(e, "ready", true)) {
              ready.insert(std::move(ep));
            } else if (conditionTrue(e, "serving", true) &&
                       conditionTrue(e, "terminating", false)) {
              terminating.insert(std::move(ep));
            }
          }
        }
      }
      if (apiServer && key == "default/kubernetes" && protocol == "tcp") {
        ready = {*apiServer};
      }
      const auto& chosen = ready.empty() ? terminating : ready;
      for (const auto& ip : ips) {
        table.push_back({key, ip, static_cast<int>(intAt(port, {"port"})), protocol,
                         std::vector<ProxyEndpoint>(chosen.begin(), chosen.end())});
      }
    }
  }
  std::sort(table.begin(), table.end(), [](const auto& a, const auto& b) {
    return std::tie(a.clusterIP, a.protocol, a.port, a.service) <
           std::tie(b.clusterIP, b.protocol, b.port, b.service);
  });
  // Two Services cannot share a ClusterIP; should the API ever show it mid-change, the first wins.
  table.erase(std::unique(table.begin(), table.end(),
                          [](const auto& a, const auto& b) {
                            return a.clusterIP == b.clusterIP && a.protocol == b.protocol &&
                                   a.port == b.port;
                          }),
              table.end());
  return table;
}

std::string renderNftables(const ProxyTable& table, std::string_view tableName) {
  // "add" then "delete" makes the delete succeed whether or not the table exists; the new
  // table follows in the same transaction, so no packet sees a half-made ruleset.
  std::string out =
      fmt::format("add table ip {0}\ndelete table ip {0}\ntable ip {0} {{\n", tableName);
  out += "  chain nat_output {\n    type nat hook output priority -100; policy accept;\n";
  for (const auto& sp : table) {
    if (sp.endpoints.empty()) {
      continue;
    }
    std::string map;
    for (size_t i = 0; i < sp.endpoints.size(); ++i) {
      map += fmt::format("{}{} : {} . {}", i == 0 ? "" : ", ", i, sp.endpoints[i].ip,
                         sp.endpoints[i].port);
    }
    out += fmt::format(
        "    ip daddr {} {} dport {} dnat ip to numgen random mod {} map {{ {} }} comment \"{}\"\n",
        sp.clusterIP, sp.protocol, sp.port, sp.endpoints.size(), map, comment(sp.service));
  }
  out += "  }\n  chain filter_output {\n    type filter hook output priority 0; policy accept;\n";
  for (const auto& sp : table) {
    if (!sp.endpoints.empty()) {
      continue;
    }
    out += fmt::format("    ip daddr {} {} dport {} reject{} comment \"{}\"\n", sp.clusterIP,
                       sp.protocol, sp.port, sp.protocol == "tcp" ? " with tcp reset" : "",
                       comment(sp.service));
  }
  out += "  }\n}\n";
  return out;
}

}  // namespace burstlet::network
