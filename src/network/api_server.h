// Where a backend pod reaches the cluster's API server. Inside the cluster that is the
// `kubernetes` Service's ClusterIP; from the backend it is the API server's own address, which
// the API server publishes in the `kubernetes` EndpointSlice of namespace default (its
// --advertise-address), unless the operator configures another (a load balancer, a VPC
// endpoint).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "common/result.h"
#include "kube/rest.h"

namespace burstlet::network {

struct ApiServerEndpoint {
  std::string host;  // an IP or a DNS name
  int port = 0;
  // The name checked in the API server's certificate when `host` is not in it; "" = host.
  std::string serverName;

  bool empty() const { return host.empty(); }
  // "https://host:port" (IPv6 in brackets).
  std::string url() const;
};

// Parses "host:port" or "[v6]:port" (also with an https:// prefix). kInvalid naming `what`.
Result<ApiServerEndpoint> parseApiServerEndpoint(std::string_view text, std::string_view what);

// The first ready address and the "https" port of the EndpointSlice `kubernetes` in `default`.
// kNotFound when it has none.
boost::asio::awaitable<Result<ApiServerEndpoint>> discoverApiServer(kube::RestClient& cluster);

// The "kubernetes" Service a pod's environment is made from (pod/env.h EnvSources::services)
// when it points at `endpoint` rather than at the ClusterIP.
boost::json::value kubernetesServiceAt(const ApiServerEndpoint& endpoint);

}  // namespace burstlet::network
