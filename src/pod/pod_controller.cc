#include "pod/pod_controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "common/wait.h"
#include "kube/json_path.h"
#include "pod/kubelet_status.h"
#include "pod/lifecycle.h"
#include "pod/status.h"

namespace burstlet::pod {

namespace json = boost::json;
using provider::PodRef;
namespace resources = kube::resources;

namespace {

PodRef refFromKey(const std::string& key, std::string uid) {
  const auto slash = key.find('/');
  return PodRef{key.substr(0, slash), key.substr(slash + 1), std::move(uid)};
}

std::string phaseOf(const json::value& pod) {
  const auto* o = pod.if_object();
  const auto* st = o != nullptr ? o->if_contains("status") : nullptr;
  const auto* so = st != nullptr ? st->if_object() : nullptr;
  const auto* ph = so != nullptr ? so->if_contains("phase") : nullptr;
  const auto* s = ph != nullptr ? ph->if_string() : nullptr;
  return s != nullptr && !s->empty() ? std::string(*s) : std::string("Pending");
}

}  // namespace

PodController::PodController(asio::any_io_executor executor, kube::RestClient& client,
                             provider::Provider& provider, kube::EventRecorder& events,
                             PodControllerOptions options, const Clock& clock)
    : executor_(std::move(executor)),
      client_(client),
      provider_(provider),
      events_(events),
      options_(std::move(options)),
      clock_(clock),
      queue_(executor_, clock_, options_.backoff) {
  kube::InformerOptions io;
  io.resource = resources::kPods;
  io.fieldSelector = "spec.nodeName=" + options_.nodeName;
  informer_ = std::make_unique<kube::Informer>(client_, io);
  informer_->addHandlers(
      kube::InformerHandlers{[this](const kube::ObjectPtr& o) {
                               notePhase(kube::objectKey(*o), phaseOf(*o));
                               enqueue(kube::objectKey(*o));
                             },
                             [this](const kube::ObjectPtr&, const kube::ObjectPtr& o) {
                               notePhase(kube::objectKey(*o), phaseOf(*o));
                               enqueue(kube::objectKey(*o));
                             },
                             [this](const kube::ObjectPtr& o, bool) {
                               notePhase(kube::objectKey(*o), "");
                               enqueue(kube::objectKey(*o));
                             }});
}

PodController::~PodController() { provider_.onPodStatusChange(nullptr); }

void PodController::notePhase(const std::string& key, const std::string& phase) {
  std::lock_guard lock(phaseMu_);
  auto it = phaseByKey_.find(key);
  if (it != phaseByKey_.end()) {
    if (--phaseCounts_[it->second] == 0) {
      phaseCounts_.erase(it->second);
    }
    if (phase.empty()) {
      phaseByKey_.erase(it);
      return;
    }
    it->second = phase;
  } else if (phase.empty()) {
    return;
  } else {
    phaseByKey_.emplace(key, phase);
  }
  ++phaseCounts_[phase];
}

std::map<std::string, size_t> PodController::podsByPhase() const {
  std::lock_guard lock(phaseMu_);
  return {phaseCounts_.begin(), phaseCounts_.end()};
}

void PodController::stop() {
  stopped_ = true;
  stop_.set();
}

void PodController::spawn(asio::awaitable<void> work) {
  if (!gate_.enter()) {
    return;
  }
  asio::co_spawn(executor_, std::move(work), [this](const std::exception_ptr& e) {
    if (e) {
      spdlog::error("msg=\"pod controller coroutine failed\"");
    }
    gate_.leave();
  });
}

asio::awaitable<void> PodController::run() {
  signals_.started.set();
  provider_.onPodStatusChange([this](const PodRef& ref) { enqueue(ref.key()); });
  spawn(informer_->run());
  co_await waitAny(informer_->signals().ready, stop_);
  if (hold_ != nullptr) {
    co_await waitAny(*hold_, stop_);
  }
  for (int attempt = 0; !stopped_; ++attempt) {
    auto s = co_await reconcile();
    if (s.ok()) {
      break;
    }
    spdlog::warn("msg=\"reconcile with the provider failed\" error=\"{}\"", s.error().toString());
    co_await sleepFor(
        clock_, std::chrono::milliseconds(std::min(200 << std::min(attempt, 8), 30000)), &stop_);
  }
  if (!stopped_) {
    ready_ = true;
    signals_.ready.set();
    spdlog::info("msg=\"pod controller ready\" node={} pods={} workers={}", options_.nodeName,
                 informer_->store().size(), options_.workers);
    for (int i = 0; i < options_.workers; ++i) {
      spawn(worker());
    }
    spawn(resyncLoop());
  }
  co_await stop_.wait();
  // Workers finish the sync they are in; then nothing more is taken.
  queue_.shutDown();
  informer_->stop();
  co_await gate_.close();
  ready_ = false;
  signals_.stopped.set();
}

asio::awaitable<void> PodController::worker() {
  while (true) {
    auto key = co_await queue_.get();
    if (!key) {
      break;
    }
    const auto start = clock_.steadyNow();
    Status s = okStatus();
    try {
      s = co_await sync(*key);
    } catch (const std::exception& e) {
      // A bug in one pod's sync must not end the worker or leave the key in flight forever.
      s = Error::make(ErrorCode::kInternal, "SyncFailed",
                      fmt::format("sync threw an exception: {}", e.what()));
    } catch (...) {
      s = Error::make(ErrorCode::kInternal, "SyncFailed", "sync threw an exception");
    }
    stats_.syncs.fetch_add(1, std::memory_order_relaxed);
    if (observer_) {
      observer_(clock_.steadyNow() - start, s.ok());
    }
    if (s.ok()) {
      queue_.forget(*key);
    } else {
      stats_.syncErrors.fetch_add(1, std::memory_order_relaxed);
      if (s.error().code != ErrorCode::kCancelled) {
        spdlog::warn("msg=\"pod sync failed\" pod={} error=\"{}\" retries={}", *key,
                     s.error().toString(), queue_.failures(*key));
        queue_.addRateLimited(*key);
      }
    }
    queue_.done(*key);
  }
}

asio::awaitable<void> PodController::resyncLoop() {
  auto next = clock_.steadyNow() + options_.resync;
  while (!stopped_) {
    auto wake = next;
    {
      std::lock_guard lock(mu_);
      if (reconcileAt_) {
        wake = std::min(wake, *reconcileAt_);
      }
    }
    if (!co_await sleepUntil(clock_, wake, &stop_)) {
      break;
    }
    bool early = false;
    {
      std::lock_guard lock(mu_);
      if (reconcileAt_ && clock_.steadyNow() >= *reconcileAt_) {
        reconcileAt_.reset();
        early = true;
      }
    }
    if (early && clock_.steadyNow() < next) {
      // A terminating orphan's grace period is over: only the provider's pods need a look.
      if (auto s = co_await reconcile(); !s.ok()) {
        spdlog::warn("msg=\"reconcile with the provider failed\" error=\"{}\"",
                     s.error().toString());
      }
      continue;
    }
    if (clock_.steadyNow() < next) {
      continue;
    }
    next = clock_.steadyNow() + options_.resync;
    for (const auto& key : informer_->store().keys()) {
      enqueue(key);
    }
    // Provider pods whose source is gone (deleted while a delete failed for good, or made by
    // an earlier process) go too: the same plan as after a restart.
    if (auto s = co_await reconcile(); !s.ok()) {
      spdlog::warn("msg=\"periodic reconcile with the provider failed\" error=\"{}\"",
                   s.error().toString());
    }
  }
}

asio::awaitable<Status> PodController::reconcile() {
  auto listed = co_await provider_.listPods();
  if (!listed.ok()) {
    co_return std::move(listed).error();
  }
  std::map<std::string, std::string> clusterUids;
  for (const auto& key : informer_->store().keys()) {
    clusterUids.emplace(key, informer_->store().uid(key));
  }
  std::map<std::string, std::string> providerUids;
  std::optional<Clock::WallTime> earliest;
  for (const auto& p : *listed) {
    const PodRef ref = provider::podRefOf(p);
    if (isBeingDeleted(p)) {
      // Shutting down within its grace period: deleting it again would cut that short. Once
      // the grace period is over and no cluster pod waits for it (that pod's own sync forces
      // it), it is deleted forcibly: a backend pod stuck terminating keeps billing.
      if (auto it = clusterUids.find(ref.key()); it != clusterUids.end() && it->second == ref.uid) {
        continue;
      }
      const auto deadline = terminationDeadline(p, options_.terminationSlack, clock_.now());
      if (clock_.now() < deadline) {
        earliest = earliest ? std::min(*earliest, deadline) : deadline;
        continue;
      }
      if (deletionGracePeriodOf(p) == 0) {
        continue;  // forced already; the backend removes it
      }
      PodRef stuck = ref;  // named: see kube/rest.h on co_await temporaries
      auto s = co_await provider_.deletePod(stuck, 0);
      if (!s.ok()) {
        co_return s;
      }
      stats_.forcedTerminations.fetch_add(1);
      spdlog::warn(
          "msg=\"forced the deletion of a provider pod still terminating after its grace "
          "period\" pod={} uid={}",
          ref.key(), ref.uid);
      continue;
    }
    providerUids.emplace(ref.key(), ref.uid);
  }
  if (earliest) {
    std::lock_guard lock(mu_);
    const auto at =
        clock_.steadyNow() +
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(*earliest - clock_.now()) +
        std::chrono::seconds(1);
    reconcileAt_ = reconcileAt_ ? std::min(*reconcileAt_, at) : at;
  }
  const ReconcilePlan plan = planReconcile(clusterUids, providerUids);
  for (const auto& [key, uid] : plan.remove) {
    PodRef orphan = refFromKey(key, uid);  // named: see kube/rest.h on co_await temporaries
    auto s = co_await provider_.deletePod(orphan, provider::kOwnGracePeriod);
    if (!s.ok()) {
      co_return s;
    }
    stats_.orphansDeleted.fetch_add(1);
    spdlog::info("msg=\"deleted orphan pod on the provider\" pod={} uid={}", key, uid);
  }
  {
    // Only pods still there with that uid: a worker may have finished one meanwhile.
    std::lock_guard lock(mu_);
    for (const auto& [key, uid] : plan.adopt) {
      if (informer_->store().uid(key) == uid) {
        known_.emplace(key, uid);
      }
    }
  }
  stats_.adopted.fetch_add(plan.adopt.size());
  spdlog::info("msg=\"reconciled with the provider\" adopted={} orphans={}", plan.adopt.size(),
               plan.remove.size());
  co_return okStatus();
}

asio::awaitable<Status> PodController::sync(const std::string& key) {
  auto pod = informer_->store().get(key);
  if (!pod) {
    co_return co_await syncDeleted(key);
  }
  co_return co_await syncExisting(*pod);
}

asio::awaitable<Status> PodController::syncDeleted(const std::string& key) {
  std::string uid;
  {
    std::lock_guard lock(mu_);
    auto it = known_.find(key);
    if (it != known_.end()) {
      uid = it->second;
    }
    written_.erase(key);
    refused_.erase(key);
    finalDeleted_.erase(key);
    backOff_.erase(key);
    if (auto r = rejected_.find(key); r != rejected_.end()) {
      ephemeralUnsupported_.erase(r->second);
      rejected_.erase(r);
    }
    if (!uid.empty()) {
      ephemeralUnsupported_.erase(uid);
      forcedAt_.erase(uid);
    }
  }
  if (uid.empty()) {
    co_return okStatus();
  }
  // Gone from the API without us (force deletion, or the final delete we made): nothing of it
  // may keep running, and it stops as its spec says (a force delete on a kubelet does not cut
  // a StatefulSet replica's grace either; its replacement waits).
  PodRef ref = refFromKey(key, uid);
  auto s = co_await provider_.deletePod(ref, provider::kOwnGracePeriod);
  if (!s.ok()) {
    co_return s;
  }
  stats_.providerDeletes.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (auto it = known_.find(key); it != known_.end() && it->second == uid) {
    known_.erase(it);
  }
  co_return okStatus();
}

asio::awaitable<Status> PodController::syncExisting(const json::value& pod) {
  PodRef ref = provider::podRefOf(pod);
  if (isBeingDeleted(pod)) {
    co_return co_await finishDeletion(pod);
  }
  std::string previousUid;
  bool wasKnown = false;
  {
    std::lock_guard lock(mu_);
    if (auto it = known_.find(ref.key()); it != known_.end()) {
      if (it->second != ref.uid) {
        previousUid = it->second;
      } else {
        wasKnown = true;
      }
    }
    if (auto it = finalDeleted_.find(ref.key());
        it != finalDeleted_.end() && it->second != ref.uid) {
      finalDeleted_.erase(it);  // the name has a new pod; the delete of the old was folded in
    }
  }
  if (!previousUid.empty()) {
    // The name now belongs to a new pod (a StatefulSet replica): the old one goes first, with
    // its own grace period; the new one waits for it (createOnProvider).
    PodRef old = refFromKey(ref.key(), previousUid);
    auto s = co_await provider_.deletePod(old, provider::kOwnGracePeriod);
    if (!s.ok()) {
      co_return s;
    }
    std::lock_guard lock(mu_);
    known_.erase(ref.key());
    written_.erase(ref.key());
  }
  auto providerPod = co_await provider_.getPod(ref);
  if (!providerPod.ok()) {
    if (providerPod.error().code != ErrorCode::kNotFound) {
      co_return std::move(providerPod).error();
    }
    if (isTerminal(pod)) {
      co_return okStatus();  // finished pods are not run again
    }
    {
      std::lock_guard lock(mu_);
      if (auto it = rejected_.find(ref.key()); it != rejected_.end() && it->second == ref.uid) {
        co_return okStatus();  // shown once; the pod must change or go
      }
    }
    if (const json::value view = latest(pod); wasKnown || ranOnProvider(view) || lossPending(ref)) {
      co_return co_await handleLostPod(view);
    }
    const std::map<std::string, int64_t> noBase;  // named: see kube/rest.h on co_await temporaries
    co_return co_await createOnProvider(pod, noBase);
  }
  {
    std::lock_guard lock(mu_);
    known_[ref.key()] = ref.uid;
  }
  settleBackOff(ref);
  const auto restartBase = restartBaseOf(*providerPod);
  if (!isTerminal(pod)) {
    auto updated = co_await updateOnProvider(pod, *providerPod, restartBase);
    if (!updated.ok()) {
      co_return std::move(updated).error();
    }
    if (*updated) {
      // What the provider shows now: a status change notified while the update ran was folded
      // into this sync and is not notified again.
      auto again = co_await provider_.getPod(ref);
      if (again.ok()) {
        providerPod = std::move(again);
      }
    }
  }
  co_return co_await pushStatus(pod, *providerPod);
}

asio::awaitable<Result<bool>> PodController::updateOnProvider(
    const json::value& pod, const json::value& providerPod,
    const std::map<std::string, int64_t>& restartBase) {
  const PodRef ref = provider::podRefOf(pod);
  // What the provider cannot add is not asked for again; the restart base is ours, not the
  // pod's.
  std::optional<json::value> wanted;
  {
    std::lock_guard lock(mu_);
    if (auto it = ephemeralUnsupported_.find(ref.uid); it != ephemeralUnsupported_.end()) {
      wanted = pod;
      if (auto* list = wanted->as_object()["spec"].as_object().if_contains("ephemeralContainers");
          list != nullptr && list->is_array()) {
        auto& items = list->as_array();
        for (auto c = items.begin(); c != items.end();) {
          const auto* name = c->is_object() ? c->as_object().if_contains("name") : nullptr;
          const bool skip = name != nullptr && name->is_string() &&
                            it->second.names.count(std::string(name->as_string())) != 0;
          c = skip ? items.erase(c) : std::next(c);
        }
      }
    }
  }
  std::optional<json::value> seen;
  if (!restartBase.empty()) {
    seen = providerPod;
    dropRestartBase(*seen);
  }
  if (!provider::needsUpdate(wanted ? *wanted : pod, seen ? *seen : providerPod)) {
    co_return false;
  }
  // Ephemeral containers the provider refused are not sent again.
  const json::value& source = wanted ? *wanted : pod;
  json::value prepared = source;
  if (prepare_) {
    auto p = co_await prepare_(source);
    if (!p.ok()) {
      co_return std::move(p).error();
    }
    prepared = std::move(*p);
  }
  setRestartBase(prepared, restartBase);
  auto s = co_await provider_.updatePod(prepared);
  if (!s.ok() && s.error().reason == provider::kEphemeralContainersNotSupported) {
    // Shown once, as the kubelet shows a container it cannot start; the rest of the update
    // was applied.
    Unsupported u{{}, s.error().reason, s.error().message};
    std::set<std::string> onProvider;
    for (const auto& name : ephemeralContainerNames(providerPod)) {
      onProvider.insert(name);
    }
    for (const auto& name : ephemeralContainerNames(pod)) {
      if (onProvider.count(name) == 0) {
        u.names.insert(name);
      }
    }
    {
      std::lock_guard lock(mu_);
      ephemeralUnsupported_[ref.uid] = u;
    }
    events_.record(kube::referenceTo(pod), kube::EventType::kWarning, u.reason,
                   fmt::format("the {} provider cannot add ephemeral containers: {}",
                               provider_.name(), u.message));
    stats_.providerUpdates.fetch_add(1, std::memory_order_relaxed);
    co_return true;
  }
  if (!s.ok()) {
    co_return std::move(s).error();
  }
  stats_.providerUpdates.fetch_add(1, std::memory_order_relaxed);
  co_return true;
}

asio::awaitable<void> PodController::markBurst(const json::value& pod) {
  // A pod the burst policy placed (src/admission) goes first when its workload scales in:
  // a lower deletion cost than the pods on ordinary nodes (0 unless set), or the cost its
  // BurstProfile's scale-down order gave it (kBurstCostAnnotation), which replaces the cost it
  // had for its local slot.
  if (kube::stringAt(pod, {"metadata", "annotations", kBurstRuleAnnotation}).empty()) {
    co_return;
  }
  const std::string ordered =
      kube::stringAt(pod, {"metadata", "annotations", kBurstCostAnnotation});
  const auto* current = kube::at(pod, {"metadata", "annotations", kDeletionCostAnnotation});
  std::string cost;
  if (!ordered.empty()) {
    if (current != nullptr && current->is_string() && current->get_string() == ordered) {
      co_return;
    }
    cost = ordered;
  } else if (current != nullptr) {
    co_return;
  } else {
    cost = kBurstDeletionCost;
  }
  PodRef ref = provider::podRefOf(pod);
  std::string body = json::serialize(json::object{
      {"metadata", json::object{{"annotations", json::object{{kDeletionCostAnnotation, cost}}},
                                {"uid", ref.uid}}}});
  auto r = co_await client_.patch(kube::resources::kPods, ref.ns, ref.name,
                                  kube::PatchType::kJsonMerge, std::move(body));
  if (!r.ok()) {
    spdlog::warn("msg=\"deletion cost not set on burst pod\" pod={} error=\"{}\"", ref.key(),
                 r.error().toString());
  }
}

asio::awaitable<Status> PodController::createOnProvider(
    const json::value& pod, const std::map<std::string, int64_t>& restartBase,
    const json::value* restarted) {
  PodRef ref = provider::podRefOf(pod);
  json::value prepared = pod;
  if (prepare_) {
    auto p = co_await prepare_(pod);
    if (!p.ok()) {
      if (p.error().reason == provider::kCreateContainerConfigError) {
        co_await reportConfigError(pod, p.error());
      } else if (p.error().code == ErrorCode::kInvalid) {
        // The pod can never be prepared (a name burstlet reserves): refused like a pod the
        // provider can never run, once, with the reason.
        {
          std::lock_guard lock(mu_);
          rejected_[ref.key()] = ref.uid;
        }
        co_await reportFailure(pod, p.error(), true);
        co_return okStatus();
      }
      co_return std::move(p).error();
    }
    prepared = std::move(*p);
  }
  setRestartBase(prepared, restartBase);
  auto s = co_await provider_.createPod(prepared);
  if (!s.ok() && s.error().reason == provider::kPredecessorTerminating) {
    // As a kubelet's pod waits for its sandbox: Pending, containers ContainerCreating, no
    // failure shown. The provider's notification of the old pod's end brings it back; the
    // timer is the fallback.
    if (auto shown = co_await showWaiting(pod, s.error().message); !shown.ok()) {
      spdlog::warn("msg=\"waiting status not written\" pod={} error=\"{}\"", ref.key(),
                   shown.error().toString());
    }
    queue_.addAfter(ref.key(), options_.predecessorRecheck);
    co_return okStatus();
  }
  if (!s.ok() && s.error().reason == provider::kCreateContainerConfigError) {
    // The provider could not make a mounted ConfigMap or Secret available: the pod waits like
    // on a kubelet, and the provider wakes it when the object appears.
    co_await reportConfigError(pod, s.error());
    co_return s;
  }
  if (!s.ok()) {
    const bool permanent = s.error().code == ErrorCode::kInvalid;
    if (permanent) {
      {
        std::lock_guard lock(mu_);
        rejected_[ref.key()] = ref.uid;
      }
      co_await reportFailure(pod, s.error(), true);
      co_return okStatus();
    }
    co_await reportFailure(pod, s.error(), false);
    co_return s;
  }
  stats_.providerCreates.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    known_[ref.key()] = ref.uid;
  }
  co_await markBurst(pod);
  if (restarted != nullptr) {
    // The restart is counted now that it happened: a create that failed counted nothing.
    json::value patch = *restarted;  // named: see kube/rest.h on co_await temporaries
    if (auto s = co_await writeStatus(pod, std::move(patch)); !s.ok()) {
      spdlog::warn("msg=\"restart status not written\" pod={} error=\"{}\"", ref.key(),
                   s.error().toString());
    }
  }
  // Push the status at once: a provider that starts pods quickly is Running already, and this
  // saves a round through the queue.
  auto providerPod = co_await provider_.getPod(ref);
  if (!providerPod.ok()) {
    co_return providerPod.error().code == ErrorCode::kNotFound ? okStatus()
                                                               : Status(providerPod.error());
  }
  co_return co_await pushStatus(pod, *providerPod);
}

}  // namespace burstlet::pod
