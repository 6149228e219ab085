// PodController: turns every pod bound to the virtual node into a pod on the provider and
// reports the provider's status back. One informer on pods with spec.nodeName=<node> feeds a
// WorkQueue (one sync in flight per pod, de-duplicated, per-pod backoff); N workers sync.
//
// A sync compares three things: the cluster pod, what the provider has, and what this process
// created (known_). It creates what is missing, updates changed labels/annotations/images,
// deletes on the provider before the final API delete (UID precondition), and writes the
// provider's status as one strategic-merge patch of pods/status when it differs. Status
// changes from the provider only enqueue the pod, so a burst of them costs one write.
//
// Restart safety: before the workers start, the provider's pods are listed and reconciled with
// the informer's: matching ones are adopted, orphans deleted; creates are idempotent by UID.
//
// As a kubelet: every status write carries the pod's UID as a precondition (a write meant for a
// deleted pod never lands on a new pod of the same name); Ready follows the pod's readiness
// gates; a provider pod that disappears is not run again unseen (restartPolicy Never: the pod
// fails; otherwise it runs again with its restart count up, re-created with the kubelet's
// CrashLoopBackOff per pod, lost_pods.cc), always with a Warning event; a
// deleted pod stays Terminating until its provider pod is gone, which is forced once the grace
// period (plus terminationSlack) is over.
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
#include "common/wait.h"
#include "common/work_queue.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "pod/lifecycle.h"
#include "provider/provider.h"

namespace burstlet::pod {

// The annotation the burst-policy webhook (src/admission) puts on the pods it placed, and the
// deletion cost such a pod gets once it runs here: below ordinary pods' (0), so that its
// workload scales in by its burst pods first.
inline constexpr std::string_view kBurstRuleAnnotation = "burstlet.io/burst-rule";
inline constexpr std::string_view kDeletionCostAnnotation =
    "controller.kubernetes.io/pod-deletion-cost";
inline constexpr std::string_view kBurstDeletionCost = "-100";
// The deletion cost a BurstProfile's scale-down order asks for once the pod runs here.
inline constexpr std::string_view kBurstCostAnnotation = "burstlet.io/burst-deletion-cost";

namespace asio = boost::asio;

struct PodControllerOptions {
  std::string nodeName = "burstlet";
  int workers = 16;
  WorkQueueOptions backoff{std::chrono::milliseconds(200), std::chrono::seconds(60)};
  // Every pod's provider status is compared again this often, in case a notification was lost.
  std::chrono::seconds resync{300};
  // A provider pod still terminating this long after the pod's grace period ended is deleted
  // forcibly (with a Warning event) ...
  std::chrono::seconds terminationSlack{30};
  // ... and if even that does not remove it within this long, the cluster pod is removed anyway
  // (with a Warning event); the periodic reconcile keeps deleting the provider pod.
  std::chrono::seconds terminationGiveUp{120};
  // A pod waiting for the provider pod of an earlier pod of its name is looked at again this
  // often (the provider's notification of that pod's end usually comes first).
  std::chrono::milliseconds predecessorRecheck{2000};
  // Re-creating a pod whose provider pod disappeared waits as a kubelet's CrashLoopBackOff.
  RestartBackOffOptions restartBackOff;
};

// Counters for metrics; read from any thread.
struct PodControllerStats {
  std::atomic<uint64_t> syncs{0};
  std::atomic<uint64_t> syncErrors{0};
  std::atomic<uint64_t> providerCreates{0};
  std::atomic<uint64_t> providerDeletes{0};
  std::atomic<uint64_t> providerUpdates{0};
  std::atomic<uint64_t> statusPatches{0};
  std::atomic<uint64_t> orphansDeleted{0};
  std::atomic<uint64_t> adopted{0};
  std::atomic<uint64_t> lostPods{0};            // provider pods that disappeared
  std::atomic<uint64_t> forcedTerminations{0};  // provider pods deleted forcibly
  std::atomic<uint64_t> statusRefused{0};       // status patches the API server refused
};

// Sizes of the controller's per-pod memory (for tests: nothing may grow without bound).
struct PodControllerMemory {
  size_t known = 0;
  size_t rejected = 0;
  size_t written = 0;
  size_t finalDeleted = 0;
  size_t ephemeralUnsupported = 0;
  size_t refused = 0;
  size_t restartBackOff = 0;
};

class PodController {
 public:
  // Prepares a pod for the provider (e.g. resolves its environment). An error with reason
  // "CreateContainerConfigError" is shown like the kubelet shows it and retried.
  using PreparePod =
      std::function<asio::awaitable<Result<boost::json::value>>(const boost::json::value& pod)>;
  // Observes each sync's duration and outcome.
  using SyncObserver = std::function<void(std::chrono::nanoseconds, bool ok)>;

  PodController(asio::any_io_executor executor, kube::RestClient& client,
                provider::Provider& provider, kube::EventRecorder& events,
                PodControllerOptions options, const Clock& clock);
  ~PodController();

  void setPreparePod(PreparePod prepare) { prepare_ = std::move(prepare); }
  void setSyncObserver(SyncObserver observer) { observer_ = std::move(observer); }

  // Informer, reconcile, workers; returns after stop() once in-flight syncs finished.
  asio::awaitable<void> run();
  // run() lists and watches the node's pods at once (a warm cache), but reconciles and syncs
  // only once `go` is set: the provider ready, and with several replicas this one leading.
  // Call before run(); `go` must outlive it.
  void holdUntil(const Latch& go) { hold_ = &go; }
  void stop();
  // The informer listed the node's pods (also while held).
  bool listed() const { return informer_->signals().ready.isSet(); }
  // The informer listed the pods and the provider's pods were reconciled.
  bool ready() const { return ready_.load(); }
  // started: run() began; ready: as ready(); stopped: run() returned.
  const Signals& signals() const { return signals_; }

  const PodControllerStats& stats() const { return stats_; }
  size_t queueDepth() { return queue_.length(); }
  // Pods by cluster phase, as the informer sees them.
  std::map<std::string, size_t> podsByPhase() const;
  const kube::Store& pods() const { return informer_->store(); }
  PodControllerMemory memory() const;

 private:
  // Runs `work` on the controller's executor until it ends; run() awaits it before returning.
  void spawn(asio::awaitable<void> work);
  asio::awaitable<void> worker();
  asio::awaitable<Status> sync(const std::string& key);
  asio::awaitable<Status> syncExisting(const boost::json::value& pod);
  asio::awaitable<Status> syncDeleted(const std::string& key);
  asio::awaitable<Status> finishDeletion(const boost::json::value& pod);
  asio::awaitable<Status> removeFromCluster(const provider::PodRef& ref);
  asio::awaitable<Status> handleLostPod(const boost::json::value& pod);
  // While a lost pod waits out its back-off: its status says so (and, once per step, a BackOff
  // event per container), and its sync comes back when the wait is over.
  asio::awaitable<Status> showBackOff(const boost::json::value& pod, const RestartBackOff& backOff,
                                      bool ran, std::chrono::nanoseconds wait);
  // Whether the pod has a loss that no re-create answered yet (it syncs as lost until one does).
  bool lossPending(const provider::PodRef& ref) const;
  // The pod's provider pod is there: a pending loss is answered, and a back-off that would start
  // over anyway is dropped (so the memory holds only pods that restarted lately).
  void settleBackOff(const provider::PodRef& ref);
  // Applies label, annotation, image and ephemeral container changes; true when it wrote.
  asio::awaitable<Result<bool>> updateOnProvider(const boost::json::value& pod,
                                                 const boost::json::value& providerPod,
                                                 const std::map<std::string, int64_t>& restartBase);
  // `restarted`: a lost pod's restart patch (lostPodRestartPatch), written once the create went
  // out, before the new provider pod's status.
  asio::awaitable<Status> createOnProvider(const boost::json::value& pod,
                                           const std::map<std::string, int64_t>& restartBase,
                                           const boost::json::value* restarted = nullptr);
  asio::awaitable<Status> pushStatus(const boost::json::value& pod,
                                     const boost::json::value& providerPod);
  // Shows the pod Pending with its containers waiting (ContainerCreating, `message`), as a
  // kubelet shows a pod whose sandbox is not there yet.
  asio::awaitable<Status> showWaiting(const boost::json::value& pod, const std::string& message);
  // The status a deleted pod ends with (kubelet_status.h terminalStatus), written before the
  // pod is removed; a failure is logged, never blocks the removal.
  asio::awaitable<void> writeFinalStatus(const boost::json::value& pod);
  // The pod with the status this process last wrote, while the informer has not shown it yet.
  boost::json::value latest(const boost::json::value& pod);
  // Patches pods/status ({"status":{...}}) with the pod's UID as precondition and remembers what
  // was written; a pod gone or replaced meanwhile is success (its own sync follows). A patch the
  // API server refuses as invalid is logged once and not sent again unchanged.
  asio::awaitable<Status> writeStatus(const boost::json::value& pod, boost::json::value patch);
  // Gives a pod the burst policy placed a deletion cost below ordinary pods' (after its create).
  asio::awaitable<void> markBurst(const boost::json::value& pod);
  asio::awaitable<void> reportFailure(const boost::json::value& pod, const Error& error,
                                      bool permanent);
  asio::awaitable<void> reportConfigError(const boost::json::value& pod, const Error& error);
  void notePhase(const std::string& key, const std::string& phase);
  asio::awaitable<Status> reconcile();
  asio::awaitable<void> resyncLoop();
  void enqueue(const std::string& key) { queue_.add(key); }

  asio::any_io_executor executor_;
  kube::RestClient& client_;
  provider::Provider& provider_;
  kube::EventRecorder& events_;
  PodControllerOptions options_;
  const Clock& clock_;
  std::unique_ptr<kube::Informer> informer_;
  WorkQueue queue_;
  PreparePod prepare_;
  SyncObserver observer_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> ready_{false};
  Latch stop_;  // set by stop()
  const Latch* hold_ = nullptr;
  Gate gate_;  // coroutines of run() still going (informer, workers, resync)
  Signals signals_;
  mutable std::mutex mu_;  // guards known_, rejected_, ephemeralUnsupported_, forcedAt_,
                           // reconcileAt_, written_, refused_, finalDeleted_ and backOff_
  // Pods this process created or adopted on the provider: key -> UID. A pod that vanished
  // from the API is deleted on the provider by the UID recorded here.
  std::unordered_map<std::string, std::string> known_;
  // Pods the provider rejected permanently (key -> UID): shown once, not retried.
  std::unordered_map<std::string, std::string> rejected_;
  // Ephemeral containers the provider cannot add, per pod UID, with its answer.
  struct Unsupported {
    std::set<std::string> names;
    std::string reason;
    std::string message;
  };
  std::unordered_map<std::string, Unsupported> ephemeralUnsupported_;
  // Pods whose provider pod this process deleted forcibly (UID -> when).
  std::unordered_map<std::string, Clock::SteadyTime> forcedAt_;
  // When the next reconcile is due early: a terminating orphan's grace period ends then.
  std::optional<Clock::SteadyTime> reconcileAt_;
  // The status of our last write per pod and the resourceVersion it produced, until the
  // informer has caught up with it.
  struct Written {
    std::string resourceVersion;
    boost::json::value status;
  };
  std::unordered_map<std::string, Written> written_;
  // The last status patch the API server refused per pod (key -> uid, body).
  struct Refused {
    std::string uid;
    std::string body;
  };
  std::unordered_map<std::string, Refused> refused_;
  // Pods whose final API delete this process made (key -> uid), until the informer shows the
  // delete: later syncs of the stale object write nothing.
  std::unordered_map<std::string, std::string> finalDeleted_;
  // Restarts of lost provider pods per pod (key -> back-off of the pod with that UID); dropped
  // when the pod goes, or runs long enough that its back-off would start over.
  std::unordered_map<std::string, RestartBackOff> backOff_;
  mutable std::mutex phaseMu_;  // guards phaseByKey_ and phaseCounts_
  std::unordered_map<std::string, std::string> phaseByKey_;
  std::map<std::string, size_t> phaseCounts_;
  PodControllerStats stats_;
};

}  // namespace burstlet::pod
