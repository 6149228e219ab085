// discoverNetwork against a local HTTP server answering as CCE, VPC and IAM document it
// (docs/cci-api-facts.md): what each answer fills, what is read only when missing, and the
// errors of a refused or broken answer.
#include "provider/cci/cce_discovery.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <map>

#include "kube/config.h"
#include "mocks/run_sync.h"
#include "server/http_server.h"

namespace burstlet::provider::cci {
namespace {

constexpr const char* kProject = "2e93d63d8d2249f5a4ac5e2c78586a6e";
constexpr const char* kCluster = "6b1f1a2e-0c3d-11ef-9a5e-0255ac100b06";
constexpr const char* kVpc = "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8";
constexpr const char* kSubnet = "11111111-2222-4333-8444-555555555555";  // the "network ID"
constexpr const char* kNeutronSubnet = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
constexpr const char* kGroup = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
constexpr const char* kDomain = "44c0781c83484eb9a4a5d4d233522cea";

// The answers of "Reading a cluster" (CCE), "Querying subnet details" (VPC) and "Querying
// project details" (IAM), trimmed to what matters plus neighbours.
std::string clusterAnswer(const std::string& subnetKey = "subnet") {
  return R"({"kind":"Cluster","apiVersion":"v3","metadata":{"name":"prod","uid":")" +
         std::string(kCluster) +
         R"("},"spec":{"type":"VirtualMachine","flavor":"cce.s1.small","version":"v1.29",)"
         R"("hostNetwork":{"vpc":")" +
         kVpc + R"(",")" + subnetKey + R"(":")" + kSubnet + R"(","SecurityGroup":")" + kGroup +
         R"("},"containerNetwork":{"mode":"vpc-router","cidr":"172.16.0.0/16"}},)"
         R"("status":{"phase":"Available"}})";
}

std::string subnetAnswer(const std::string& vpc = kVpc) {
  return R"({"subnet":{"id":")" + std::string(kSubnet) +
         R"(","name":"subnet-cce","cidr":"192.168.0.0/24","gateway_ip":"192.168.0.1",)"
         R"("dhcp_enable":true,"primary_dns":"100.125.1.250","availability_zone":"cn-north-4a",)"
         R"("vpc_id":")" +
         vpc + R"(","status":"ACTIVE","neutron_network_id":")" + kSubnet +
         R"(","neutron_subnet_id":")" + kNeutronSubnet + R"("}})";
}

std::string projectAnswer() {
  return R"({"project":{"is_domain":false,"description":"","enabled":true,"id":")" +
         std::string(kProject) + R"(","parent_id":")" + kDomain + R"(","domain_id":")" + kDomain +
         R"(","name":"cn-north-4"}})";
}

// One local server standing for the three services; answers per path, counting requests.
struct Services {
  boost::asio::io_context io;
  std::unique_ptr<server::HttpServer> server;
  std::unique_ptr<kube::RestClient> client;
  std::map<std::string, server::Response> answers;
  std::map<std::string, int> hits;

  Services() {
    answers["/api/v3/projects/" + std::string(kProject) + "/clusters/" + kCluster] =
        json(clusterAnswer());
    answers["/v1/" + std::string(kProject) + "/subnets/" + kSubnet] = json(subnetAnswer());
    answers["/v3/projects/" + std::string(kProject)] = json(projectAnswer());
    auto s = server::HttpServer::create(io.get_executor(), "127.0.0.1:0");
    EXPECT_TRUE(s.ok());
    server = std::move(*s);
    server->routePrefix("/", [this](const server::Request& r) {
      ++hits[r.path];
      auto it = answers.find(r.path);
      return it != answers.end() ? it->second : server::Response{404, "text/plain", "no\n", {}};
    });
    server->start();
    kube::ClientConfig cfg;
    cfg.server = "http://127.0.0.1:" + std::to_string(server->port());
    auto c = kube::RestClient::create(io.get_executor(), cfg);
    EXPECT_TRUE(c.ok());
    client = std::move(*c);
  }
  ~Services() { server->stop(); }

  static server::Response json(std::string body) {
    return server::Response{200, "application/json", std::move(body), {}};
  }
  CceSources sources() { return CceSources{client.get(), client.get(), client.get()}; }

  Result<NetworkSettings> discover(const NetworkSettings& given, CceSources from) {
    std::optional<Result<NetworkSettings>> out;
    boost::asio::co_spawn(io, run(from, given, &out), boost::asio::detached);
    // The server's accept loop keeps the io_context busy: run until the answer is in.
    EXPECT_TRUE(testing::runUntil(io, [&] { return out.has_value(); }));
    return out ? std::move(*out) : Error::make(ErrorCode::kTimeout, "Test", "no answer");
  }
  static boost::asio::awaitable<void> run(CceSources from, NetworkSettings given,
                                          std::optional<Result<NetworkSettings>>* out) {
    // Named arguments: GCC 12 mishandles class-type temporaries in a co_await (kube/rest.h).
    const std::string project = kProject;
    const std::string cluster = kCluster;
    *out = co_await discoverNetwork(from, project, cluster, given);
  }
  Result<NetworkSettings> discover(const NetworkSettings& given = {}) {
    return discover(given, sources());
  }
  int hitsUnder(const std::string& prefix) const {
    int n = 0;
    for (const auto& [path, count] : hits) {
      n += path.rfind(prefix, 0) == 0 ? count : 0;
    }
    return n;
  }
};

TEST(CceDiscoveryTest, FillsEverySettingFromTheThreeServices) {
  Services s;
  auto got = s.discover();
  ASSERT_TRUE(got.ok()) << got.error().toString();
  EXPECT_EQ(got->vpcID, kVpc);
  EXPECT_EQ(got->networkID, kSubnet);
  EXPECT_EQ(got->securityGroupID, kGroup);
  EXPECT_EQ(got->subnetID, kNeutronSubnet);
  EXPECT_EQ(got->cidr, "192.168.0.0/24");
  EXPECT_EQ(got->availabilityZone, "cn-north-4a");
  EXPECT_EQ(got->domainID, kDomain);
  EXPECT_EQ(got->projectID, kProject);
  EXPECT_TRUE(validateNetwork(*got, "n", true).ok());
  EXPECT_EQ(s.hitsUnder("/api/v3/"), 1);
  EXPECT_EQ(s.hitsUnder("/v1/"), 1);
  EXPECT_EQ(s.hitsUnder("/v3/projects/"), 1);
}

TEST(CceDiscoveryTest, ReadsOnlyWhatIsMissingAndKeepsWhatIsGiven) {
  Services s;
  NetworkSettings given;
  given.vpcID = kVpc;
  given.networkID = kSubnet;
  given.securityGroupID = "bbbbbbbb-bbbb-4ccc-8ddd-eeeeeeeeeeee";
  given.domainID = "ffffffffffffffffffffffffffffffff";
  given.cidr = "192.168.0.0/25";
  auto got = s.discover(given);
  ASSERT_TRUE(got.ok()) << got.error().toString();
  EXPECT_EQ(got->securityGroupID, given.securityGroupID);
  EXPECT_EQ(got->domainID, given.domainID);
  EXPECT_EQ(got->cidr, "192.168.0.0/25");
  EXPECT_EQ(got->subnetID, kNeutronSubnet);
  EXPECT_EQ(s.hitsUnder("/api/v3/"), 0);
  EXPECT_EQ(s.hitsUnder("/v1/"), 1);
  EXPECT_EQ(s.hitsUnder("/v3/projects/"), 0);
}

TEST(CceDiscoveryTest, RefusedAnswerNamesTheCallAndKeepsItsClass) {
  Services s;
  s.answers["/api/v3/projects/" + std::string(kProject) + "/clusters/" + kCluster] =
      server::Response{403,
                       "application/json",
                       R"({"error_code":"CCE.01403001","error_msg":"no permission to read"})",
                       {}};
  auto got = s.discover();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kForbidden);
  EXPECT_NE(got.error().message.find("reading CCE cluster " + std::string(kCluster) + " at http"),
            std::string::npos)
      << got.error().message;
  EXPECT_EQ(s.hitsUnder("/v1/"), 0);
}

TEST(CceDiscoveryTest, UnknownClusterIsNotFound) {
  Services s;
  s.answers.clear();
  auto got = s.discover();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
  EXPECT_NE(got.error().message.find("reading CCE cluster"), std::string::npos);
}

TEST(CceDiscoveryTest, BrokenAnswersAreClear) {
  {
    Services s;
    s.answers["/api/v3/projects/" + std::string(kProject) + "/clusters/" + kCluster] =
        Services::json("<html>gateway</html>");
    auto got = s.discover();
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().reason, "InvalidDiscoveryResponse");
    EXPECT_NE(got.error().message.find("not a JSON object"), std::string::npos);
  }
  {
    Services s;  // the subnet under another key: the field is named
    s.answers["/api/v3/projects/" + std::string(kProject) + "/clusters/" + kCluster] =
        Services::json(clusterAnswer("subnetId"));
    auto got = s.discover();
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.error().message.find("the answer has no spec.hostNetwork.subnet"),
              std::string::npos)
        << got.error().message;
  }
  {
    Services s;  // a subnet of another VPC than the cluster's
    s.answers["/v1/" + std::string(kProject) + "/subnets/" + kSubnet] =
        Services::json(subnetAnswer("99999999-2222-4333-8444-555555555555"));
    auto got = s.discover();
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.error().message.find("not to the cluster's VPC"), std::string::npos);
  }
}

TEST(CceDiscoveryTest, MissingServiceIsNamed) {
  Services s;
  auto got = s.discover({}, CceSources{s.client.get(), s.client.get(), nullptr});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().reason, "DiscoveryNotConfigured");
  EXPECT_NE(got.error().message.find("reading IAM project"), std::string::npos);
}

TEST(CceDiscoveryTest, RegionalEndpoints) {
  EXPECT_EQ(regionalEndpoint("https://cci.cn-north-4.myhuaweicloud.com", "cce"),
            "https://cce.cn-north-4.myhuaweicloud.com");
  EXPECT_EQ(regionalEndpoint("https://cci.ap-southeast-1.myhuaweicloud.com/", "vpc"),
            "https://vpc.ap-southeast-1.myhuaweicloud.com/");
  EXPECT_EQ(regionalEndpoint("https://my-proxy.example.com", "iam"), "");
  EXPECT_EQ(regionalEndpoint("http://cci.cn-north-4.myhuaweicloud.com", "iam"), "");
}

}  // namespace
}  // namespace burstlet::provider::cci
