#include "provider/cci/cci_provider.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mocks/fake_clock.h"
#include "mocks/fake_cluster_objects.h"
#include "mocks/memory_api.h"
#include "mocks/run_sync.h"
#include "provider/cci/events.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;
namespace resources = kube::resources;
using burstlet::testing::FakeClock;
using burstlet::testing::FakeClusterObjects;
using burstlet::testing::MemoryApi;
using kube::Verb;

constexpr const char* kClusterId = "c1";
constexpr const char* kNs = "cce-burst-c1";
constexpr const char* kNode = "burst-node";
const std::string kNamespaces = resources::kNamespaces.path("");
const std::string kPods = resources::kPods.path(kNs);
const std::string kConfigMaps = resources::kConfigMaps.path(kNs);
const std::string kEvents = resources::kEvents.path(kNs);

json::value clusterPod(const std::string& name, const std::string& uid,
                       const std::string& cpu = "500m") {
  return json::value{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"namespace", "app"}, {"name", name}, {"uid", uid}, {"labels", {{"app", name}}}}},
      {"spec",
       {{"nodeName", kNode},
        {"containers", json::array{json::object{
                           {"name", "c"},
                           {"image", "nginx:1"},
                           {"resources", {{"requests", {{"cpu", cpu}, {"memory", "1Gi"}}}}}}}}}}};
}

void addConfigMapVolume(json::value& pod, const std::string& cm, bool optional = false) {
  auto& spec = pod.as_object()["spec"].as_object();
  if (!spec.contains("volumes")) {
    spec["volumes"] = json::array();
  }
  json::object source{{"name", cm}};
  if (optional) {
    source["optional"] = true;
  }
  spec["volumes"].as_array().push_back(json::object{{"name", "v-" + cm}, {"configMap", source}});
}

json::value configMap(const std::string& name, const std::string& value) {
  return json::value{
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata", {{"namespace", "app"}, {"name", name}, {"uid", "cm-uid-" + name}}},
      {"data", {{"key", value}}}};
}

std::string stringAt(const json::value& v, std::initializer_list<std::string_view> keys) {
  const json::value* cur = &v;
  for (auto k : keys) {
    const auto* o = cur->if_object();
    cur = o != nullptr ? o->if_contains(k) : nullptr;
    if (cur == nullptr) {
      return "";
    }
  }
  return cur->is_string() ? std::string(cur->as_string()) : json::serialize(*cur);
}

// Index of the first request with `method` under `path`, or -1.
int firstRequest(const MemoryApi& api, Verb method, const std::string& path) {
  const auto rs = api.requests();
  for (size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].method == method && MemoryApi::under(rs[i].path, path)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

template <typename T>
asio::awaitable<void> deliver(asio::awaitable<T> work, std::optional<T>* out) {
  T value = co_await std::move(work);
  out->emplace(std::move(value));
}

CciOptions defaultOptions() {
  CciOptions o;
  o.clusterID = kClusterId;
  o.backendNamespace = kNs;
  o.nodeName = kNode;
  o.nodeIP = "10.1.2.3";
  o.sweepInterval = std::chrono::seconds(30);
  return o;
}

// A provider on an in-memory backend. Tests run it (start) and call its methods (call) on the
// test thread, which drives the io_context.
struct Harness {
  MemoryApi api;      // the backend
  MemoryApi cluster;  // the cluster API, where mirrored events land
  FakeClock clock;
  FakeClusterObjects objects;
  std::unique_ptr<kube::RestClient> backend;
  std::unique_ptr<kube::RestClient> clusterClient;
  std::unique_ptr<kube::EventRecorder> events;
  std::unique_ptr<CciProvider> provider;
  // A second virtual node on the same backend namespace (another burstlet process with the same
  // cluster id), driven by the same io_context; see addNode.
  std::unique_ptr<CciProvider> other;
  std::vector<PodRef> notified;
  bool runDone = false;
  bool otherDone = false;
  bool eventsDone = false;
  bool started = false;
  std::optional<Status> runStatus;
  // Last: destroyed first, so no coroutine frame outlives what it points to.
  asio::io_context io;

  explicit Harness(const CciOptions& options = defaultOptions(),
                   std::chrono::milliseconds retryDelay = std::chrono::milliseconds(1)) {
    kube::RestOptions ro;
    ro.retry.baseDelay = retryDelay;
    ro.retry.maxDelay = std::max(retryDelay, std::chrono::milliseconds(5));
    backend = std::make_unique<kube::RestClient>(io.get_executor(), api.transport(),
                                                 kube::ClientConfig{}, ro);
    clusterClient = std::make_unique<kube::RestClient>(io.get_executor(), cluster.transport(),
                                                       kube::ClientConfig{}, ro);
    cluster.put(kNamespaces, json::value{{"metadata", {{"name", "app"}}}});
    events =
        std::make_unique<kube::EventRecorder>(*clusterClient, clock, kube::EventRecorderOptions{});
    provider = std::make_unique<CciProvider>(io.get_executor(), *backend, objects, *events, options,
                                             clock);
    provider->onPodStatusChange([this](const PodRef& ref) { notified.push_back(ref); });
  }

  ~Harness() {
    if (started) {
      provider->stop();
      if (other) {
        other->stop();
      }
      events->stop();
      EXPECT_TRUE(runUntil([this] { return runDone && eventsDone && (!other || otherDone); },
                           std::chrono::seconds(10)));
    }
    // Detached work (copy refreshes) finishes without waiting on anything.
    io.restart();
    io.poll();
  }

  int nodes() const { return other ? 2 : 1; }
  // Sweeps so far (of every node): each pass ends by listing the backend's volumes.
  int sweeps() const {
    return api.count(Verb::get, resources::kPersistentVolumes.path("")) / nodes();
  }
  // Lets a sweep interval pass and waits for pass number `n` (of every node).
  bool sweepPass(int n) {
    clock.advance(std::chrono::seconds(31));
    return runUntil([this, n] {
      return api.count(Verb::get, resources::kPersistentVolumes.path("")) == n * nodes();
    });
  }

  bool runUntil(const std::function<bool()>& pred,
                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    return burstlet::testing::runUntil(io, pred, limit);
  }
  // Runs the io_context for `d` (to show that something does not happen).
  void runFor(std::chrono::milliseconds d) {
    runUntil([] { return false; }, d);
  }

  void start() {
    started = true;
    asio::co_spawn(io, provider->run(), [this](const std::exception_ptr&, Status s) {
      runStatus = std::move(s);
      runDone = true;
    });
    asio::co_spawn(io, events->run(), [this](const std::exception_ptr&) { eventsDone = true; });
  }
  // Started, listed, and every informer caught up with the backend.
  ::testing::AssertionResult startAndSettle() {
    start();
    if (!runUntil([this] { return provider->ready() || runDone; }) || !provider->ready()) {
      return ::testing::AssertionFailure() << "provider not ready";
    }
    return settle();
  }
  // Starts virtual node `node` as `other`, on the same backend namespace, once this one runs.
  ::testing::AssertionResult addNode(const std::string& node) {
    CciOptions o = defaultOptions();
    o.nodeName = node;
    other = std::make_unique<CciProvider>(io.get_executor(), *backend, objects, *events, o, clock);
    asio::co_spawn(io, other->run(),
                   [this](const std::exception_ptr&, const Status&) { otherDone = true; });
    if (!runUntil([this] { return other->ready() || otherDone; }) || !other->ready()) {
      return ::testing::AssertionFailure() << "second node not ready";
    }
    return settle();
  }
  // Every informer (pods, 3 kinds of copies, events; of every node) watches and has seen all
  // changes.
  ::testing::AssertionResult settle() {
    if (!runUntil([this] { return api.openWatches() == 5 * nodes() && api.watchesIdle(); })) {
      return ::testing::AssertionFailure()
             << "informers did not catch up: " << api.openWatches() << " watches";
    }
    return ::testing::AssertionSuccess();
  }

  template <typename T>
  T call(asio::awaitable<T> work) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(io, deliver(std::move(work), &out), [&](const std::exception_ptr& e) {
      error = e;
      done = true;
    });
    EXPECT_TRUE(runUntil([&] { return done; }));
    if (error) {
      std::rethrow_exception(error);
    }
    return std::move(*out);
  }
  Status createPod(const json::value& pod) { return call(provider->createPod(pod)); }
  Status deletePod(const PodRef& ref, int64_t grace) {
    return call(provider->deletePod(ref, grace));
  }
  Result<json::value> getPod(const PodRef& ref) { return call(provider->getPod(ref)); }

  std::optional<json::value> backendPod(const std::string& ns, const std::string& name) const {
    return api.get(kPods, backendName(ns, name));
  }
  std::optional<json::value> copy(const std::string& name) const {
    return api.get(kConfigMaps, copyName(kNode, "app", name));
  }
};

std::string errorText(const Status& s) { return s.ok() ? "ok" : s.error().toString(); }

// --- run(): the backend namespace ----------------------------------------------------------

// A copy of ConfigMap `name` that no pod uses any more: its pod was created and deleted.
bool leaveUnreferencedCopy(Harness& h, const std::string& name) {
  h.objects.configMaps["app/" + name] = configMap(name, "1");
  auto pod = clusterPod("p-" + name, "u-" + name);
  addConfigMapVolume(pod, name);
  return h.createPod(pod).ok() && h.settle() &&
         h.deletePod(PodRef{"app", "p-" + name, "u-" + name}, 0).ok() && h.settle();
}

TEST(CciProviderTest, RunCreatesOwnedNamespace) {
  CciOptions o = defaultOptions();
  o.cci = true;
  o.flavor = "general-computing";
  Harness h(o);
  ASSERT_TRUE(h.startAndSettle());
  auto ns = h.api.get(kNamespaces, kNs);
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(stringAt(*ns, {"metadata", "labels", kManagedByLabel}), kManagedByValue);
  EXPECT_EQ(stringAt(*ns, {"metadata", "labels", kClusterIdLabel}), kClusterId);
  EXPECT_EQ(stringAt(*ns, {"metadata", "annotations", kCciFlavorAnnotation}), "general-computing");
  EXPECT_EQ(h.api.count(Verb::post, kNamespaces), 1);
  EXPECT_FALSE(h.runDone);
}

TEST(CciProviderTest, RunWithoutCciModeWritesNoFlavor) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto ns = h.api.get(kNamespaces, kNs);
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(stringAt(*ns, {"metadata", "annotations", kCciFlavorAnnotation}), "");
  EXPECT_EQ(stringAt(*ns, {"metadata", "labels", kClusterIdLabel}), kClusterId);
}

TEST(CciProviderTest, RunRefusesNamespaceItDoesNotOwn) {
  for (const auto& labels : {json::object{}, json::object{{kManagedByLabel, kManagedByValue},
                                                          {kClusterIdLabel, "another-cluster"}}}) {
    Harness h;
    h.api.put(kNamespaces, json::value{{"metadata", {{"name", kNs}, {"labels", labels}}}});
    h.start();
    ASSERT_TRUE(h.runUntil([&] { return h.runDone; }));
    ASSERT_TRUE(h.runStatus.has_value());
    ASSERT_FALSE(h.runStatus->ok());
    EXPECT_EQ(h.runStatus->error().code, ErrorCode::kForbidden);
    EXPECT_EQ(h.runStatus->error().reason, "NamespaceNotOwned");
    EXPECT_EQ(h.api.writes(), 0);
    EXPECT_FALSE(h.provider->ready());
    // The namespace is left as it was.
    EXPECT_EQ(stringAt(*h.api.get(kNamespaces, kNs), {"metadata", "labels"}),
              json::serialize(labels));
  }
}

TEST(CciProviderTest, RunKeepsTryingWhileBackendUnavailable) {
  Harness h;
  // More failures than the client retries: run() itself must try again.
  h.api.failNext(Verb::get, kNamespaces, 6, 503);
  ASSERT_TRUE(h.startAndSettle());
  EXPECT_GE(h.api.count(Verb::get, resources::kNamespaces.path("", kNs)), 7);
  EXPECT_TRUE(h.api.get(kNamespaces, kNs).has_value());
}

// --- createPod -----------------------------------------------------------------------------

TEST(CciProviderTest, CreateCopiesConfigMapThenCreatesPod) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/cfg"] = configMap("cfg", "v1");
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  // The informers see nothing for now: getPod must answer from what create returned.
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(pod).ok());

  const int copyPost = firstRequest(h.api, Verb::post, kConfigMaps);
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

TEST(CciProviderTest, CreateIsIdempotentByUid) {
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

TEST(CciProviderTest, CreateWaitsForTheEarlierPodOfItsName) {
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

TEST(CciProviderTest, CreateWithLostAnswerSucceedsOnRetry) {
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

TEST(CciProviderTest, CreateConflictWithAnotherUidBeforeInformerSawIt) {
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

TEST(CciProviderTest, CreateRejectsPodsTheBackendCannotRun) {
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
  EXPECT_TRUE(h.api.names(kConfigMaps).empty());
}

TEST(CciProviderTest, MissingConfigMapWaitsAndWakesThePod) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "x");
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "CreateContainerConfigError");
  EXPECT_EQ(s.error().message, "configmap \"x\" not found");
  EXPECT_TRUE(s.error().code == ErrorCode::kNotFound || isRetryable(s.error().code));
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
  EXPECT_EQ(h.api.count(Verb::post, kConfigMaps), 0);

  // Another object changing wakes nobody.
  h.provider->clusterObjectChanged(
      "ConfigMap", json::value{{"metadata", {{"namespace", "app"}, {"name", "y"}}}});
  h.provider->clusterObjectChanged(
      "Secret", json::value{{"metadata", {{"namespace", "app"}, {"name", "x"}}}});
  EXPECT_TRUE(h.notified.empty());

  h.objects.configMaps["app/x"] = configMap("x", "v1");
  h.provider->clusterObjectChanged(
      "ConfigMap", json::value{{"metadata", {{"namespace", "app"}, {"name", "x"}}}});
  ASSERT_EQ(h.notified.size(), 1u);
  EXPECT_EQ(h.notified[0].ns, "app");
  EXPECT_EQ(h.notified[0].name, "web");
  // Woken once: the pod is not waiting any more until it fails again.
  h.provider->clusterObjectChanged(
      "ConfigMap", json::value{{"metadata", {{"namespace", "app"}, {"name", "x"}}}});
  EXPECT_EQ(h.notified.size(), 1u);

  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_TRUE(h.copy("x").has_value());
  EXPECT_TRUE(h.backendPod("app", "web").has_value());
}

TEST(CciProviderTest, MissingSecretVolumeIsReportedAsSecret) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  pod.as_object()["spec"].as_object()["volumes"] =
      json::array{json::object{{"name", "s"}, {"secret", {{"secretName", "token"}}}}};
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "CreateContainerConfigError");
  EXPECT_EQ(s.error().message, "secret \"token\" not found");
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
}

TEST(CciProviderTest, MissingOptionalConfigMapDoesNotBlockCreate) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "maybe", true);
  auto s = h.createPod(pod);
  ASSERT_TRUE(s.ok()) << errorText(s);
  EXPECT_TRUE(h.backendPod("app", "web").has_value());
  EXPECT_EQ(h.api.count(Verb::post, kConfigMaps), 0);
}

TEST(CciProviderTest, UnavailableBackendFailsRetryably) {
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

TEST(CciProviderTest, FailedCopyStopsTheCreate) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/cfg"] = configMap("cfg", "v1");
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  h.api.failNext(Verb::post, kConfigMaps, 1, 500);
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_TRUE(h.copy("cfg").has_value());
}

// --- updatePod -----------------------------------------------------------------------------

TEST(CciProviderTest, UpdatePatchesLabelsAndImages) {
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
TEST(CciProviderTest, KeysTheBackendAddsAreNeitherShownNorRemoved) {
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
TEST(CciProviderTest, UpdateAddsEphemeralContainers) {
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
TEST(CciProviderTest, EphemeralContainersNotSupportedByTheBackend) {
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

// --- deletePod -----------------------------------------------------------------------------

TEST(CciProviderTest, DeleteOnlyTheSamePodWithPreconditionAndGrace) {
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

TEST(CciProviderTest, DeleteFindsPodTheInformerHasNotShown) {
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

// A pod created while the pod watch was down and deleted behind our back is never shown by the
// informer: what create returned is forgotten after a while instead of being answered forever.
TEST(CciProviderTest, CreatedPodTheInformerNeverShowsIsForgotten) {
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

// The cluster's ServiceAccount token volume does not go to the backend, nor the
// kube-root-ca.crt it projects.
TEST(CciProviderTest, CreateIgnoresTheServiceAccountTokenVolume) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  pod.as_object()["spec"].as_object()["volumes"] = json::array{json::object{
      {"name", "kube-api-access-x"},
      {"projected",
       {{"sources", json::array{json::object{{"serviceAccountToken", {{"path", "token"}}}},
                                json::object{{"configMap", {{"name", "kube-root-ca.crt"}}}}}}}}}};
  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_EQ(h.api.count(Verb::post, kConfigMaps), 0);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 1);
}

// Pods sharing a ConfigMap start together: a copy another create made a moment ago (not yet
// in the informer) is read, not written again.
TEST(CciProviderTest, CopyMadeByAnotherCreateIsReadNotRewritten) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/shared"] = configMap("shared", "1");
  h.api.holdWatches(true);
  auto copy =
      toBackendConfigMap(h.objects.configMaps["app/shared"], TranslateOptions{kNs, kNode, ""});
  ASSERT_TRUE(copy.ok());
  h.api.put(kConfigMaps, *copy);
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "shared");
  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_EQ(h.api.count(Verb::post, kConfigMaps), 1);  // answered 409 AlreadyExists
  EXPECT_EQ(h.api.count(Verb::put, kConfigMaps), 0);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 1);
  h.api.holdWatches(false);
}

// A pod already terminating on the backend is not deleted again, unless the new delete is
// shorter.
TEST(CciProviderTest, DeleteOfTerminatingPodWritesOnlyToShortenGrace) {
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

// The sweep deletes a copy; before its informer shows the delete, a new pod needs that copy:
// it is made again, not trusted from the stale cache.
TEST(CciProviderTest, CopyDeletedBySweepIsMadeAgainForANewPod) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(leaveUnreferencedCopy(h, "a"));
  ASSERT_TRUE(h.sweepPass(1));
  h.api.holdWatches(true);  // the informer lags behind the sweep's delete
  ASSERT_TRUE(h.sweepPass(2));
  ASSERT_FALSE(h.copy("a").has_value());
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "a");
  ASSERT_TRUE(h.createPod(podB).ok());
  EXPECT_TRUE(h.copy("a").has_value());
  h.api.holdWatches(false);
  ASSERT_TRUE(h.settle());
  EXPECT_TRUE(h.backendPod("app", "pb").has_value());
  EXPECT_TRUE(h.copy("a").has_value());
}

// A claim whose storage class cannot be read yet is retried, never refused for good.
TEST(CciProviderTest, UnknownStorageClassIsRetriedNotRefused) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.claims["app/data"] =
      json::value{{"metadata", {{"namespace", "app"}, {"name", "data"}, {"uid", "pvc-1"}}},
                  {"spec", {{"storageClassName", "csi-nas"}}}};
  auto pod = clusterPod("web", "u1");
  pod.as_object()["spec"].as_object()["volumes"] = json::array{
      json::object{{"name", "d"}, {"persistentVolumeClaim", json::object{{"claimName", "data"}}}}};
  const auto writesBefore = h.api.writes();
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().toString();
  EXPECT_EQ(s.error().reason, "StorageClassNotFound");
  EXPECT_EQ(h.api.writes(), writesBefore);
}

// An immutable copy made a moment ago (not in the informer yet) whose source was re-created:
// the copy is replaced, and the pod is not refused.
TEST(CciProviderTest, ImmutableCopyNotYetListedIsReplaced) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto cm = configMap("cfg", "v1");
  cm.as_object()["immutable"] = true;
  h.objects.configMaps["app/cfg"] = cm;
  auto podA = clusterPod("pa", "ua");
  addConfigMapVolume(podA, "cfg");
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(podA).ok());
  auto again = configMap("cfg", "v2");
  again.as_object()["immutable"] = true;
  again.as_object()["metadata"].as_object()["uid"] = "cm-uid-cfg-2";
  h.objects.configMaps["app/cfg"] = again;
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "cfg");
  auto s = h.createPod(podB);
  h.api.holdWatches(false);
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"data", "key"}), "v2");
}

// The backend volume of a claim made a moment ago survives a sweep that runs before the claim
// shows in the informer.
TEST(CciProviderTest, SweepKeepsTheVolumeOfAFreshClaim) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.claims["app/data"] =
      json::value{{"metadata", {{"namespace", "app"}, {"name", "data"}, {"uid", "pvc-1"}}},
                  {"spec",
                   {{"storageClassName", "csi-nas"},
                    {"volumeName", "pv1"},
                    {"accessModes", json::array{"ReadWriteMany"}},
                    {"resources", {{"requests", {{"storage", "10Gi"}}}}}}}};
  h.objects.volumes["pv1"] =
      json::value{{"metadata", {{"name", "pv1"}, {"uid", "pv-uid-1"}}},
                  {"spec",
                   {{"storageClassName", "csi-nas"},
                    {"capacity", {{"storage", "10Gi"}}},
                    {"accessModes", json::array{"ReadWriteMany"}},
                    {"csi", {{"driver", "nas.csi.everest.io"}, {"volumeHandle", "h1"}}}}}};
  auto pod = clusterPod("web", "u1");
  pod.as_object()["spec"].as_object()["volumes"] = json::array{
      json::object{{"name", "d"}, {"persistentVolumeClaim", json::object{{"claimName", "data"}}}}};
  const std::string pvs = resources::kPersistentVolumes.path("");
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_EQ(h.api.names(pvs).size(), 1u);
  for (int pass = 1; pass <= 2; ++pass) {
    ASSERT_TRUE(h.sweepPass(pass));
  }
  h.api.holdWatches(false);
  ASSERT_TRUE(h.settle());
  EXPECT_EQ(h.api.names(pvs).size(), 1u) << "volume deleted while its claim and pod exist";
  EXPECT_EQ(h.api.names(resources::kPersistentVolumeClaims.path(kNs)).size(), 1u);
}

// An SFS claim "data" in namespace app, bound to cluster volume "pv1".
void addSfsClaim(FakeClusterObjects& objects) {
  objects.claims["app/data"] =
      json::value{{"metadata", {{"namespace", "app"}, {"name", "data"}, {"uid", "pvc-1"}}},
                  {"spec",
                   {{"storageClassName", "csi-nas"},
                    {"volumeName", "pv1"},
                    {"accessModes", json::array{"ReadWriteMany"}},
                    {"resources", {{"requests", {{"storage", "10Gi"}}}}}}}};
  objects.volumes["pv1"] =
      json::value{{"metadata", {{"name", "pv1"}, {"uid", "pv-uid-1"}}},
                  {"spec",
                   {{"storageClassName", "csi-nas"},
                    {"capacity", {{"storage", "10Gi"}}},
                    {"accessModes", json::array{"ReadWriteMany"}},
                    {"csi", {{"driver", "nas.csi.everest.io"}, {"volumeHandle", "h1"}}}}}};
}

json::value claimPod(const std::string& name, const std::string& uid) {
  auto pod = clusterPod(name, uid);
  pod.as_object()["spec"].as_object()["volumes"] = json::array{
      json::object{{"name", "d"}, {"persistentVolumeClaim", json::object{{"claimName", "data"}}}}};
  return pod;
}

// Functions, not constants: the resource constants of the kube library may not be initialized
// yet when this file's constants are.
std::string volumes() { return resources::kPersistentVolumes.path(""); }
std::string claims() { return resources::kPersistentVolumeClaims.path(kNs); }

// The backend volume node kNode makes for claim app/data.
std::string backendVolumeName(FakeClusterObjects& objects) {
  auto pv = toBackendPersistentVolume(objects.claims["app/data"], objects.volumes["pv1"],
                                      TranslateOptions{kNs, kNode, ""});
  return pv.ok() ? stringAt(*pv, {"metadata", "name"}) : "";
}

// What the PV controller does to a Retain volume whose claim is deleted: Released, and claimRef
// keeps the old claim's uid.
void releaseVolume(Harness& h, const std::string& pvName, const std::string& claimUid) {
  auto pv = *h.api.get(volumes(), pvName);
  pv.as_object()["spec"].as_object()["claimRef"].as_object()["uid"] = claimUid;
  pv.as_object()["spec"].as_object()["claimRef"].as_object()["resourceVersion"] = "12345";
  pv.as_object()["status"] = json::object{{"phase", "Released"}};
  h.api.put(volumes(), pv);
}

// A claim copy deleted (by the sweep) while its Retain volume stays Released: a new pod for the
// same claim makes the claim copy again and hands it the volume (the old binding cleared), so
// the PV controller binds them instead of leaving the new claim Pending for ever.
TEST(CciProviderTest, ReleasedVolumeIsHandedToTheNewClaimCopy) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  ASSERT_TRUE(h.createPod(claimPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  const std::string pvName = backendVolumeName(h.objects);
  ASSERT_TRUE(h.api.get(volumes(), pvName).has_value()) << pvName;
  ASSERT_EQ(h.api.names(claims()).size(), 1u);
  const std::string claimCopy = h.api.names(claims())[0];
  const std::string oldClaimUid = stringAt(*h.api.get(claims(), claimCopy), {"metadata", "uid"});

  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 0).ok());
  ASSERT_TRUE(h.api.remove(claims(), claimCopy));
  releaseVolume(h, pvName, oldClaimUid);
  ASSERT_TRUE(h.settle());

  const auto s = h.createPod(claimPod("web2", "u2"));
  ASSERT_TRUE(s.ok()) << errorText(s);
  const auto pv = *h.api.get(volumes(), pvName);
  EXPECT_EQ(stringAt(pv, {"spec", "claimRef", "uid"}), "") << json::serialize(pv);
  EXPECT_EQ(stringAt(pv, {"spec", "claimRef", "resourceVersion"}), "");
  EXPECT_EQ(stringAt(pv, {"spec", "claimRef", "name"}), claimCopy);
  EXPECT_EQ(stringAt(pv, {"spec", "claimRef", "namespace"}), kNs);
  EXPECT_EQ(stringAt(pv, {"spec", "csi", "volumeHandle"}), "h1");
  ASSERT_TRUE(h.api.get(claims(), claimCopy).has_value());
  EXPECT_NE(stringAt(*h.api.get(claims(), claimCopy), {"metadata", "uid"}), oldClaimUid);
  EXPECT_TRUE(h.backendPod("app", "web2").has_value());
}

// A volume bound to the claim copy that exists now (made by another create a moment ago, not yet
// in the informer) is not touched.
TEST(CciProviderTest, VolumeBoundToTheLiveClaimCopyIsLeftAlone) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(claimPod("web", "u1")).ok());
  const std::string pvName = backendVolumeName(h.objects);
  const std::string claimCopy = h.api.names(claims())[0];
  releaseVolume(h, pvName, stringAt(*h.api.get(claims(), claimCopy), {"metadata", "uid"}));
  const int patches = h.api.count(Verb::patch, volumes());
  ASSERT_TRUE(h.createPod(claimPod("web2", "u2")).ok());
  EXPECT_EQ(h.api.count(Verb::patch, volumes()), patches);
  h.api.holdWatches(false);
}

// A volume of that name that this node did not make is never taken over.
TEST(CciProviderTest, VolumeOfThatNameNotOursIsRefused) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  const std::string pvName = backendVolumeName(h.objects);
  h.api.put(volumes(), json::value{{"metadata", {{"name", pvName}}},
                                   {"spec", {{"claimRef", {{"name", "someone"}, {"uid", "x"}}}}}});
  const auto before = *h.api.get(volumes(), pvName);
  const auto s = h.createPod(claimPod("web", "u1"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "VolumeNotOwned") << errorText(s);
  EXPECT_NE(s.error().code, ErrorCode::kInvalid);  // the operator may remove it: retried
  EXPECT_NE(s.error().message.find(pvName), std::string::npos) << s.error().message;
  EXPECT_EQ(*h.api.get(volumes(), pvName), before);
  EXPECT_TRUE(h.api.names(claims()).empty());
  EXPECT_FALSE(h.backendPod("app", "web").has_value());
}

// The sweep decided to delete an unused volume and is on its way (its delete is retried); a
// create that needs the volume meanwhile waits for that delete and makes the volume again,
// instead of binding a claim copy to a volume about to vanish.
TEST(CciProviderTest, SweepNeverDeletesAVolumeACreateHolds) {
  Harness h(defaultOptions(), std::chrono::milliseconds(200));
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  ASSERT_TRUE(h.createPod(claimPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  const std::string pvName = backendVolumeName(h.objects);
  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 0).ok());
  ASSERT_TRUE(h.api.remove(claims(), h.api.names(claims())[0]));
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.sweepPass(1));  // marks the volume
  // The second pass deletes it; its first DELETE answers 503, so it waits before trying again.
  h.api.failNext(Verb::delete_, resources::kPersistentVolumes.path("", pvName), 1, 503);
  ASSERT_TRUE(h.sweepPass(2));
  ASSERT_TRUE(h.api.get(volumes(), pvName).has_value());
  const auto s = h.createPod(claimPod("web2", "u2"));
  ASSERT_TRUE(s.ok()) << errorText(s);
  h.runFor(std::chrono::milliseconds(800));  // the sweep's retry, if it is still to come
  EXPECT_TRUE(h.api.get(volumes(), pvName).has_value()) << "the claim copy's volume was deleted";
  EXPECT_EQ(h.api.names(claims()).size(), 1u);
}

// --- copies: refresh and sweep -------------------------------------------------------------

TEST(CciProviderTest, ChangedConfigMapRefreshesItsCopy) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/cfg"] = configMap("cfg", "v1");
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_EQ(h.api.count(Verb::put), 0);

  h.objects.configMaps["app/cfg"] = configMap("cfg", "v2");
  h.provider->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/cfg"]);
  ASSERT_TRUE(h.runUntil([&] { return h.api.count(Verb::put, kConfigMaps) == 1; }));
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"data", "key"}), "v2");
  EXPECT_EQ(h.provider->stats().copyUpdates.load(), 1u);
  ASSERT_TRUE(h.settle());

  // Unchanged: read, compared, left alone.
  const int reads = h.objects.reads;
  h.provider->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/cfg"]);
  ASSERT_TRUE(h.runUntil([&] { return h.objects.reads > reads; }));
  h.runFor(std::chrono::milliseconds(100));
  EXPECT_EQ(h.api.count(Verb::put), 1);

  // A ConfigMap nobody copied is not even read.
  h.objects.configMaps["app/other"] = configMap("other", "v1");
  const int before = h.objects.reads;
  h.provider->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/other"]);
  h.runFor(std::chrono::milliseconds(100));
  EXPECT_EQ(h.objects.reads, before);
  EXPECT_EQ(h.api.count(Verb::put), 1);
}

// An immutable ConfigMap changes only by being deleted and created again; its copy, immutable
// too, must then be replaced, not updated (which the API refuses with 422).
TEST(CciProviderTest, RecreatedImmutableConfigMapReplacesCopyOnCreate) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto cm = configMap("cfg", "v1");
  cm.as_object()["immutable"] = true;
  h.objects.configMaps["app/cfg"] = cm;
  auto podA = clusterPod("pa", "ua");
  addConfigMapVolume(podA, "cfg");
  ASSERT_TRUE(h.createPod(podA).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_EQ(stringAt(*h.copy("cfg"), {"immutable"}), "true");

  auto again = configMap("cfg", "v2");
  again.as_object()["immutable"] = true;
  again.as_object()["metadata"].as_object()["uid"] = "cm-uid-cfg-2";
  h.objects.configMaps["app/cfg"] = again;
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "cfg");
  auto s = h.createPod(podB);
  ASSERT_TRUE(s.ok()) << errorText(s);
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"data", "key"}), "v2");
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"metadata", "annotations", kSourceUidAnnotation}),
            "cm-uid-cfg-2");
  EXPECT_TRUE(h.backendPod("app", "pb").has_value());
}

TEST(CciProviderTest, RecreatedImmutableConfigMapReplacesCopyOnChange) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto cm = configMap("cfg", "v1");
  cm.as_object()["immutable"] = true;
  h.objects.configMaps["app/cfg"] = cm;
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_TRUE(h.settle());

  auto again = configMap("cfg", "v2");
  again.as_object()["immutable"] = true;
  again.as_object()["metadata"].as_object()["uid"] = "cm-uid-cfg-2";
  h.objects.configMaps["app/cfg"] = again;
  h.provider->clusterObjectChanged("ConfigMap", again);
  ASSERT_TRUE(h.runUntil([&] {
    auto copy = h.copy("cfg");
    return copy && stringAt(*copy, {"data", "key"}) == "v2";
  }));
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"immutable"}), "true");
}

TEST(CciProviderTest, SweepDeletesUnreferencedCopiesOnSecondPass) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/a"] = configMap("a", "1");
  h.objects.configMaps["app/b"] = configMap("b", "2");
  auto podA = clusterPod("pa", "ua");
  addConfigMapVolume(podA, "a");
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "b");
  ASSERT_TRUE(h.createPod(podA).ok());
  ASSERT_TRUE(h.createPod(podB).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.deletePod(PodRef{"app", "pa", "ua"}, 0).ok());
  ASSERT_TRUE(h.settle());

  ASSERT_EQ(h.sweeps(), 0);
  ASSERT_TRUE(h.sweepPass(1));
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 0);  // first pass only marks
  EXPECT_TRUE(h.copy("a").has_value());

  ASSERT_TRUE(h.sweepPass(2));
  EXPECT_FALSE(h.copy("a").has_value());
  EXPECT_TRUE(h.copy("b").has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 1);
  EXPECT_EQ(h.provider->stats().copyDeletes.load(), 1u);
  ASSERT_TRUE(h.settle());

  ASSERT_TRUE(h.sweepPass(3));
  EXPECT_TRUE(h.copy("b").has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 1);
}

TEST(CciProviderTest, SweepForgetsMarkWhenCopyIsUsedAgain) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(leaveUnreferencedCopy(h, "a"));

  ASSERT_TRUE(h.sweepPass(1));  // marked

  // A new pod uses the copy between the passes.
  auto podC = clusterPod("pc", "uc");
  addConfigMapVolume(podC, "a");
  ASSERT_TRUE(h.createPod(podC).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.sweepPass(2));
  EXPECT_TRUE(h.copy("a").has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 0);
}

// Two virtual nodes (two burstlet processes with the same cluster id, so one backend namespace)
// whose pods mount the same ConfigMap: each node has a copy of its own, so one node's sweep never
// deletes what the other's pods mount, and an edit reaches the other node's copy too.
TEST(CciProviderTest, NodesSharingANamespaceKeepAndRefreshTheirOwnCopies) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.addNode("other-node"));
  h.objects.configMaps["app/shared"] = configMap("shared", "v1");
  auto podA = clusterPod("pa", "ua");
  addConfigMapVolume(podA, "shared");
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "shared");
  ASSERT_TRUE(h.createPod(podA).ok());
  const auto createdB = h.call(h.other->createPod(podB));
  ASSERT_TRUE(createdB.ok()) << errorText(createdB);
  ASSERT_TRUE(h.settle());
  auto backendB = h.backendPod("app", "pb");
  ASSERT_TRUE(backendB.has_value());
  // The copy node B's pod mounts.
  const std::string copyB =
      stringAt(backendB->at("spec").at("volumes").at(0), {"configMap", "name"});
  ASSERT_TRUE(h.api.get(kConfigMaps, copyB).has_value()) << copyB;

  // Node A's pod goes: A's sweeps find its own copy unused, never B's.
  ASSERT_TRUE(h.deletePod(PodRef{"app", "pa", "ua"}, 0).ok());
  ASSERT_TRUE(h.settle());
  for (int pass = 1; pass <= 3; ++pass) {
    ASSERT_TRUE(h.sweepPass(pass));
    ASSERT_TRUE(h.settle());
  }
  EXPECT_TRUE(h.api.get(kConfigMaps, copyB).has_value()) << "a sweep deleted node B's copy";
  EXPECT_FALSE(h.copy("shared").has_value()) << "node A's unused copy stayed";

  h.objects.configMaps["app/shared"] = configMap("shared", "v2");
  h.provider->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/shared"]);
  h.other->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/shared"]);
  EXPECT_TRUE(h.runUntil([&] {
    auto copy = h.api.get(kConfigMaps, copyB);
    return copy && stringAt(*copy, {"data", "key"}) == "v2";
  })) << "node B's copy was not refreshed";
}

// --- events and status notifications -------------------------------------------------------

TEST(CciProviderTest, MirrorsBackendPodEventsOntoTheClusterPod) {
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
TEST(CciProviderTest, BackendSchedulingStaysOnTheBackend) {
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

TEST(CciProviderTest, NotifiesStatusChangesOfBackendPods) {
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
