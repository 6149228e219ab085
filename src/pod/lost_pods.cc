// PodController: provider pods that disappeared on their own, handled as a kubelet handles
// containers that exited. With restartPolicy Never the pod fails. Otherwise its containers run
// again in a new provider pod with their restart count up, paced like the kubelet's
// CrashLoopBackOff, per pod (lifecycle.h RestartBackOff): the first re-create goes at once, each
// later loss waits 10 s, 20 s, ... up to 5 minutes, started over once a run lasted 10 minutes.
// While it waits the pod shows its containers waiting with CrashLoopBackOff, a BackOff event per
// container is written once per step, and the queue's delayed add brings the sync back; whatever
// syncs it sooner finds it still waiting. A restart is counted only once the new provider pod
// exists: a create the provider refuses for its own reasons (backend unavailable, namespace
// terminating) shows the pod waiting, is retried on the queue's backoff and counts nothing.
// Without that, every failed create counted a restart, and each status write brought the pod
// straight back: thousands of "restarts" a minute while a backend namespace was deleted.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <optional>

#include "kube/json_path.h"
#include "pod/kubelet_status.h"
#include "pod/lifecycle.h"
#include "pod/pod_controller.h"
#include "pod/status.h"

namespace burstlet::pod {

namespace json = boost::json;
using provider::PodRef;

bool PodController::lossPending(const PodRef& ref) const {
  std::lock_guard lock(mu_);
  auto it = backOff_.find(ref.key());
  return it != backOff_.end() && it->second.uid == ref.uid && it->second.lostAt.has_value();
}

void PodController::settleBackOff(const PodRef& ref) {
  std::lock_guard lock(mu_);
  auto it = backOff_.find(ref.key());
  if (it == backOff_.end()) {
    return;
  }
  RestartBackOff& b = it->second;
  const auto now = clock_.steadyNow();
  if (b.uid == ref.uid && b.lostAt) {
    noteRestart(b, now, options_.restartBackOff);  // a create whose answer was lost made it
    return;
  }
  // A new pod of that name, or one whose next loss would start over anyway.
  if (b.uid != ref.uid || now - b.lastRestart > options_.restartBackOff.reset) {
    backOff_.erase(it);
  }
}

asio::awaitable<Status> PodController::handleLostPod(const json::value& pod) {
  const PodRef ref = provider::podRefOf(pod);
  const std::string key = ref.key();
  const std::string provider(provider_.name());
  if (isTerminal(pod)) {
    co_return okStatus();  // shown Failed already; the informer has not caught up
  }
  const bool ran = ranOnProvider(pod);
  {
    std::lock_guard lock(mu_);
    if (auto it = known_.find(key); it != known_.end() && it->second == ref.uid) {
      known_.erase(it);
    }
    if (ran && !restartsLostContainers(pod)) {
      backOff_.erase(key);
    }
  }
  if (ran && !restartsLostContainers(pod)) {
    stats_.lostPods.fetch_add(1, std::memory_order_relaxed);
    const std::string message = fmt::format(
        "the pod disappeared from the {} provider while its containers ran; with restartPolicy "
        "Never they are not run again",
        provider);
    spdlog::warn("msg=\"provider pod lost\" pod={} uid={} action=failed", key, ref.uid);
    events_.record(kube::referenceTo(pod), kube::EventType::kWarning, kBackendPodLostReason,
                   message);
    json::value patch = lostPodFailedPatch(pod, message, clock_.now());
    co_return co_await writeStatus(pod, std::move(patch));
  }

  // The loss is noted once; its re-create may go now or waits out the back-off.
  const auto now = clock_.steadyNow();
  RestartBackOff backOff;
  bool newLoss = false;
  std::chrono::nanoseconds wait{0};
  {
    std::lock_guard lock(mu_);
    RestartBackOff& b = backOff_[key];
    if (b.uid != ref.uid) {
      b = RestartBackOff{};
      b.uid = ref.uid;
    }
    if (!b.lostAt) {
      b.lostAt = now;
      b.lostAtWall = clock_.now();
      b.warned = false;
      newLoss = true;
    }
    wait = restartWait(b, now, options_.restartBackOff);
    backOff = b;
    if (wait.count() > 0) {
      b.warned = true;  // showBackOff writes the events of this step, from `backOff`
    }
  }
  std::map<std::string, int64_t> base;
  if (ran) {
    base = nextRestartBase(pod);
  }
  if (newLoss) {
    stats_.lostPods.fetch_add(1, std::memory_order_relaxed);
    const std::string after =
        wait.count() > 0 ? fmt::format(" after a back-off of {}", goDuration(backOff.delay)) : "";
    if (ran) {
      int64_t restarts = 0;
      for (const auto& [name, count] : base) {
        restarts = std::max(restarts, count);
      }
      spdlog::warn("msg=\"provider pod lost\" pod={} uid={} action=restart restarts={} wait={}",
                   key, ref.uid, restarts, goDuration(wait));
      events_.record(kube::referenceTo(pod), kube::EventType::kWarning, kBackendPodLostReason,
                     fmt::format("the pod disappeared from the {} provider; its containers are "
                                 "started again{} (restart {})",
                                 provider, after, restarts));
    } else {
      // Nothing ran yet: creating it again runs nothing twice, but it is said.
      spdlog::warn("msg=\"provider pod lost before it ran\" pod={} uid={} wait={}", key, ref.uid,
                   goDuration(wait));
      events_.record(kube::referenceTo(pod), kube::EventType::kWarning, kBackendPodLostReason,
                     fmt::format("the pod disappeared from the {} provider before its "
                                 "containers started; creating it again{}",
                                 provider, after));
    }
  }
  if (wait.count() > 0) {
    co_return co_await showBackOff(pod, backOff, ran, wait);
  }

  std::optional<json::value> restarted;
  if (ran) {
    restarted = lostPodRestartPatch(pod, base, backOff.lostAtWall, clock_.now());
  }
  const json::value* restartedPatch = restarted ? &*restarted : nullptr;
  auto s = co_await createOnProvider(pod, base, restartedPatch);
  {
    std::lock_guard lock(mu_);
    auto k = known_.find(key);
    auto b = backOff_.find(key);
    if (k != known_.end() && k->second == ref.uid && b != backOff_.end() &&
        b->second.uid == ref.uid) {
      noteRestart(b->second, clock_.steadyNow(), options_.restartBackOff);
    }
  }
  if (!s.ok() && ran) {
    // Not running again yet, and not counted: the containers wait (the provider's failure is
    // on the pod), the lost run shown as their last.
    const json::value view = latest(pod);
    const json::value waiting = lostPodWaiting(view, std::nullopt, backOff.lostAtWall);
    const json::value status = kubeletStatus(view, waiting, clock_.now());
    if (auto patch = statusPatch(view, status)) {
      if (auto w = co_await writeStatus(pod, std::move(*patch)); !w.ok()) {
        spdlog::warn("msg=\"status of a lost pod not written\" pod={} error=\"{}\"", key,
                     w.error().toString());
      }
    }
  }
  co_return s;
}

asio::awaitable<Status> PodController::showBackOff(const json::value& pod,
                                                   const RestartBackOff& backOff, bool ran,
                                                   std::chrono::nanoseconds wait) {
  const PodRef ref = provider::podRefOf(pod);
  queue_.addAfter(ref.key(), wait);
  if (!ran) {
    const std::string message = fmt::format("back-off {} re-creating the pod the {} provider lost",
                                            goDuration(backOff.delay), provider_.name());
    co_return co_await showWaiting(pod, message);
  }
  if (!backOff.warned) {
    // As the kubelet words it, about each container; once per step, not once per sync.
    if (const auto* containers = kube::arrayAt(pod, {"spec", "containers"})) {
      for (const auto& c : *containers) {
        const std::string name = kube::stringAt(c, {"name"});
        kube::ObjectReference about = kube::referenceTo(pod);
        about.fieldPath = fmt::format("spec.containers{{{}}}", name);
        events_.record(about, kube::EventType::kWarning, kBackOffEventReason,
                       backOffEventMessage(pod, name));
      }
    }
  }
  const json::value view = latest(pod);
  const json::value waiting = lostPodWaiting(view, backOff.delay, backOff.lostAtWall);
  const json::value status = kubeletStatus(view, waiting, clock_.now());
  auto patch = statusPatch(view, status);
  if (!patch) {
    co_return okStatus();
  }
  co_return co_await writeStatus(pod, std::move(*patch));
}

}  // namespace burstlet::pod
