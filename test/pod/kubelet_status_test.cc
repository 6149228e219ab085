#include "pod/kubelet_status.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "pod/lifecycle.h"

namespace burstlet::pod {
namespace {

namespace json = boost::json;

const Clock::WallTime kNow = Clock::WallTime(std::chrono::seconds(1'800'000'000));

json::value podWith(std::string_view spec, std::string_view status, int generation = 0) {
  std::string meta = R"({"namespace":"ns","name":"p","uid":"u1")";
  if (generation > 0) {
    meta += R"(,"generation":)" + std::to_string(generation);
  }
  meta += "}";
  return json::parse(R"({"metadata":)" + meta + R"(,"spec":)" + std::string(spec) +
                     R"(,"status":)" + std::string(status) + "}");
}

const json::object* condition(const json::value& status, std::string_view type) {
  for (const auto& c : status.at("conditions").as_array()) {
    if (c.at("type").as_string() == type) {
      return &c.as_object();
    }
  }
  return nullptr;
}

std::vector<std::string> conditionTypes(const json::value& status) {
  std::vector<std::string> out;
  for (const auto& c : status.at("conditions").as_array()) {
    out.emplace_back(c.at("type").as_string());
  }
  return out;
}

const char* kProviderReady = R"({"status":{"phase":"Running","podIP":"10.0.0.5",
  "startTime":"2026-01-01T00:00:00Z",
  "conditions":[
  {"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/3 nodes"},
  {"type":"Initialized","status":"True","lastTransitionTime":"2026-01-01T00:00:00Z"},
  {"type":"ContainersReady","status":"True","lastTransitionTime":"2026-01-01T00:00:05Z"},
  {"type":"Ready","status":"True","lastTransitionTime":"2026-01-01T00:00:05Z"}],
  "containerStatuses":[{"name":"c","image":"img","imageID":"sha","ready":true,"started":true,
    "restartCount":0,"state":{"running":{"startedAt":"2026-01-01T00:00:04Z"}},"lastState":{}}]}})";

TEST(KubeletStatusTest, OnlyTheKubeletsConditionsInItsOrderAndWords) {
  auto pod = podWith(R"({"containers":[{"name":"c","image":"img"}]})", R"({"phase":"Pending"})");
  auto status = kubeletStatus(pod, json::parse(kProviderReady), kNow);
  EXPECT_EQ(conditionTypes(status),
            (std::vector<std::string>{"PodReadyToStartContainers", "Initialized", "Ready",
                                      "ContainersReady"}));  // the backend scheduler's is not ours
  for (const char* type :
       {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"}) {
    const auto* c = condition(status, type);
    EXPECT_EQ(c->at("status"), "True") << type;
    EXPECT_FALSE(c->contains("reason")) << type;  // a True condition carries no stale text
    EXPECT_FALSE(c->contains("message")) << type;
    EXPECT_TRUE(c->at("lastProbeTime").is_null()) << type;
  }
  // Transition times the provider saw are kept when the cluster had none.
  EXPECT_EQ(condition(status, "Ready")->at("lastTransitionTime"), "2026-01-01T00:00:05Z");
  EXPECT_EQ(condition(status, "PodReadyToStartContainers")->at("lastTransitionTime").as_string(),
            formatRfc3339(kNow));
  EXPECT_EQ(status.at("phase"), "Running");
  EXPECT_EQ(status.at("podIP"), "10.0.0.5");
  EXPECT_EQ(status.at("startTime"), "2026-01-01T00:00:00Z");
}

TEST(KubeletStatusTest, NotReadyContainersAreNamedAsTheKubeletDoes) {
  auto pod = podWith(R"({"containers":[{"name":"b"},{"name":"a"},{"name":"z"}]})", "{}");
  auto provider = json::parse(R"({"status":{"phase":"Running","containerStatuses":[
      {"name":"a","ready":false,"restartCount":0,"state":{"running":{}}},
      {"name":"b","ready":true,"restartCount":0,"state":{"running":{}}}]}})");
  auto status = kubeletStatus(pod, provider, kNow);
  const auto* cr = condition(status, "ContainersReady");
  EXPECT_EQ(cr->at("status"), "False");
  EXPECT_EQ(cr->at("reason"), "ContainersNotReady");
  EXPECT_EQ(cr->at("message"), "containers with unready status: [a z]");  // spec order
  EXPECT_EQ(*condition(status, "Ready"), [&] {
    json::object ready = *cr;
    ready["type"] = "Ready";
    return ready;
  }());
  // One status per container, sorted by name; z waits as a kubelet's container being created.
  const auto& list = status.at("containerStatuses").as_array();
  ASSERT_EQ(list.size(), 3U);
  EXPECT_EQ(list[0].at("name"), "a");
  EXPECT_EQ(list[1].at("name"), "b");
  EXPECT_EQ(list[2].at("name"), "z");
  EXPECT_EQ(list[2].at("state").at("waiting").at("reason"), "ContainerCreating");
  EXPECT_EQ(list[2].at("ready"), false);
  EXPECT_EQ(list[2].at("restartCount"), 0);
  EXPECT_FALSE(list[2].as_object().contains("resources"));  // only for containers that run
}

TEST(KubeletStatusTest, InitContainersKeepSpecOrderAndHoldInitialized) {
  auto pod = podWith(R"({"initContainers":[{"name":"z-init"},{"name":"a-init"}],
      "containers":[{"name":"c"}]})",
                     "{}");
  auto provider = json::parse(R"({"status":{"phase":"Pending","initContainerStatuses":[
      {"name":"z-init","ready":true,"restartCount":0,"state":{"terminated":{"exitCode":0}}},
      {"name":"a-init","ready":false,"restartCount":0,"state":{"running":{}}}]}})");
  auto status = kubeletStatus(pod, provider, kNow);
  const auto& inits = status.at("initContainerStatuses").as_array();
  EXPECT_EQ(inits[0].at("name"), "z-init");
  EXPECT_EQ(inits[1].at("name"), "a-init");
  const auto* init = condition(status, "Initialized");
  EXPECT_EQ(init->at("status"), "False");
  EXPECT_EQ(init->at("reason"), "ContainersNotInitialized");
  EXPECT_EQ(init->at("message"), "containers with incomplete status: [a-init]");
  // With init containers, the others wait with PodInitializing.
  EXPECT_EQ(status.at("containerStatuses").at(0).at("state").at("waiting").at("reason"),
            "PodInitializing");
  EXPECT_EQ(status.at("phase"), "Pending");
}

TEST(KubeletStatusTest, TerminalPhasesAsTheKubeletWordsThem) {
  auto pod =
      podWith(R"({"restartPolicy":"Never","containers":[{"name":"c"}]})", R"({"phase":"Running"})");
  auto provider = json::parse(R"({"status":{"phase":"Succeeded","containerStatuses":[
      {"name":"c","ready":false,"restartCount":0,"state":{"terminated":{"exitCode":0}}}]}})");
  auto status = kubeletStatus(pod, provider, kNow);
  EXPECT_EQ(condition(status, "ContainersReady")->at("reason"), "PodCompleted");
  EXPECT_EQ(condition(status, "Ready")->at("reason"), "PodCompleted");
  EXPECT_EQ(condition(status, "Initialized")->at("reason"), "PodCompleted");
  EXPECT_EQ(condition(status, "PodReadyToStartContainers")->at("status"), "False");
  provider.at("status").as_object()["phase"] = "Failed";
  status = kubeletStatus(pod, provider, kNow);
  EXPECT_EQ(condition(status, "Ready")->at("reason"), "PodFailed");
  EXPECT_FALSE(condition(status, "Ready")->contains("message"));
}

TEST(KubeletStatusTest, ReadyWaitsForEveryReadinessGate) {
  const char* spec = R"({"containers":[{"name":"c"}],
      "readinessGates":[{"conditionType":"example.com/a"},{"conditionType":"example.com/b"}]})";
  auto pod = podWith(spec, R"({"conditions":[{"type":"example.com/a","status":"False"}]})");
  auto status = kubeletStatus(pod, json::parse(kProviderReady), kNow);
  const auto* ready = condition(status, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->at("status"), "False");
  EXPECT_EQ(ready->at("reason"), "ReadinessGatesNotReady");
  EXPECT_EQ(ready->at("message"),
            R"(the status of pod readiness gate "example.com/a" is not "True", but False, )"
            R"(corresponding condition of pod readiness gate "example.com/b" does not exist.)");
  EXPECT_EQ(condition(status, "example.com/a"), nullptr);  // the gate's owner writes it
  EXPECT_EQ(condition(status, "ContainersReady")->at("status"), "True");

  auto met = podWith(spec, R"({"conditions":[{"type":"example.com/a","status":"True"},
      {"type":"example.com/b","status":"True"},
      {"type":"Ready","status":"False","lastTransitionTime":"2026-01-01T00:00:09Z"}]})");
  status = kubeletStatus(met, json::parse(kProviderReady), kNow);
  ready = condition(status, "Ready");
  EXPECT_EQ(ready->at("status"), "True");
  EXPECT_FALSE(ready->contains("reason"));
  EXPECT_EQ(ready->at("lastTransitionTime").as_string(), formatRfc3339(kNow));  // it flipped now
}

TEST(KubeletStatusTest, MonotonicFieldsNeverGoBack) {
  auto pod = podWith(R"({"containers":[{"name":"c"}]})", R"({"phase":"Running",
      "startTime":"2025-12-31T00:00:00Z",
      "conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2025-12-31T00:00:00Z"}],
      "containerStatuses":[{"name":"c","restartCount":3,"state":{"running":{}}}]})");
  auto provider = json::parse(R"({"status":{"phase":"Pending",
      "startTime":"2026-02-01T00:00:00Z","containerStatuses":[
      {"name":"c","ready":true,"restartCount":1,"state":{"running":{}}}]}})");
  auto status = kubeletStatus(pod, provider, kNow);
  EXPECT_EQ(status.at("phase"), "Running");  // a provider pod made again starts Pending
  EXPECT_EQ(status.at("startTime"), "2025-12-31T00:00:00Z");
  EXPECT_EQ(status.at("containerStatuses").at(0).at("restartCount"), 3);
  EXPECT_EQ(condition(status, "Ready")->at("lastTransitionTime"), "2025-12-31T00:00:00Z");
}

TEST(KubeletStatusTest, ObservedGenerationOnStatusAndConditions) {
  auto pod = podWith(R"({"containers":[{"name":"c"}]})", "{}", 4);
  auto status = kubeletStatus(pod, json::parse(kProviderReady), kNow);
  EXPECT_EQ(status.at("observedGeneration"), 4);
  for (const auto& c : status.at("conditions").as_array()) {
    EXPECT_EQ(c.at("observedGeneration"), 4);
  }
  auto noGeneration = podWith(R"({"containers":[{"name":"c"}]})", "{}");
  EXPECT_FALSE(kubeletStatus(noGeneration, json::parse(kProviderReady), kNow)
                   .as_object()
                   .contains("observedGeneration"));
}

TEST(KubeletStatusTest, ResourcesAndMountsComeFromTheSpec) {
  auto pod = podWith(R"({"containers":[{"name":"c","image":"img",
      "resources":{"requests":{"cpu":"250m","memory":"64Mi"},"limits":{"memory":"128Mi"}},
      "volumeMounts":[{"name":"data","mountPath":"/data"},
                      {"name":"cfg","mountPath":"/cfg","readOnly":true},
                      {"name":"kube-api-access-x","mountPath":"/var/run/secrets","readOnly":true,
                       "recursiveReadOnly":"Enabled"}]}]})",
                     "{}");
  auto provider = json::parse(kProviderReady);
  // The backend runs a normalized size and reports it: not what the cluster allocated.
  provider.at("status").at("containerStatuses").at(0).as_object()["allocatedResources"] =
      json::parse(R"({"cpu":"500m","memory":"1Gi"})");
  auto status = kubeletStatus(pod, provider, kNow);
  const auto& c = status.at("containerStatuses").at(0);
  EXPECT_EQ(c.at("allocatedResources"), json::parse(R"({"cpu":"250m","memory":"64Mi"})"));
  EXPECT_EQ(c.at("resources"), json::parse(R"({"requests":{"cpu":"250m","memory":"64Mi"},
      "limits":{"memory":"128Mi"}})"));
  EXPECT_EQ(c.at("volumeMounts"), json::parse(R"([{"name":"data","mountPath":"/data"},
      {"name":"cfg","mountPath":"/cfg","readOnly":true,"recursiveReadOnly":"Disabled"},
      {"name":"kube-api-access-x","mountPath":"/var/run/secrets","readOnly":true,
       "recursiveReadOnly":"Enabled"}])"));
  // Without requests: resources {} as the kubelet writes it, no allocatedResources.
  auto bare = podWith(R"({"containers":[{"name":"c"}]})", "{}");
  const json::value bareStatus = kubeletStatus(bare, json::parse(kProviderReady), kNow);
  const auto& b = bareStatus.at("containerStatuses");
  EXPECT_EQ(b.at(0).at("resources"), json::object{});
  EXPECT_FALSE(b.at(0).as_object().contains("allocatedResources"));
  EXPECT_FALSE(b.at(0).as_object().contains("volumeMounts"));
}

TEST(KubeletStatusTest, WaitingReasonForAPodThatCannotStartYet) {
  auto pod = podWith(R"({"containers":[{"name":"c","image":"img"}]})", R"({"phase":"Pending"})");
  auto pending = json::parse(R"({"status":{"phase":"Pending"}})");
  auto status = kubeletStatus(pod, pending, kNow, kContainerCreating, "waiting for x");
  const auto& waiting = status.at("containerStatuses").at(0).at("state").at("waiting");
  EXPECT_EQ(waiting.at("reason"), "ContainerCreating");
  EXPECT_EQ(waiting.at("message"), "waiting for x");
  EXPECT_EQ(status.at("phase"), "Pending");
  EXPECT_EQ(condition(status, "PodReadyToStartContainers")->at("status"), "False");
  EXPECT_EQ(condition(status, "Ready")->at("message"), "containers with unready status: [c]");
}

TEST(KubeletStatusTest, AFinishedContainerTheProviderNoLongerReportsKeepsItsEnd) {
  auto pod = podWith(R"({"containers":[{"name":"c"}]})", R"({"phase":"Running",
      "containerStatuses":[{"name":"c","restartCount":0,"ready":false,
        "state":{"terminated":{"exitCode":3,"reason":"Error"}},"lastState":{}}]})");
  auto status = kubeletStatus(pod, json::parse(R"({"status":{"phase":"Running"}})"), kNow);
  EXPECT_EQ(status.at("containerStatuses").at(0).at("state").at("terminated").at("exitCode"), 3);
}

TEST(KubeletStatusTest, RestartBaseCarriesRestartCountsAndTheLostRun) {
  auto pod = podWith(R"({"containers":[{"name":"c"}]})", R"({"containerStatuses":[
      {"name":"c","restartCount":2,"lastState":{"terminated":{"reason":"ContainerStatusUnknown"}}}]})");
  auto provider = json::parse(kProviderReady);
  setRestartBase(provider, {{"c", 2}});
  EXPECT_EQ(restartBaseOf(provider), (std::map<std::string, int64_t>{{"c", 2}}));
  auto status = kubeletStatus(pod, provider, kNow);
  const auto& c = status.at("containerStatuses").at(0);
  EXPECT_EQ(c.at("restartCount"), 2);
  EXPECT_EQ(c.at("lastState").at("terminated").at("reason"), "ContainerStatusUnknown");
  // The provider's own restarts add up, and its own lastState wins.
  provider.at("status").at("containerStatuses").at(0).as_object()["restartCount"] = 1;
  provider.at("status").at("containerStatuses").at(0).as_object()["lastState"] =
      json::parse(R"({"terminated":{"reason":"Error","exitCode":1}})");
  status = kubeletStatus(pod, provider, kNow);
  EXPECT_EQ(status.at("containerStatuses").at(0).at("restartCount"), 3);
  EXPECT_EQ(status.at("containerStatuses").at(0).at("lastState").at("terminated").at("reason"),
            "Error");
  dropRestartBase(provider);
  EXPECT_TRUE(restartBaseOf(provider).empty());
  EXPECT_EQ(provider.at("metadata").as_object().count("annotations"), 0U);
}

TEST(KubeletStatusTest, TerminalStatusEndsEveryContainer) {
  auto pod = podWith(R"({"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]})",
                     R"({"phase":"Running","containerStatuses":[
      {"name":"a","ready":true,"restartCount":0,"state":{"running":{}},"lastState":{}},
      {"name":"b","ready":false,"restartCount":0,
       "state":{"terminated":{"exitCode":0,"reason":"Completed"}},"lastState":{}}],
      "conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2025-12-31T00:00:00Z"}]})");
  auto status = terminalStatus(pod, kNow);
  EXPECT_EQ(status.at("phase"), "Failed");  // a did not end with 0
  const auto& list = status.at("containerStatuses").as_array();
  const auto& a = list[0].at("state").at("terminated");
  EXPECT_EQ(a.at("reason"), "ContainerStatusUnknown");
  EXPECT_EQ(a.at("exitCode"), 137);
  EXPECT_EQ(a.at("message"), kTerminatedUnknownMessage);
  EXPECT_EQ(list[1].at("state").at("terminated").at("reason"), "Completed");  // its own end
  EXPECT_EQ(list[2].at("state").at("terminated").at("reason"), "ContainerStatusUnknown");
  EXPECT_EQ(condition(status, "Ready")->at("status"), "False");
  EXPECT_EQ(condition(status, "Ready")->at("reason"), "PodFailed");
  EXPECT_EQ(condition(status, "Ready")->at("lastTransitionTime").as_string(), formatRfc3339(kNow));

  auto done = podWith(R"({"containers":[{"name":"a"}]})", R"({"phase":"Running",
      "containerStatuses":[{"name":"a","restartCount":0,
        "state":{"terminated":{"exitCode":0}},"lastState":{}}]})");
  EXPECT_EQ(terminalStatus(done, kNow).at("phase"), "Succeeded");
  auto failed = podWith(R"({"containers":[{"name":"a"}]})", R"({"phase":"Failed",
      "containerStatuses":[{"name":"a","restartCount":0,
        "state":{"terminated":{"exitCode":0}},"lastState":{}}]})");
  EXPECT_EQ(terminalStatus(failed, kNow).at("phase"), "Failed");  // a terminal phase stays
}

}  // namespace
}  // namespace burstlet::pod
