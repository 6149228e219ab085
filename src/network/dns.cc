#include "network/dns.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <map>
#include <set>

#include "kube/json_path.h"

namespace burstlet::network {

namespace json = boost::json;
using kube::child;
using kube::stringOf;

namespace {

constexpr size_t kMaxSearchLength = 253;  // a DNS subdomain; longer ones abort some resolvers

constexpr std::string_view kDnsConfigForming = "DNSConfigForming";

std::vector<std::string> stringsOf(const json::value* list) {
  std::vector<std::string> out;
  if (list == nullptr || !list->is_array()) {
    return out;
  }
  for (const auto& v : list->as_array()) {
    if (v.is_string()) {
      out.emplace_back(v.as_string());
    }
  }
  return out;
}

void appendUnique(std::vector<std::string>& into, const std::vector<std::string>& more) {
  for (const auto& s : more) {
    if (std::find(into.begin(), into.end(), s) == into.end()) {
      into.push_back(s);
    }
  }
}

// The kubelet's cut: at most maxSearches, none longer than a DNS name, and the line (joined by
// spaces) at most maxSearchChars, dropping from the end.
bool fitSearches(std::vector<std::string>& searches, const DnsOptions& options) {
  bool cut = false;
  if (searches.size() > options.maxSearches) {
    searches.resize(options.maxSearches);
    cut = true;
  }
  const auto before = searches.size();
  std::erase_if(searches, [](const std::string& s) { return s.size() > kMaxSearchLength; });
  cut = cut || searches.size() != before;
  auto lineLength = [&searches] {
    size_t n = 0;
    for (const auto& s : searches) {
      n += s.size() + 1;
    }
    return n == 0 ? 0 : n - 1;
  };
  while (!searches.empty() && lineLength() > options.maxSearchChars) {
    searches.pop_back();
    cut = true;
  }
  return cut;
}

}  // namespace

DnsOptions withApiLimits(DnsOptions options, int backendMinor) {
  if (backendMinor < 28) {
    options.maxSearches = 6;
    options.maxSearchChars = 256;
  } else {
    options.maxSearches = 32;
    options.maxSearchChars = 2048;
  }
  return options;
}

Status validateDnsOptions(const DnsOptions& options) {
  for (const auto& ip : options.clusterDNS) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(ip, ec);
    if (ec) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         fmt::format("network.clusterDNS: {:?} is not an IP address", ip));
    }
  }
  if (options.clusterDNS.size() > options.maxNameservers) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("network.clusterDNS: at most {} addresses (a pod's resolver "
                                   "uses no more)",
                                   options.maxNameservers));
  }
  const std::string& d = options.clusterDomain;
  // Dot-separated DNS labels: lower-case letters, digits and inner '-', 1 to 63 characters.
  bool validDomain = !d.empty() && d.size() <= kMaxSearchLength;
  for (size_t start = 0; validDomain && start <= d.size();) {
    const size_t dot = std::min(d.find('.', start), d.size());
    const std::string_view label(d.data() + start, dot - start);
    validDomain = !label.empty() && label.size() <= 63 && label.front() != '-' &&
                  label.back() != '-' && std::all_of(label.begin(), label.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
                  });
    start = dot + 1;
  }
  if (!validDomain) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("network.clusterDomain: {:?} is not a DNS domain", d));
  }
  return okStatus();
}

Result<std::vector<DnsNote>> applyClusterDns(json::value& pod, const DnsOptions& options) {
  auto* spec = pod.is_object() ? pod.as_object().if_contains("spec") : nullptr;
  if (spec == nullptr || !spec->is_object()) {
    return Error::make(ErrorCode::kInvalid, "InvalidPod", "pod without a spec");
  }
  std::vector<DnsNote> notes;
  if (options.clusterDNS.empty()) {
    return notes;
  }
  auto& s = spec->as_object();
  const std::string_view policy = stringOf(s.if_contains("dnsPolicy"));
  // hostNetwork pods never reach the backend (validation refuses them), so ClusterFirst and
  // ClusterFirstWithHostNet mean the same here.
  if (!(policy.empty() || policy == "ClusterFirst" || policy == "ClusterFirstWithHostNet")) {
    return notes;
  }
  const std::string ns(stringOf(kube::path(&pod, {"metadata", "namespace"})));
  const std::string& domain = options.clusterDomain;
  std::vector<std::string> servers;
  appendUnique(servers, options.clusterDNS);
  std::vector<std::string> searches;
  if (!ns.empty()) {
    searches.push_back(fmt::format("{}.svc.{}", ns, domain));
  }
  appendUnique(searches, {fmt::format("svc.{}", domain), domain});
  // Options by name; the pod's own win over the cluster's ndots:5.
  std::map<std::string, std::optional<std::string>> opts{{"ndots", "5"}};
  const json::value* own = s.if_contains("dnsConfig");
  if (own != nullptr && own->is_object()) {
    appendUnique(servers, stringsOf(child(own, "nameservers")));
    appendUnique(searches, stringsOf(child(own, "searches")));
    if (const auto* list = child(own, "options"); list != nullptr && list->is_array()) {
      for (const auto& o : list->as_array()) {
        const std::string name(stringOf(child(&o, "name")));
        if (name.empty()) {
          continue;
        }
        const auto* value = child(&o, "value");
        opts[name] = value != nullptr && value->is_string()
                         ? std::optional<std::string>(std::string(value->as_string()))
                         : std::nullopt;
      }
    }
  }
  if (servers.size() > options.maxNameservers) {
    servers.resize(options.maxNameservers);
    notes.push_back({std::string(kDnsConfigForming),
                     fmt::format("Nameserver limits were exceeded, some nameservers have been "
                                 "omitted, the applied nameserver line is: {}",
                                 fmt::join(servers, " "))});
  }
  if (fitSearches(searches, options)) {
    notes.push_back({std::string(kDnsConfigForming),
                     fmt::format("Search Line limits were exceeded, some search paths have been "
                                 "omitted, the applied search line is: {}",
                                 fmt::join(searches, " "))});
  }
  json::array serverList;
  for (const auto& v : servers) {
    serverList.emplace_back(v);
  }
  json::array searchList;
  for (const auto& v : searches) {
    searchList.emplace_back(v);
  }
  json::array optionList;
  for (const auto& [name, value] : opts) {
    json::object o{{"name", name}};
    if (value) {
      o["value"] = *value;
    }
    optionList.push_back(std::move(o));
  }
  s["dnsPolicy"] = "None";
  s["dnsConfig"] = json::object{{"nameservers", std::move(serverList)},
                                {"searches", std::move(searchList)},
                                {"options", std::move(optionList)}};
  return notes;
}

}  // namespace burstlet::network
