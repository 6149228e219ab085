// PodController: the end of a pod's life as a kubelet handles it. A deleted pod is removed from
// the cluster only once its provider pod is gone (forced after the grace period). A provider pod
// that disappeared on its own: lost_pods.cc.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <optional>

#include "pod/kubelet_status.h"
#include "pod/lifecycle.h"
#include "pod/pod_controller.h"
#include "pod/status.h"

namespace burstlet::pod {

namespace json = boost::json;
using provider::PodRef;
namespace resources = kube::resources;

namespace {

int64_t gracePeriodOf(const json::value& pod) {
  const int64_t g = deletionGracePeriodOf(pod);
  return g >= 0 ? g : 30;
}

std::chrono::nanoseconds until(Clock::WallTime when, Clock::WallTime now) {
  return when > now ? std::chrono::duration_cast<std::chrono::nanoseconds>(when - now)
                    : std::chrono::nanoseconds(0);
}

}  // namespace

PodControllerMemory PodController::memory() const {
  std::lock_guard lock(mu_);
  return PodControllerMemory{known_.size(),
                             rejected_.size(),
                             written_.size(),
                             finalDeleted_.size(),
                             ephemeralUnsupported_.size(),
                             refused_.size(),
                             backOff_.size()};
}

asio::awaitable<Status> PodController::finishDeletion(const json::value& pod) {
  PodRef ref = provider::podRefOf(pod);
  const std::string key = ref.key();
  {
    // Done already; the informer has not shown the delete yet (a provider notification about
    // the terminating pod brought it back here).
    std::lock_guard lock(mu_);
    if (auto it = finalDeleted_.find(key); it != finalDeleted_.end() && it->second == ref.uid) {
      co_return okStatus();
    }
  }
  auto providerPod = co_await provider_.getPod(ref);
  if (!providerPod.ok() && providerPod.error().code != ErrorCode::kNotFound) {
    co_return std::move(providerPod).error();
  }
  if (providerPod.ok() && deletionGracePeriodOf(pod) == 0) {
    // A force delete: the API server removes the pod at once, without waiting for us. Its
    // provider pod still stops with the pod's own grace period (where a kubelet would give it
    // 2 s): a StatefulSet's replacement of the same name waits for it (createOnProvider), so
    // nothing runs twice, and the old one may finish its writes.
    if (!isBeingDeleted(*providerPod)) {
      auto s = co_await provider_.deletePod(ref, provider::kOwnGracePeriod);
      if (!s.ok()) {
        co_return s;
      }
      stats_.providerDeletes.fetch_add(1, std::memory_order_relaxed);
    }
    co_return co_await removeFromCluster(ref);
  }
  if (providerPod.ok()) {
    const int64_t grace = gracePeriodOf(pod);
    const auto now = clock_.now();
    const auto deadline = terminationDeadline(pod, options_.terminationSlack, now);
    const int64_t providerGrace = deletionGracePeriodOf(*providerPod);
    const bool terminating = isBeingDeleted(*providerPod);
    bool giveUp = false;
    std::optional<Clock::SteadyTime> forcedAt;
    {
      std::lock_guard lock(mu_);
      if (auto it = forcedAt_.find(ref.uid); it != forcedAt_.end()) {
        forcedAt = it->second;
      }
    }
    if (!terminating || providerGrace > grace) {
      auto s = co_await provider_.deletePod(ref, grace);
      if (!s.ok()) {
        co_return s;
      }
      stats_.providerDeletes.fetch_add(1, std::memory_order_relaxed);
      // A provider that deletes at once (no grace to run out) is done already.
      auto after = co_await provider_.getPod(ref);
      if (!after.ok() && after.error().code == ErrorCode::kNotFound) {
        co_await writeFinalStatus(pod);
        co_return co_await removeFromCluster(ref);
      }
    } else if (now >= deadline && !forcedAt) {
      events_.record(
          kube::referenceTo(pod), kube::EventType::kWarning, "BackendTerminationTimeout",
          fmt::format("the pod did not stop on the {} provider within its grace period of {}s; "
                      "deleting it forcibly",
                      provider_.name(), grace));
      auto s = co_await provider_.deletePod(ref, 0);
      if (!s.ok()) {
        co_return s;
      }
      stats_.forcedTerminations.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(mu_);
      forcedAt = clock_.steadyNow();
      forcedAt_[ref.uid] = *forcedAt;
    } else if (forcedAt && clock_.steadyNow() >= *forcedAt + options_.terminationGiveUp) {
      giveUp = true;
      events_.record(kube::referenceTo(pod), kube::EventType::kWarning, "BackendPodNotRemoved",
                     fmt::format("the {} provider still has this pod {}s after it was deleted "
                                 "forcibly; it is removed from the cluster, and burstlet keeps "
                                 "deleting it on the provider",
                                 provider_.name(), options_.terminationGiveUp.count()));
      spdlog::warn("msg=\"provider pod not removed after forced deletion\" pod={} uid={}", key,
                   ref.uid);
    }
    if (!giveUp) {
      // Still there: show what it does while it stops, and look again when the grace period
      // (or the time allowed after forcing) is over. The provider notifies when it is gone.
      if (auto s = co_await pushStatus(pod, *providerPod); !s.ok()) {
        spdlog::warn("msg=\"status of a terminating pod not written\" pod={} error=\"{}\"", key,
                     s.error().toString());
      }
      std::chrono::nanoseconds wait = until(deadline, clock_.now());
      if (forcedAt) {
        wait = std::chrono::duration_cast<std::chrono::nanoseconds>(
            *forcedAt + options_.terminationGiveUp - clock_.steadyNow());
      }
      queue_.addAfter(key, std::max(wait, std::chrono::nanoseconds(std::chrono::seconds(1))));
      co_return okStatus();
    }
  }
  co_await writeFinalStatus(pod);
  co_return co_await removeFromCluster(ref);
}

asio::awaitable<void> PodController::writeFinalStatus(const json::value& pod) {
  // As the kubelet's TerminatePod: the Job controller counts the pod by this phase (and lets
  // its finalizer go), `kubectl drain` and the StatefulSet controller see it end.
  const json::value view = latest(pod);
  const json::value status = terminalStatus(view, clock_.now());
  auto patch = statusPatch(view, status);
  if (!patch) {
    co_return;
  }
  if (auto s = co_await writeStatus(pod, std::move(*patch)); !s.ok()) {
    spdlog::warn("msg=\"final status of a deleted pod not written\" pod={} error=\"{}\"",
                 kube::objectKey(pod), s.error().toString());
  }
}

asio::awaitable<Status> PodController::removeFromCluster(const PodRef& ref) {
  {
    std::lock_guard lock(mu_);
    if (auto it = known_.find(ref.key()); it != known_.end() && it->second == ref.uid) {
      known_.erase(it);
    }
    if (auto it = rejected_.find(ref.key()); it != rejected_.end() && it->second == ref.uid) {
      rejected_.erase(it);
    }
    if (auto it = backOff_.find(ref.key()); it != backOff_.end() && it->second.uid == ref.uid) {
      backOff_.erase(it);
    }
    ephemeralUnsupported_.erase(ref.uid);
    forcedAt_.erase(ref.uid);
    refused_.erase(ref.key());
  }
  // The kubelet's last step: remove the object, only if it is still this pod.
  kube::DeleteOptions o;
  o.gracePeriodSeconds = 0;
  o.preconditionUid = ref.uid;
  std::string ns = ref.ns;  // named: see kube/rest.h on co_await temporaries
  std::string name = ref.name;
  auto r = co_await client_.remove(resources::kPods, ns, name, o);
  if (!r.ok() && r.error().code != ErrorCode::kNotFound && r.error().code != ErrorCode::kConflict) {
    co_return std::move(r).error();
  }
  std::lock_guard lock(mu_);
  finalDeleted_[ref.key()] = ref.uid;
  co_return okStatus();
}

}  // namespace burstlet::pod
