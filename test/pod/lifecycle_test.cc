#include "pod/lifecycle.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::pod {
namespace {

namespace json = boost::json;

const Clock::WallTime kNow = Clock::WallTime(std::chrono::seconds(1'800'000'000));

json::value podWith(std::string_view spec, std::string_view status) {
  return json::parse(
      std::string(R"({"metadata":{"namespace":"ns","name":"p","uid":"u1"},"spec":)") +
      std::string(spec) + R"(,"status":)" + std::string(status) + "}");
}

const json::object* condition(const json::value& status, std::string_view type) {
  for (const auto& c : status.at("conditions").as_array()) {
    if (c.at("type").as_string() == type) {
      return &c.as_object();
    }
  }
  return nullptr;
}

TEST(LifecycleTest, WhatShowsThatAPodRan) {
  EXPECT_FALSE(ranOnProvider(podWith("{}", R"({"phase":"Pending"})")));
  EXPECT_FALSE(ranOnProvider(podWith("{}", R"({"phase":"Pending","containerStatuses":[
      {"name":"c","state":{"waiting":{"reason":"CreateContainerConfigError"}}}]})")));
  EXPECT_TRUE(ranOnProvider(podWith("{}", R"({"phase":"Running"})")));
  EXPECT_TRUE(ranOnProvider(podWith("{}", R"({"phase":"Pending","initContainerStatuses":[
      {"name":"i","state":{"terminated":{"exitCode":0}}}]})")));
  EXPECT_TRUE(ranOnProvider(podWith("{}", R"({"phase":"Pending","containerStatuses":[
      {"name":"c","state":{"waiting":{}},"lastState":{"terminated":{"exitCode":137}}}]})")));
  EXPECT_FALSE(restartsLostContainers(podWith(R"({"restartPolicy":"Never"})", "{}")));
  EXPECT_TRUE(restartsLostContainers(podWith(R"({"restartPolicy":"OnFailure"})", "{}")));
  EXPECT_TRUE(restartsLostContainers(podWith("{}", "{}")));
}

TEST(LifecycleTest, LostPodThatIsNotRunAgainFails) {
  auto pod = podWith(R"({"restartPolicy":"Never","containers":[{"name":"a","image":"i"},
      {"name":"b","image":"i"}]})",
                     R"({"phase":"Running","containerStatuses":[
      {"name":"a","ready":true,"restartCount":0,"state":{"running":{}}},
      {"name":"b","ready":false,"restartCount":0,"state":{"terminated":{"exitCode":0}}}],
      "conditions":[{"type":"Ready","status":"True","lastTransitionTime":"x"}]})");
  auto patch = lostPodFailedPatch(pod, "gone", kNow);
  const auto& st = patch.at("status");
  EXPECT_EQ(st.at("phase"), "Failed");
  EXPECT_EQ(st.at("reason"), "BackendPodLost");
  EXPECT_EQ(st.at("message"), "gone");
  const auto& a = st.at("containerStatuses").at(0);
  EXPECT_EQ(a.at("state").at("terminated").at("reason"), "ContainerStatusUnknown");
  EXPECT_EQ(a.at("state").at("terminated").at("exitCode"), 137);
  EXPECT_EQ(a.at("ready"), false);
  // A container that had finished keeps its own end.
  EXPECT_EQ(st.at("containerStatuses").at(1).at("state").at("terminated").at("exitCode"), 0);
  EXPECT_EQ(condition(st, "Ready")->at("status"), "False");
  EXPECT_EQ(condition(st, "Ready")->at("lastTransitionTime").as_string(), formatRfc3339(kNow));
}

TEST(LifecycleTest, LostPodThatRunsAgainCountsARestart) {
  auto pod = podWith(R"({"containers":[{"name":"c","image":"i"}]})",
                     R"({"phase":"Running","containerStatuses":[
      {"name":"c","restartCount":4,"state":{"running":{}}}]})");
  const auto base = nextRestartBase(pod);
  EXPECT_EQ(base, (std::map<std::string, int64_t>{{"c", 5}}));
  auto patch = lostPodRestartPatch(pod, base, kNow - std::chrono::seconds(5), kNow);
  const auto& c = patch.at("status").at("containerStatuses").at(0);
  EXPECT_EQ(c.at("restartCount"), 5);
  EXPECT_EQ(c.at("state").at("waiting").at("reason"), "ContainerCreating");
  EXPECT_EQ(c.at("lastState").at("terminated").at("reason"), "ContainerStatusUnknown");
  // The lost run ended when the loss was seen, not when the new backend pod was made.
  EXPECT_EQ(c.at("lastState").at("terminated").at("finishedAt").as_string(),
            formatRfc3339(kNow - std::chrono::seconds(5)));
}

// The kubelet's CrashLoopBackOff: the first restart at once, then 10 s doubling to 5 minutes;
// started over when the loss came more than 10 minutes after the last restart.
TEST(LifecycleTest, RestartBackOffFollowsTheKubelet) {
  using std::chrono::seconds;
  const RestartBackOffOptions o;
  const Clock::SteadyTime t0{std::chrono::hours(1)};
  RestartBackOff b;
  EXPECT_EQ(restartWait(b, t0, o), seconds(0));  // no loss
  b.lostAt = t0;
  EXPECT_EQ(restartWait(b, t0, o), seconds(0));  // no restart yet
  noteRestart(b, t0, o);
  EXPECT_EQ(b.delay, seconds(10));
  EXPECT_FALSE(b.lostAt.has_value());
  Clock::SteadyTime now = t0;
  for (const int want : {10, 20, 40, 80, 160, 300, 300}) {
    now += seconds(5);
    b.lostAt = now;
    EXPECT_EQ(b.delay, seconds(want));
    EXPECT_EQ(restartWait(b, now, o), seconds(want));
    EXPECT_EQ(restartWait(b, now + seconds(want - 1), o), seconds(1));
    now += seconds(want);
    EXPECT_EQ(restartWait(b, now, o), seconds(0));
    noteRestart(b, now, o);
  }
  // Ten minutes after the last restart still counts as crashing; a second more does not.
  b.lostAt = now + std::chrono::minutes(10);
  EXPECT_EQ(restartWait(b, *b.lostAt, o), seconds(300));
  b.lostAt = now + std::chrono::minutes(10) + seconds(1);
  EXPECT_EQ(restartWait(b, *b.lostAt, o), seconds(0));
  noteRestart(b, *b.lostAt, o);
  EXPECT_EQ(b.delay, seconds(10));
}

TEST(LifecycleTest, DurationsAndMessagesInTheKubeletsWords) {
  using std::chrono::milliseconds;
  EXPECT_EQ(goDuration(std::chrono::seconds(10)), "10s");
  EXPECT_EQ(goDuration(std::chrono::seconds(80)), "1m20s");
  EXPECT_EQ(goDuration(std::chrono::minutes(5)), "5m0s");
  EXPECT_EQ(goDuration(std::chrono::hours(1)), "1h0m0s");
  EXPECT_EQ(goDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(goDuration(milliseconds(1500)), "1.5s");
  const auto pod = podWith(R"({"containers":[{"name":"c"}]})", "{}");
  EXPECT_EQ(crashLoopMessage(pod, "c", std::chrono::seconds(20)),
            "back-off 20s restarting failed container=c pod=p_ns(u1)");
  EXPECT_EQ(backOffEventMessage(pod, "c"),
            "Back-off restarting failed container c in pod p_ns(u1)");
}

TEST(LifecycleTest, ALostPodWaitingForItsRestart) {
  auto pod = podWith(R"({"initContainers":[{"name":"i","image":"x"}],
      "containers":[{"name":"c","image":"i"}]})",
                     R"({"phase":"Running","reason":"ProviderFailed","message":"down",
      "containerStatuses":[{"name":"c","restartCount":3,"state":{"running":{}}}]})");
  const auto lostAt = kNow - std::chrono::seconds(7);
  auto waiting = lostPodWaiting(pod, std::chrono::seconds(40), lostAt);
  const auto& st = waiting.at("status");
  const auto& c = st.at("containerStatuses").at(0);
  EXPECT_EQ(c.at("restartCount"), 3);  // nothing ran again yet
  EXPECT_EQ(c.at("state").at("waiting").at("reason"), "CrashLoopBackOff");
  EXPECT_EQ(c.at("state").at("waiting").at("message"),
            "back-off 40s restarting failed container=c pod=p_ns(u1)");
  EXPECT_EQ(c.at("lastState").at("terminated").at("reason"), "ContainerStatusUnknown");
  EXPECT_EQ(c.at("lastState").at("terminated").at("finishedAt").as_string(), formatRfc3339(lostAt));
  EXPECT_EQ(c.at("ready"), false);
  EXPECT_EQ(st.at("initContainerStatuses").at(0).at("restartCount"), 0);
  // A failure shown on the pod stays.
  EXPECT_EQ(st.at("reason"), "ProviderFailed");
  EXPECT_EQ(st.at("message"), "down");
  // Not backing off (the create goes now, or failed for the provider's reasons).
  auto creating = lostPodWaiting(pod, std::nullopt, lostAt);
  const auto& w = creating.at("status").at("containerStatuses").at(0).at("state").at("waiting");
  EXPECT_EQ(w.at("reason"), "ContainerCreating");
  EXPECT_FALSE(w.as_object().contains("message"));
}

TEST(LifecycleTest, UidPreconditionFailuresAreRecognized) {
  EXPECT_TRUE(isUidMismatch(Error::make(
      ErrorCode::kConflict, "Conflict",
      "Operation cannot be fulfilled on Pod \"p\": Precondition failed: UID in precondition: a, "
      "UID in object meta: b")));
  EXPECT_TRUE(isUidMismatch(Error::make(ErrorCode::kInvalid, "Invalid",
                                        "metadata.uid: Invalid value: \"a\": field is immutable")));
  EXPECT_FALSE(isUidMismatch(Error::make(ErrorCode::kConflict, "Conflict", "object was modified")));
  EXPECT_FALSE(isUidMismatch(Error::make(ErrorCode::kNotFound, "NotFound", "metadata.uid")));
}

TEST(LifecycleTest, TerminationDeadlineFollowsTheDeletionTimestamp) {
  auto pod = json::parse(R"({"metadata":{"deletionTimestamp":"2027-01-15T08:00:00Z",
      "deletionGracePeriodSeconds":30}})");
  EXPECT_EQ(deletionGracePeriodOf(pod), 30);
  EXPECT_EQ(terminationDeadline(pod, std::chrono::seconds(10), kNow),
            *parseRfc3339("2027-01-15T08:00:10Z"));
  EXPECT_EQ(terminationDeadline(json::parse("{}"), std::chrono::seconds(10), kNow),
            kNow + std::chrono::seconds(10));
  EXPECT_EQ(deletionGracePeriodOf(json::parse("{}")), -1);
}

TEST(LifecycleTest, UnsupportedEphemeralContainerIsShownTerminated) {
  auto s = unsupportedEphemeralStatus(json::parse(R"({"name":"dbg","image":"busybox"})"),
                                      "EphemeralContainersNotSupported", "no subresource");
  EXPECT_EQ(s.at("name"), "dbg");
  EXPECT_EQ(s.at("state").at("terminated").at("reason"), "EphemeralContainersNotSupported");
  EXPECT_EQ(s.at("state").at("terminated").at("message"), "no subresource");
  EXPECT_EQ(ephemeralContainerNames(podWith(R"({"ephemeralContainers":[{"name":"x"}]})", "{}")),
            (std::vector<std::string>{"x"}));
}

}  // namespace
}  // namespace burstlet::pod
