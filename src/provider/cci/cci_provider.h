// CciProvider: runs the virtual node's pods in one namespace of a backend that speaks the
// Kubernetes pod API: Huawei Cloud CCI, or any Kubernetes API server.
//
// A thin composition of the parts that do the work, each with its own state and lock:
//   BackendNamespace — the namespace: created with ownership labels, or refused when not ours;
//   BackendNetwork   — in CCI mode, the namespace's Network: created or adopted, followed until
//                      Active (no pod goes to the backend before);
//   BackendPods      — the pods: create, update, delete, get/list, status changes back;
//   Copies           — the ConfigMaps, Secrets and SFS claims pods mount: ensure, refresh, sweep;
//   EventMirror      — the backend pods' events, on the cluster pods;
//   BackendStreams   — the kubelet API's logs, exec, attach and port-forward, from the backend;
//   BackendQuota     — the node's capacity and allocatable under the namespace's ResourceQuotas.
// Pods reach copies only through PodCopies (ensure before create, forget on delete); copies
// reach pods through two callbacks (the sweep's list of backend pods, waking a pod whose
// source appeared); the event mirror finds backend pods through one. Informers on the backend
// namespace (pods, copies, events) answer reads from memory, so a pod costs one backend write to
// create and one to delete.
//
// This class runs the informers, the Network and the sweep (run() until stop()), says where it
// is (signals(): ready once the namespace exists, its Network is Active and every informer
// listed) and routes status changes to the pod controller's callback (callbackMu_ guards
// callback_ and fatal_).
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/wait.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/backend_namespace.h"
#include "provider/cci/backend_network.h"
#include "provider/cci/backend_pods.h"
#include "provider/cci/backend_quota.h"
#include "provider/cci/backend_stats.h"
#include "provider/cci/backend_streams.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/cluster_objects.h"
#include "provider/cci/copies.h"
#include "provider/cci/event_mirror.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

class CciProvider final : public Provider {
 public:
  // `backend` talks to the backend API; `cluster` reads the cluster's objects; `events` records
  // on cluster pods. All must outlive the provider. Its coroutines run on `executor` (a strand).
  CciProvider(asio::any_io_executor executor, kube::RestClient& backend, ClusterObjects& cluster,
              kube::EventRecorder& events, CciOptions options, const Clock& clock);
  ~CciProvider() override;

  // Creates (or checks the ownership of) the backend namespace and, in CCI mode, its Network,
  // then runs the informers, the event mirror and the sweep until stop(). An error only when
  // the backend refuses for good (the namespace or the Network is not ours, the credentials are
  // refused).
  asio::awaitable<Status> run() override;
  void stop() override;
  // A standby lists and watches the backend's pods and copies; the Network, the event mirror and
  // the sweep start once it leads.
  bool standBy(const Latch& leading) override {
    leading_ = &leading;
    return true;
  }
  const Signals& signals() const override { return signals_; }
  std::string notReadyReason() const override;
  // Ready and still running.
  bool ready() const { return signals_.ready.isSet() && !signals_.stopped.isSet(); }
  // ConfigMaps and Secrets: copies follow their sources.
  std::vector<std::string> followedKinds() const override { return {"ConfigMap", "Secret"}; }

  // A cluster ConfigMap or Secret ("ConfigMap"/"Secret") changed or appeared (only its
  // metadata is needed): wake pods waiting for it, and refresh its backend copy if there is one.
  // Thread-safe, never blocks.
  void clusterObjectChanged(std::string_view kind, const boost::json::value& object) override;

  std::string_view name() const override { return kCciProviderName; }
  asio::awaitable<Status> createPod(Json pod) override;
  asio::awaitable<Status> updatePod(Json pod) override;
  asio::awaitable<Status> deletePod(PodRef pod, int64_t gracePeriodSeconds) override;
  asio::awaitable<Result<Json>> getPod(PodRef pod) override;
  asio::awaitable<Result<std::vector<Json>>> listPods() override;
  void onPodStatusChange(std::function<void(const PodRef&)> callback) override;
  NodeCapacity capacity() const override { return options_.capacity; }
  // The configured numbers lowered to the backend namespace's ResourceQuotas (backend_quota.h).
  NodeResources resources() const override { return quota_->resources(); }
  void onResourcesChange(std::function<void()> callback) override;
  // Waits up to 5 s (on the clock) for readiness at start, then reads the backend namespace;
  // kUnavailable kBackendNetworkNotActive while the Network is not Active.
  asio::awaitable<Status> ping() override;

  // The kubelet API's streams, served by the backend's API server (backend_streams.h). A pod this
  // node does not run is kNotFound.
  asio::awaitable<Result<std::unique_ptr<ByteStream>>> logs(PodRef pod,
                                                            LogOptions options) override;
  asio::awaitable<Result<std::unique_ptr<ExecSession>>> exec(PodRef pod,
                                                             ExecOptions options) override;
  asio::awaitable<Result<std::unique_ptr<ExecSession>>> attach(PodRef pod,
                                                               ExecOptions options) override;
  asio::awaitable<Result<std::unique_ptr<PortStream>>> portForward(PodRef pod,
                                                                   uint16_t port) override;
  // The node's pods' CPU and memory from the backend's metrics API (backend_stats.h).
  asio::awaitable<Result<Json>> statsSummary() override;

  // The Secret in the backend namespace (translate.h nodeSecretName), written whole.
  std::string nodeSecretName(std::string_view purpose) const override;
  asio::awaitable<Status> putNodeSecret(std::string purpose,
                                        std::map<std::string, std::string> data) override;

  const CciStats& stats() const { return stats_; }
  const std::string& backendNamespace() const { return options_.backendNamespace; }

 private:
  asio::awaitable<Status> runUntilStopped();
  // Every backend informer, for run() to run and stop.
  std::vector<kube::Informer*> informers();
  // True once every informer listed; false when stop() came first.
  asio::awaitable<bool> awaitSynced();
  // Runs `work` on the executor, counted by gate_.
  void spawn(asio::awaitable<void> work);
  void notifyPod(const PodRef& ref);
  // createPod in CCI mode: held back while the Network is not Active.
  asio::awaitable<Status> createOnNetwork(Json pod);
  // The backend refused a pod as invalid: within kNetworkSettle of the Network turning Active,
  // kUnavailable kBackendNetworkNotActive (tried again); else `refused`.
  Error settleRefusal(Error refused) const;
  // The backend's release (GET /version) and provider.cci.backendVersion: what pods are
  // checked against (api_fields.h), handed to BackendPods.
  asio::awaitable<void> readBackendRelease();
  // Sets warm_ once the informers a standby runs have listed.
  asio::awaitable<void> markWarm();
  // Follows the Network until stop(); its error (not ours) stops the provider.
  asio::awaitable<void> runNetwork();
  // kUnavailable kBackendNetworkNotActive while there is a Network and it is not Active.
  Status networkReady() const;

  asio::any_io_executor executor_;
  kube::RestClient& backend_;
  const CciOptions options_;
  const Clock& clock_;
  CciStats stats_;
  BackendNamespace namespace_;
  std::unique_ptr<BackendNetwork> network_;  // CCI mode only
  std::unique_ptr<Copies> copies_;
  std::unique_ptr<BackendPods> pods_;
  std::unique_ptr<EventMirror> events_;
  std::unique_ptr<BackendStreams> streams_;
  std::unique_ptr<BackendStats> podStats_;
  std::unique_ptr<BackendQuota> quota_;
  Signals signals_;
  Latch stop_;                      // set by stop()
  const Latch* leading_ = nullptr;  // standBy(): nothing is written before it is set
  std::atomic<bool> warm_{false};   // standing by with every informer but the mirror's listed
  Latch readyOrStopping_;           // set when ready or by stop(): what ping() waits for
  Gate gate_;                       // run()'s coroutines: the informers and the sweep
  std::mutex callbackMu_;           // guards callback_
  std::function<void(const PodRef&)> callback_;
  std::optional<Error> fatal_;  // why run() must fail (the Network is not ours)
};

}  // namespace burstlet::provider::cci
