// CciProvider: the backend pods (create, update, delete, status back).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/cci_provider.h"
#include "provider/cci/cci_provider_internal.h"
#include "provider/cci/claims.h"
#include "provider/cci/events.h"
#include "provider/cci/normalize.h"
#include "provider/cci/pod_update.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;
using kube::arrayAt;
using kube::at;
using kube::stringAt;

using namespace internal;  // NOLINT(google-build-using-namespace): this class's own helpers

asio::awaitable<Status> CciProvider::awaitPredecessor(const PodRef& ref,
                                                      const json::value& existing) {
  // The backend pod of an earlier pod of this name, gone from the cluster (names are unique):
  // it stops with its own grace period, and this one waits for it.
  auto src = sourceRefOf(existing);
  if (src && at(existing, {"metadata", "deletionTimestamp"}) == nullptr) {
    PodRef predecessor{ref.ns, ref.name, src->uid};
    if (auto s = co_await deletePod(predecessor, kOwnGracePeriod); !s.ok()) {
      co_return s;
    }
  }
  co_return Error::make(ErrorCode::kUnavailable, kPredecessorTerminating,
                        "waiting for the previous pod of this name to stop on the backend");
}

asio::awaitable<Status> CciProvider::createPod(Json pod) {
  const PodRef ref = podRefOf(pod);
  const std::string podKey = ref.key();
  const std::string name = backendName(ref.ns, ref.name);
  if (auto existing = backendPod(name)) {
    auto src = sourceRefOf(*existing);
    if (src && src->uid == ref.uid) {
      co_return okStatus();  // a repeated create (restart, retry)
    }
    if (src) {
      co_return co_await awaitPredecessor(ref, *existing);
    }
    co_return Error::make(ErrorCode::kAlreadyExists, "AlreadyExists",
                          fmt::format("backend pod {} is not one of burstlet's", name));
  }
  auto claims = co_await claimsOf(pod);
  if (!claims.ok()) {
    co_return std::move(claims).error();
  }
  const auto& claimMap = *claims;
  ClaimLookup lookup = [&claimMap](const std::string& claim) -> std::optional<ClaimInfo> {
    auto it = claimMap.find(claim);
    return it == claimMap.end() ? std::nullopt : std::optional<ClaimInfo>(it->second.info);
  };
  if (auto s = admit(pod, options_.validate, lookup); !s.ok()) {
    co_return s;
  }

  std::set<std::string> all;
  std::set<std::string> required;
  referencesOf(pod, &all, &required);
  // The copies this create needs stay out of the sweep's reach until it is done.
  std::vector<std::string> held;
  for (const auto& id : all) {
    const auto slash = id.find('/');
    held.push_back(
        copyId(id.substr(0, slash), copyName(options_.nodeName, ref.ns, id.substr(slash + 1))));
  }
  // And the volumes of its claims: the sweep must not delete one between ensureClaim's look at
  // it and the claim copy that binds it.
  for (const auto& [claim, read] : claimMap) {
    if (read.pv) {
      held.push_back(copyId("PersistentVolume", backendPersistentVolumeName(
                                                    options_.backendNamespace, options_.nodeName,
                                                    kube::objectName(*read.pv))));
    }
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& id : held) {
      ++inUse_[id];
      marked_.erase(id);
    }
  }
  auto release = [this, &held] {
    std::lock_guard lock(mu_);
    for (const auto& id : held) {
      if (--inUse_[id] <= 0) {
        inUse_.erase(id);
      }
    }
  };
  // A copy the sweep is deleting right now is made again once that delete is done.
  while (!stopped_) {
    bool busy = false;
    {
      std::lock_guard lock(mu_);
      for (const auto& id : held) {
        busy = busy || deleting_.count(id) != 0;
      }
    }
    if (!busy) {
      break;
    }
    co_await sleepFor(std::chrono::milliseconds(20));
  }
  for (const auto& id : all) {
    const auto slash = id.find('/');
    const std::string kind = id.substr(0, slash);
    const std::string source = id.substr(slash + 1);
    Status s = okStatus();
    if (kind == "PersistentVolumeClaim") {
      // Validation passed, so every claim the pod mounts was read.
      s = co_await ensureClaim(ref.ns, source, claimMap.at(source));
    } else {
      const bool optional = required.count(id) == 0;
      s = co_await ensureCopy(kind, ref.ns, source, optional, podKey);
    }
    if (!s.ok()) {
      release();
      co_return s;
    }
  }
  auto translated = toBackendPod(pod, translate_);
  if (!translated.ok()) {
    release();
    co_return std::move(translated).error();
  }
  std::string bns = options_.backendNamespace;
  auto created = co_await backend_.create(resources::kPods, bns, std::move(*translated));
  if (!created.ok()) {
    if (created.error().code != ErrorCode::kAlreadyExists) {
      release();
      co_return std::move(created).error();
    }
    // Created by an earlier attempt whose answer was lost: ours if it carries this uid.
    auto got = co_await backend_.get(resources::kPods, bns, name);
    release();
    if (!got.ok()) {
      co_return std::move(got).error();
    }
    auto src = sourceRefOf(*got);
    if (src && src->uid == ref.uid) {
      std::lock_guard lock(mu_);
      if (!pods_->store().get(bns + "/" + name)) {  // else the informer has it already
        recent_[name] =
            Recent{std::make_shared<const json::value>(std::move(*got)), clock_.steadyNow()};
      }
      co_return okStatus();
    }
    if (src) {
      co_return co_await awaitPredecessor(ref, *got);
    }
    co_return Error::make(ErrorCode::kAlreadyExists, "AlreadyExists",
                          fmt::format("backend pod {} is not one of burstlet's", name));
  }
  stats_.podCreates.fetch_add(1);
  {
    std::lock_guard lock(mu_);
    if (!pods_->store().get(bns + "/" + name)) {
      recent_[name] =
          Recent{std::make_shared<const json::value>(std::move(*created)), clock_.steadyNow()};
    }
  }
  release();
  co_return okStatus();
}

asio::awaitable<Status> CciProvider::updatePod(Json pod) {
  const PodRef ref = podRefOf(pod);
  const std::string name = backendName(ref.ns, ref.name);
  auto existing = backendPod(name);
  if (!existing) {
    co_return Error::make(ErrorCode::kNotFound, "NotFound",
                          fmt::format("backend pod {} not found", name));
  }
  // The backend pod of that name may belong to an earlier pod of that name (being replaced):
  // an update meant for this one never touches it, and every write carries the backend pod's
  // UID as a precondition.
  if (auto src = sourceRefOf(*existing); !src || (!ref.uid.empty() && src->uid != ref.uid)) {
    co_return Error::make(ErrorCode::kNotFound, "NotFound",
                          fmt::format("backend pod {} belongs to another pod", name));
  }
  const std::string backendUid(kube::objectUid(*existing));
  // The same normalization as at create, so its annotations are not seen as removed.
  if (auto n = normalizePod(pod); !n.ok()) {
    co_return std::move(n).error();
  }
  auto translated = toBackendPod(pod, translate_);
  if (!translated.ok()) {
    co_return std::move(translated).error();
  }
  // Labels and annotations: set the new ones, remove (null) the ones that went away; images
  // by container name (strategic merge keys containers by name).
  json::object metadata;
  const auto previous = sourceKeysOf(*existing);
  for (const char* key : {"labels", "annotations"}) {
    json::object patch;
    const auto* want = at(*translated, {"metadata", key});
    const auto* have = at(*existing, {"metadata", key});
    const bool isLabels = std::string_view(key) == "labels";
    if (have != nullptr && have->is_object()) {
      for (const auto& [k, v] : have->as_object()) {
        if (want != nullptr && want->is_object() && want->as_object().contains(k)) {
          continue;
        }
        // Only keys that came from the source go; the backend's own keys stay.
        const std::string name(k);
        if (previous && (isLabels ? previous->labels : previous->annotations).count(name) == 0) {
          continue;
        }
        patch[k] = nullptr;
      }
    }
    if (want != nullptr && want->is_object()) {
      for (const auto& [k, v] : want->as_object()) {
        patch[k] = v;
      }
    }
    metadata[key] = std::move(patch);
  }
  json::object spec;
  for (const char* list : {"initContainers", "containers"}) {
    if (const auto* cs = arrayAt(*translated, {"spec", list})) {
      json::array images;
      for (const auto& c : *cs) {
        images.push_back(
            json::object{{"name", stringAt(c, {"name"})}, {"image", stringAt(c, {"image"})}});
      }
      spec[list] = std::move(images);
    }
  }
  const json::value patch{{"metadata", std::move(metadata)}, {"spec", std::move(spec)}};
  std::string bns = options_.backendNamespace;
  // A call that only adds ephemeral containers changes nothing here: no write.
  if (patchChanges(*existing, patch)) {
    json::value guarded = patch;
    guarded.as_object()["metadata"].as_object()["uid"] = backendUid;
    std::string body = json::serialize(guarded);
    auto patched = co_await backend_.patch(resources::kPods, bns, name,
                                           kube::PatchType::kStrategicMerge, std::move(body));
    if (!patched.ok()) {
      co_return std::move(patched).error();
    }
    existing = rememberUpdate(name, std::move(*patched));
  }
  const json::array added =
      missingEphemeralContainers(*existing, toBackendEphemeralContainers(pod, translate_));
  if (added.empty()) {
    co_return okStatus();
  }
  // The subresource kubectl debug uses; strategic merge keys ephemeral containers by name, so
  // the ones there stay as they are.
  // (No UID here: the subresource keeps nothing but the ephemeral containers of a patch; the
  // backend pod was checked above to be this pod's.)
  std::string body =
      json::serialize(json::object{{"spec", json::object{{"ephemeralContainers", added}}}});
  std::string subresource = "ephemeralcontainers";
  auto patched =
      co_await backend_.patch(resources::kPods, bns, name, kube::PatchType::kStrategicMerge,
                              std::move(body), std::move(subresource));
  const std::string backend = fmt::format("{} (namespace {})", backend_.config().server, bns);
  if (!patched.ok()) {
    const Error& e = patched.error();
    if (e.code == ErrorCode::kNotFound) {
      // No such route, or no such pod any more: only the second is worth a retry.
      auto again = co_await backend_.get(resources::kPods, bns, name);
      if (!again.ok()) {
        co_return std::move(again).error();
      }
      co_return ephemeralContainersNotSupported(backend, ref.key(), added,
                                                "HTTP 404 on pods/ephemeralcontainers");
    }
    if (e.reason == "MethodNotAllowed") {
      co_return ephemeralContainersNotSupported(backend, ref.key(), added,
                                                "HTTP 405 on pods/ephemeralcontainers");
    }
    co_return std::move(patched).error();
  }
  if (!hasEphemeralContainers(*patched, added)) {
    co_return ephemeralContainersNotSupported(backend, ref.key(), added,
                                              "the request was accepted but added nothing");
  }
  rememberUpdate(name, std::move(*patched));
  co_return okStatus();
}

kube::ObjectPtr CciProvider::rememberUpdate(const std::string& name, Json pod) {
  auto updated = std::make_shared<const json::value>(std::move(pod));
  std::lock_guard lock(mu_);
  if (auto it = recent_.find(name); it != recent_.end()) {
    it->second.pod = updated;
  }
  return updated;
}

asio::awaitable<Status> CciProvider::deletePod(PodRef pod, int64_t gracePeriodSeconds) {
  const std::string name = backendName(pod.ns, pod.name);
  {
    std::lock_guard lock(mu_);
    const std::string key = pod.key();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      it->second.erase(key);
      it = it->second.empty() ? waiting_.erase(it) : std::next(it);
    }
  }
  std::string bns = options_.backendNamespace;
  kube::ObjectPtr existing = backendPod(name);
  if (!existing) {
    // The informer may not show a pod created a moment ago by an earlier process.
    auto got = co_await backend_.get(resources::kPods, bns, name);
    if (!got.ok()) {
      co_return got.error().code == ErrorCode::kNotFound ? okStatus() : Status(got.error());
    }
    existing = std::make_shared<const json::value>(std::move(*got));
  }
  auto src = sourceRefOf(*existing);
  if (!src || (!pod.uid.empty() && src->uid != pod.uid)) {
    co_return okStatus();  // the name belongs to another pod now
  }
  if (at(*existing, {"metadata", "deletionTimestamp"}) != nullptr) {
    // Already terminating: a second delete only costs a write, unless it shortens the grace.
    const auto* g = at(*existing, {"metadata", "deletionGracePeriodSeconds"});
    if (gracePeriodSeconds < 0 || g == nullptr || !g->is_int64() ||
        g->as_int64() <= gracePeriodSeconds) {
      co_return okStatus();
    }
  }
  kube::DeleteOptions o;
  if (gracePeriodSeconds >= 0) {
    o.gracePeriodSeconds = gracePeriodSeconds;  // else the backend pod's own
  }
  o.preconditionUid = std::string(kube::objectUid(*existing));
  auto r = co_await backend_.remove(resources::kPods, bns, name, o);
  if (!r.ok() && r.error().code == ErrorCode::kConflict) {
    // Our view was stale: the backend pod of that name was made again. Delete it if it is
    // still this source pod's.
    auto got = co_await backend_.get(resources::kPods, bns, name);
    if (!got.ok()) {
      co_return got.error().code == ErrorCode::kNotFound ? okStatus() : Status(got.error());
    }
    auto again = sourceRefOf(*got);
    if (!again || (!pod.uid.empty() && again->uid != pod.uid)) {
      co_return okStatus();
    }
    o.preconditionUid = std::string(kube::objectUid(*got));
    r = co_await backend_.remove(resources::kPods, bns, name, o);
  }
  if (!r.ok() && r.error().code != ErrorCode::kNotFound && r.error().code != ErrorCode::kConflict) {
    co_return std::move(r).error();
  }
  stats_.podDeletes.fetch_add(1);
  std::lock_guard lock(mu_);
  recent_.erase(name);
  co_return okStatus();
}

asio::awaitable<Result<Json>> CciProvider::getPod(PodRef pod) {
  const std::string name = backendName(pod.ns, pod.name);
  auto existing = backendPod(name);
  if (existing) {
    auto src = sourceRefOf(*existing);
    if (src && (pod.uid.empty() || src->uid == pod.uid)) {
      co_return toSourcePod(*existing, nullptr, translate_);
    }
  }
  co_return Error::make(ErrorCode::kNotFound, "NotFound",
                        fmt::format("pod {} not found on the backend", pod.key()));
}

asio::awaitable<Result<std::vector<Json>>> CciProvider::listPods() {
  std::vector<Json> out;
  std::set<std::string> seen;
  for (const auto& p : pods_->store().list()) {
    if (sourceRefOf(*p)) {
      seen.insert(std::string(kube::objectName(*p)));
      out.push_back(toSourcePod(*p, nullptr, translate_));
    }
  }
  std::lock_guard lock(mu_);
  for (const auto& [name, r] : recent_) {
    if (seen.count(name) == 0 && sourceRefOf(*r.pod)) {
      out.push_back(toSourcePod(*r.pod, nullptr, translate_));
    }
  }
  co_return out;
}

}  // namespace burstlet::provider::cci
