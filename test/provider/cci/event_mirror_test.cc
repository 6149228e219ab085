// EventMirror, through the provider: backend pod events on the cluster pods.
#include <gtest/gtest.h>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

TEST(EventMirrorTest, MirrorsBackendPodEventsOntoTheClusterPod) {
  Harness h;
  // History from before this process is not mirrored again.
  h.api.put(kNamespaces,
            json::value{{"metadata",
                         {{"name", kNs},
                          {"labels",
                           {{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, kClusterId}}}}}});
  auto event = [&](const std::string& name, const std::string& podName, int64_t count,
                   const std::string& kind) {
    return json::value{{"metadata", {{"namespace", kNs}, {"name", name}}},
                       {"involvedObject", {{"kind", kind}, {"name", podName}}},
                       {"type", "Warning"},
                       {"reason", "FailedMount"},
                       {"message", "mount failed"},
                       {"count", count}};
  };
  const std::string podName = backendName("app", "web");
  h.api.put(kEvents, event("old", podName, 1, "Pod"));
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.provider->stats().eventsMirrored.load(), 0u);

  auto e1 = h.api.put(kEvents, event("e1", podName, 1, "Pod"));
  h.api.put(kEvents, event("e2", "someone-else", 1, "Pod"));
  h.api.put(kEvents, event("e3", podName, 1, "Node"));
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.provider->stats().eventsMirrored.load(), 1u);

  // The same event again with a higher count is mirrored again; a change without one is not.
  e1.as_object()["count"] = 2;
  e1 = h.api.put(kEvents, e1);
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.provider->stats().eventsMirrored.load(), 2u);
  e1.as_object()["message"] = "mount failed (edited)";
  h.api.put(kEvents, e1);
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.provider->stats().eventsMirrored.load(), 2u);

  // Written on the cluster pod.
  const std::string clusterEvents = resources::kEvents.path("app");
  ASSERT_TRUE(h.runUntil([&] { return !h.cluster.names(clusterEvents).empty(); }));
  auto written = h.cluster.get(clusterEvents, h.cluster.names(clusterEvents)[0]);
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(stringAt(*written, {"involvedObject", "name"}), "web");
  EXPECT_EQ(stringAt(*written, {"involvedObject", "uid"}), "u1");
  EXPECT_EQ(stringAt(*written, {"reason"}), "FailedMount");
}

// The backend scheduler's events: its placement is not shown, a failure to place is shown once
// in burstlet's words however often the scheduler retries; a kubelet event names the virtual
// node, not the backend's.
TEST(EventMirrorTest, BackendSchedulingStaysOnTheBackend) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  auto pod = *h.backendPod("app", "web");
  pod.as_object()["spec"].as_object()["nodeName"] = "cci-fleet-0";
  h.api.put(kPods, pod);
  ASSERT_TRUE(h.settle());

  const std::string podName = backendName("app", "web");
  auto event = [&](const std::string& name, const std::string& reason, const std::string& message,
                   const std::string& component) {
    json::value e{{"metadata", {{"namespace", kNs}, {"name", name}}},
                  {"involvedObject", {{"kind", "Pod"}, {"name", podName}}},
                  {"type", reason == "FailedScheduling" ? "Warning" : "Normal"},
                  {"reason", reason},
                  {"message", message},
                  {"reportingComponent", component}};
    if (component == "kubelet") {
      e.as_object()["source"] = json::object{{"component", "kubelet"}, {"host", "cci-fleet-0"}};
      e.as_object()["count"] = 1;
    }
    return e;
  };
  auto failed = h.api.put(
      kEvents, event("f", "FailedScheduling", "0/1 nodes are available.", "default-scheduler"));
  ASSERT_TRUE(h.settle());
  for (int retry = 2; retry <= 4; ++retry) {
    failed.as_object()["series"] = json::object{{"count", retry}};
    failed = h.api.put(kEvents, failed);
    ASSERT_TRUE(h.settle());
  }
  h.api.put(kEvents,
            event("s", "Scheduled",
                  "Successfully assigned " + std::string(kNs) + "/" + podName + " to cci-fleet-0",
                  "default-scheduler"));
  h.api.put(kEvents, event("p", "Pulled", "Pulled on cci-fleet-0", "kubelet"));
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.provider->stats().eventsMirrored.load(), 2u);

  const std::string clusterEvents = resources::kEvents.path("app");
  ASSERT_TRUE(h.runUntil([&] { return h.cluster.names(clusterEvents).size() == 2; }));
  std::map<std::string, json::value> byReason;
  for (const auto& n : h.cluster.names(clusterEvents)) {
    auto e = *h.cluster.get(clusterEvents, n);
    byReason[stringAt(e, {"reason"})] = e;
  }
  ASSERT_TRUE(byReason.contains(kBackendPendingReason));
  const auto& pending = byReason[kBackendPendingReason];
  EXPECT_EQ(stringAt(pending, {"type"}), "Warning");
  EXPECT_EQ(stringAt(pending, {"message"}),
            "the cci backend has not placed the pod yet: 0/1 nodes are available.");
  EXPECT_EQ(stringAt(pending, {"count"}), "1");
  EXPECT_EQ(stringAt(pending, {"involvedObject", "uid"}), "u1");
  ASSERT_TRUE(byReason.contains("Pulled"));
  EXPECT_EQ(stringAt(byReason["Pulled"], {"message"}), std::string("Pulled on ") + kNode);
  EXPECT_FALSE(byReason.contains("Scheduled"));
}

}  // namespace
}  // namespace burstlet::provider::cci
