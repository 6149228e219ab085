#include "provider/cci/cce_discovery.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <utility>

#include "kube/json_path.h"

namespace burstlet::provider::cci {

namespace asio = boost::asio;
namespace json = boost::json;
using kube::stringAt;

namespace {

// GET `target` from `client` as JSON; errors name `what`.
asio::awaitable<Result<json::value>> getJson(kube::RestClient* client, std::string target,
                                             std::string what) {
  if (client == nullptr) {
    co_return Error::make(ErrorCode::kInvalid, "DiscoveryNotConfigured",
                          fmt::format("{}: no endpoint configured for it", what));
  }
  kube::HttpRequest request;
  request.target = std::move(target);
  auto response = co_await client->call(std::move(request), true, what);
  if (!response.ok()) {
    Error e = std::move(response).error();
    e.message = fmt::format("{} at {} failed: {}", what, client->config().server, e.message);
    co_return e;
  }
  boost::system::error_code ec;
  json::value v = json::parse(response->body, ec);
  if (ec || !v.is_object()) {
    co_return Error::make(
        ErrorCode::kInternal, "InvalidDiscoveryResponse",
        fmt::format("{} at {}: the answer is not a JSON object", what, client->config().server));
  }
  co_return v;
}

// The string at `keys`, or an error naming the field and the call.
Result<std::string> required(const json::value& v, std::initializer_list<std::string_view> keys,
                             std::string_view field, std::string_view what) {
  std::string s = stringAt(v, keys);
  if (s.empty()) {
    return Error::make(ErrorCode::kInternal, "InvalidDiscoveryResponse",
                       fmt::format("{}: the answer has no {}", what, field));
  }
  return s;
}

// Sets `*out` from `value` unless it is set already.
void fill(std::string* out, std::string value) {
  if (out->empty()) {
    *out = std::move(value);
  }
}

}  // namespace

asio::awaitable<Result<NetworkSettings>> discoverNetwork(CceSources sources, std::string projectID,
                                                         std::string clusterID,
                                                         NetworkSettings given) {
  NetworkSettings s = std::move(given);
  fill(&s.projectID, projectID);
  if (s.vpcID.empty() || s.networkID.empty() || s.securityGroupID.empty()) {
    const std::string what = fmt::format("reading CCE cluster {}", clusterID);
    // Named arguments: GCC 12 mishandles class-type temporaries in a co_await (kube/rest.h).
    const std::string target = fmt::format("/api/v3/projects/{}/clusters/{}", projectID, clusterID);
    auto cluster = co_await getJson(sources.cce, target, what);
    if (!cluster.ok()) {
      co_return std::move(cluster).error();
    }
    for (const auto& [out, key] : {std::pair{&s.vpcID, "vpc"}, std::pair{&s.networkID, "subnet"},
                                   std::pair{&s.securityGroupID, "SecurityGroup"}}) {
      if (!out->empty()) {
        continue;
      }
      auto v = required(*cluster, {"spec", "hostNetwork", key},
                        fmt::format("spec.hostNetwork.{}", key), what);
      if (!v.ok()) {
        co_return std::move(v).error();
      }
      *out = std::move(*v);
    }
  }
  if (s.subnetID.empty() || s.cidr.empty() || s.availabilityZone.empty()) {
    // The cluster's "subnet" is the VPC API's subnet id (the Network's networkID).
    const std::string what = fmt::format("reading VPC subnet {}", s.networkID);
    const std::string target = fmt::format("/v1/{}/subnets/{}", projectID, s.networkID);
    auto subnet = co_await getJson(sources.vpc, target, what);
    if (!subnet.ok()) {
      co_return std::move(subnet).error();
    }
    for (const auto& [out, key] :
         {std::pair{&s.subnetID, "neutron_subnet_id"}, std::pair{&s.cidr, "cidr"},
          std::pair{&s.availabilityZone, "availability_zone"}}) {
      if (!out->empty()) {
        continue;
      }
      auto v = required(*subnet, {"subnet", key}, fmt::format("subnet.{}", key), what);
      if (!v.ok()) {
        co_return std::move(v).error();
      }
      *out = std::move(*v);
    }
    const std::string vpc = stringAt(*subnet, {"subnet", "vpc_id"});
    if (!vpc.empty() && vpc != s.vpcID) {
      co_return Error::make(
          ErrorCode::kInvalid, "InvalidDiscoveryResponse",
          fmt::format("{}: it belongs to VPC {}, not to the cluster's VPC {}", what, vpc, s.vpcID));
    }
  }
  if (s.domainID.empty()) {
    const std::string what = fmt::format("reading IAM project {}", projectID);
    const std::string target = fmt::format("/v3/projects/{}", projectID);
    auto project = co_await getJson(sources.iam, target, what);
    if (!project.ok()) {
      co_return std::move(project).error();
    }
    auto v = required(*project, {"project", "domain_id"}, "project.domain_id", what);
    if (!v.ok()) {
      co_return std::move(v).error();
    }
    s.domainID = std::move(*v);
  }
  co_return s;
}

std::string regionalEndpoint(std::string_view cciEndpoint, std::string_view service) {
  constexpr std::string_view kScheme = "https://";
  constexpr std::string_view kCci = "cci.";
  if (cciEndpoint.substr(0, kScheme.size()) != kScheme) {
    return "";
  }
  std::string_view host = cciEndpoint.substr(kScheme.size());
  if (host.substr(0, kCci.size()) != kCci) {
    return "";
  }
  return fmt::format("{}{}.{}", kScheme, service, host.substr(kCci.size()));
}

}  // namespace burstlet::provider::cci
