// BackendPods, through the provider: create, update, delete, get/list, status changes back.
#include <gtest/gtest.h>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

// --- createPod ------------------------------------------------------------------------------

// The backend's API is older than the pod: a field it would drop is refused, naming it, and
// nothing is sent; without such a field the pod goes.
TEST(BackendPodsTest, FieldTheBackendReleaseLacksIsRefusedNotSent) {
  CciOptions o = defaultOptions();
  o.backendVersion = "1.19";
  Harness h(o);
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  pod.as_object()["spec"].as_object()["initContainers"] = json::array{
      json::object{{"name", "sidecar"}, {"image", "proxy:1"}, {"restartPolicy", "Always"}}};
  const Status s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().reason, "FieldNotSupportedByBackend");
  EXPECT_NE(s.error().message.find("spec.initContainers[0].restartPolicy"), std::string::npos)
      << s.error().message;
  EXPECT_EQ(h.api.writes(), 2);  // the namespace and the node's marker only
  EXPECT_TRUE(h.createPod(clusterPod("plain", "u2")).ok());
}

// CCI's limits (limits.h) hold in CCI mode only: a plain Kubernetes backend takes a privileged
// pod with a startup probe.
TEST(BackendPodsTest, CciLimitsOnlyInCciMode) {
  auto pod = clusterPod("web", "u1");
  auto& c = pod.as_object()["spec"].as_object()["containers"].as_array()[0].as_object();
  c["securityContext"] = json::object{{"privileged", true}};
  c["startupProbe"] = json::object{{"exec", json::object{{"command", json::array{"true"}}}}};
  Harness plain;  // defaultOptions(): api kubernetes
  ASSERT_TRUE(plain.startAndSettle());
  EXPECT_TRUE(plain.createPod(pod).ok());

  CciOptions o = defaultOptions();
  o.cci = true;  // no Network: only the pod path is looked at
  Harness cci(o);
  ASSERT_TRUE(cci.startAndSettle());
  const Status s = cci.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "PrivilegedContainer");
}

TEST(BackendPodsTest, CreateCopiesConfigMapThenCreatesPod) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/cfg"] = configMap("cfg", "v1");
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  // The informers see nothing for now: getPod must answer from what create returned.
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(pod).ok());

  const int copyPost = firstCopyPost(h.api);
  const int podPost = firstRequest(h.api, Verb::post, kPods);
  ASSERT_GE(copyPost, 0);
  ASSERT_GE(podPost, 0);
  EXPECT_LT(copyPost, podPost);
  auto copy = h.copy("cfg");
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(stringAt(*copy, {"data", "key"}), "v1");

  auto backendPod = h.backendPod("app", "web");
  ASSERT_TRUE(backendPod.has_value());
  EXPECT_EQ(stringAt(*backendPod, {"metadata", "namespace"}), kNs);
  EXPECT_EQ(stringAt(*backendPod, {"spec", "volumes"}).find(copyName(kNode, "app", "cfg")) !=
                std::string::npos,
            true);

  auto got = h.getPod(PodRef{"app", "web", "u1"});
  ASSERT_TRUE(got.ok()) << got.error().toString();
  EXPECT_EQ(stringAt(*got, {"metadata", "namespace"}), "app");
  EXPECT_EQ(stringAt(*got, {"metadata", "name"}), "web");
  EXPECT_EQ(stringAt(*got, {"metadata", "uid"}), "u1");
  auto listed = h.call(h.provider->listPods());
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
  // Another uid under that name is not this pod.
  EXPECT_EQ(h.getPod(PodRef{"app", "web", "u2"}).error().code, ErrorCode::kNotFound);

  h.api.holdWatches(false);
  ASSERT_TRUE(h.settle());
  EXPECT_TRUE(h.getPod(PodRef{"app", "web", "u1"}).ok());
  listed = h.call(h.provider->listPods());
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);  // not twice (informer and recent creates)
  EXPECT_EQ(h.provider->stats().podCreates.load(), 1u);
  EXPECT_EQ(h.provider->stats().copyCreates.load(), 1u);
}

TEST(BackendPodsTest, CreateIsIdempotentByUid) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  const auto pod = clusterPod("web", "u1");
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(pod).ok());
  // Repeated before the informer saw the pod, then after.
  EXPECT_TRUE(h.createPod(pod).ok());
  h.api.holdWatches(false);
  ASSERT_TRUE(h.settle());
  EXPECT_TRUE(h.createPod(pod).ok());
  EXPECT_EQ(h.api.count(Verb::post, kPods), 1);
  EXPECT_EQ(h.api.names(kPods).size(), 1u);
}

TEST(BackendPodsTest, CreateWaitsForTheEarlierPodOfItsName) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto old = toBackendPod(clusterPod("web", "old-uid"), TranslateOptions{kNs, kNode, ""});
  ASSERT_TRUE(old.ok());
  h.api.put(kPods, *old);
  ASSERT_TRUE(h.settle());
  const int posts = h.api.count(Verb::post);
  auto s = h.createPod(clusterPod("web", "new-uid"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().reason, kPredecessorTerminating);
  EXPECT_EQ(h.api.count(Verb::post), posts);
  // The earlier pod was deleted with its own grace period (no gracePeriodSeconds sent).
  const std::string path = resources::kPods.path(kNs, backendName("app", "web"));
  int deletes = 0;
  for (const auto& r : h.api.requests()) {
    if (r.method == Verb::delete_ && r.path == path) {
      ++deletes;
      EXPECT_EQ((r.body + r.query).find("gracePeriodSeconds"), std::string::npos);
      EXPECT_NE(r.body.find("preconditions"), std::string::npos);  // only that backend pod
    }
  }
  EXPECT_EQ(deletes, 1);
}

TEST(BackendPodsTest, CreateWithLostAnswerSucceedsOnRetry) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  const auto pod = clusterPod("web", "u1");
  h.api.holdWatches(true);  // the informer must not reveal the pod: the 409 path is under test
  h.api.loseAnswerNext(Verb::post, kPods);
  auto first = h.createPod(pod);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(h.backendPod("app", "web").has_value());  // it happened all the same

  auto second = h.createPod(pod);
  ASSERT_TRUE(second.ok()) << second.error().toString();
  EXPECT_EQ(h.api.count(Verb::post, kPods), 2);  // the repeat met 409 AlreadyExists
  EXPECT_EQ(h.api.count(Verb::get, resources::kPods.path(kNs, backendName("app", "web"))), 1);
  EXPECT_EQ(h.api.names(kPods).size(), 1u);
  EXPECT_TRUE(h.getPod(PodRef{"app", "web", "u1"}).ok());
}

TEST(BackendPodsTest, CreateConflictWithAnotherUidBeforeInformerSawIt) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.api.holdWatches(true);
  auto old = toBackendPod(clusterPod("web", "old-uid"), TranslateOptions{kNs, kNode, ""});
  ASSERT_TRUE(old.ok());
  h.api.put(kPods, *old);
  auto s = h.createPod(clusterPod("web", "new-uid"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, kPredecessorTerminating);
  EXPECT_EQ(h.getPod(PodRef{"app", "web", "new-uid"}).error().code, ErrorCode::kNotFound);
}

TEST(BackendPodsTest, CreateRejectsPodsTheBackendCannotRun) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/cfg"] = configMap("cfg", "v1");
  const int writes = h.api.writes();

  auto hostNetwork = clusterPod("hn", "u1");
  hostNetwork.as_object()["spec"].as_object()["hostNetwork"] = true;
  addConfigMapVolume(hostNetwork, "cfg");
  auto s = h.createPod(hostNetwork);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().reason, "HostNetwork");

  auto huge = clusterPod("huge", "u2", "33");
  addConfigMapVolume(huge, "cfg");
  s = h.createPod(huge);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().reason, "PodTooLarge");

  EXPECT_EQ(h.api.writes(), writes);
  EXPECT_TRUE(h.api.names(kPods).empty());
  EXPECT_TRUE(configMapCopies(h.api).empty());
}

TEST(BackendPodsTest, UnavailableBackendFailsRetryably) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  const auto pod = clusterPod("web", "u1");
  h.api.failNext(Verb::post, kPods, 1, 503, "ServiceUnavailable");
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(isRetryable(s.error().code));
  EXPECT_FALSE(h.backendPod("app", "web").has_value());
  EXPECT_EQ(h.getPod(PodRef{"app", "web", "u1"}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 1);  // a POST is not repeated blindly

  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_EQ(h.api.names(kPods).size(), 1u);
  EXPECT_EQ(h.provider->stats().podCreates.load(), 1u);
}

// A create into the backend namespace while `burstlet cleanup` deletes it, or once it is gone, is
// the backend being unavailable (tried again), not a refusal of the pod.
TEST(BackendPodsTest, ACreateIntoADeletedNamespaceIsUnavailable) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  const auto pod = clusterPod("web", "u1");
  h.api.failNextWithBody(
      Verb::post, kPods, 1, 403,
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"app-web\" is )"
      R"(forbidden: unable to create new content in namespace cce-burst-c1 because it is being )"
      R"(terminated","reason":"Forbidden","details":{"name":"app-web","kind":"pods","causes":[)"
      R"({"reason":"NamespaceTerminating","message":"namespace cce-burst-c1 is being )"
      R"(terminated","field":"metadata.namespace"}]},"code":403})");
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().reason, "NamespaceTerminating");
  EXPECT_NE(s.error().message.find("being terminated"), std::string::npos);

  h.api.failNextWithBody(
      Verb::post, kPods, 1, 404,
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"namespaces )"
      R"(\"cce-burst-c1\" not found","reason":"NotFound","details":{"name":"cce-burst-c1",)"
      R"("kind":"namespaces"},"code":404})");
  s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().reason, "NamespaceNotFound");

  // Another refusal keeps its class.
  h.api.failNext(Verb::post, kPods, 1, 403, "Forbidden");
  s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kForbidden);
  ASSERT_TRUE(h.createPod(pod).ok());
}

// A pod created while the pod watch was down and deleted behind our back is never shown by the
// informer: what create returned is forgotten after a while instead of being answered forever.
TEST(BackendPodsTest, CreatedPodTheInformerNeverShowsIsForgotten) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
  ASSERT_TRUE(h.getPod(PodRef{"app", "web", "u1"}).ok());
  ASSERT_TRUE(h.api.remove(kPods, backendName("app", "web")));

  ASSERT_TRUE(h.sweepPass(1));
  EXPECT_TRUE(h.getPod(PodRef{"app", "web", "u1"}).ok());  // still young
  h.clock.advance(std::chrono::minutes(2));
  ASSERT_TRUE(h.sweepPass(2));
  EXPECT_EQ(h.getPod(PodRef{"app", "web", "u1"}).error().code, ErrorCode::kNotFound);
  // So the controller creates it again, and it is really there.
  ASSERT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
  EXPECT_EQ(h.api.count(Verb::post, kPods), 2);
  h.api.holdWatches(false);
}

// --- updatePod ------------------------------------------------------------------------------

TEST(BackendPodsTest, UpdatePatchesLabelsAndImages) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_TRUE(h.settle());

  auto& meta = pod.as_object()["metadata"].as_object();
  meta["labels"] = json::object{{"tier", "front"}};  // "app" removed, "tier" added
  pod.as_object()["spec"].as_object()["containers"].as_array()[0].as_object()["image"] = "nginx:2";
  ASSERT_TRUE(h.call(h.provider->updatePod(pod)).ok());
  EXPECT_EQ(h.api.count(Verb::patch, kPods), 1);
  ASSERT_TRUE(h.settle());
  auto got = h.getPod(PodRef{"app", "web", "u1"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(stringAt(*got, {"metadata", "labels"}), R"({"tier":"front"})");
  EXPECT_EQ(stringAt(got->at("spec").at("containers").at(0), {"image"}), "nginx:2");
  // Ours are kept on the backend.
  EXPECT_EQ(stringAt(*h.backendPod("app", "web"), {"metadata", "labels", kManagedByLabel}),
            kManagedByValue);

  auto absent = h.call(h.provider->updatePod(clusterPod("nope", "u9")));
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(h.api.count(Verb::patch, kPods), 1);
}

// Labels and annotations the backend adds itself (a webhook, CCI) are not the user's: the
// controller sees no change because of them, and an update leaves them alone.
TEST(BackendPodsTest, KeysTheBackendAddsAreNeitherShownNorRemoved) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_TRUE(h.settle());
  auto backend = *h.backendPod("app", "web");
  auto& meta = backend.as_object()["metadata"].as_object();
  meta["labels"].as_object()["cci.example/zone"] = "az1";
  if (!meta["annotations"].is_object()) {
    meta["annotations"] = json::object{};
  }
  meta["annotations"].as_object()["cci.example/injected"] = "sidecar";
  h.api.put(kPods, backend);
  ASSERT_TRUE(h.settle());

  auto shown = h.getPod(PodRef{"app", "web", "u1"});
  ASSERT_TRUE(shown.ok());
  EXPECT_FALSE(needsUpdate(pod, *shown)) << json::serialize(*shown);

  pod.as_object()["metadata"].as_object()["labels"] = json::object{{"tier", "front"}};
  ASSERT_TRUE(h.call(h.provider->updatePod(pod)).ok());
  ASSERT_TRUE(h.settle());
  const auto after = *h.backendPod("app", "web");
  EXPECT_EQ(stringAt(after, {"metadata", "labels", "cci.example/zone"}), "az1");
  EXPECT_EQ(stringAt(after, {"metadata", "annotations", "cci.example/injected"}), "sidecar");
  EXPECT_EQ(stringAt(after, {"metadata", "labels", "tier"}), "front");
  EXPECT_EQ(stringAt(after, {"metadata", "labels", "app"}), "");  // the source's, removed
}

// A cluster pod with the ephemeral container kubectl debug adds: the service account token
// mounted, and an env reference the environment resolution left.
json::value withDebugContainer(json::value pod, const std::string& name = "debugger") {
  auto& spec = pod.as_object()["spec"].as_object();
  if (!spec.contains("ephemeralContainers")) {
    spec["ephemeralContainers"] = json::array();
  }
  spec["ephemeralContainers"].as_array().push_back(json::object{
      {"name", name},
      {"image", "busybox:1.36"},
      {"targetContainerName", "c"},
      {"stdin", true},
      {"tty", true},
      {"env", json::array{json::object{
                  {"name", "C"},
                  {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "key"}}}}}}}},
      {"volumeMounts",
       json::array{json::object{{"name", "kube-api-access-x"}, {"mountPath", "/var/run/sa"}},
                   json::object{{"name", "v-cfg"}, {"mountPath", "/cfg"}}}}});
  return pod;
}

json::value podWithConfigAndToken() {
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  pod.as_object()["spec"].as_object()["volumes"].as_array().push_back(json::object{
      {"name", "kube-api-access-x"},
      {"projected",
       {{"sources", json::array{json::object{{"serviceAccountToken", {{"path", "token"}}}}}}}}});
  return pod;
}

// kubectl debug: updatePod adds the ephemeral containers the backend pod lacks, translated like
// its containers, through the ephemeralcontainers subresource, and getPod shows them.
TEST(BackendPodsTest, UpdateAddsEphemeralContainers) {
  Harness h;
  h.api.serveEphemeralContainers();
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/cfg"] = configMap("cfg", "v1");
  auto pod = podWithConfigAndToken();
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_TRUE(h.settle());
  const std::string subresource =
      resources::kPods.path(kNs, backendName("app", "web")) + "/ephemeralcontainers";

  pod = withDebugContainer(pod);
  const auto s = h.call(h.provider->updatePod(pod));
  ASSERT_TRUE(s.ok()) << errorText(s);
  EXPECT_EQ(h.api.count(Verb::patch, subresource), 1);
  // Nothing else changed: the pod itself is not written.
  EXPECT_EQ(h.api.count(Verb::patch, kPods), 1);
  const auto backend = *h.backendPod("app", "web");
  const auto& added = backend.at("spec").at("ephemeralContainers").as_array();
  ASSERT_EQ(added.size(), 1U);
  EXPECT_EQ(stringAt(added[0], {"name"}), "debugger");
  EXPECT_EQ(stringAt(added[0], {"targetContainerName"}), "c");
  // The token volume is not on the backend, so neither is its mount; the ConfigMap is the copy.
  EXPECT_EQ(stringAt(added[0], {"volumeMounts"}), R"([{"name":"v-cfg","mountPath":"/cfg"}])");
  EXPECT_EQ(stringAt(added[0].at("env").at(0), {"valueFrom", "configMapKeyRef", "name"}),
            copyName(kNode, "app", "cfg"));
  EXPECT_FALSE(added[0].as_object().contains("resources"));

  // Shown at once (before the informer catches up, too), with the backend's status.
  auto got = h.getPod(PodRef{"app", "web", "u1"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(stringAt(*got, {"spec", "ephemeralContainers"}),
            R"([{"name":"debugger","image":"busybox:1.36"}])");
  ASSERT_TRUE(h.settle());
  auto running = *h.backendPod("app", "web");
  running.as_object()["status"] =
      json::object{{"phase", "Running"},
                   {"ephemeralContainerStatuses",
                    json::array{json::object{
                        {"name", "debugger"},
                        {"image", "busybox:1.36"},
                        {"ready", false},
                        {"restartCount", 0},
                        {"state", {{"running", {{"startedAt", "2026-01-01T00:00:00Z"}}}}}}}}};
  h.api.put(kPods, running);
  ASSERT_TRUE(h.settle());
  got = h.getPod(PodRef{"app", "web", "u1"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(stringAt(got->at("status").at("ephemeralContainerStatuses").at(0),
                     {"state", "running", "startedAt"}),
            "2026-01-01T00:00:00Z");
  auto listed = h.call(h.provider->listPods());
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(stringAt(listed->at(0), {"spec", "ephemeralContainers"}),
            R"([{"name":"debugger","image":"busybox:1.36"}])");

  // Repeated: nothing to add. A second one: only it is sent.
  ASSERT_TRUE(h.call(h.provider->updatePod(pod)).ok());
  EXPECT_EQ(h.api.count(Verb::patch, subresource), 1);
  pod = withDebugContainer(pod, "second");
  ASSERT_TRUE(h.call(h.provider->updatePod(pod)).ok());
  ASSERT_EQ(h.api.count(Verb::patch, subresource), 2);
  const auto body = json::parse(h.api.requests().back().body);
  EXPECT_EQ(body.at("spec").at("ephemeralContainers").as_array().size(), 1U);
  EXPECT_EQ(stringAt(body.at("spec").at("ephemeralContainers").at(0), {"name"}), "second");
  EXPECT_EQ(h.backendPod("app", "web")->at("spec").at("ephemeralContainers").as_array().size(), 2U);
}

// A backend without the ephemeralcontainers subresource (CCI's Kubernetes 1.19 API answers 404,
// others 405): labels and images are applied, and the answer says clearly what was not done.
TEST(BackendPodsTest, EphemeralContainersNotSupportedByTheBackend) {
  for (const unsigned code : {404U, 405U}) {
    Harness h;
    ASSERT_TRUE(h.startAndSettle());
    auto pod = clusterPod("web", "u1");
    ASSERT_TRUE(h.createPod(pod).ok());
    ASSERT_TRUE(h.settle());
    const std::string subresource =
        resources::kPods.path(kNs, backendName("app", "web")) + "/ephemeralcontainers";
    if (code == 405) {
      h.api.serveEphemeralContainers();
      h.api.failNext(Verb::patch, subresource, 1, 405, "MethodNotAllowed");
    }
    pod.as_object()["metadata"].as_object()["labels"] = json::object{{"tier", "front"}};
    pod = withDebugContainer(pod);
    const auto s = h.call(h.provider->updatePod(pod));
    ASSERT_FALSE(s.ok()) << code;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalid) << errorText(s);
    EXPECT_EQ(s.error().reason, "EphemeralContainersNotSupported");
    EXPECT_NE(s.error().message.find("debugger"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(kNs), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(std::to_string(code)), std::string::npos) << s.error().message;
    EXPECT_EQ(h.api.count(Verb::patch, subresource), 1);
    ASSERT_TRUE(h.settle());
    EXPECT_EQ(stringAt(*h.backendPod("app", "web"), {"metadata", "labels", "tier"}), "front");
    auto got = h.getPod(PodRef{"app", "web", "u1"});
    ASSERT_TRUE(got.ok());
    EXPECT_FALSE(got->at("spec").as_object().contains("ephemeralContainers"));
  }
}

// --- deletePod ------------------------------------------------------------------------------

TEST(BackendPodsTest, DeleteOnlyTheSamePodWithPreconditionAndGrace) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  const std::string backendUid = stringAt(*h.backendPod("app", "web"), {"metadata", "uid"});

  // The name now belongs to another pod as far as the caller knows: not ours to delete.
  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u2"}, 30).ok());
  EXPECT_EQ(h.api.count(Verb::delete_), 0);
  EXPECT_TRUE(h.backendPod("app", "web").has_value());

  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 30).ok());
  ASSERT_EQ(h.api.count(Verb::delete_, kPods), 1);
  const auto del = h.api.requests()[firstRequest(h.api, Verb::delete_, kPods)];
  EXPECT_EQ(del.path, resources::kPods.path(kNs, backendName("app", "web")));
  const auto body = json::parse(del.body);
  EXPECT_EQ(stringAt(body, {"preconditions", "uid"}), backendUid);
  EXPECT_EQ(stringAt(body, {"gracePeriodSeconds"}), "30");
  EXPECT_FALSE(h.backendPod("app", "web").has_value());

  // Gone: deleting again is success without a write.
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 30).ok());
  EXPECT_EQ(h.api.count(Verb::delete_), 1);
  EXPECT_EQ(h.getPod(PodRef{"app", "web", "u1"}).error().code, ErrorCode::kNotFound);
}

TEST(BackendPodsTest, DeleteFindsPodTheInformerHasNotShown) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.api.holdWatches(true);
  // Created by an earlier process a moment ago.
  auto earlier = toBackendPod(clusterPod("web", "u1"), TranslateOptions{kNs, kNode, ""});
  ASSERT_TRUE(earlier.ok());
  const auto stored = h.api.put(kPods, *earlier);
  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 0).ok());
  ASSERT_EQ(h.api.count(Verb::delete_, kPods), 1);
  const auto body = json::parse(h.api.requests().back().body);
  EXPECT_EQ(stringAt(body, {"preconditions", "uid"}), stringAt(stored, {"metadata", "uid"}));
  EXPECT_FALSE(h.backendPod("app", "web").has_value());
}

// A pod already terminating on the backend is not deleted again, unless the new delete is
// shorter.
TEST(BackendPodsTest, DeleteOfTerminatingPodWritesOnlyToShortenGrace) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto backend = toBackendPod(clusterPod("web", "u1"), TranslateOptions{kNs, kNode, ""});
  ASSERT_TRUE(backend.ok());
  auto& meta = backend->as_object()["metadata"].as_object();
  meta["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  meta["deletionGracePeriodSeconds"] = 30;
  h.api.put(kPods, *backend);
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 30).ok());
  EXPECT_EQ(h.api.count(Verb::delete_, kPods), 0);
  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 0).ok());
  EXPECT_EQ(h.api.count(Verb::delete_, kPods), 1);
}

// --- status notifications -------------------------------------------------------------------

TEST(BackendPodsTest, NotifiesStatusChangesOfBackendPods) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  h.notified.clear();

  auto pod = *h.backendPod("app", "web");
  pod.as_object()["status"] = json::object{{"phase", "Running"}, {"podIP", "192.168.0.7"}};
  h.api.put(kPods, pod);
  ASSERT_TRUE(h.settle());
  ASSERT_EQ(h.notified.size(), 1u);
  EXPECT_EQ(h.notified[0], (PodRef{"app", "web", "u1"}));
  auto got = h.getPod(PodRef{"app", "web", "u1"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(stringAt(*got, {"status", "phase"}), "Running");
  EXPECT_EQ(stringAt(*got, {"status", "hostIP"}), "10.1.2.3");

  // A label change alone is no status change.
  pod = *h.backendPod("app", "web");
  pod.as_object()["metadata"].as_object()["labels"].as_object()["x"] = "y";
  h.api.put(kPods, pod);
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.notified.size(), 1u);

  h.api.remove(kPods, backendName("app", "web"));
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.notified.size(), 2u);
}

}  // namespace
}  // namespace burstlet::provider::cci
