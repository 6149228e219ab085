#include "provider/cci/events.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "provider/cci/translate.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

const PodRef kSource{"shop", "web-0", "source-uid"};
const MirrorOptions kOptions{"cci", "burst-node"};

// The backend pod of kSource, placed on the backend node "cci-fleet-0", with a sidecar the
// backend injected.
json::value backendPod() {
  json::value pod = json::parse(R"({
    "metadata": {"namespace": "cce-burst-c1", "uid": "backend-uid", "annotations": {}},
    "spec": {"nodeName": "cci-fleet-0",
             "containers": [{"name": "app"}, {"name": "net-sidecar"}]}
  })");
  auto& md = pod.at("metadata").as_object();
  md["name"] = backendName(kSource.ns, kSource.name);
  md["annotations"].as_object()[kContainersAnnotation] = R"({"containers":["app"]})";
  return pod;
}

// A kubelet event of the backend, as the core API shows it.
json::value kubeletEvent(const std::string& reason, const std::string& message,
                         const std::string& container = "app") {
  return json::value{{"metadata", {{"namespace", "cce-burst-c1"}, {"name", "e"}, {"uid", "eu"}}},
                     {"involvedObject",
                      {{"kind", "Pod"},
                       {"name", backendName(kSource.ns, kSource.name)},
                       {"fieldPath", "spec.containers{" + container + "}"}}},
                     {"type", "Normal"},
                     {"reason", reason},
                     {"message", message},
                     {"count", 1},
                     {"source", {{"component", "kubelet"}, {"host", "cci-fleet-0"}}},
                     {"reportingComponent", "kubelet"},
                     {"reportingInstance", "cci-fleet-0"}};
}

// A scheduler event written through events.k8s.io, as the core API shows it: no source, no
// count.
json::value schedulerEvent(const std::string& type, const std::string& reason,
                           const std::string& message) {
  return json::value{{"metadata", {{"namespace", "cce-burst-c1"}, {"name", "s"}, {"uid", "su"}}},
                     {"involvedObject", {{"kind", "Pod"}, {"name", "x"}}},
                     {"type", type},
                     {"reason", reason},
                     {"message", message},
                     {"source", json::object{}},
                     {"reportingComponent", "default-scheduler"},
                     {"reportingInstance", "default-scheduler-host-1"}};
}

std::optional<MirroredEvent> mirror(const json::value& event) {
  return mirroredEvent(event, backendPod(), kSource, kOptions);
}

TEST(BackendEventsTest, TrimKeepsWhatMirroringReads) {
  auto event = kubeletEvent("Pulled", "pulled");
  event.as_object()["firstTimestamp"] = "2026-01-01T00:00:00Z";
  event.as_object()["series"] = json::parse(R"({"count": 7, "lastObservedTime": "x"})");
  event.at("metadata").as_object()["managedFields"] = json::array{json::object{}};
  trimBackendEvent(event);
  const auto& e = event.as_object();
  EXPECT_FALSE(e.contains("firstTimestamp"));
  EXPECT_FALSE(e.at("metadata").as_object().contains("managedFields"));
  EXPECT_EQ(e.at("involvedObject").at("fieldPath"), "spec.containers{app}");
  EXPECT_EQ(e.at("source"), json::parse(R"({"component":"kubelet","host":"cci-fleet-0"})"));
  EXPECT_EQ(e.at("reportingComponent"), "kubelet");
  EXPECT_EQ(e.at("reportingInstance"), "cci-fleet-0");
  EXPECT_EQ(backendEventCount(event), 7);
  EXPECT_EQ(backendEventCount(json::parse(R"({"count": 0})")), 1);
}

TEST(BackendEventsTest, TheBackendSchedulersPlacementIsNotShown) {
  EXPECT_FALSE(mirror(schedulerEvent("Normal", "Scheduled",
                                     "Successfully assigned cce-burst-c1/x to cci-fleet-0"))
                   .has_value());
  // Whatever it calls itself, and through the older core API too.
  auto old = kubeletEvent("Scheduled", "Successfully assigned cce-burst-c1/x to cci-fleet-0");
  old.as_object()["source"] = json::parse(R"({"component":"volcano"})");
  old.as_object()["reportingComponent"] = "";
  EXPECT_FALSE(mirror(old).has_value());
}

TEST(BackendEventsTest, FailedSchedulingBecomesOneBackendPending) {
  const auto m = mirror(schedulerEvent("Warning", "FailedScheduling",
                                       "0/3 nodes are available: 3 Insufficient cpu."));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, kube::EventType::kWarning);
  EXPECT_EQ(m->reason, kBackendPendingReason);
  EXPECT_EQ(m->message,
            "the cci backend has not placed the pod yet: 0/3 nodes are available: 3 "
            "Insufficient cpu.");
  EXPECT_TRUE(m->once);
}

TEST(BackendEventsTest, PreemptionIsToldWithoutTheBackendsNames) {
  const auto m = mirror(
      schedulerEvent("Normal", "Preempted", "Preempted by pod 1234-abcd on node cci-fleet-0"));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, kube::EventType::kWarning);
  EXPECT_EQ(m->reason, kBackendPreemptedReason);
  EXPECT_EQ(m->message.find("cci-fleet-0"), std::string::npos) << m->message;
  EXPECT_TRUE(m->once);
}

TEST(BackendEventsTest, BackendNodeControllersAreNotShown) {
  auto notReady = kubeletEvent("NodeNotReady", "Node is not ready");
  notReady.as_object()["type"] = "Warning";
  notReady.as_object()["source"] = json::parse(R"({"component":"node-controller"})");
  notReady.as_object()["reportingComponent"] = "node-controller";
  EXPECT_FALSE(mirror(notReady).has_value());
  auto eviction = schedulerEvent("Normal", "TaintManagerEviction", "Marking for deletion");
  eviction.as_object()["reportingComponent"] = "taint-eviction-controller";
  EXPECT_FALSE(mirror(eviction).has_value());
}

TEST(BackendEventsTest, KubeletEventsAreShownAsTheVirtualNodes) {
  for (const char* reason : {"Pulling", "Pulled", "Created", "Started", "Killing"}) {
    const auto m = mirror(kubeletEvent(reason, "Started container app"));
    ASSERT_TRUE(m.has_value()) << reason;
    EXPECT_EQ(m->type, kube::EventType::kNormal);
    EXPECT_EQ(m->reason, reason);
    EXPECT_EQ(m->message, "Started container app");
    EXPECT_EQ(m->fieldPath, "spec.containers{app}");
    EXPECT_FALSE(m->once);
  }
  auto unhealthy = kubeletEvent("Unhealthy", "Readiness probe failed: HTTP probe failed");
  unhealthy.as_object()["type"] = "Warning";
  const auto m = mirror(unhealthy);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, kube::EventType::kWarning);
  EXPECT_EQ(m->message, "Readiness probe failed: HTTP probe failed");
}

// The backend's node is the virtual node, the backend pod the source pod; names that merely
// contain them are left alone.
TEST(BackendEventsTest, BackendNamesAreReworded) {
  const std::string backend = backendName(kSource.ns, kSource.name);
  auto backOff = kubeletEvent(
      "BackOff", "Back-off restarting failed container app in pod " + backend +
                     "_cce-burst-c1(backend-uid) on cci-fleet-0, not cci-fleet-01 or " + backend +
                     "x, see cce-burst-c1/" + backend);
  const auto m = mirror(backOff);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->message,
            "Back-off restarting failed container app in pod web-0_shop(source-uid) on burst-node, "
            "not cci-fleet-01 or " +
                backend + "x, see shop/web-0");

  // The node the event names may be known only from the event (the pod not yet showing it).
  auto elsewhere = kubeletEvent("Pulled", "pulled on cci-fleet-9");
  elsewhere.at("source").as_object()["host"] = "cci-fleet-9";
  elsewhere.as_object()["reportingInstance"] = "cci-fleet-9";
  EXPECT_EQ(mirror(elsewhere)->message, "pulled on burst-node");
}

TEST(BackendEventsTest, EventsOfInjectedContainersAreNotShown) {
  EXPECT_FALSE(
      mirror(kubeletEvent("Started", "Started container net-sidecar", "net-sidecar")).has_value());
  // Without the record of the source's containers, every container counts as the source's.
  auto pod = backendPod();
  pod.at("metadata").at("annotations").as_object().erase(kContainersAnnotation);
  EXPECT_TRUE(mirroredEvent(kubeletEvent("Started", "x", "net-sidecar"), pod, kSource, kOptions)
                  .has_value());
  // Events about the pod as a whole are kept.
  auto whole = kubeletEvent("FailedMount", "MountVolume.SetUp failed");
  whole.at("involvedObject").as_object().erase("fieldPath");
  EXPECT_TRUE(mirror(whole).has_value());
}

// burstlet's own injected container (the network proxy): its Warnings are the pod's trouble and
// are shown, about the pod; its Normal events are not.
TEST(BackendEventsTest, WarningsOfBurstletsInjectedContainerAreShown) {
  auto pod = backendPod();
  pod.at("metadata").at("annotations").as_object()[kInjectedContainersAnnotation] =
      "burstlet-netproxy";
  pod.at("spec").at("containers").as_array().push_back(json::object{{"name", "burstlet-netproxy"}});
  auto failed = kubeletEvent("FailedPostStartHook", "PostStartHook failed", "burstlet-netproxy");
  failed.as_object()["type"] = "Warning";
  auto shown = mirroredEvent(failed, pod, kSource, kOptions);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ(shown->type, kube::EventType::kWarning);
  EXPECT_EQ(shown->reason, "FailedPostStartHook");
  EXPECT_EQ(shown->message, "burstlet's container burstlet-netproxy: PostStartHook failed");
  EXPECT_TRUE(shown->fieldPath.empty());
  EXPECT_FALSE(
      mirroredEvent(kubeletEvent("Started", "Started", "burstlet-netproxy"), pod, kSource, kOptions)
          .has_value());
  // The backend's own sidecar stays hidden, Warning or not.
  auto other = kubeletEvent("BackOff", "Back-off", "net-sidecar");
  other.as_object()["type"] = "Warning";
  EXPECT_FALSE(mirroredEvent(other, pod, kSource, kOptions).has_value());
}

}  // namespace
}  // namespace burstlet::provider::cci
