#include "pod/pod_controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <set>

#include "pod/lifecycle.h"
#include "pod/pod_controller_harness.h"

namespace burstlet::pod {
namespace {

namespace json = boost::json;
using burstlet::testing::runUntil;
using test::Harness;
using test::pod;
using test::podWithSpec;

TEST(PodControllerTest, CreatesThenWritesStatusOnceAndCoalescesNotifications) {
  Harness h({pod("a")});
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patches() >= 1; }));
  EXPECT_EQ(h.provider.creates, 1);
  EXPECT_NE(h.cluster.statusPatches[0].find(R"("phase":"Running")"), std::string::npos);
  // Notifications with nothing new: no write, although the informer never saw our patch.
  for (int i = 0; i < 5; ++i) {
    h.provider.notify("a");
  }
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(h.cluster.patches(), 1U);
  // A burst of changes: the last state is written, at most once per sync, not once per event.
  for (int i = 0; i < 20; ++i) {
    h.provider.setStatus(
        json::parse(R"({"phase":"Running","podIP":"10.0.0.)" + std::to_string(i) + R"("})"));
    h.provider.notify("a");
  }
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    return h.cluster.statusPatches.back().find("10.0.0.19") != std::string::npos;
  }));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_LE(h.cluster.patches(), 3U);  // the first write, then at most two for 20 events
  EXPECT_EQ(h.provider.creates, 1);
  h.stop();
}

// A standby replica (PodController::holdUntil): the node's pods are listed and watched, nothing is
// synced or written until it may go; then everything queued meanwhile is synced.
TEST(PodControllerTest, HeldItListsThePodsButSyncsNothingUntilItMayGo) {
  Harness h({pod("a"), pod("b")});
  Latch go;
  h.controller->holdUntil(go);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.controller->pods().size() == 2; }));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(h.provider.creates, 0);
  EXPECT_EQ(h.cluster.patches(), 0U);
  EXPECT_FALSE(h.controller->ready());
  go.set();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patches() >= 2; }));
  EXPECT_EQ(h.provider.creates, 2);
  EXPECT_TRUE(h.controller->ready());
  h.stop();
}

// A pod the burst policy placed gets a deletion cost below ordinary pods' once it runs here, so
// its workload scales in by its burst pods first; others are left as they are.
TEST(PodControllerTest, BurstPodsGetALowDeletionCost) {
  auto annotated = [](const std::string& name, const json::object& annotations) {
    json::value p = json::parse(pod(name));
    p.at("metadata").as_object()["annotations"] = annotations;
    return json::serialize(p);
  };
  Harness h({annotated("burst", {{"burstlet.io/burst-rule", "label x on Deployment web"}}),
             pod("plain"),
             annotated("costed", {{"burstlet.io/burst-rule", "profile p"},
                                  {"controller.kubernetes.io/pod-deletion-cost", "5"}}),
             // A profile's scale-down order: its burst cost replaces the local slot's.
             annotated("ordered", {{"burstlet.io/burst-rule", "profile p"},
                                   {"burstlet.io/burst-deletion-cost", "-20"},
                                   {"controller.kubernetes.io/pod-deletion-cost", "-5"}}),
             annotated("ordered-done", {{"burstlet.io/burst-rule", "profile p"},
                                        {"burstlet.io/burst-deletion-cost", "-20"},
                                        {"controller.kubernetes.io/pod-deletion-cost", "-20"}})});
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 5; }));
  // A status patch per pod, and the two deletion costs.
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    return h.cluster.statusPatches.size() >= 5 && h.cluster.metadataPatches.size() >= 2;
  }));
  std::lock_guard lock(h.cluster.mu);
  ASSERT_EQ(h.cluster.metadataPatches.size(), 2U);
  std::map<std::string, std::string> byPod;
  for (const auto& p : h.cluster.metadataPatches) {
    const auto start = p.rfind('/', p.find(' ')) + 1;
    byPod[p.substr(start, p.find(' ') - start)] = p;
  }
  ASSERT_EQ(byPod.count("burst"), 1U);
  ASSERT_EQ(byPod.count("ordered"), 1U);
  EXPECT_NE(byPod["burst"].find(R"("controller.kubernetes.io/pod-deletion-cost":"-100")"),
            std::string::npos)
      << byPod["burst"];
  EXPECT_NE(byPod["burst"].find(R"("uid":"u-burst")"), std::string::npos);  // precondition
  EXPECT_NE(byPod["ordered"].find(R"("controller.kubernetes.io/pod-deletion-cost":"-20")"),
            std::string::npos)
      << byPod["ordered"];
}

TEST(PodControllerTest, TransientFailuresRetryAndPermanentOnesAreShownOnce) {
  Harness h({pod("flaky"), pod("bad")});
  h.provider.failCreates = 2;
  h.provider.rejectNames = {"bad"};
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.pods.count("ns/flaky") == 1; }));
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    for (const auto& p : h.cluster.statusPatches) {
      if (p.find("HostNetwork") != std::string::npos) {
        return true;
      }
    }
    return false;
  }));
  const int createsAfterReject = h.provider.creates;
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(h.provider.creates, createsAfterReject);
  std::lock_guard lock(h.cluster.mu);
  bool failedPhase = false;
  bool providerFailed = false;
  for (const auto& p : h.cluster.statusPatches) {
    failedPhase |= p.find(R"("phase":"Failed")") != std::string::npos &&
                   p.find("HostNetwork") != std::string::npos;
    providerFailed |= p.find("ProviderFailed") != std::string::npos;
  }
  EXPECT_TRUE(failedPhase);
  EXPECT_TRUE(providerFailed);  // the transient failures were shown too
  EXPECT_GE(h.controller->stats().syncErrors.load(), 1U);
  EXPECT_EQ(h.provider.pods.count("ns/bad"), 0U);
}

TEST(PodControllerTest, RestartAdoptsMatchesAndDeletesOrphans) {
  Harness h({pod("kept"), pod("renamed")});
  // Left on the provider by an earlier process: "kept" still exists in the cluster, "gone"
  // does not, and "renamed" belongs to a pod of that name with another UID now.
  h.provider.pods["ns/kept"] = json::parse(pod("kept"));
  h.provider.pods["ns/gone"] = json::parse(pod("gone"));
  json::value old = json::parse(pod("renamed"));
  old.at("metadata").as_object()["uid"] = "u-old";
  h.provider.pods["ns/renamed"] = old;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.controller->ready(); }));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patches() >= 2; }));
  std::lock_guard lock(h.provider.mu);
  EXPECT_EQ(h.provider.pods.count("ns/gone"), 0U);
  EXPECT_EQ(h.provider.pods.count("ns/kept"), 1U);
  ASSERT_EQ(h.provider.pods.count("ns/renamed"), 1U);
  EXPECT_EQ(provider::podRefOf(h.provider.pods["ns/renamed"]).uid, "u-renamed");
  EXPECT_EQ(h.provider.creates, 1);  // only the replaced pod; "kept" was adopted
  EXPECT_EQ(h.controller->stats().orphansDeleted.load(), 2U);
  EXPECT_EQ(h.controller->stats().adopted.load(), 1U);
}

TEST(PodControllerTest, StatusWritesCarryTheUidAsPrecondition) {
  Harness h({pod("a")});
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patches() >= 1; }));
  std::lock_guard lock(h.cluster.mu);
  EXPECT_EQ(json::parse(h.cluster.statusPatches[0]).at("metadata").at("uid"), "u-a");
}

TEST(PodControllerTest, StatusChangedDuringAnUpdateIsWritten) {
  Harness h({pod("a")});
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patches() >= 1; }));
  {
    // The provider's labels differ (an update is due), and its status changes while the update
    // runs: no further notification comes.
    std::lock_guard lock(h.provider.mu);
    h.provider.pods["ns/a"].at("metadata").as_object()["labels"] = json::object{{"old", "x"}};
    h.provider.statusAfterUpdate = json::parse(R"({"phase":"Running","podIP":"10.0.0.77"})");
  }
  h.provider.notify("a");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patched("10.0.0.77"); }));
  EXPECT_EQ(h.provider.updates, 1);
}

TEST(PodControllerTest, LostPodWithRestartPolicyNeverFailsAndIsNotRunAgain) {
  Harness h({podWithSpec("once", {{"restartPolicy", "Never"}})});
  h.provider.setStatus(json::parse(
      R"({"phase":"Running","containerStatuses":[{"name":"c","restartCount":0,"state":{"running":{}}}]})"));
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patched(R"("phase":"Running")"); }));
  {
    std::lock_guard lock(h.provider.mu);
    h.provider.pods.erase("ns/once");
  }
  h.provider.notify("once");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patched("BackendPodLost"); }));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_TRUE(h.cluster.patched(R"("phase":"Failed")"));
  EXPECT_TRUE(h.cluster.patched("ContainerStatusUnknown"));
  EXPECT_TRUE(h.cluster.evented("BackendPodLost"));
  EXPECT_EQ(h.provider.creates, 1);  // not run again
  EXPECT_EQ(h.controller->stats().lostPods.load(), 1U);
}

TEST(PodControllerTest, LostPodThatRestartsIsCreatedAgainWithItsRestartCounted) {
  Harness h({pod("server")});
  h.provider.setStatus(json::parse(
      R"({"phase":"Running","containerStatuses":[{"name":"c","restartCount":0,"state":{"running":{}}}]})"));
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patched(R"("phase":"Running")"); }));
  {
    std::lock_guard lock(h.provider.mu);
    h.provider.pods.erase("ns/server");
  }
  h.provider.notify("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 2; }));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.evented("BackendPodLost"); }));
  {
    std::lock_guard lock(h.provider.mu);
    EXPECT_EQ(restartBaseOf(h.provider.pods.at("ns/server")),
              (std::map<std::string, int64_t>{{"c", 1}}));
  }
  // The new provider pod reports restartCount 0; the cluster shows 1.
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    const auto last = json::parse(h.cluster.statusPatches.back());
    const auto* cs = last.at("status").as_object().if_contains("containerStatuses");
    return cs != nullptr && cs->at(0).at("restartCount") == 1 &&
           cs->at(0).at("state").as_object().contains("running");
  }));
  // No update loop over the restart base annotation.
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(h.provider.updates, 0);
}

// A pod the preparation refuses for good (a container name burstlet reserves): Failed once with
// the reason, never created, not prepared again and again.
TEST(PodControllerTest, APodThePreparationRefusesIsShownOnce) {
  Harness h({pod("reserved")});
  std::atomic<int> prepares{0};
  h.controller->setPreparePod([&prepares](const json::value&) {
    return [](std::atomic<int>* n) -> boost::asio::awaitable<Result<json::value>> {
      n->fetch_add(1);
      co_return Error::make(ErrorCode::kInvalid, "ReservedName",
                            "the container name burstlet-netproxy is reserved");
    }(&prepares);
  });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    for (const auto& p : h.cluster.statusPatches) {
      if (p.find("ReservedName") != std::string::npos &&
          p.find(R"("phase":"Failed")") != std::string::npos) {
        return true;
      }
    }
    return false;
  }));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(prepares.load(), 1);
  EXPECT_EQ(h.provider.creates, 0);
  EXPECT_EQ(h.controller->memory().rejected, 1U);
}

TEST(PodControllerTest, RejectedPodsAreForgottenWhenDeleted) {
  Harness h({pod("bad")});
  h.provider.rejectNames = {"bad"};
  h.watchEvents = {R"({"type":"DELETED","object":)" + pod("bad") + "}"};
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patched("HostNetwork"); }));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.controller->memory().rejected == 1; }));
  *h.watchOpen = true;
  ASSERT_TRUE(runUntil(h.io, [&] { return h.controller->memory().rejected == 0; }));
  EXPECT_EQ(h.controller->memory().known, 0U);
}

TEST(PodControllerTest, AnExceptionInASyncEndsNeitherTheWorkerNorThePod) {
  Harness h({pod("boom")});
  h.provider.throwOnGet = {"boom"};
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patches() >= 1; }));
  EXPECT_GE(h.controller->stats().syncErrors.load(), 1U);
  EXPECT_EQ(h.provider.creates, 1);
}

TEST(PodControllerTest, DeletedPodWaitsForItsProviderPod) {
  // Deleted in the cluster with 30 s of grace, far from over.
  const auto deadline = formatRfc3339(std::chrono::system_clock::now() + std::chrono::hours(1));
  Harness h({podWithSpec("web", {},
                         {{"deletionTimestamp", deadline}, {"deletionGracePeriodSeconds", 30}})});
  h.provider.slowDeletes = true;
  h.provider.pods["ns/web"] = json::parse(pod("web"));
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.deletes >= 1; }));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  {
    std::lock_guard lock(h.cluster.mu);
    EXPECT_TRUE(h.cluster.finalDeletes.empty());  // the provider pod is still stopping
  }
  EXPECT_EQ(h.provider.graces.at(0), 30);
  {
    std::lock_guard lock(h.provider.mu);
    h.provider.pods.erase("ns/web");
  }
  h.provider.notify("web");
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    return h.cluster.finalDeletes.size() == 1;
  }));
  // Before it went, the pod was given its final phase, as the kubelet's TerminatePod does.
  std::lock_guard lock(h.cluster.mu);
  ASSERT_FALSE(h.cluster.statusPatches.empty());
  const auto last = json::parse(h.cluster.statusPatches.back());
  EXPECT_EQ(last.at("status").at("phase"), "Failed");
  EXPECT_EQ(
      last.at("status").at("containerStatuses").at(0).at("state").at("terminated").at("reason"),
      "ContainerStatusUnknown");
}

TEST(PodControllerTest, APodWaitsQuietlyForThePreviousPodOfItsName) {
  Harness h({pod("db-0")});
  h.provider.predecessors["db-0"] = 2;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patched("ContainerCreating"); }));
  EXPECT_TRUE(h.cluster.patched("waiting for the previous pod of this name to stop"));
  // Created once the old one is gone (the recheck timer here), then Running.
  ASSERT_TRUE(runUntil(
      h.io, [&] { return h.cluster.patched(R"("phase":"Running")"); }, std::chrono::seconds(10)));
  EXPECT_EQ(h.provider.creates, 3);
  EXPECT_FALSE(h.cluster.patched("ProviderFailed"));
  EXPECT_FALSE(h.cluster.evented("ProviderFailed"));
}

TEST(PodControllerTest, AStatusTheApiServerRefusesIsNotSentAgainUnchanged) {
  Harness h({pod("a")});
  h.cluster.refuseStatus = true;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.controller->stats().statusRefused.load() == 1; }));
  for (int i = 0; i < 5; ++i) {
    h.provider.notify("a");
  }
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  {
    std::lock_guard lock(h.cluster.mu);
    EXPECT_EQ(h.cluster.refused, 1);
  }
  EXPECT_EQ(h.controller->memory().refused, 1U);
  // Another status is another patch: tried, and once accepted the memory goes.
  {
    std::lock_guard lock(h.cluster.mu);
    h.cluster.refuseStatus = false;
  }
  h.provider.setStatus(json::parse(R"({"phase":"Running","podIP":"10.0.0.10"})"));
  h.provider.notify("a");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patched("10.0.0.10"); }));
  EXPECT_EQ(h.controller->memory().refused, 0U);
}

TEST(PodControllerTest, AForceDeletedPodStopsWithItsOwnGracePeriod) {
  // kubectl delete --force --grace-period=0: the API server shows the pod with grace 0 once,
  // then removes it.
  Harness h({podWithSpec(
      "db-0", {},
      {{"deletionTimestamp", "2026-01-01T00:00:00Z"}, {"deletionGracePeriodSeconds", 0}})});
  h.provider.pods["ns/db-0"] = json::parse(pod("db-0"));
  h.provider.slowDeletes = true;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    return h.cluster.finalDeletes.size() == 1;
  }));
  std::lock_guard lock(h.provider.mu);
  EXPECT_EQ(h.provider.graces, std::vector<int64_t>{provider::kOwnGracePeriod});
}

TEST(PodControllerTest, ProviderPodStuckAfterTheGracePeriodIsForced) {
  // The grace period ended long ago; the provider pod is still terminating.
  Harness h({podWithSpec(
      "stuck", {},
      {{"deletionTimestamp", "2020-01-01T00:00:00Z"}, {"deletionGracePeriodSeconds", 5}})});
  json::value terminating = json::parse(pod("stuck"));
  terminating.at("metadata").as_object()["deletionTimestamp"] = "2020-01-01T00:00:00Z";
  terminating.at("metadata").as_object()["deletionGracePeriodSeconds"] = 5;
  h.provider.pods["ns/stuck"] = terminating;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.provider.mu);
    return !h.provider.graces.empty() && h.provider.graces.back() == 0;
  }));
  h.provider.notify("stuck");  // the provider reports the pod gone
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    return h.cluster.finalDeletes.size() == 1;
  }));
  EXPECT_TRUE(h.cluster.evented("BackendTerminationTimeout"));
  std::lock_guard lock(h.provider.mu);
  ASSERT_FALSE(h.provider.graces.empty());
  EXPECT_EQ(h.provider.graces.back(), 0);
  EXPECT_EQ(h.controller->stats().forcedTerminations.load(), 1U);
}

TEST(PodControllerTest, EphemeralContainerTheProviderCannotAddIsShownOnce) {
  Harness h({podWithSpec(
      "web", {{"ephemeralContainers", json::parse(R"([{"name":"dbg","image":"busybox"}])")}})});
  h.provider.noEphemeral = true;
  // Created before the debug container was added: the provider's pod lacks it.
  h.provider.pods["ns/web"] = json::parse(pod("web"));
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patched("EphemeralContainersNotSupported"); }));
  EXPECT_TRUE(h.cluster.patched(R"("ephemeralContainerStatuses")"));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.evented("EphemeralContainersNotSupported"); }));
  for (int i = 0; i < 3; ++i) {
    h.provider.notify("web");
  }
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(h.provider.updates, 1);  // not asked again
  EXPECT_EQ(h.controller->memory().ephemeralUnsupported, 1U);
}

}  // namespace
}  // namespace burstlet::pod
