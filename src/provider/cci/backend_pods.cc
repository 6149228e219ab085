#include "provider/cci/backend_pods.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <set>

#include "kube/json_path.h"
#include "provider/cci/api_fields.h"
#include "provider/cci/normalize.h"
#include "provider/cci/pod_update.h"
#include "provider/cci/validate.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;
using kube::at;

namespace {

Error notOurs(const std::string& name) {
  return Error::make(ErrorCode::kAlreadyExists, "AlreadyExists",
                     fmt::format("backend pod {} is not one of burstlet's", name));
}

Status statusOf(Result<json::value> r) {
  return r.ok() ? okStatus() : Status(std::move(r).error());
}

// A create into the backend namespace while it is deleted (`burstlet cleanup`, a chart's
// uninstall hook, an operator) or once it is gone: the API server answers 403 "unable to create
// new content in namespace ... because it is being terminated", or 404 `namespaces "..." not
// found`. Neither is about the pod: the backend cannot take pods now. As kUnavailable it is
// retried, never shown as a refusal, and never counted as a restart of a lost pod.
Error namespaceUnavailable(Error error, const std::string& ns) {
  if (error.code == ErrorCode::kForbidden &&
      error.message.find("because it is being terminated") != std::string::npos) {
    return Error::make(ErrorCode::kUnavailable, "NamespaceTerminating",
                       fmt::format("backend namespace {} is being deleted: {}", ns, error.message));
  }
  if (error.code == ErrorCode::kNotFound &&
      error.message.find(fmt::format("namespaces \"{}\" not found", ns)) != std::string::npos) {
    return Error::make(ErrorCode::kUnavailable, "NamespaceNotFound",
                       fmt::format("backend namespace {} does not exist: {}", ns, error.message));
  }
  return error;
}

// CCI's limits apply in CCI mode only; a plain Kubernetes backend checks none of them.
ValidateOptions validateOptionsFor(const CciOptions& options) {
  ValidateOptions v = options.validate;
  if (!options.cci) {
    v.limits = CciLimits::none();
  }
  return v;
}

}  // namespace

BackendPods::BackendPods(kube::RestClient& backend, PodCopies& copies, const CciOptions& options,
                         const Clock& clock, CciStats& stats, Notify onChange)
    : backend_(backend),
      copies_(copies),
      backendNamespace_(options.backendNamespace),
      validate_(validateOptionsFor(options)),
      translate_(translateOptionsOf(options)),
      clock_(clock),
      stats_(stats),
      notify_(std::move(onChange)),
      informer_(ownInformer(backend, options, resources::kPods)) {
  informer_->addHandlers(kube::InformerHandlers{
      [this](const kube::ObjectPtr& p) {
        {
          std::lock_guard lock(mu_);
          recent_.erase(std::string(kube::objectName(*p)));
        }
        notify(p);
      },
      [this](const kube::ObjectPtr& old, const kube::ObjectPtr& p) {
        const auto* a = old ? at(*old, {"status"}) : nullptr;
        const auto* b = at(*p, {"status"});
        const bool deleting = at(*p, {"metadata", "deletionTimestamp"}) != nullptr;
        if (a == nullptr || b == nullptr || *a != *b || deleting) {
          notify(p);
        }
      },
      [this](const kube::ObjectPtr& last, bool) { notify(last); }});
}

BackendPods::~BackendPods() = default;

void BackendPods::notify(const kube::ObjectPtr& backendPod) const {
  if (!backendPod) {
    return;
  }
  if (auto ref = sourceRefOf(*backendPod); ref && notify_) {
    notify_(*ref);
  }
}

kube::ObjectPtr BackendPods::find(const std::string& name) const {
  // recent_ first: the informer stores a pod before its handler forgets the recent entry, so
  // this order never misses both.
  {
    std::lock_guard lock(mu_);
    if (auto it = recent_.find(name); it != recent_.end()) {
      return it->second.pod;
    }
  }
  return informer_->store().get(backendNamespace_ + "/" + name);
}

std::vector<kube::ObjectPtr> BackendPods::all() {
  auto out = informer_->store().list();
  std::lock_guard lock(mu_);
  const auto now = clock_.steadyNow();
  for (auto it = recent_.begin(); it != recent_.end();) {
    if (now - it->second.at > kRecentTtl) {
      it = recent_.erase(it);
      continue;
    }
    out.push_back(it->second.pod);
    ++it;
  }
  return out;
}

void BackendPods::remember(const std::string& name, Json pod) {
  std::lock_guard lock(mu_);
  if (!informer_->store().get(backendNamespace_ + "/" + name)) {  // else the informer has it
    recent_[name] = Recent{std::make_shared<const json::value>(std::move(pod)), clock_.steadyNow()};
  }
}

kube::ObjectPtr BackendPods::rememberUpdate(const std::string& name, Json pod) {
  auto updated = std::make_shared<const json::value>(std::move(pod));
  std::lock_guard lock(mu_);
  if (auto it = recent_.find(name); it != recent_.end()) {
    it->second.pod = updated;
  }
  return updated;
}

asio::awaitable<Status> BackendPods::create(Json pod) {
  const PodRef ref = podRefOf(pod);
  const std::string name = backendName(ref.ns, ref.name);
  if (auto existing = find(name)) {
    co_return co_await answerExisting(ref, name, *existing);
  }
  auto claims = co_await copies_.readClaims(pod);
  if (!claims.ok()) {
    co_return std::move(claims).error();
  }
  const auto& claimMap = *claims;
  ClaimLookup lookup = [&claimMap](const std::string& claim) -> std::optional<ClaimInfo> {
    auto it = claimMap.find(claim);
    return it == claimMap.end() ? std::nullopt : std::optional<ClaimInfo>(it->second.info);
  };
  if (const int minor = backendMinor_.load(); minor >= 0) {
    if (auto s = checkBackendFields(pod, minor); !s.ok()) {
      co_return s;
    }
  }
  if (auto s = admit(pod, validate_, lookup); !s.ok()) {
    co_return s;
  }
  auto hold = co_await copies_.ensure(pod, claimMap);
  if (!hold.ok()) {
    co_return namespaceUnavailable(std::move(hold).error(), backendNamespace_);
  }
  auto translated = toBackendPod(pod, translate_);
  if (!translated.ok()) {
    co_return std::move(translated).error();
  }
  co_return co_await post(ref, name, std::move(*translated), *hold);
}

asio::awaitable<Status> BackendPods::answerExisting(const PodRef& ref, const std::string& name,
                                                    const Json& existing) {
  auto src = sourceRefOf(existing);
  if (src && src->uid == ref.uid) {
    co_return okStatus();  // a repeated create (restart, retry)
  }
  if (src) {
    co_return co_await awaitPredecessor(ref, existing);
  }
  co_return notOurs(name);
}

asio::awaitable<Status> BackendPods::awaitPredecessor(const PodRef& ref, const Json& existing) {
  // The backend pod of an earlier pod of this name, gone from the cluster (names are unique):
  // it stops with its own grace period, and this one waits for it.
  auto src = sourceRefOf(existing);
  if (src && at(existing, {"metadata", "deletionTimestamp"}) == nullptr) {
    PodRef predecessor{ref.ns, ref.name, src->uid};
    if (auto s = co_await remove(predecessor, kOwnGracePeriod); !s.ok()) {
      co_return s;
    }
  }
  co_return Error::make(ErrorCode::kUnavailable, kPredecessorTerminating,
                        "waiting for the previous pod of this name to stop on the backend");
}

asio::awaitable<Status> BackendPods::post(const PodRef& ref, const std::string& name,
                                          Json translated, CopyHold& hold) {
  std::string bns = backendNamespace_;
  auto created = co_await backend_.create(resources::kPods, bns, std::move(translated));
  if (!created.ok()) {
    if (created.error().code == ErrorCode::kInvalid && onRefusal_) {
      co_return onRefusal_(std::move(created).error());
    }
    if (created.error().code != ErrorCode::kAlreadyExists) {
      co_return namespaceUnavailable(std::move(created).error(), backendNamespace_);
    }
    co_return co_await adopt(ref, name, hold);
  }
  stats_.podCreates.fetch_add(1);
  remember(name, std::move(*created));
  hold.release();
  co_return okStatus();
}

asio::awaitable<Status> BackendPods::adopt(const PodRef& ref, const std::string& name,
                                           CopyHold& hold) {
  // Created by an earlier attempt whose answer was lost: ours if it carries this uid.
  std::string bns = backendNamespace_;
  auto got = co_await backend_.get(resources::kPods, bns, name);
  hold.release();
  if (!got.ok()) {
    co_return std::move(got).error();
  }
  if (auto src = sourceRefOf(*got); src && src->uid == ref.uid) {
    remember(name, std::move(*got));
    co_return okStatus();
  }
  co_return co_await answerExisting(ref, name, *got);
}

asio::awaitable<Status> BackendPods::update(Json pod) {
  const PodRef ref = podRefOf(pod);
  const std::string name = backendName(ref.ns, ref.name);
  auto existing = find(name);
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
  // The same normalization as at create, so its annotations are not seen as removed.
  if (auto n = normalizePod(pod); !n.ok()) {
    co_return std::move(n).error();
  }
  auto translated = toBackendPod(pod, translate_);
  if (!translated.ok()) {
    co_return std::move(translated).error();
  }
  const json::value patch = labelsAndImagesPatch(*existing, *translated);
  // A call that only adds ephemeral containers changes nothing here: no write.
  if (patchChanges(*existing, patch)) {
    json::value guarded = patch;
    guarded.as_object()["metadata"].as_object()["uid"] = kube::objectUid(*existing);
    std::string body = json::serialize(guarded);
    std::string bns = backendNamespace_;
    auto patched = co_await backend_.patch(resources::kPods, bns, name,
                                           kube::PatchType::kStrategicMerge, std::move(body));
    if (!patched.ok()) {
      co_return std::move(patched).error();
    }
    existing = rememberUpdate(name, std::move(*patched));
  }
  co_return co_await addEphemeralContainers(ref, name, pod, *existing);
}

asio::awaitable<Status> BackendPods::addEphemeralContainers(const PodRef& ref,
                                                            const std::string& name,
                                                            const Json& pod, const Json& existing) {
  const json::array added =
      missingEphemeralContainers(existing, toBackendEphemeralContainers(pod, translate_));
  if (added.empty()) {
    co_return okStatus();
  }
  // The subresource kubectl debug uses; strategic merge keys ephemeral containers by name, so
  // the ones there stay as they are.
  // (No UID here: the subresource keeps nothing but the ephemeral containers of a patch; the
  // backend pod was checked by update() to be this pod's.)
  std::string body =
      json::serialize(json::object{{"spec", json::object{{"ephemeralContainers", added}}}});
  std::string subresource = "ephemeralcontainers";
  std::string bns = backendNamespace_;
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

asio::awaitable<Status> BackendPods::remove(PodRef pod, int64_t gracePeriodSeconds) {
  const std::string name = backendName(pod.ns, pod.name);
  copies_.forget(pod.key());
  std::string bns = backendNamespace_;
  kube::ObjectPtr existing = find(name);
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
  auto removed = co_await backend_.remove(resources::kPods, bns, name, o);
  Status r = statusOf(std::move(removed));
  if (!r.ok() && r.error().code == ErrorCode::kConflict) {
    auto again = co_await removeAgain(pod, name, o);
    if (!again) {
      co_return okStatus();
    }
    r = std::move(*again);
  }
  if (!r.ok() && r.error().code != ErrorCode::kNotFound && r.error().code != ErrorCode::kConflict) {
    co_return r;
  }
  stats_.podDeletes.fetch_add(1);
  std::lock_guard lock(mu_);
  recent_.erase(name);
  co_return okStatus();
}

asio::awaitable<std::optional<Status>> BackendPods::removeAgain(const PodRef& pod,
                                                                const std::string& name,
                                                                kube::DeleteOptions options) {
  // Our view was stale: the backend pod of that name was made again. Delete it if it is still
  // this source pod's.
  std::string bns = backendNamespace_;
  auto got = co_await backend_.get(resources::kPods, bns, name);
  if (!got.ok()) {
    if (got.error().code == ErrorCode::kNotFound) {
      co_return std::nullopt;
    }
    co_return Status(std::move(got).error());
  }
  auto again = sourceRefOf(*got);
  if (!again || (!pod.uid.empty() && again->uid != pod.uid)) {
    co_return std::nullopt;
  }
  options.preconditionUid = std::string(kube::objectUid(*got));
  auto removed = co_await backend_.remove(resources::kPods, bns, name, options);
  co_return statusOf(std::move(removed));
}

kube::ObjectPtr BackendPods::findSource(const PodRef& pod) const {
  auto existing = find(backendName(pod.ns, pod.name));
  if (existing) {
    auto src = sourceRefOf(*existing);
    if (src && (pod.uid.empty() || src->uid == pod.uid)) {
      return existing;
    }
  }
  return nullptr;
}

asio::awaitable<Result<Json>> BackendPods::get(PodRef pod) {
  if (auto existing = findSource(pod)) {
    co_return toSourcePod(*existing, nullptr, translate_);
  }
  co_return Error::make(ErrorCode::kNotFound, "NotFound",
                        fmt::format("pod {} not found on the backend", pod.key()));
}

asio::awaitable<Result<std::vector<Json>>> BackendPods::list() {
  std::vector<Json> out;
  std::set<std::string> seen;
  for (const auto& p : informer_->store().list()) {
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
