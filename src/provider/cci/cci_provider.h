// CciProvider: runs the virtual node's pods in one namespace of a backend that speaks the
// Kubernetes pod API: Huawei Cloud CCI, or any Kubernetes API server.
//
// Per pod: validate (validate.h) and normalize (normalize.h) — a pod CCI cannot run is kInvalid
// and never reaches the backend; copy the ConfigMaps, Secrets and SFS claims it mounts into the
// backend namespace; create the translated pod (translate.h). Informers on the backend namespace
// (pods, copies) answer getPod/listPods from memory and notify status changes, so a pod costs
// one backend write to create and one to delete; copies are shared by the pods that use them.
//
// Copies follow their source: the daemon reports every change of a cluster ConfigMap or Secret
// (clusterObjectChanged) and a copy that differs is updated, as a kubelet refreshes mounted
// ConfigMaps. A periodic sweep deletes copies no backend pod references (after two sweeps in a
// row, so a pod being created is never robbed of its copy) and pods whose source uid the
// controller no longer knows are handled by the pod controller's reconcile.
//
// The namespace is created on start with ownership labels; an existing namespace without them
// is refused: burstlet never writes into a namespace it does not own.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/cluster_objects.h"
#include "provider/cci/translate.h"
#include "provider/cci/validate.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

// Ownership label of the backend namespace and of every object burstlet creates in it.
inline constexpr const char* kClusterIdLabel = "burstlet.io/cluster-id";
// The namespace annotation CCI reads to choose the flavor of its pods.
inline constexpr const char* kCciFlavorAnnotation = "namespace.kubernetes.io/flavor";

struct CciOptions {
  std::string clusterID;
  std::string backendNamespace;  // "cce-burst-<clusterID>" by default (see namespaceFor)
  std::string nodeName = "burstlet";
  std::string nodeIP;
  // CCI mode: the namespace carries the flavor annotation CCI requires.
  bool cci = false;
  std::string flavor = "general-computing";
  ValidateOptions validate;
  NodeCapacity capacity;
  // How often unreferenced copies are looked for.
  std::chrono::milliseconds sweepInterval{30'000};
};

// "<prefix><clusterID>", e.g. "cce-burst-3f2a".
std::string namespaceFor(std::string_view prefix, std::string_view clusterID);

struct CciStats {
  std::atomic<uint64_t> podCreates{0};
  std::atomic<uint64_t> podDeletes{0};
  std::atomic<uint64_t> copyCreates{0};
  std::atomic<uint64_t> copyUpdates{0};
  std::atomic<uint64_t> copyDeletes{0};
  std::atomic<uint64_t> eventsMirrored{0};
};

class CciProvider final : public Provider {
 public:
  // `backend` talks to the backend API; `cluster` reads the cluster's objects; `events` records
  // on cluster pods. All must outlive the provider.
  CciProvider(asio::any_io_executor executor, kube::RestClient& backend, ClusterObjects& cluster,
              kube::EventRecorder& events, CciOptions options, const Clock& clock);
  ~CciProvider() override;

  // Creates (or checks the ownership of) the backend namespace, then runs the informers, the
  // event mirror and the sweep until stop(). ready() once the informers listed.
  asio::awaitable<Status> run() override;
  void stop() override;
  const Signals& signals() const override { return signals_; }
  bool ready() const { return ready_.load(); }
  // ConfigMaps and Secrets: copies follow their sources.
  std::vector<std::string> followedKinds() const override { return {"ConfigMap", "Secret"}; }

  // A cluster ConfigMap or Secret ("ConfigMap"/"Secret") changed or appeared (only its
  // metadata is needed): wake pods waiting for it, and refresh its backend copy if there is one.
  // Thread-safe, never blocks.
  void clusterObjectChanged(std::string_view kind, const boost::json::value& object) override;

  std::string_view name() const override { return "cci"; }
  asio::awaitable<Status> createPod(Json pod) override;
  asio::awaitable<Status> updatePod(Json pod) override;
  asio::awaitable<Status> deletePod(PodRef pod, int64_t gracePeriodSeconds) override;
  asio::awaitable<Result<Json>> getPod(PodRef pod) override;
  asio::awaitable<Result<std::vector<Json>>> listPods() override;
  void onPodStatusChange(std::function<void(const PodRef&)> callback) override;
  NodeCapacity capacity() const override { return options_.capacity; }
  asio::awaitable<Status> ping() override;

  const CciStats& stats() const { return stats_; }
  const std::string& backendNamespace() const { return options_.backendNamespace; }

 private:
  asio::awaitable<Status> runUntilStopped();
  asio::awaitable<Status> ensureNamespace();
  // createPod met `existing`, the backend pod of an earlier pod of ref's name: deletes it with
  // its own grace period unless it is terminating, and answers kPredecessorTerminating.
  asio::awaitable<Status> awaitPredecessor(const PodRef& ref, const Json& existing);
  asio::awaitable<Status> ensureCopy(const std::string& kind, const std::string& ns,
                                     const std::string& name, bool optional,
                                     const std::string& podKey);
  // A pod's claim as read for validation: what validation needs, and the objects themselves
  // (the volume only when the claim is bound), reused to make the backend's pair.
  struct Claim {
    ClaimInfo info;
    Json pvc;
    std::optional<Json> pv;
  };
  asio::awaitable<Status> ensureClaim(const std::string& ns, const std::string& claim,
                                      const Claim& read);
  // The backend volume `wanted` names exists already: fine when it is ours and free for wanted's
  // claim, handed over when an earlier claim copy's binding holds it (claims.h), else an error.
  asio::awaitable<Status> reuseVolume(const Json& wanted);
  asio::awaitable<Result<Json>> readSource(const std::string& kind, const std::string& ns,
                                           const std::string& name);
  asio::awaitable<Status> writeCopy(const std::string& kind, const Json& copy, bool exists);
  asio::awaitable<Status> writeCopyOnce(const std::string& kind, const Json& copy, bool exists);
  void forgetWaiting(const std::string& source, const std::string& podKey);  // mu_ held
  asio::awaitable<Result<std::map<std::string, Claim>>> claimsOf(const Json& pod);
  asio::awaitable<void> refreshCopy(std::string kind, std::string ns, std::string name);
  asio::awaitable<void> refreshCopyOnce(const std::string& kind, const std::string& ns,
                                        const std::string& name);
  asio::awaitable<void> sweepLoop();
  asio::awaitable<Status> sweep();
  void mirrorEvent(const kube::ObjectPtr& old, const kube::ObjectPtr& current);
  void notify(const kube::ObjectPtr& backendPod);
  kube::Informer& copiesOf(const std::string& kind);
  kube::ObjectPtr backendPod(const std::string& name) const;
  // `pod`, the backend's answer to an update of pod `name`, replaces what recent_ holds for it
  // (the informer may not show the pod yet). Returns it.
  kube::ObjectPtr rememberUpdate(const std::string& name, Json pod);

  asio::any_io_executor executor_;
  kube::RestClient& backend_;
  ClusterObjects& cluster_;
  kube::EventRecorder& events_;
  CciOptions options_;
  TranslateOptions translate_;
  const Clock& clock_;
  std::unique_ptr<kube::Informer> pods_;
  std::unique_ptr<kube::Informer> configMaps_;
  std::unique_ptr<kube::Informer> secrets_;
  std::unique_ptr<kube::Informer> claims_;
  std::unique_ptr<kube::Informer> eventsInformer_;
  std::function<void(const PodRef&)> callback_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> ready_{false};
  Signals signals_;
  std::atomic<int> running_{0};
  mutable std::mutex mu_;  // guards recent_, waiting_, marked_, inUse_, deleting_, gone_,
                           // refreshing_, dirty_, eventCounts_
  // Pods created by this process that the pod informer has not shown yet: backend name -> pod
  // and when it was created. The sweep forgets entries older than kRecentTtl: a pod created and
  // deleted while the watch was down never shows up, and must not be answered forever.
  struct Recent {
    kube::ObjectPtr pod;
    Clock::SteadyTime at;
  };
  static constexpr std::chrono::minutes kRecentTtl{2};
  std::unordered_map<std::string, Recent> recent_;
  // Source objects ("ConfigMap/ns/name") a pod waits for -> pod keys.
  std::map<std::string, std::set<std::string>> waiting_;
  // Copies (kind/backend name) found unreferenced by the last sweep.
  std::set<std::string> marked_;
  // Copies an in-flight create depends on (kind/backend name -> count; "PersistentVolume/<name>"
  // for the volumes of its claims).
  std::map<std::string, int> inUse_;
  // Copies (kind/backend name, volumes too) the sweep is deleting now, and ones it deleted that
  // the informer still shows: creates wait for the first and treat the second as absent.
  std::set<std::string> deleting_;
  std::set<std::string> gone_;
  // Copies being refreshed, and those that changed again meanwhile.
  std::set<std::string> refreshing_;
  std::set<std::string> dirty_;
  // Backend events mirrored so far: event uid -> count.
  std::unordered_map<std::string, int64_t> eventCounts_;
  CciStats stats_;
};

}  // namespace burstlet::provider::cci
