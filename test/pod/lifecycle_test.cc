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
  auto patch = lostPodRestartPatch(pod, base, kNow);
  const auto& c = patch.at("status").at("containerStatuses").at(0);
  EXPECT_EQ(c.at("restartCount"), 5);
  EXPECT_EQ(c.at("state").at("waiting").at("reason"), "ContainerCreating");
  EXPECT_EQ(c.at("lastState").at("terminated").at("reason"), "ContainerStatusUnknown");
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
