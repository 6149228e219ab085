// PodController's lost provider pods (src/pod/lost_pods.cc): re-created on the kubelet's
// CrashLoopBackOff, restarts counted only when they happen.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <string>

#include "pod/lifecycle.h"
#include "pod/pod_controller.h"
#include "pod/pod_controller_harness.h"

namespace burstlet::pod {
namespace {

namespace json = boost::json;
using burstlet::testing::runUntil;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test::Harness;
using test::pod;

constexpr const char* kRunning =
    R"({"phase":"Running","podIP":"10.0.0.9","containerStatuses":[{"name":"c","restartCount":0,"state":{"running":{}}}]})";

// The only container's status in the last status patch (null when it had none).
json::value lastContainer(Harness& h) {
  const json::value status = h.cluster.lastStatus();
  const auto* cs =
      status.is_object() ? status.as_object().if_contains("containerStatuses") : nullptr;
  return cs != nullptr && cs->is_array() && !cs->as_array().empty() ? cs->as_array().at(0)
                                                                    : json::value();
}

bool runningWithRestarts(Harness& h, int64_t restarts) {
  const json::value c = lastContainer(h);
  return c.is_object() && c.at("restartCount") == restarts &&
         c.at("state").as_object().contains("running");
}

// The waiting reason and message of the container in the last status patch.
std::string waiting(Harness& h) {
  const json::value c = lastContainer(h);
  const auto* w = c.is_object() ? c.at("state").as_object().if_contains("waiting") : nullptr;
  if (w == nullptr) {
    return "";
  }
  const auto* m = w->as_object().if_contains("message");
  return std::string(w->at("reason").as_string()) +
         (m != nullptr ? ": " + std::string(m->as_string()) : "");
}

std::string crashLoop(const std::string& backOff) {
  return "CrashLoopBackOff: back-off " + backOff +
         " restarting failed container=c pod=server_ns(u-server)";
}

// Lets the controller run for a moment with the clock standing (to show nothing happens).
void idle(Harness& h) {
  runUntil(
      h.io, [] { return false; }, milliseconds(100));
}

// Started on fake time with "server" Running on the provider.
void startRunning(Harness& h) {
  h.provider.setStatus(json::parse(kRunning));
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 0); }));
}

// Repeated losses: the first re-create at once, each later one after 10 s, 20 s, 40 s, ... at
// most 5 minutes, as a kubelet restarts a crashing container; meanwhile the container waits with
// CrashLoopBackOff, and one BackOff event per step.
TEST(LostPodsTest, RepeatedLossesAreRestartedOnTheKubeletsBackOff) {
  Harness h({pod("server")}, true);
  startRunning(h);
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 2; }));
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 1); }));
  EXPECT_EQ(h.cluster.occurrences("BackOff"), 0);

  const std::pair<seconds, std::string> steps[] = {{seconds(10), "10s"},    {seconds(20), "20s"},
                                                   {seconds(40), "40s"},    {seconds(80), "1m20s"},
                                                   {seconds(160), "2m40s"}, {seconds(300), "5m0s"},
                                                   {seconds(300), "5m0s"}};
  int creates = 2;
  int64_t restarts = 1;
  int step = 0;
  for (const auto& each : steps) {
    const seconds delay = each.first;
    const std::string shown = each.second;
    SCOPED_TRACE(shown);
    h.lose("server");
    ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == crashLoop(shown); })) << waiting(h);
    EXPECT_EQ(lastContainer(h).at("restartCount"), restarts);  // no restart yet
    EXPECT_EQ(lastContainer(h).at("lastState").at("terminated").at("reason"),
              "ContainerStatusUnknown");
    EXPECT_NE(h.cluster.lastStatus().at("conditions").at(0).at("status"), "True");
    ++step;
    ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.occurrences("BackOff") == step; }));
    // Syncs during the wait (the provider's notifications, status changes) change nothing.
    h.clock.advance(delay - seconds(1));
    h.provider.notify("server");
    idle(h);
    EXPECT_EQ(h.provider.creates, creates);
    EXPECT_EQ(waiting(h), crashLoop(shown));
    // The wait is over: created again, one restart more. (The queue's delayed add would bring
    // the sync on real time; on the test's clock the notification does.)
    h.clock.advance(seconds(1));
    h.provider.notify("server");
    ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == creates + 1; }));
    ++creates;
    ++restarts;
    ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, restarts); }));
    EXPECT_EQ(h.cluster.occurrences("BackOff"), step);  // once per step, not per sync
  }
  EXPECT_TRUE(
      h.cluster.evented("Back-off restarting failed container c in pod server_ns(u-server)"));
  EXPECT_TRUE(h.cluster.evented(R"("fieldPath":"spec.containers{c}")"));
  EXPECT_EQ(h.controller->stats().lostPods.load(), 8U);
}

// A run of 10 minutes starts the back-off over, as on a kubelet.
TEST(LostPodsTest, TenMinutesOfRunningStartTheBackOffOver) {
  Harness h({pod("server")}, true);
  startRunning(h);
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 2; }));
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == crashLoop("10s"); }));
  h.clock.advance(seconds(10));
  h.provider.notify("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 2); }));
  // Lost again after 20 s: waits 20 s.
  h.clock.advance(seconds(20));
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == crashLoop("20s"); }));
  h.clock.advance(seconds(20));
  h.provider.notify("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 3); }));
  // Ran for 10 minutes and a second: created again at once, and the next loss waits 10 s.
  h.clock.advance(std::chrono::minutes(10) + seconds(1));
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 5; }));
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 4); }));
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == crashLoop("10s"); })) << waiting(h);
  EXPECT_EQ(h.provider.creates, 5);
}

// A create the provider fails (backend down, namespace terminating) is no restart: the pod shows
// its containers waiting and its restart count unchanged however often it is tried, and the
// back-off moves one step per restart that happened.
TEST(LostPodsTest, AFailingCreateIsNotARestart) {
  Harness h({pod("server")}, true);
  startRunning(h);
  {
    std::lock_guard lock(h.provider.mu);
    h.provider.failCreates = 3;
  }
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 2; }));
  ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == "ContainerCreating"; })) << waiting(h);
  EXPECT_EQ(lastContainer(h).at("restartCount"), 0);
  EXPECT_EQ(lastContainer(h).at("lastState").at("terminated").at("reason"),
            "ContainerStatusUnknown");
  EXPECT_TRUE(h.cluster.patched("ProviderFailed"));
  for (int attempt = 3; attempt <= 4; ++attempt) {
    h.clock.advance(seconds(1));  // the queue's retry falls due
    ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == attempt; }));
    idle(h);
    EXPECT_EQ(lastContainer(h).at("restartCount"), 0);
  }
  // Up at last: one restart.
  h.clock.advance(seconds(1));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 5; }));
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 1); }));
  EXPECT_FALSE(h.cluster.patched(R"("restartCount":2)"));

  // During a back-off: the create at its end fails twice, then goes; the next loss waits one
  // step longer (20 s), not three.
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == crashLoop("10s"); }));
  {
    std::lock_guard lock(h.provider.mu);
    h.provider.failCreates = 2;
  }
  h.clock.advance(seconds(10));
  h.provider.notify("server");  // stands in for the delayed add (real time)
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 6; }));
  idle(h);
  EXPECT_EQ(lastContainer(h).at("restartCount"), 1);
  h.clock.advance(seconds(1));  // the queue's retry falls due
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 7; }));
  idle(h);
  EXPECT_EQ(lastContainer(h).at("restartCount"), 1);
  h.clock.advance(seconds(1));
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 2); }));
  EXPECT_EQ(h.provider.creates, 8);
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == crashLoop("20s"); })) << waiting(h);
  EXPECT_FALSE(h.cluster.patched(R"("restartCount":3)"));
}

// The back-off's wait ends by itself: the queue's delayed add brings the pod back (real time,
// short back-off).
TEST(LostPodsTest, TheWaitEndsWithoutAnyNotification) {
  Harness h({pod("server")}, false, [](PodControllerOptions& o) {
    o.restartBackOff = RestartBackOffOptions{milliseconds(300), seconds(1), seconds(60)};
  });
  h.provider.setStatus(json::parse(kRunning));
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 0); }));
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 1); }));
  const auto lost = std::chrono::steady_clock::now();
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == crashLoop("300ms"); })) << waiting(h);
  EXPECT_EQ(h.provider.creates, 2);
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 3; }));
  EXPECT_GE(std::chrono::steady_clock::now() - lost, milliseconds(300));
  ASSERT_TRUE(runUntil(h.io, [&] { return runningWithRestarts(h, 2); }));
}

// A pod lost before its containers started is created again on the same back-off (no restart
// to count; it waits as ContainerCreating, saying why).
TEST(LostPodsTest, APodLostBeforeItRanIsCreatedAgainOnTheBackOff) {
  Harness h({pod("server")}, true);
  h.provider.setStatus(json::parse(R"({"phase":"Pending"})"));
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 1; }));
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 2; }));
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] {
    return h.cluster.patched("back-off 10s re-creating the pod the scripted provider lost");
  }));
  idle(h);
  EXPECT_EQ(h.provider.creates, 2);
  h.clock.advance(seconds(10));
  h.provider.notify("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 3; }));
  EXPECT_FALSE(h.cluster.patched("CrashLoopBackOff"));
  EXPECT_FALSE(h.cluster.patched(R"("restartCount":1)"));
}

// The back-off is forgotten when the pod goes: memory stays bounded by the pods there are.
TEST(LostPodsTest, TheBackOffIsForgottenWhenThePodGoes) {
  Harness h({pod("server")}, true);
  h.watchEvents = {R"({"type":"DELETED","object":)" + pod("server") + "}"};
  startRunning(h);
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.creates == 2; }));
  h.lose("server");
  ASSERT_TRUE(runUntil(h.io, [&] { return waiting(h) == crashLoop("10s"); }));
  EXPECT_EQ(h.controller->memory().restartBackOff, 1U);
  *h.watchOpen = true;
  ASSERT_TRUE(runUntil(h.io, [&] { return h.controller->memory().restartBackOff == 0; }));
  // Its delayed sync, when it comes, finds nothing to do.
  h.clock.advance(seconds(10));
  idle(h);
  EXPECT_EQ(h.provider.creates, 2);
}

}  // namespace
}  // namespace burstlet::pod
