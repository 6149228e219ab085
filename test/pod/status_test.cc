#include "pod/status.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::pod {
namespace {

namespace json = boost::json;

json::value clusterPod(std::string_view statusJson) {
  return json::parse(std::string(R"({"metadata":{"namespace":"ns","name":"p","uid":"u1",
      "labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"img:1"}]},"status":)") +
                     std::string(statusJson) + "}");
}

const char* kRunning = R"({"phase":"Running","podIP":"10.0.0.1","podIPs":[{"ip":"10.0.0.1"}],
  "hostIP":"1.2.3.4","startTime":"2026-01-01T00:00:00Z",
  "conditions":[{"type":"Ready","status":"True","lastProbeTime":null,
                 "lastTransitionTime":"2026-01-01T00:00:01Z"}],
  "containerStatuses":[{"name":"c","ready":true,"state":{"running":{}}}]})";

TEST(StatusTest, NoWriteWhenTheClusterAlreadyShowsIt) {
  auto pod = clusterPod(kRunning);
  EXPECT_FALSE(statusPatch(pod, json::parse(kRunning)).has_value());
  // A different probe time alone is no change.
  auto provider = json::parse(kRunning);
  provider.at("conditions").at(0).as_object()["lastProbeTime"] = "2026-01-01T00:05:00Z";
  EXPECT_FALSE(statusPatch(pod, provider).has_value());
}

TEST(StatusTest, PendingToRunningPatchesOnlyWhatChanged) {
  auto pod = clusterPod(R"({"phase":"Pending","conditions":[
      {"type":"PodScheduled","status":"True","lastTransitionTime":"2026-01-01T00:00:00Z"},
      {"type":"DisruptionTarget","status":"False","lastTransitionTime":"x"}]})");
  auto patch = statusPatch(pod, json::parse(kRunning));
  ASSERT_TRUE(patch.has_value());
  const auto& st = patch->at("status").as_object();
  EXPECT_EQ(st.at("phase"), "Running");
  EXPECT_EQ(st.at("podIP"), "10.0.0.1");
  EXPECT_EQ(st.at("containerStatuses").as_array().size(), 1U);
  // Only the provider's conditions are sent; the strategic merge keeps DisruptionTarget.
  ASSERT_EQ(st.at("conditions").as_array().size(), 1U);
  EXPECT_EQ(st.at("conditions").at(0).at("type"), "Ready");
  EXPECT_FALSE(st.contains("reason"));
}

TEST(StatusTest, TerminalPodsNeverGoBack) {
  auto pod = clusterPod(R"({"phase":"Succeeded"})");
  EXPECT_FALSE(statusPatch(pod, json::parse(kRunning)).has_value());
  auto failed = json::parse(kRunning);
  failed.as_object()["phase"] = "Failed";
  auto patch = statusPatch(clusterPod(R"({"phase":"Running"})"), failed);
  ASSERT_TRUE(patch.has_value());
  EXPECT_EQ(patch->at("status").at("phase"), "Failed");
}

TEST(StatusTest, ProviderFailedReasonIsClearedOnSuccess) {
  auto pod = clusterPod(
      R"({"phase":"Pending","reason":"ProviderFailed","message":"the fake provider failed"})");
  auto patch = statusPatch(pod, json::parse(kRunning));
  ASSERT_TRUE(patch.has_value());
  EXPECT_TRUE(patch->at("status").at("reason").is_null());
  EXPECT_TRUE(patch->at("status").at("message").is_null());
  // Someone else's reason (e.g. an eviction) is left alone.
  auto evicted = clusterPod(R"({"phase":"Pending","reason":"Evicted","message":"m"})");
  auto p2 = statusPatch(evicted, json::parse(kRunning));
  ASSERT_TRUE(p2.has_value());
  EXPECT_FALSE(p2->at("status").as_object().contains("reason"));
}

TEST(StatusTest, FailurePatch) {
  auto pod = clusterPod(R"({"phase":"Pending"})");
  auto transient = failurePatch(pod, "ProviderFailed", "boom", false);
  ASSERT_TRUE(transient.has_value());
  EXPECT_EQ(transient->at("status").at("reason"), "ProviderFailed");
  EXPECT_FALSE(transient->at("status").as_object().contains("phase"));
  auto permanent = failurePatch(pod, "HostNetwork", "no", true);
  ASSERT_TRUE(permanent.has_value());
  EXPECT_EQ(permanent->at("status").at("phase"), "Failed");
  auto shown = clusterPod(R"({"phase":"Pending","reason":"ProviderFailed","message":"boom"})");
  EXPECT_FALSE(failurePatch(shown, "ProviderFailed", "boom", false).has_value());
}

TEST(StatusTest, AConditionThatTurnsTrueLosesItsOldReason) {
  auto pod = clusterPod(R"({"phase":"Running","conditions":[{"type":"Ready","status":"False",
      "reason":"ContainersNotReady","message":"containers with unready status: [c]",
      "lastTransitionTime":"2026-01-01T00:00:00Z"}]})");
  auto patch = statusPatch(pod, json::parse(kRunning));
  ASSERT_TRUE(patch.has_value());
  const auto& ready = patch->at("status").at("conditions").at(0);
  EXPECT_EQ(ready.at("status"), "True");
  EXPECT_TRUE(ready.at("reason").is_null());
  EXPECT_TRUE(ready.at("message").is_null());
}

TEST(StatusTest, ChangedPodIPsReplaceTheListInsteadOfMergingIntoIt) {
  auto pod = clusterPod(kRunning);
  auto moved = json::parse(kRunning);
  moved.as_object()["podIP"] = "10.0.0.2";
  moved.as_object()["podIPs"] = json::parse(R"([{"ip":"10.0.0.2"}])");
  auto patch = statusPatch(pod, moved);
  ASSERT_TRUE(patch.has_value());
  EXPECT_EQ(patch->at("status").at("podIPs"),
            json::parse(R"([{"$patch":"replace"},{"ip":"10.0.0.2"}])"));
  EXPECT_EQ(patch->at("status").at("podIP"), "10.0.0.2");
}

TEST(StatusTest, ReconcileAdoptsMatchesAndRemovesOrphans) {
  const std::map<std::string, std::string> cluster{{"a/1", "u1"}, {"a/2", "u2"}, {"a/4", "u4"}};
  const std::map<std::string, std::string> provider{{"a/1", "u1"}, {"a/2", "old"}, {"a/3", "u3"}};
  auto plan = planReconcile(cluster, provider);
  EXPECT_EQ(plan.adopt, (std::map<std::string, std::string>{{"a/1", "u1"}}));
  EXPECT_EQ(plan.remove,
            (std::vector<std::pair<std::string, std::string>>{{"a/2", "old"}, {"a/3", "u3"}}));
}

TEST(StatusTest, TerminalAndDeletion) {
  EXPECT_TRUE(isTerminal(clusterPod(R"({"phase":"Failed"})")));
  EXPECT_FALSE(isTerminal(clusterPod(R"({"phase":"Running"})")));
  auto pod = clusterPod("{}");
  EXPECT_FALSE(isBeingDeleted(pod));
  pod.at("metadata").as_object()["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_TRUE(isBeingDeleted(pod));
}

}  // namespace
}  // namespace burstlet::pod
