#include "daemon/leadership.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <cstdlib>

#include "mocks/memory_api.h"
#include "mocks/run_sync.h"

namespace burstlet::daemon {
namespace {

// The pod's environment (the chart's downward API) names the Lease's namespace and the replica.
class LeadershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("POD_NAME");       // NOLINT(concurrency-mt-unsafe)
    unsetenv("POD_NAMESPACE");  // NOLINT(concurrency-mt-unsafe)
  }
  void TearDown() override { SetUp(); }
};

TEST_F(LeadershipTest, DefaultsPerNodeFromThePodsEnvironment) {
  Config c;
  c.nodeName = "burst-zone-a";
  c.leaderElection.enabled = true;
  auto o = leaderElectionOptions(c);
  EXPECT_EQ(o.ns, "kube-system");
  EXPECT_EQ(o.name, "burstlet-burst-zone-a");  // one Lease per virtual node
  EXPECT_EQ(o.leaseDuration, std::chrono::seconds(15));
  EXPECT_EQ(o.renewDeadline, std::chrono::seconds(10));
  EXPECT_EQ(o.retryPeriod, std::chrono::seconds(2));
  // A predecessor that did not elect shows in the node's heartbeat.
  EXPECT_EQ(o.guardNs, "kube-node-lease");
  EXPECT_EQ(o.guardName, "burst-zone-a");
  setenv("POD_NAME", "burstlet-7d9f-x2", 1);      // NOLINT(concurrency-mt-unsafe)
  setenv("POD_NAMESPACE", "burstlet-system", 1);  // NOLINT(concurrency-mt-unsafe)
  o = leaderElectionOptions(c);
  EXPECT_EQ(o.ns, "burstlet-system");
  EXPECT_EQ(o.identity.rfind("burstlet-7d9f-x2_", 0), 0U) << o.identity;
  // A replica restarted under the same pod name is not its predecessor.
  EXPECT_NE(leaderElectionOptions(c).identity, o.identity);
}

TEST_F(LeadershipTest, ConfiguredValuesWin) {
  setenv("POD_NAME", "ignored", 1);  // NOLINT(concurrency-mt-unsafe)
  Config c;
  c.leaderElection.ns = "ops";
  c.leaderElection.leaseName = "burst";
  c.leaderElection.identity = "replica";
  c.leaderElection.leaseDuration = std::chrono::seconds(30);
  const auto o = leaderElectionOptions(c);
  EXPECT_EQ(o.ns, "ops");
  EXPECT_EQ(o.name, "burst");
  EXPECT_EQ(o.identity.rfind("replica_", 0), 0U);
  EXPECT_EQ(o.leaseDuration, std::chrono::seconds(30));
}

// The leader label moves with the Lease: set by the replica that leads, removed by a replica that
// starts (perhaps in the pod of a replica that lost the Lease); others' labels are left alone.
TEST_F(LeadershipTest, TheLeaderLabelsItsOwnPod) {
  boost::asio::io_context io;
  testing::MemoryApi api;
  api.put("/api/v1/namespaces", boost::json::parse(R"({"metadata":{"name":"burstlet"}})"));
  api.put("/api/v1/namespaces/burstlet/pods", boost::json::parse(R"({"metadata":{
      "name":"burstlet-a","namespace":"burstlet","labels":{"app":"burstlet"}}})"));
  kube::RestClient client(io.get_executor(), api.transport(), kube::ClientConfig{},
                          kube::RestOptions{});
  // Not in a pod: nothing to label, nothing asked.
  EXPECT_TRUE(testing::runSync(io, markOwnPod(client, true)).ok());
  EXPECT_TRUE(api.requests().empty());
  setenv("POD_NAME", "burstlet-a", 1);     // NOLINT(concurrency-mt-unsafe)
  setenv("POD_NAMESPACE", "burstlet", 1);  // NOLINT(concurrency-mt-unsafe)
  auto labels = [&] {
    return api.get("/api/v1/namespaces/burstlet/pods", "burstlet-a")->at("metadata").at("labels");
  };
  ASSERT_TRUE(testing::runSync(io, markOwnPod(client, true)).ok());
  EXPECT_EQ(labels().at(kLeaderLabel).as_string(), "true");
  EXPECT_EQ(labels().at("app").as_string(), "burstlet");
  ASSERT_TRUE(testing::runSync(io, markOwnPod(client, false)).ok());
  EXPECT_EQ(labels().as_object().if_contains(kLeaderLabel), nullptr);
  EXPECT_EQ(labels().at("app").as_string(), "burstlet");
  ASSERT_TRUE(testing::runSync(io, markOwnPod(client, false)).ok());  // absent stays absent
  setenv("POD_NAME", "gone", 1);  // NOLINT(concurrency-mt-unsafe)
  auto r = testing::runSync(io, markOwnPod(client, true));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace burstlet::daemon
