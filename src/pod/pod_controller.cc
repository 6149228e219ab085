#include "pod/pod_controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>

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

int64_t gracePeriodOf(const json::value& pod) {
  const auto* md = pod.as_object().if_contains("metadata");
  const auto* g = md != nullptr && md->is_object()
                      ? md->as_object().if_contains("deletionGracePeriodSeconds")
                      : nullptr;
  return g != nullptr && g->is_int64() ? g->as_int64() : 30;
}

std::optional<uint64_t> numericVersion(std::string_view rv) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), v);
  if (ec != std::errc() || p != rv.data() + rv.size()) {
    return std::nullopt;
  }
  return v;
}

asio::awaitable<void> sleepFor(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
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

void PodController::stop() { stopped_ = true; }

asio::awaitable<void> PodController::run() {
  provider_.onPodStatusChange([this](const PodRef& ref) { enqueue(ref.key()); });
  auto finished = [this](const std::exception_ptr& e) {
    if (e) {
      spdlog::error("msg=\"pod controller coroutine failed\"");
    }
    --running_;
  };
  ++running_;
  asio::co_spawn(executor_, informer_->run(), finished);
  while (!stopped_ && !informer_->synced()) {
    co_await sleepFor(std::chrono::milliseconds(20));
  }
  for (int attempt = 0; !stopped_; ++attempt) {
    auto s = co_await reconcile();
    if (s.ok()) {
      break;
    }
    spdlog::warn("msg=\"reconcile with the provider failed\" error=\"{}\"", s.error().toString());
    co_await sleepFor(std::chrono::milliseconds(std::min(200 << std::min(attempt, 8), 30000)));
  }
  if (!stopped_) {
    ready_ = true;
    spdlog::info("msg=\"pod controller ready\" node={} pods={} workers={}", options_.nodeName,
                 informer_->store().size(), options_.workers);
    for (int i = 0; i < options_.workers; ++i) {
      ++running_;
      asio::co_spawn(executor_, worker(), finished);
    }
    ++running_;
    asio::co_spawn(executor_, resyncLoop(), finished);
  }
  while (!stopped_) {
    co_await sleepFor(std::chrono::milliseconds(50));
  }
  // Workers finish the sync they are in; then nothing more is taken.
  queue_.shutDown();
  informer_->stop();
  while (running_.load() > 0) {
    co_await sleepFor(std::chrono::milliseconds(10));
  }
  ready_ = false;
}

asio::awaitable<void> PodController::worker() {
  while (true) {
    auto key = co_await queue_.get();
    if (!key) {
      break;
    }
    const auto start = clock_.steadyNow();
    auto s = co_await sync(*key);
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
    co_await sleepFor(std::chrono::milliseconds(500));
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
  for (const auto& p : *listed) {
    if (isBeingDeleted(p)) {
      continue;  // shutting down within its grace period: deleting it again would cut that short
    }
    const PodRef ref = provider::podRefOf(p);
    providerUids.emplace(ref.key(), ref.uid);
  }
  const ReconcilePlan plan = planReconcile(clusterUids, providerUids);
  for (const auto& [key, uid] : plan.remove) {
    PodRef orphan = refFromKey(key, uid);  // named: see kube/rest.h on co_await temporaries
    auto s = co_await provider_.deletePod(orphan, 0);
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
    finalDeleted_.erase(key);
  }
  if (uid.empty()) {
    co_return okStatus();
  }
  // Gone from the API without us (force deletion, or the final delete we made): nothing of it
  // may keep running.
  PodRef ref = refFromKey(key, uid);
  auto s = co_await provider_.deletePod(ref, 0);
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

asio::awaitable<Status> PodController::finishDeletion(const json::value& pod) {
  PodRef ref = provider::podRefOf(pod);
  {
    // Done already; the informer has not shown the delete yet (a provider notification about
    // the terminating pod brought it back here).
    std::lock_guard lock(mu_);
    if (auto it = finalDeleted_.find(ref.key());
        it != finalDeleted_.end() && it->second == ref.uid) {
      co_return okStatus();
    }
  }
  const int64_t grace = gracePeriodOf(pod);
  auto s = co_await provider_.deletePod(ref, grace);
  if (!s.ok()) {
    co_return s;
  }
  stats_.providerDeletes.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    if (auto it = known_.find(ref.key()); it != known_.end() && it->second == ref.uid) {
      known_.erase(it);
    }
    rejected_.erase(ref.uid);
  }
  // The kubelet's last step: remove the object, only if it is still this pod.
  kube::DeleteOptions o;
  o.gracePeriodSeconds = 0;
  o.preconditionUid = ref.uid;
  auto r = co_await client_.remove(resources::kPods, ref.ns, ref.name, o);
  if (!r.ok() && r.error().code != ErrorCode::kNotFound && r.error().code != ErrorCode::kConflict) {
    co_return std::move(r).error();
  }
  std::lock_guard lock(mu_);
  finalDeleted_[ref.key()] = ref.uid;
  co_return okStatus();
}

asio::awaitable<Status> PodController::syncExisting(const json::value& pod) {
  PodRef ref = provider::podRefOf(pod);
  if (isBeingDeleted(pod)) {
    co_return co_await finishDeletion(pod);
  }
  std::string previousUid;
  {
    std::lock_guard lock(mu_);
    if (auto it = known_.find(ref.key()); it != known_.end() && it->second != ref.uid) {
      previousUid = it->second;
    }
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = finalDeleted_.find(ref.key());
        it != finalDeleted_.end() && it->second != ref.uid) {
      finalDeleted_.erase(it);  // the name has a new pod; the delete of the old was folded in
    }
  }
  if (!previousUid.empty()) {
    // The name now belongs to a new pod (a StatefulSet replica): the old one goes first.
    PodRef old = refFromKey(ref.key(), previousUid);
    auto s = co_await provider_.deletePod(old, 0);
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
      if (rejected_.count(ref.uid) != 0) {
        co_return okStatus();  // shown once; the pod must change or go
      }
    }
    co_return co_await createOnProvider(pod);
  }
  {
    std::lock_guard lock(mu_);
    known_[ref.key()] = ref.uid;
  }
  if (!isTerminal(pod) && needsProviderUpdate(pod, *providerPod)) {
    json::value prepared = pod;
    if (prepare_) {
      auto p = co_await prepare_(pod);
      if (!p.ok()) {
        co_return std::move(p).error();
      }
      prepared = std::move(*p);
    }
    auto s = co_await provider_.updatePod(prepared);
    if (!s.ok()) {
      co_return s;
    }
    stats_.providerUpdates.fetch_add(1, std::memory_order_relaxed);
    co_return okStatus();  // the provider notifies the new status
  }
  co_return co_await pushStatus(pod, *providerPod);
}

asio::awaitable<Status> PodController::createOnProvider(const json::value& pod) {
  PodRef ref = provider::podRefOf(pod);
  json::value prepared = pod;
  if (prepare_) {
    auto p = co_await prepare_(pod);
    if (!p.ok()) {
      if (p.error().reason == "CreateContainerConfigError") {
        co_await reportConfigError(pod, p.error());
      }
      co_return std::move(p).error();
    }
    prepared = std::move(*p);
  }
  auto s = co_await provider_.createPod(prepared);
  if (!s.ok() && s.error().reason == "CreateContainerConfigError") {
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
        rejected_.insert(ref.uid);
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
  // Push the status at once: a provider that starts pods quickly is Running already, and this
  // saves a round through the queue.
  auto providerPod = co_await provider_.getPod(ref);
  if (!providerPod.ok()) {
    co_return providerPod.error().code == ErrorCode::kNotFound ? okStatus()
                                                               : Status(providerPod.error());
  }
  co_return co_await pushStatus(pod, *providerPod);
}

asio::awaitable<Status> PodController::pushStatus(const json::value& pod,
                                                  const json::value& providerPod) {
  const auto* status = providerPod.as_object().if_contains("status");
  if (status == nullptr || !status->is_object()) {
    co_return okStatus();
  }
  const std::string key = kube::objectKey(pod);
  // The informer may not have seen our last write yet: compare with what we wrote then, so a
  // burst of notifications does not write the same status twice.
  json::value view = pod;
  {
    std::lock_guard lock(mu_);
    if (auto it = written_.find(key); it != written_.end()) {
      const auto seen = numericVersion(kube::objectResourceVersion(pod));
      const auto ours = numericVersion(it->second.resourceVersion);
      if (seen && ours && *seen < *ours) {
        view.as_object()["status"] = it->second.status;
      } else {
        written_.erase(it);
      }
    }
  }
  auto patch = statusPatch(view, *status);
  if (!patch) {
    co_return okStatus();
  }
  PodRef ref = provider::podRefOf(pod);
  std::string body = json::serialize(*patch);
  std::string subresource = "status";  // named: see kube/rest.h on co_await temporaries
  auto r = co_await client_.patch(resources::kPods, ref.ns, ref.name,
                                  kube::PatchType::kStrategicMerge, std::move(body), subresource);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kNotFound) {
      co_return okStatus();  // deleted meanwhile; its delete event follows
    }
    co_return std::move(r).error();
  }
  stats_.statusPatches.fetch_add(1, std::memory_order_relaxed);
  if (const auto* st = r->as_object().if_contains("status")) {
    std::lock_guard lock(mu_);
    written_[key] = Written{std::string(kube::objectResourceVersion(*r)), *st};
  }
  co_return okStatus();
}

asio::awaitable<void> PodController::reportFailure(const json::value& pod, const Error& error,
                                                   bool permanent) {
  const std::string reason = permanent ? error.reason : std::string("ProviderFailed");
  const std::string message =
      permanent
          ? fmt::format("the {} provider cannot run this pod: {}", provider_.name(), error.message)
          : fmt::format("the {} provider failed, retrying: {}", provider_.name(), error.toString());
  events_.record(kube::referenceTo(pod), kube::EventType::kWarning, reason, message);
  auto patch = failurePatch(pod, reason, message, permanent);
  if (!patch) {
    co_return;
  }
  PodRef ref = provider::podRefOf(pod);
  std::string body = json::serialize(*patch);
  std::string subresource = "status";  // named: see kube/rest.h on co_await temporaries
  auto r = co_await client_.patch(resources::kPods, ref.ns, ref.name,
                                  kube::PatchType::kStrategicMerge, std::move(body), subresource);
  if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
    spdlog::warn("msg=\"recording a provider failure on the pod failed\" pod={} error=\"{}\"",
                 ref.key(), r.error().toString());
  }
}

asio::awaitable<void> PodController::reportConfigError(const json::value& pod, const Error& error) {
  // As the kubelet shows it: a Warning "Failed" event and every container waiting with
  // CreateContainerConfigError.
  events_.record(kube::referenceTo(pod), kube::EventType::kWarning, "Failed",
                 "Error: " + error.message);
  json::array statuses;
  const auto* spec = pod.as_object().if_contains("spec");
  const auto* containers =
      spec != nullptr && spec->is_object() ? spec->as_object().if_contains("containers") : nullptr;
  if (containers != nullptr && containers->is_array()) {
    for (const auto& c : containers->as_array()) {
      const auto* o = c.if_object();
      if (o == nullptr) {
        continue;
      }
      statuses.push_back(json::object{
          {"name", o->contains("name") ? o->at("name") : json::value("")},
          {"image", o->contains("image") ? o->at("image") : json::value("")},
          {"imageID", ""},
          {"ready", false},
          {"started", false},
          {"restartCount", 0},
          {"state", json::object{{"waiting", json::object{{"reason", "CreateContainerConfigError"},
                                                          {"message", error.message}}}}}});
    }
  }
  json::object status{{"containerStatuses", std::move(statuses)}};
  const auto* current = pod.as_object().if_contains("status");
  if (current != nullptr && current->is_object() &&
      current->as_object().if_contains("containerStatuses") != nullptr &&
      current->as_object().at("containerStatuses") == status.at("containerStatuses")) {
    co_return;
  }
  PodRef ref = provider::podRefOf(pod);
  std::string body = json::serialize(json::object{{"status", std::move(status)}});
  std::string subresource = "status";  // named: see kube/rest.h on co_await temporaries
  auto r = co_await client_.patch(resources::kPods, ref.ns, ref.name,
                                  kube::PatchType::kStrategicMerge, std::move(body), subresource);
  if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
    spdlog::warn("msg=\"recording a config error on the pod failed\" pod={} error=\"{}\"",
                 ref.key(), r.error().toString());
  }
}

}  // namespace burstlet::pod
