#include "provider/cci/network_settings.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;
using kube::stringAt;

NetworkSettings complete() { return test::exampleNetwork(); }

std::string why(const NetworkSettings& s, bool needComplete = true) {
  auto st = validateNetwork(s, "provider.cci.network", needComplete);
  return st.ok() ? "" : st.error().message;
}

TEST(NetworkSettingsTest, CompleteSettingsAreValid) { EXPECT_EQ(why(complete()), ""); }

TEST(NetworkSettingsTest, EveryMissingKeyIsOneLine) {
  NetworkSettings s;
  const std::string w = why(s);
  for (const char* key : {"vpcID", "subnetID", "networkID", "securityGroupID", "availabilityZone",
                          "cidr", "domainID", "projectID"}) {
    EXPECT_NE(w.find(std::string("provider.cci.network.") + key + ": must be set"),
              std::string::npos)
        << key << " in " << w;
  }
  EXPECT_EQ(std::count(w.begin(), w.end(), '\n'), 7);
  EXPECT_EQ(missingNetworkKeys(s).size(), 8U);
  EXPECT_TRUE(missingNetworkKeys(complete()).empty());
  // Discovery will fill what is empty: only the set keys are checked then.
  EXPECT_EQ(why(s, false), "");
}

TEST(NetworkSettingsTest, MalformedIdsAreNamed) {
  NetworkSettings s = complete();
  s.vpcID = "vpc-123";
  s.securityGroupID = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE";  // upper case
  s.domainID = "44c0781c-8348-4eb9-a4a5-d4d233522cea";         // a UUID, not 32 hex digits
  const std::string w = why(s);
  EXPECT_NE(w.find("provider.cci.network.vpcID: \"vpc-123\" is not an ID"), std::string::npos) << w;
  EXPECT_NE(w.find("provider.cci.network.securityGroupID:"), std::string::npos) << w;
  EXPECT_NE(w.find("provider.cci.network.domainID:"), std::string::npos) << w;
  EXPECT_EQ(w.find("subnetID"), std::string::npos) << w;
  EXPECT_EQ(std::count(w.begin(), w.end(), '\n'), 2);
}

TEST(NetworkSettingsTest, BadZoneNameAndTimeout) {
  NetworkSettings s = complete();
  s.availabilityZone = "CN North";
  s.name = "-bad";
  s.activeTimeout = std::chrono::milliseconds(10);
  const std::string w = why(s);
  EXPECT_NE(w.find("provider.cci.network.availabilityZone:"), std::string::npos) << w;
  EXPECT_NE(w.find("provider.cci.network.name:"), std::string::npos) << w;
  EXPECT_NE(w.find("provider.cci.network.activeTimeout: must be at least 1s"), std::string::npos)
      << w;
}

TEST(NetworkSettingsTest, CidrMustParse) {
  for (const char* bad : {"192.168.0.0", "192.168.0/24", "192.168.0.256/24", "192.168.0.0/33",
                          "192.168.0.0/", "a.b.c.d/8", "192.168.0.1/24", "1.2.3.4.5/8"}) {
    NetworkSettings s = complete();
    s.cidr = bad;
    const std::string w = why(s);
    EXPECT_NE(w.find("provider.cci.network.cidr: \"" + std::string(bad) + "\" is not an IPv4 CIDR"),
              std::string::npos)
        << bad << ": " << w;
  }
  auto c = parseIpv4Cidr("192.168.0.1/24");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("the network is 192.168.0.0/24"), std::string::npos);
  auto ok = parseIpv4Cidr("10.0.0.0/8");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->address, 0x0A000000U);
  EXPECT_EQ(ok->prefix, 8);
  EXPECT_TRUE(parseIpv4Cidr("0.0.0.0/0").ok());
}

TEST(NetworkSettingsTest, SubnetOverlappingCciServiceRangeIsRefused) {
  for (const char* cidr : {"10.247.0.0/16", "10.247.3.0/24", "10.0.0.0/8", "10.246.0.0/15"}) {
    NetworkSettings s = complete();
    s.cidr = cidr;
    const std::string w = why(s);
    EXPECT_NE(w.find("overlaps 10.247.0.0/16, CCI's Service range"), std::string::npos)
        << cidr << ": " << w;
  }
  for (const char* cidr : {"10.246.0.0/16", "10.248.0.0/16", "192.168.0.0/16"}) {
    NetworkSettings s = complete();
    s.cidr = cidr;
    EXPECT_EQ(why(s), "") << cidr;
  }
}

TEST(NetworkSettingsTest, ObjectCarriesCcisFieldsAndAnnotations) {
  const NetworkSettings s = complete();
  const json::value o =
      networkObject(s, "cce-burst-c1", json::object{{"burstlet.io/cluster-id", "c1"}});
  EXPECT_EQ(stringAt(o, {"apiVersion"}), "networking.cci.io/v1beta1");
  EXPECT_EQ(stringAt(o, {"kind"}), "Network");
  EXPECT_EQ(stringAt(o, {"metadata", "name"}), "burstlet-network");
  EXPECT_EQ(stringAt(o, {"metadata", "namespace"}), "cce-burst-c1");
  EXPECT_EQ(stringAt(o, {"metadata", "labels", "burstlet.io/cluster-id"}), "c1");
  EXPECT_EQ(stringAt(o, {"metadata", "annotations", kNetworkSecurityGroupAnnotation}),
            s.securityGroupID);
  EXPECT_EQ(stringAt(o, {"metadata", "annotations", kNetworkDomainAnnotation}), s.domainID);
  EXPECT_EQ(stringAt(o, {"metadata", "annotations", kNetworkProjectAnnotation}), s.projectID);
  EXPECT_EQ(stringAt(o, {"spec", "attachedVPC"}), s.vpcID);
  EXPECT_EQ(stringAt(o, {"spec", "networkID"}), s.networkID);
  EXPECT_EQ(stringAt(o, {"spec", "subnetID"}), s.subnetID);
  EXPECT_EQ(stringAt(o, {"spec", "cidr"}), s.cidr);
  EXPECT_EQ(stringAt(o, {"spec", "availableZone"}), s.availabilityZone);
  EXPECT_EQ(stringAt(o, {"spec", "networkType"}), "underlay_neutron");
  EXPECT_EQ(kNetworks.path("ns"), "/apis/networking.cci.io/v1beta1/namespaces/ns/networks");
}

}  // namespace
}  // namespace burstlet::provider::cci
