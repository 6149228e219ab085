// `burstlet cleanup --stop-deployment`: the Deployment is scaled to 0 through its scale
// subresource, and cleanup may start only once no pod of it is left; a missing Deployment is
// fine, a refusal names the permission and changes nothing after it. Also the scale subresource of
// MemoryApi that these tests stand on.
#include "daemon/stop_deployment.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <optional>

#include "mocks/fake_clock.h"
#include "mocks/memory_api.h"
#include "mocks/run_sync.h"

namespace burstlet::daemon {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* kDeployments = "/apis/apps/v1/namespaces/burstlet/deployments";
constexpr const char* kScale = "/apis/apps/v1/namespaces/burstlet/deployments/burstlet-vk/scale";
constexpr const char* kPods = "/api/v1/namespaces/burstlet/pods";

json::value pod(const std::string& name, const std::string& component,
                const std::string& phase = "Running") {
  return json::value{
      {"metadata",
       {{"name", name},
        {"namespace", "burstlet"},
        {"labels",
         {{"app.kubernetes.io/name", "burstlet"}, {"app.kubernetes.io/component", component}}}}},
      {"status", {{"phase", phase}}}};
}

class StopDeploymentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.put("/api/v1/namespaces", json::parse(R"({"metadata":{"name":"burstlet"}})"));
    api_.put(kDeployments, json::parse(R"({"metadata":{"name":"burstlet-vk","namespace":"burstlet"},
        "spec":{"replicas":2,"selector":{"matchLabels":{"app.kubernetes.io/name":"burstlet",
        "app.kubernetes.io/component":"virtual-node"}}},"status":{"replicas":2}})"));
    api_.put(kPods, pod("burstlet-vk-a", "virtual-node"));
    api_.put(kPods, pod("burstlet-vk-b", "virtual-node"));
    // Not the Deployment's: the hook Job's own pod, and an evicted pod (no process left).
    api_.put(kPods, pod("burstlet-vk-cleanup-x", "uninstall"));
    api_.put(kPods, pod("burstlet-vk-evicted", "virtual-node", "Failed"));
  }

  // Starts stopDeployment; done_ and result_ say when and how it ended.
  void start(std::chrono::nanoseconds timeout = 60s) {
    boost::asio::co_spawn(io_, stop(timeout), [this](const std::exception_ptr&) { done_ = true; });
  }
  boost::asio::awaitable<void> stop(std::chrono::nanoseconds timeout) {
    DeploymentRef ref{"burstlet", "burstlet-vk"};
    result_ = co_await stopDeployment(client_, ref, timeout, clock_, 1s);
  }
  // Runs until it ended or sleeps between two looks at the pods.
  bool settle() {
    return testing::runUntil(io_, [this] { return done_ || clock_.sleepers() > 0; });
  }
  int64_t replicas() {
    return api_.get(kDeployments, "burstlet-vk")->at("spec").at("replicas").as_int64();
  }

  boost::asio::io_context io_;
  testing::MemoryApi api_;
  testing::FakeClock clock_;
  kube::RestClient client_{io_.get_executor(), api_.transport(), kube::ClientConfig{},
                           kube::RestOptions{}};
  bool done_ = false;
  std::optional<Result<StopDeploymentReport>> result_;
};

TEST_F(StopDeploymentTest, ScalesToZeroAndWaitsUntilNoPodIsLeft) {
  start();
  ASSERT_TRUE(settle());
  ASSERT_FALSE(done_) << "returned with the Deployment's pods still there";
  EXPECT_EQ(replicas(), 0);
  EXPECT_EQ(api_.count(kube::Verb::patch, kScale), 1);
  api_.remove(kPods, "burstlet-vk-a");  // as the ReplicaSet controller and kubelet would
  clock_.advance(1s);
  ASSERT_TRUE(settle());
  ASSERT_FALSE(done_) << "returned with burstlet-vk-b still there";
  api_.remove(kPods, "burstlet-vk-b");
  clock_.advance(1s);
  ASSERT_TRUE(testing::runUntil(io_, [this] { return done_; }));
  ASSERT_TRUE(result_ && result_->ok()) << result_->error().toString();
  const auto& r = **result_;
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.replicasBefore, 2);
  EXPECT_EQ(r.podsAtStart, 2);  // neither the hook's pod nor the evicted one
  EXPECT_EQ(r.waited, 2s);
  EXPECT_EQ(r.selector, "app.kubernetes.io/name=burstlet,app.kubernetes.io/component=virtual-node");
  const auto lines = describeStop(r, DeploymentRef{"burstlet", "burstlet-vk"});
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0], "Deployment burstlet/burstlet-vk scaled to 0 (from 2 replicas)");
  EXPECT_EQ(lines[1], "no pod of Deployment burstlet/burstlet-vk is left (2 stopped in 2.0s)");
  // Nothing but the one scale was written.
  EXPECT_EQ(api_.writes(), 1);
}

TEST_F(StopDeploymentTest, AMissingDeploymentIsAlreadyStopped) {
  api_.remove(kDeployments, "burstlet-vk");
  start();
  ASSERT_TRUE(testing::runUntil(io_, [this] { return done_; }));
  ASSERT_TRUE(result_->ok()) << result_->error().toString();
  EXPECT_FALSE((*result_)->found);
  EXPECT_EQ(api_.writes(), 0);
  EXPECT_EQ(describeStop(**result_, DeploymentRef{"burstlet", "burstlet-vk"}).at(0),
            "Deployment burstlet/burstlet-vk not found: nothing of it runs");
}

TEST_F(StopDeploymentTest, ScaledDownAlreadyItOnlyWaits) {
  auto d = *api_.get(kDeployments, "burstlet-vk");
  d.at("spec").as_object()["replicas"] = 0;
  api_.put(kDeployments, d);
  api_.remove(kPods, "burstlet-vk-a");
  api_.remove(kPods, "burstlet-vk-b");
  start();
  ASSERT_TRUE(testing::runUntil(io_, [this] { return done_; }));
  ASSERT_TRUE(result_->ok()) << result_->error().toString();
  EXPECT_EQ((*result_)->replicasBefore, 0);
  EXPECT_EQ(api_.writes(), 0);
}

// RBAC refuses the scale: the error names what to grant, and nothing else is asked for (cleanup
// does not start on it).
TEST_F(StopDeploymentTest, ARefusalNamesThePermission) {
  api_.failNext(kube::Verb::patch, kScale, 1, 403, "Forbidden");
  start();
  ASSERT_TRUE(testing::runUntil(io_, [this] { return done_; }));
  ASSERT_FALSE(result_->ok());
  const Error& e = result_->error();
  EXPECT_EQ(e.code, ErrorCode::kForbidden);
  EXPECT_EQ(e.reason, "StopDeploymentForbidden");
  EXPECT_NE(e.message.find("patch deployments.apps/scale in namespace burstlet"), std::string::npos)
      << e.message;
  EXPECT_NE(e.message.find("nothing was cleaned up"), std::string::npos) << e.message;
  EXPECT_EQ(replicas(), 2);
  EXPECT_EQ(api_.count(kube::Verb::get, kPods), 0);
}

TEST_F(StopDeploymentTest, ARefusedReadOfThePodsNamesItToo) {
  api_.failNext(kube::Verb::get, kPods, 1, 403, "Forbidden");
  start();
  ASSERT_TRUE(testing::runUntil(io_, [this] { return done_; }));
  ASSERT_FALSE(result_->ok());
  EXPECT_EQ(result_->error().code, ErrorCode::kForbidden);
  EXPECT_NE(result_->error().message.find("list pods"), std::string::npos)
      << result_->error().message;
}

TEST_F(StopDeploymentTest, PodsLeftAfterTheTimeoutAreNamed) {
  start(5s);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(settle());
    ASSERT_FALSE(done_) << "gave up after " << i << "s of 5";
    clock_.advance(1s);
  }
  ASSERT_TRUE(testing::runUntil(io_, [this] { return done_; }));
  ASSERT_FALSE(result_->ok());
  const Error& e = result_->error();
  EXPECT_EQ(e.code, ErrorCode::kTimeout);
  EXPECT_EQ(e.reason, "DeploymentStillRunning");
  EXPECT_NE(e.message.find("burstlet-vk-a, burstlet-vk-b"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("evicted"), std::string::npos) << e.message;
}

TEST(StopDeploymentRef, ParsesNamespaceSlashName) {
  auto r = parseDeploymentRef("kube-system/burstlet-vk");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ns, "kube-system");
  EXPECT_EQ(r->name, "burstlet-vk");
  for (const char* bad : {"burstlet", "/burstlet", "ns/", "a/b/c", ""}) {
    auto b = parseDeploymentRef(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.error().code, ErrorCode::kInvalid);
    EXPECT_NE(b.error().message.find("--stop-deployment"), std::string::npos);
  }
}

TEST(StopDeploymentSelector, EveryOperatorAndNothingEmpty) {
  auto q = labelSelectorQuery(json::parse(R"({"matchLabels":{"app":"burstlet"},
      "matchExpressions":[{"key":"tier","operator":"In","values":["a","b"]},
      {"key":"zone","operator":"NotIn","values":["x"]},{"key":"leader","operator":"Exists"},
      {"key":"canary","operator":"DoesNotExist"}]})"));
  ASSERT_TRUE(q.ok()) << q.error().toString();
  EXPECT_EQ(*q, "app=burstlet,tier in (a,b),zone notin (x),leader,!canary");
  for (const char* bad : {R"({})", R"({"matchLabels":{}})", R"("app=x")",
                          R"({"matchExpressions":[{"key":"a","operator":"In"}]})",
                          R"({"matchExpressions":[{"key":"a","operator":"Gt","values":["1"]}]})"}) {
    auto b = labelSelectorQuery(json::parse(bad));
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.error().code, ErrorCode::kInvalid) << bad;
  }
}

// MemoryApi's scale subresource answers as an API server's: the Scale of the object, and a
// write of it sets the object's spec.replicas.
TEST(MemoryApiScale, ReadsAndWritesTheDeploymentsReplicas) {
  boost::asio::io_context io;
  testing::MemoryApi api;
  api.put(kDeployments, json::parse(R"({"metadata":{"name":"web","namespace":"burstlet"},
      "spec":{"selector":{"matchLabels":{"app":"web"}}}})"));
  kube::RestClient client(io.get_executor(), api.transport(), kube::ClientConfig{},
                          kube::RestOptions{});
  const auto& deployments = kube::resources::kDeployments;
  std::string scale = "scale";
  auto got = testing::runSync(io, client.get(deployments, "burstlet", "web", scale));
  ASSERT_TRUE(got.ok()) << got.error().toString();
  EXPECT_EQ(got->at("kind").as_string(), "Scale");
  EXPECT_EQ(got->at("apiVersion").as_string(), "autoscaling/v1");
  EXPECT_EQ(got->at("spec").at("replicas").as_int64(), 1);  // absent: the API's default
  EXPECT_EQ(got->at("status").at("selector").as_string(), "app=web");
  const std::string staleRV(got->at("metadata").at("resourceVersion").as_string());

  auto patched =
      testing::runSync(io, client.patch(deployments, "burstlet", "web", kube::PatchType::kJsonMerge,
                                        R"({"spec":{"replicas":3}})", scale));
  ASSERT_TRUE(patched.ok()) << patched.error().toString();
  EXPECT_EQ(patched->at("spec").at("replicas").as_int64(), 3);
  EXPECT_EQ(api.get(kDeployments, "web")->at("spec").at("replicas").as_int64(), 3);
  EXPECT_EQ(api.get(kDeployments, "web")->at("spec").at("selector"),
            json::parse(R"({"matchLabels":{"app":"web"}})"));

  auto stale = json::parse(R"({"kind":"Scale","spec":{"replicas":0}})");
  stale.as_object()["metadata"] = json::object{{"resourceVersion", staleRV}};
  auto conflict = testing::runSync(io, client.update(deployments, "burstlet", "web", stale, scale));
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);

  auto negative =
      testing::runSync(io, client.patch(deployments, "burstlet", "web", kube::PatchType::kJsonMerge,
                                        R"({"spec":{"replicas":-1}})", scale));
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().code, ErrorCode::kInvalid);
  auto missing = testing::runSync(io, client.get(deployments, "burstlet", "nope", scale));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(api.get(kDeployments, "web")->at("spec").at("replicas").as_int64(), 3);
}

}  // namespace
}  // namespace burstlet::daemon
