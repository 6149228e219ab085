// The test harness of the cci provider's parts: a CciProvider on an in-memory backend
// (MemoryApi), with the cluster's objects in a table (FakeClusterObjects) and mirrored events
// landing in a second MemoryApi; and the objects tests make. Shared by the test files of
// test/provider/cci that drive the parts through the provider.
#pragma once

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
#include "provider/cci/cci_errors.h"
#include "provider/cci/cci_provider.h"
#include "provider/cci/events.h"
#include "provider/cci/storage_import.h"

namespace burstlet::provider::cci::test {

namespace json = boost::json;
namespace resources = kube::resources;
using burstlet::testing::FakeClock;
using burstlet::testing::FakeClusterObjects;
using burstlet::testing::MemoryApi;
using kube::Verb;

constexpr const char* kClusterId = "c1";
constexpr const char* kNs = "cce-burst-c1";
constexpr const char* kNode = "burst-node";
inline const std::string kNamespaces = resources::kNamespaces.path("");
inline const std::string kPods = resources::kPods.path(kNs);
inline const std::string kConfigMaps = resources::kConfigMaps.path(kNs);
inline const std::string kEvents = resources::kEvents.path(kNs);

inline json::value clusterPod(const std::string& name, const std::string& uid,
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

inline void addConfigMapVolume(json::value& pod, const std::string& cm, bool optional = false) {
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

inline json::value configMap(const std::string& name, const std::string& value) {
  return json::value{
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata", {{"namespace", "app"}, {"name", name}, {"uid", "cm-uid-" + name}}},
      {"data", {{"key", value}}}};
}

inline std::string stringAt(const json::value& v, std::initializer_list<std::string_view> keys) {
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

// Requests with `method` on `path` itself (MemoryApi::count also counts the paths below it: a
// count on the namespaces would count the node marker's create in the backend namespace).
inline int countExactly(const MemoryApi& api, Verb method, const std::string& path) {
  int n = 0;
  for (const auto& r : api.requests()) {
    n += r.method == method && r.path == path ? 1 : 0;
  }
  return n;
}

// The provider's own ConfigMap that is no copy: the node's marker (translate.h nodeMarkerName).
inline bool isNodeMarker(const MemoryApi::Request& r) {
  return r.body.find(kNodeMarkerLabel) != std::string::npos;
}
// POSTs of ConfigMap copies (without the node marker's).
inline int copyPosts(const MemoryApi& api) {
  int n = 0;
  for (const auto& r : api.requests()) {
    n += r.method == Verb::post && r.path == kConfigMaps && !isNodeMarker(r) ? 1 : 0;
  }
  return n;
}
// Index of the first POST of a ConfigMap copy, or -1.
inline int firstCopyPost(const MemoryApi& api) {
  const auto rs = api.requests();
  for (size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].method == Verb::post && rs[i].path == kConfigMaps && !isNodeMarker(rs[i])) {
      return static_cast<int>(i);
    }
  }
  return -1;
}
// Names of the ConfigMap copies in the backend namespace (without the node markers).
inline std::vector<std::string> configMapCopies(const MemoryApi& api) {
  std::vector<std::string> out;
  for (const auto& name : api.names(kConfigMaps)) {
    if (name.rfind("burstlet-node-", 0) != 0) {
      out.push_back(name);
    }
  }
  return out;
}

// Index of the first request with `method` under `path`, or -1.
inline int firstRequest(const MemoryApi& api, Verb method, const std::string& path) {
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

inline CciOptions defaultOptions() {
  CciOptions o;
  o.clusterID = kClusterId;
  o.backendNamespace = kNs;
  o.nodeName = kNode;
  o.nodeIP = "10.1.2.3";
  o.sweepInterval = std::chrono::seconds(30);
  return o;
}

// Network settings that pass validation (IDs in CCI's forms, a subnet outside 10.247.0.0/16).
inline NetworkSettings exampleNetwork() {
  NetworkSettings n;
  n.vpcID = "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8";
  n.subnetID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
  n.networkID = "11111111-2222-4333-8444-555555555555";
  n.securityGroupID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
  n.availabilityZone = "cn-north-4a";
  n.cidr = "192.168.0.0/24";
  n.domainID = "44c0781c83484eb9a4a5d4d233522cea";
  n.projectID = "2e93d63d8d2249f5a4ac5e2c78586a6e";
  return n;
}

// The backend namespace as burstlet made it, there before the provider starts.
inline void putOwnedNamespace(MemoryApi& api) {
  api.put(kNamespaces,
          json::value{
              {"metadata",
               {{"name", kNs},
                {"labels", {{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, kClusterId}}}}}});
}

// CCI mode: a valid Network, the field check off (the in-memory backend has no /version).
inline CciOptions cciModeOptions() {
  CciOptions o = defaultOptions();
  o.cci = true;
  o.network = exampleNetwork();
  o.backendVersion = "off";
  return o;
}

// The backend as burstlet left it in CCI mode: its namespace and an Active Network of ours (the
// provider adopts it and is ready at once); imports (storage_import.h) land among the claims.
inline void putCciBackend(MemoryApi& api) {
  putOwnedNamespace(api);
  json::value n = networkObject(
      *cciModeOptions().network, kNs,
      json::object{{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, kClusterId}});
  n.as_object()["status"] = json::object{{"state", "Active"}};
  api.put(kNetworks.path(kNs), n);
  api.alias(kExtendedPersistentVolumeClaims.path(kNs),
            resources::kPersistentVolumeClaims.path(kNs));
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
    if (options.cci) {
      ro.dialect = cciError;  // as connectBackend does
    }
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
  // Started, listed, and every informer caught up with the backend. With `clockStep`, the clock
  // moves on by so much whenever the provider has been waiting for a while (backoff sleeps).
  ::testing::AssertionResult startAndSettle(std::chrono::nanoseconds clockStep = {}) {
    start();
    const auto ready = [this] { return provider->ready() || runDone; };
    if (clockStep.count() > 0) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!runUntil(ready, std::chrono::milliseconds(20)) &&
             std::chrono::steady_clock::now() < deadline) {
        clock.advance(clockStep);
      }
    }
    if (!runUntil(ready) || !provider->ready()) {
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
  // Every informer (pods, 3 kinds of copies, events, quotas; of every node) watches and has seen
  // all changes.
  ::testing::AssertionResult settle() {
    if (!runUntil([this] { return api.openWatches() == 6 * nodes() && api.watchesIdle(); })) {
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

inline std::string errorText(const Status& s) { return s.ok() ? "ok" : s.error().toString(); }

// DELETEs of claims that are not CCI's unbind (storage_import.h): each would delete a file system.
inline int plainClaimDeletes(const MemoryApi& api) {
  int n = 0;
  for (const auto& r : api.requests()) {
    if (r.method == Verb::delete_ && r.path.find("/persistentvolumeclaims") != std::string::npos &&
        r.query != "deleteVolume=false&storageType=nfs") {
      ++n;
    }
  }
  return n;
}

// A copy of ConfigMap `name` that no pod uses any more: its pod was created and deleted.
inline bool leaveUnreferencedCopy(Harness& h, const std::string& name) {
  h.objects.configMaps["app/" + name] = configMap(name, "1");
  auto pod = clusterPod("p-" + name, "u-" + name);
  addConfigMapVolume(pod, name);
  return h.createPod(pod).ok() && h.settle() &&
         h.deletePod(PodRef{"app", "p-" + name, "u-" + name}, 0).ok() && h.settle();
}

// An SFS claim "data" in namespace app, bound to cluster volume "pv1".
inline void addSfsClaim(FakeClusterObjects& objects) {
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

inline json::value claimPod(const std::string& name, const std::string& uid) {
  auto pod = clusterPod(name, uid);
  pod.as_object()["spec"].as_object()["volumes"] = json::array{
      json::object{{"name", "d"}, {"persistentVolumeClaim", json::object{{"claimName", "data"}}}}};
  return pod;
}

// Functions, not constants: the resource constants of the kube library may not be initialized
// yet when this file's constants are.
inline std::string volumes() { return resources::kPersistentVolumes.path(""); }
inline std::string claims() { return resources::kPersistentVolumeClaims.path(kNs); }

// The backend volume node kNode makes for claim app/data.
inline std::string backendVolumeName(FakeClusterObjects& objects) {
  auto pv = toBackendPersistentVolume(objects.claims["app/data"], objects.volumes["pv1"],
                                      TranslateOptions{kNs, kNode, ""});
  return pv.ok() ? stringAt(*pv, {"metadata", "name"}) : "";
}

// What the PV controller does to a Retain volume whose claim is deleted: Released, and claimRef
// keeps the old claim's uid.
inline void releaseVolume(Harness& h, const std::string& pvName, const std::string& claimUid) {
  auto pv = *h.api.get(volumes(), pvName);
  pv.as_object()["spec"].as_object()["claimRef"].as_object()["uid"] = claimUid;
  pv.as_object()["spec"].as_object()["claimRef"].as_object()["resourceVersion"] = "12345";
  pv.as_object()["status"] = json::object{{"phase", "Released"}};
  h.api.put(volumes(), pv);
}

}  // namespace burstlet::provider::cci::test
