// Discovery of the Network settings an operator on CCE leaves out: the CCE cluster's host
// network (its VPC, subnet and security group), the VPC API's record of that subnet (its CIDR,
// zone and Neutron subnet ID) and IAM's record of the project (its domain). Each service is read
// only for what is still missing. Facts and sources: docs/cci-api-facts.md.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/rest.h"
#include "provider/cci/network_settings.h"

namespace burstlet::provider::cci {

// Clients of the three services, with the credentials burstlet uses for CCI; null where the
// service is not needed (discovery fails, naming it, if it turns out to be).
struct CceSources {
  kube::RestClient* cce = nullptr;  // GET /api/v3/projects/{project}/clusters/{cluster}
  kube::RestClient* vpc = nullptr;  // GET /v1/{project}/subnets/{subnet}
  kube::RestClient* iam = nullptr;  // GET /v3/projects/{project}
};

// `given` with its empty settings filled in, for CCE cluster `clusterID` of project
// `projectID` (which also fills an empty projectID). Errors keep the failing call's code, with
// a message naming the call and what was wrong: refused (401/403/404), not answered, or an
// answer without the expected field. Secrets never appear in them.
boost::asio::awaitable<Result<NetworkSettings>> discoverNetwork(CceSources sources,
                                                                std::string projectID,
                                                                std::string clusterID,
                                                                NetworkSettings given);

// The endpoint of `service` ("cce", "vpc", "iam") in the region of a CCI endpoint:
// "https://cci.cn-north-4.myhuaweicloud.com" gives "https://cce.cn-north-4.myhuaweicloud.com".
// "" when the endpoint's host does not start with "cci.".
std::string regionalEndpoint(std::string_view cciEndpoint, std::string_view service);

}  // namespace burstlet::provider::cci
