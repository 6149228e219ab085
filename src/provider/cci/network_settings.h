// The CCI Network of the backend namespace (networking.cci.io/v1beta1): its settings
// (provider.cci.network), their validation, and the object burstlet creates from them. CCI runs
// no pod in a namespace until the namespace holds an Active Network binding it to a VPC subnet;
// the product puts burst pods on the CCE cluster's own subnet (docs/cci-api-facts.md).
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/resource.h"

namespace burstlet::provider::cci {

// networking.cci.io/v1beta1 networks. Inline, so that it is initialized before any namespace
// scope object that uses it in a file that includes this header.
inline const kube::ResourceRef kNetworks{"networking.cci.io", "v1beta1", "networks", true,
                                         "Network"};

// The Network's annotations (CCI API reference, "Create Network", Table 4).
inline constexpr const char* kNetworkSecurityGroupAnnotation =
    "network.alpha.kubernetes.io/default-security-group";
inline constexpr const char* kNetworkDomainAnnotation = "network.alpha.kubernetes.io/domain-id";
inline constexpr const char* kNetworkProjectAnnotation = "network.alpha.kubernetes.io/project-id";
// spec.networkType of a VPC network, the only kind burstlet makes.
inline constexpr const char* kNetworkTypeUnderlay = "underlay_neutron";
// status.state values (Table 6).
inline constexpr std::string_view kNetworkActive = "Active";
inline constexpr std::string_view kNetworkFailed = "Failed";
inline constexpr std::string_view kNetworkTerminating = "Terminating";

// CCI's Service range: a Network whose subnet overlaps it is refused.
inline constexpr std::string_view kCciServiceRange = "10.247.0.0/16";

struct NetworkSettings {
  std::string name = "burstlet-network";
  std::string vpcID;             // spec.attachedVPC
  std::string subnetID;          // spec.subnetID (the VPC API's neutron_subnet_id)
  std::string networkID;         // spec.networkID (the VPC API's subnet id)
  std::string securityGroupID;   // annotation default-security-group
  std::string availabilityZone;  // spec.availableZone
  std::string cidr;              // spec.cidr
  std::string domainID;          // annotation domain-id
  std::string projectID;         // annotation project-id
  // A Network not Active this long after burstlet began waiting is reported (node condition,
  // Warning event); burstlet keeps waiting.
  std::chrono::milliseconds activeTimeout{std::chrono::minutes(10)};
};

// The config keys (below provider.cci.network) of the settings that are empty, in order.
std::vector<std::string> missingNetworkKeys(const NetworkSettings& s);

// kInvalid "InvalidNetworkSettings" with one line per bad key, each "<where>.<key>: <why>":
// empty (when `complete` is required), a malformed ID, a CIDR that does not parse or has host
// bits set, a subnet overlapping CCI's Service range. Empty keys are not checked when
// `complete` is false (discovery fills them).
Status validateNetwork(const NetworkSettings& s, std::string_view where, bool complete);

// An IPv4 network: address and prefix length.
struct Ipv4Cidr {
  uint32_t address = 0;
  int prefix = 0;
};
// "a.b.c.d/n"; kInvalid with the reason when it does not parse or has host bits set.
Result<Ipv4Cidr> parseIpv4Cidr(std::string_view text);
bool overlaps(const Ipv4Cidr& a, const Ipv4Cidr& b);

// The Network to create in namespace `ns`, labelled `labels` (burstlet's ownership labels).
boost::json::value networkObject(const NetworkSettings& s, const std::string& ns,
                                 const boost::json::object& labels);

}  // namespace burstlet::provider::cci
