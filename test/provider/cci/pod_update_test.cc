#include "provider/cci/pod_update.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "provider/cci/translate.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

// A backend pod whose source had container "job", with burstlet's proxy beside it.
json::value backendPod(const char* policy, const char* jobState,
                       const char* proxyState = "running") {
  return json::parse(std::string(R"({"metadata":{"name":"b","annotations":{")") +
                     kContainersAnnotation + R"(":"{\"containers\":[\"job\"]}"}},
      "spec":{"restartPolicy":")" +
                     policy + R"(","containers":[{"name":"job"},{"name":"burstlet-netproxy"}]},
      "status":{"phase":"Running","containerStatuses":[
        {"name":"job","state":)" +
                     jobState + R"(},
        {"name":"burstlet-netproxy","state":{")" +
                     proxyState + R"(":{}}}]}})");
}

constexpr const char* kDone = R"({"terminated":{"exitCode":0}})";
constexpr const char* kFailed = R"({"terminated":{"exitCode":2}})";
constexpr const char* kRunning = R"({"running":{}})";

TEST(InjectedStop, OnceThePodsOwnContainersAreDoneForGood) {
  EXPECT_TRUE(injectedShouldStop(backendPod("Never", kDone)));
  EXPECT_TRUE(injectedShouldStop(backendPod("Never", kFailed)));
  EXPECT_TRUE(injectedShouldStop(backendPod("OnFailure", kDone)));
  // OnFailure restarts a failed container: not done yet.
  EXPECT_FALSE(injectedShouldStop(backendPod("OnFailure", kFailed)));
  EXPECT_FALSE(injectedShouldStop(backendPod("Never", kRunning)));
  // Always: the pod never ends on its own.
  EXPECT_FALSE(injectedShouldStop(backendPod("Always", kDone)));
}

TEST(InjectedStop, OnlyOnceAndOnlyWithSomethingInjected) {
  auto told = backendPod("Never", kDone);
  told.as_object()["metadata"].as_object()["annotations"].as_object()[kInjectedStopAnnotation] =
      "true";
  EXPECT_FALSE(injectedShouldStop(told));
  auto deleting = backendPod("Never", kDone);
  deleting.as_object()["metadata"].as_object()["deletionTimestamp"] = "2026-12-07T10:00:00Z";
  EXPECT_FALSE(injectedShouldStop(deleting));
  auto ended = backendPod("Never", kDone);
  ended.as_object()["status"].as_object()["phase"] = "Succeeded";
  EXPECT_FALSE(injectedShouldStop(ended));
  // Without the proxy (every container the source's own): nothing to tell.
  auto plain = json::parse(std::string(R"({"metadata":{"annotations":{")") + kContainersAnnotation +
                           R"(":"{\"containers\":[\"job\"]}"}},
      "spec":{"restartPolicy":"Never","containers":[{"name":"job"}]},
      "status":{"phase":"Running","containerStatuses":[{"name":"job","state":{"terminated":{"exitCode":0}}}]}})");
  EXPECT_FALSE(injectedShouldStop(plain));
}

// The proxy turned on after a pod was made: its update never asks for a container it lacks.
TEST(LabelsAndImagesPatch, OnlyContainersTheBackendPodHas) {
  const auto backend = json::parse(R"({"metadata":{"labels":{"app":"web"}},
      "spec":{"containers":[{"name":"app","image":"web:1"}]}})");
  const auto translated = json::parse(R"({"metadata":{"labels":{"app":"web"}},
      "spec":{"containers":[{"name":"burstlet-netproxy","image":"burstlet:1"},
                            {"name":"app","image":"web:2"}]}})");
  const auto patch = labelsAndImagesPatch(backend, translated);
  EXPECT_EQ(json::serialize(patch.at("spec").at("containers")),
            R"([{"name":"app","image":"web:2"}])");
  EXPECT_TRUE(patchChanges(backend, patch));
  const auto same = json::parse(R"({"metadata":{"labels":{"app":"web"}},
      "spec":{"containers":[{"name":"burstlet-netproxy","image":"burstlet:1"},
                            {"name":"app","image":"web:1"}]}})");
  EXPECT_FALSE(patchChanges(backend, labelsAndImagesPatch(backend, same)));
}

}  // namespace
}  // namespace burstlet::provider::cci
