#include "node/node_controller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <functional>
#include <mutex>
#include <set>

#include "node/node_harness.h"

namespace burstlet::node {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

TEST(NodeControllerTest, RegistersWithLeaseOwnedByTheNode) {
  Harness h;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  std::lock_guard lock(h.api.mu);
  ASSERT_EQ(h.api.nodeCreates, 1);
  const auto& n = h.api.existingNode;
  EXPECT_EQ(n.at("metadata").at("labels").at("type"), "virtual-kubelet");
  ASSERT_EQ(n.at("spec").at("taints").as_array().size(), 2U);
  EXPECT_EQ(n.at("spec").at("taints").at(0).at("key"), "virtual-kubelet.io/provider");
  EXPECT_EQ(n.at("spec").at("taints").at(0).at("value"), "stub");
  EXPECT_EQ(n.at("spec").at("taints").at(0).at("effect"), "NoSchedule");
  // Ranks the node after ordinary ones for pods that tolerate only the first (src/admission).
  EXPECT_EQ(n.at("spec").at("taints").at(1).at("key"), "virtual-kubelet.io/burst-preference");
  EXPECT_EQ(n.at("spec").at("taints").at(1).at("effect"), "PreferNoSchedule");
  EXPECT_EQ(n.at("status").at("capacity").at("pods"), "10000");
  EXPECT_EQ(n.at("status").at("addresses").at(0).at("address"), "10.1.2.3");
  EXPECT_EQ(n.at("status").at("nodeInfo").at("kubeletVersion"), "v0.1.0-burstlet");
  EXPECT_EQ(conditionOf(n, "Ready"), "True/KubeletReady");
  EXPECT_EQ(conditionOf(n, "ProviderUnavailable"), "False/ProviderReachable");
  ASSERT_FALSE(h.api.leaseWrites.empty());
  const auto& l = h.api.leaseWrites.back();
  EXPECT_EQ(l.at("metadata").at("ownerReferences").at(0).at("uid"), "uid-1");
  EXPECT_EQ(l.at("spec").at("holderIdentity"), "vk");
  EXPECT_EQ(l.at("spec").at("leaseDurationSeconds"), 40);
}

// A backend that stops answering makes a ping hang for minutes: the lease goes on being renewed
// meanwhile, and the silence counts as unreachable after pingTimeout.
TEST(NodeControllerTest, LeaseIsRenewedWhilePingHangs) {
  Harness h(false, [](NodeOptions& o) { o.pingTimeout = std::chrono::milliseconds(200); });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  h.provider.setMode(Mode::kHang);
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.pingsInFlight() == 1; }));
  const int pings = h.provider.pingsStarted();
  const size_t leases = h.leaseWrites();
  ASSERT_TRUE(runUntil(
      h.io, [&] { return h.leaseWrites() >= leases + 3; }, seconds(30)));
  EXPECT_EQ(h.provider.pingsInFlight(), 1);     // still hanging: nothing waited for it
  EXPECT_EQ(h.provider.pingsStarted(), pings);  // and no second ping piled up behind it
  EXPECT_FALSE(h.node->providerHealthy());
  ASSERT_TRUE(h.statusWhere([](const json::value& s) {
    return conditionOf(s, "ProviderUnavailable") != "False/ProviderReachable";
  }));
  const json::value down = h.lastStatus();
  EXPECT_EQ(conditionOf(down, "ProviderUnavailable"), "True/ProviderUnreachable");
  EXPECT_NE(
      fieldOf(down, "ProviderUnavailable", "message").find("no answer to a ping within 200ms"),
      std::string::npos)
      << fieldOf(down, "ProviderUnavailable", "message");
  EXPECT_EQ(conditionOf(down, "Ready"), "True/KubeletReady");

  // The late answer ends the outage without waiting for the next ping.
  const size_t before = h.statusPatches();
  h.provider.setMode(Mode::kAnswer);
  ASSERT_TRUE(h.statusWhere(
      [](const json::value& s) {
        return conditionOf(s, "ProviderUnavailable") == "False/ProviderReachable";
      },
      before));
  EXPECT_TRUE(h.node->providerHealthy());
}

// A backend that answers but cannot run pods yet (its network is not Active) is shown with its
// own reason, and each new state of the network is written, not only the first.
TEST(NodeControllerTest, BackendNetworkNotActiveIsItsOwnReason) {
  Harness h(true);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  h.provider.setFailure(provider::kBackendNetworkNotActive,
                        "backend Network n in namespace ns is Initializing");
  h.provider.setMode(Mode::kFail);
  h.fakeClock.advance(seconds(1));
  ASSERT_TRUE(h.statusWhere([](const json::value& s) {
    return conditionOf(s, "ProviderUnavailable") == "True/BackendNetworkNotActive";
  }));
  EXPECT_EQ(fieldOf(h.lastStatus(), "ProviderUnavailable", "message"),
            "the stub provider cannot run pods: backend Network n in namespace ns is Initializing");
  const size_t before = h.statusPatches();
  h.provider.setFailure(provider::kBackendNetworkNotActive,
                        "backend Network n in namespace ns is Failed: no address left");
  h.fakeClock.advance(seconds(1));
  ASSERT_TRUE(h.statusWhere(
      [](const json::value& s) {
        return fieldOf(s, "ProviderUnavailable", "message").find("is Failed: no address left") !=
               std::string::npos;
      },
      before));
  h.provider.setMode(Mode::kAnswer);
  h.fakeClock.advance(seconds(1));
  ASSERT_TRUE(h.statusWhere([](const json::value& s) {
    return conditionOf(s, "ProviderUnavailable") == "False/ProviderReachable";
  }));
}

// While the provider is unreachable the node carries the provider-unavailable NoSchedule taint;
// it goes when the provider is back. Taints others add, even between our read and our write,
// stay.
TEST(NodeControllerTest, ProviderOutageTaintsTheNodeAndKeepsOthersTaints) {
  Harness h(true);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  {
    std::lock_guard lock(h.api.mu);
    h.api.existingNode.at("spec").at("taints").as_array().push_back(
        json::object{{"key", "dedicated"}, {"value", "x"}, {"effect", "NoSchedule"}});
    Api::bumpVersion(h.api.existingNode);
    // Someone else adds a taint between our read and our first write: that write conflicts.
    h.api.beforeNodePatch = [](json::value& node) {
      node.at("spec").at("taints").as_array().push_back(
          json::object{{"key", "other-team"}, {"effect", "NoExecute"}});
      Api::bumpVersion(node);
    };
  }
  h.provider.setMode(Mode::kFail);
  h.fakeClock.advance(seconds(1));  // the next ping is due
  ASSERT_TRUE(runUntil(
      h.io, [&] { return h.taintKeys().count("virtual-kubelet.io/provider-unavailable") == 1; }));
  EXPECT_EQ(h.taintKeys(),
            (std::set<std::string>{"dedicated", "other-team", "virtual-kubelet.io/burst-preference",
                                   "virtual-kubelet.io/provider",
                                   "virtual-kubelet.io/provider-unavailable"}));
  {
    std::lock_guard lock(h.api.mu);
    EXPECT_EQ(h.api.nodeConflicts, 1);
    const auto& written = h.api.nodePatches.back();
    EXPECT_TRUE(written.at("metadata").as_object().contains("resourceVersion"));
    for (const auto& t : written.at("spec").at("taints").as_array()) {
      if (t.at("key") == "virtual-kubelet.io/provider-unavailable") {
        EXPECT_EQ(t.at("effect"), "NoSchedule");
      }
    }
  }
  ASSERT_TRUE(h.statusWhere([](const json::value& s) {
    return conditionOf(s, "ProviderUnavailable") == "True/ProviderUnreachable";
  }));
  const json::value down = h.lastStatus();
  EXPECT_EQ(fieldOf(down, "ProviderUnavailable", "message"),
            "the stub provider is unreachable: stub backend refuses connections");
  EXPECT_EQ(conditionOf(down, "Ready"), "True/KubeletReady");
  const std::string downSince = fieldOf(down, "ProviderUnavailable", "lastTransitionTime");

  // More failed pings and a periodic status write: lastTransitionTime stays.
  const size_t writes = h.statusPatches();
  h.fakeClock.advance(seconds(61));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.statusPatches() > writes; }));
  EXPECT_EQ(fieldOf(h.lastStatus(), "ProviderUnavailable", "lastTransitionTime"), downSince);
  EXPECT_EQ(conditionOf(h.lastStatus(), "ProviderUnavailable"), "True/ProviderUnreachable");

  h.provider.setMode(Mode::kAnswer);
  h.fakeClock.advance(seconds(1));
  ASSERT_TRUE(runUntil(
      h.io, [&] { return h.taintKeys().count("virtual-kubelet.io/provider-unavailable") == 0; }));
  EXPECT_EQ(h.taintKeys(),
            (std::set<std::string>{"dedicated", "other-team", "virtual-kubelet.io/burst-preference",
                                   "virtual-kubelet.io/provider"}));
  ASSERT_TRUE(h.statusWhere(
      [](const json::value& s) {
        return conditionOf(s, "ProviderUnavailable") == "False/ProviderReachable";
      },
      writes));
  const json::value up = h.lastStatus();
  EXPECT_NE(fieldOf(up, "ProviderUnavailable", "lastTransitionTime"), downSince);
  EXPECT_EQ(fieldOf(up, "ProviderUnavailable", "message"), "the stub provider answers");
}

// By default an outage, however long, leaves Ready alone: the cluster must not evict the pods.
TEST(NodeControllerTest, ReadyStaysTrueDuringAnOutageByDefault) {
  Harness h(true);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  h.provider.setMode(Mode::kFail);
  h.fakeClock.advance(seconds(1));
  ASSERT_TRUE(h.statusWhere([](const json::value& s) {
    return conditionOf(s, "ProviderUnavailable") == "True/ProviderUnreachable";
  }));
  const size_t writes = h.statusPatches();
  h.fakeClock.advance(std::chrono::hours(24));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.statusPatches() > writes; }));
  std::lock_guard lock(h.api.mu);
  for (const auto& s : h.api.statusPatches) {
    EXPECT_EQ(conditionOf(s, "Ready"), "True/KubeletReady") << json::serialize(s);
  }
  EXPECT_TRUE(h.node->ready());
}

// With notReadyAfterProviderOutage set, Ready goes False once the outage has lasted that long,
// and True again when the provider is back.
TEST(NodeControllerTest, ReadyGoesFalseAfterNotReadyAfterProviderOutage) {
  Harness h(true, [](NodeOptions& o) { o.notReadyAfterProviderOutage = std::chrono::minutes(5); });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  h.provider.setMode(Mode::kFail);
  h.fakeClock.advance(seconds(1));
  ASSERT_TRUE(h.statusWhere([](const json::value& s) {
    return conditionOf(s, "ProviderUnavailable") == "True/ProviderUnreachable";
  }));
  EXPECT_EQ(conditionOf(h.lastStatus(), "Ready"), "True/KubeletReady");
  const json::value before = h.lastStatus();

  size_t writes = h.statusPatches();
  h.fakeClock.advance(std::chrono::minutes(4));  // not yet
  ASSERT_TRUE(runUntil(h.io, [&] { return h.statusPatches() > writes; }));
  EXPECT_EQ(conditionOf(h.lastStatus(), "Ready"), "True/KubeletReady");

  writes = h.statusPatches();
  h.fakeClock.advance(std::chrono::minutes(1));
  ASSERT_TRUE(h.statusWhere(
      [](const json::value& s) { return conditionOf(s, "Ready") == "False/KubeletNotReady"; },
      writes));
  const json::value notReady = h.lastStatus();
  EXPECT_NE(fieldOf(notReady, "Ready", "lastTransitionTime"),
            fieldOf(before, "Ready", "lastTransitionTime"));
  EXPECT_EQ(fieldOf(notReady, "Ready", "message"),
            "the stub provider has been unreachable for over 5m: stub backend refuses connections");
  EXPECT_EQ(conditionOf(notReady, "ProviderUnavailable"), "True/ProviderUnreachable");
  EXPECT_TRUE(h.node->ready());  // the lease is burstlet's own: still renewed

  writes = h.statusPatches();
  h.provider.setMode(Mode::kAnswer);
  h.fakeClock.advance(seconds(1));
  ASSERT_TRUE(h.statusWhere(
      [](const json::value& s) { return conditionOf(s, "Ready") == "True/KubeletReady"; }, writes));
  EXPECT_EQ(conditionOf(h.lastStatus(), "ProviderUnavailable"), "False/ProviderReachable");
  EXPECT_EQ(fieldOf(h.lastStatus(), "Ready", "message"), "kubelet is posting ready status");
  // Ready flipped twice; the pressure conditions, which did not, kept their transition time.
  for (const auto* type : {"MemoryPressure", "DiskPressure", "PIDPressure"}) {
    EXPECT_EQ(fieldOf(notReady, type, "lastTransitionTime"),
              fieldOf(before, type, "lastTransitionTime"))
        << type;
    EXPECT_EQ(fieldOf(h.lastStatus(), type, "lastTransitionTime"),
              fieldOf(before, type, "lastTransitionTime"))
        << type;
    EXPECT_NE(fieldOf(h.lastStatus(), type, "lastHeartbeatTime"),
              fieldOf(before, type, "lastHeartbeatTime"))
        << type;
  }
}

// stop() releases the lease at once; run() itself ends only when the ping in flight has
// answered, so nothing refers to the provider afterwards.
TEST(NodeControllerTest, StopReleasesTheLeaseThenWaitsForThePingInFlight) {
  Harness h(false, [](NodeOptions& o) { o.pingTimeout = std::chrono::milliseconds(100); });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  h.provider.setMode(Mode::kHang);
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.pingsInFlight() == 1; }));
  h.node->stop();
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.api.mu);
    return !h.api.leaseWrites.back().at("spec").as_object().contains("holderIdentity");
  }));
  EXPECT_FALSE(runUntil(
      h.io, [&] { return h.done.load(); }, std::chrono::milliseconds(300)));
  h.provider.setMode(Mode::kAnswer);
  EXPECT_TRUE(runUntil(h.io, [&] { return h.done.load(); }));
  EXPECT_EQ(h.provider.pingsInFlight(), 0);
}

TEST(NodeControllerTest, AdoptsAnExistingNodeKeepingOthersTaints) {
  Harness h;
  h.api.nodeExists = true;
  h.api.existingNode = json::parse(R"({"metadata":{"name":"vk","uid":"uid-old",
      "resourceVersion":"77","labels":{"team":"a"}},
      "spec":{"taints":[{"key":"dedicated","value":"x","effect":"NoSchedule"}]}})");
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  std::lock_guard lock(h.api.mu);
  EXPECT_EQ(h.api.nodeCreates, 0);
  ASSERT_EQ(h.api.nodePatches.size(), 1U);
  const auto& p = h.api.nodePatches[0];
  EXPECT_EQ(p.at("metadata").at("resourceVersion"), "77");  // conditional on what was read
  EXPECT_EQ(p.at("metadata").at("labels").at("type"), "virtual-kubelet");
  const auto& taints = p.at("spec").at("taints").as_array();
  ASSERT_EQ(taints.size(), 3U);
  EXPECT_EQ(taints[0].at("key"), "dedicated");
  EXPECT_EQ(taints[1].at("key"), "virtual-kubelet.io/provider");
  EXPECT_EQ(taints[2].at("key"), "virtual-kubelet.io/burst-preference");
  EXPECT_EQ(h.api.existingNode.at("metadata").at("labels").at("team"), "a");
}

// A provider-unavailable taint left by an earlier run is removed when the provider answers.
TEST(NodeControllerTest, AdoptionDropsAStaleProviderUnavailableTaint) {
  Harness h;
  h.api.nodeExists = true;
  h.api.existingNode = json::parse(R"({"metadata":{"name":"vk","uid":"uid-old",
      "resourceVersion":"5"},
      "spec":{"taints":[{"key":"virtual-kubelet.io/provider","value":"stub","effect":"NoSchedule"},
                        {"key":"virtual-kubelet.io/provider-unavailable","value":"stub",
                         "effect":"NoSchedule"}]}})");
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  EXPECT_EQ(h.taintKeys(), (std::set<std::string>{"virtual-kubelet.io/burst-preference",
                                                  "virtual-kubelet.io/provider"}));
}

// The status as a kubelet writes it: the Hostname address is the node's name, the kubelet's
// conditions in its order with its reasons and messages, then ProviderUnavailable, and no
// NetworkUnavailable; a virtual node has no kernel.
TEST(NodeControllerTest, DeclaredFeaturesAreInTheStatus) {
  Harness h(true, [](NodeOptions& o) { o.declaredFeatures = {"ExtendWebSocketsToKubelet"}; });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  h.fakeClock.advance(seconds(61));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.statusPatches() > 0; }));
  std::lock_guard lock(h.api.mu);
  for (const auto* written : {&h.api.existingNode, &h.api.statusPatches.back()}) {
    EXPECT_EQ(written->at("status").at("declaredFeatures"),
              json::parse(R"(["ExtendWebSocketsToKubelet"])"));
  }
}

TEST(NodeControllerTest, StatusIsWhatAKubeletWrites) {
  Harness h(true);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  h.fakeClock.advance(seconds(61));  // the periodic status write
  ASSERT_TRUE(runUntil(h.io, [&] { return h.statusPatches() > 0; }));
  std::lock_guard lock(h.api.mu);
  for (const auto* written : {&h.api.existingNode, &h.api.statusPatches.back()}) {
    const auto& st = written->at("status");
    std::vector<std::string> types;
    for (const auto& c : st.at("conditions").as_array()) {
      types.emplace_back(c.at("type").as_string());
    }
    EXPECT_EQ(types, (std::vector<std::string>{"MemoryPressure", "DiskPressure", "PIDPressure",
                                               "Ready", "ProviderUnavailable"}));
    EXPECT_EQ(conditionOf(*written, "MemoryPressure"), "False/KubeletHasSufficientMemory");
    EXPECT_EQ(fieldOf(*written, "MemoryPressure", "message"),
              "kubelet has sufficient memory available");
    EXPECT_EQ(conditionOf(*written, "DiskPressure"), "False/KubeletHasNoDiskPressure");
    EXPECT_EQ(fieldOf(*written, "DiskPressure", "message"), "kubelet has no disk pressure");
    EXPECT_EQ(conditionOf(*written, "PIDPressure"), "False/KubeletHasSufficientPID");
    EXPECT_EQ(fieldOf(*written, "PIDPressure", "message"), "kubelet has sufficient PID available");
    EXPECT_EQ(conditionOf(*written, "Ready"), "True/KubeletReady");
    EXPECT_EQ(fieldOf(*written, "Ready", "message"), "kubelet is posting ready status");
    EXPECT_EQ(conditionOf(*written, "NetworkUnavailable"), "none");
    EXPECT_EQ(st.at("addresses"), json::parse(R"([{"type":"InternalIP","address":"10.1.2.3"},
                              {"type":"Hostname","address":"vk"}])"));
    EXPECT_EQ(st.at("nodeInfo").at("kernelVersion"), "");
    EXPECT_FALSE(st.as_object().contains("declaredFeatures"));
  }
  // The patch puts the conditions in this order on a node an older burstlet ordered otherwise.
  EXPECT_EQ(h.api.statusPatches.back().at("status").at("$setElementOrder/conditions"),
            json::parse(R"([{"type":"MemoryPressure"},{"type":"DiskPressure"},
                            {"type":"PIDPressure"},{"type":"Ready"},
                            {"type":"ProviderUnavailable"}])"));
}

// Without a version in the options, the node reports the cluster's release (its prerelease and
// build cut) marked with burstlet's version.
TEST(NodeControllerTest, ReportsTheClustersKubernetesVersion) {
  Harness h(false, [](NodeOptions& o) {
    o.kubeletVersion.clear();
    o.burstletVersion = "0.1.0";
  });
  h.api.versionBody = R"({"major":"1","minor":"36+","gitVersion":"v1.36.3-rc.1+k3s2"})";
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  EXPECT_EQ(h.node->kubeletVersion(), "v1.36.3-burstlet.0.1.0");
  std::lock_guard lock(h.api.mu);
  EXPECT_EQ(h.api.existingNode.at("status").at("nodeInfo").at("kubeletVersion"),
            "v1.36.3-burstlet.0.1.0");
  EXPECT_EQ(h.api.versionGets, 1);
}

// A cluster whose version cannot be read still gets its node, with the default version.
TEST(NodeControllerTest, UnknownClusterVersionFallsBackToTheDefault) {
  for (const char* body : {"", R"({"gitVersion":"devel"})", "not json"}) {
    Harness h(false, [](NodeOptions& o) {
      o.kubeletVersion.clear();
      o.burstletVersion = "0.1.0";
    });
    h.api.versionBody = body;
    h.start();
    ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); })) << body;
    EXPECT_EQ(h.node->kubeletVersion(), "v1.36.0-burstlet.0.1.0") << body;
    std::lock_guard lock(h.api.mu);
    EXPECT_EQ(h.api.existingNode.at("status").at("nodeInfo").at("kubeletVersion"),
              "v1.36.0-burstlet.0.1.0");
  }
}

// An explicit version wins; the cluster is not asked.
TEST(NodeControllerTest, AnExplicitKubeletVersionWins) {
  Harness h;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  EXPECT_EQ(h.node->kubeletVersion(), "v0.1.0-burstlet");
  std::lock_guard lock(h.api.mu);
  EXPECT_EQ(h.api.versionGets, 0);
}

// A node registered by an older burstlet: its NetworkUnavailable (burstlet's reason) goes, on
// the version read; the conditions whose status is unchanged keep their lastTransitionTime.
TEST(NodeControllerTest, AdoptionRemovesStaleNetworkUnavailableAndKeepsTransitionTimes) {
  Harness h;
  h.api.nodeExists = true;
  h.api.existingNode = json::parse(R"({"metadata":{"name":"vk","uid":"uid-old",
      "resourceVersion":"9"},
      "spec":{"taints":[{"key":"virtual-kubelet.io/provider","value":"stub","effect":"NoSchedule"}]},
      "status":{"conditions":[
        {"type":"Ready","status":"Unknown","reason":"NodeStatusUnknown",
         "lastTransitionTime":"2024-01-01T00:00:10Z"},
        {"type":"MemoryPressure","status":"False","reason":"KubeletHasSufficientMemory",
         "lastTransitionTime":"2024-01-01T00:00:00Z"},
        {"type":"DiskPressure","status":"True","reason":"Other",
         "lastTransitionTime":"2024-01-01T00:00:01Z"},
        {"type":"NetworkUnavailable","status":"False","reason":"ProviderNetworkReady",
         "lastTransitionTime":"2024-01-01T00:00:00Z"}]}})");
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.api.mu);
    return h.api.statusPatches.size() >= 2;
  }));
  std::lock_guard lock(h.api.mu);
  const auto& written = h.api.statusPatches[0];
  EXPECT_EQ(fieldOf(written, "MemoryPressure", "lastTransitionTime"), "2024-01-01T00:00:00Z");
  EXPECT_NE(fieldOf(written, "DiskPressure", "lastTransitionTime"), "2024-01-01T00:00:01Z");
  EXPECT_NE(fieldOf(written, "Ready", "lastTransitionTime"), "2024-01-01T00:00:10Z");
  const auto& removal = h.api.statusPatches[1];
  EXPECT_EQ(removal.at("metadata").at("resourceVersion"), "10");  // after the adoption patch
  EXPECT_EQ(removal.at("status").at("conditions"),
            json::parse(R"([{"$patch":"delete","type":"NetworkUnavailable"}])"));
  for (const auto& c : h.api.existingNode.at("status").at("conditions").as_array()) {
    EXPECT_NE(c.at("type"), "NetworkUnavailable");
  }
}

// A NetworkUnavailable with another reason is someone else's: it stays.
TEST(NodeControllerTest, KeepsANetworkUnavailableOthersWrote) {
  Harness h;
  h.api.nodeExists = true;
  h.api.existingNode = json::parse(R"({"metadata":{"name":"vk","uid":"uid-old",
      "resourceVersion":"9"},
      "spec":{"taints":[{"key":"virtual-kubelet.io/provider","value":"stub","effect":"NoSchedule"}]},
      "status":{"conditions":[{"type":"NetworkUnavailable","status":"False",
                               "reason":"RouteCreated"}]}})");
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.statusPatches() > 0; }));
  // A moment for a removal that must not come.
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(300));
  std::lock_guard lock(h.api.mu);
  EXPECT_EQ(h.api.statusPatches.size(), 1U);
  EXPECT_EQ(h.api.existingNode.at("status").at("conditions").as_array().size(), 1U);
}

TEST(NodeControllerTest, ANodeDeletedByHandIsRegisteredAgain) {
  Harness h;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  {
    std::lock_guard lock(h.api.mu);
    h.api.nodeExists = false;
  }
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.api.mu);
    return h.api.nodeCreates == 2;
  }));
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.api.mu);
    return h.api.leaseWrites.back().at("metadata").at("ownerReferences").at(0).at("uid") == "uid-2";
  }));
}

}  // namespace
}  // namespace burstlet::node
