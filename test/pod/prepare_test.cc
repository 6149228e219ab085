#include "pod/prepare.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <optional>
#include <string>

#include "kube/json_path.h"
#include "mocks/memory_api.h"
#include "mocks/run_sync.h"

namespace burstlet::pod {
namespace {

namespace json = boost::json;

// A prepared pod's service variables: a kubelet's when the pod reaches ClusterIPs, else only
// the API server's address.
class PrepareTest : public ::testing::Test {
 protected:
  PrepareTest()
      : client_(io_.get_executor(), api_.transport(), kube::ClientConfig{}, kube::RestOptions{}),
        events_(client_, realClock(), kube::EventRecorderOptions{}),
        preparer_(client_, &services_, events_, "10.1.2.3", json::object{{"cpu", "8"}}) {
    services_.addIndex(kServiceNamespaceIndex, [](const json::value& s) {
      return std::vector<std::string>{std::string(kube::objectNamespace(s))};
    });
    add("default", "kubernetes", "10.96.0.1", 443, "https");
    add("shop", "redis", "10.96.0.20", 6379, "redis");
  }

  void add(const char* ns, const char* name, const char* ip, int port, const char* portName) {
    const json::value s{
        {"metadata", {{"namespace", ns}, {"name", name}}},
        {"spec",
         {{"clusterIP", ip},
          {"ports", json::array{json::object{{"name", portName}, {"port", port}}}}}}};
    services_.upsert(kube::objectKey(s), s);
  }

  // The app container's env of a prepared pod in "shop", by name.
  std::map<std::string, std::string> env() {
    const json::value pod = json::parse(R"({"metadata":{"namespace":"shop","name":"web","uid":"u"},
        "spec":{"containers":[{"name":"app","image":"web:1"}]}})");
    auto prepared = testing::runSync(io_, preparer_.prepare(pod));
    EXPECT_TRUE(prepared.ok());
    std::map<std::string, std::string> out;
    if (const auto* list = kube::arrayAt(prepared->at("spec").at("containers").at(0), {"env"})) {
      for (const auto& e : *list) {
        out[std::string(e.at("name").as_string())] = std::string(e.at("value").as_string());
      }
    }
    return out;
  }

  boost::asio::io_context io_;
  testing::MemoryApi api_;
  kube::RestClient client_;
  kube::EventRecorder events_;
  kube::Store services_;
  PodPreparer preparer_;
};

TEST_F(PrepareTest, ClusterIPsWhenThePodReachesThem) {
  const auto vars = env();
  EXPECT_EQ(vars.at("KUBERNETES_SERVICE_HOST"), "10.96.0.1");
  EXPECT_EQ(vars.at("KUBERNETES_SERVICE_PORT"), "443");
  EXPECT_EQ(vars.at("REDIS_SERVICE_HOST"), "10.96.0.20");
}

TEST_F(PrepareTest, OtherwiseOnlyTheApiServersOwnAddress) {
  ServiceEnvironment se;
  se.clusterIPs = false;
  se.kubernetes =
      json::value{{"metadata", {{"namespace", "default"}, {"name", "kubernetes"}}},
                  {"spec",
                   {{"clusterIP", "192.168.0.10"},
                    {"ports", json::array{json::object{{"name", "https"}, {"port", 6443}}}}}}};
  preparer_.setServiceEnvironment(se);
  const auto vars = env();
  EXPECT_EQ(vars.at("KUBERNETES_SERVICE_HOST"), "192.168.0.10");
  EXPECT_EQ(vars.at("KUBERNETES_SERVICE_PORT"), "6443");
  EXPECT_EQ(vars.at("KUBERNETES_PORT"), "tcp://192.168.0.10:6443");
  EXPECT_EQ(vars.count("REDIS_SERVICE_HOST"), 0u);
  EXPECT_EQ(vars.count("REDIS_PORT"), 0u);
  // Without a known address: nothing that cannot work.
  preparer_.setServiceEnvironment(ServiceEnvironment{false, json::value()});
  EXPECT_TRUE(env().empty());
}

}  // namespace
}  // namespace burstlet::pod
