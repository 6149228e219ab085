// CciProvider: copies of ConfigMaps, Secrets and SFS claims in the backend namespace (ensure,
// refresh when the source changes, sweep what no pod needs).
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
using kube::boolAt;
using kube::stringAt;

using namespace internal;  // NOLINT(google-build-using-namespace): this class's own helpers

namespace {

// Whether two backend copies hold the same content (what sameContent compares for a copy
// and its source).
bool sameCopy(const json::value& a, const json::value& b) {
  for (const char* k : {"data", "binaryData", "type", "immutable"}) {
    const auto* x = at(a, {k});
    const auto* y = at(b, {k});
    if ((x == nullptr) != (y == nullptr) || (x != nullptr && *x != *y)) {
      return false;
    }
  }
  return stringAt(a, {"metadata", "annotations", kSourceUidAnnotation}) ==
         stringAt(b, {"metadata", "annotations", kSourceUidAnnotation});
}

}  // namespace

asio::awaitable<Result<std::map<std::string, CciProvider::Claim>>> CciProvider::claimsOf(
    const Json& pod) {
  std::map<std::string, Claim> out;
  const std::string ns = stringAt(pod, {"metadata", "namespace"});
  const auto* volumes = arrayAt(pod, {"spec", "volumes"});
  if (volumes == nullptr) {
    co_return out;
  }
  for (const auto& v : *volumes) {
    std::string claim = stringAt(v, {"persistentVolumeClaim", "claimName"});
    if (claim.empty() || out.count(claim) != 0) {
      continue;
    }
    auto pvc = co_await cluster_.persistentVolumeClaim(ns, claim);
    if (!pvc.ok()) {
      if (pvc.error().code == ErrorCode::kNotFound) {
        continue;  // validation answers ClaimNotFound (retried)
      }
      co_return std::move(pvc).error();
    }
    Claim read;
    ClaimInfo& info = read.info;
    info.storageClass = stringAt(*pvc, {"spec", "storageClassName"});
    std::string volume = stringAt(*pvc, {"spec", "volumeName"});
    if (!volume.empty()) {
      auto pv = co_await cluster_.persistentVolume(volume);
      if (!pv.ok()) {
        if (pv.error().code == ErrorCode::kNotFound) {
          // Pre-bound to a volume not created yet: may appear, so retried, not refused.
          co_return Error::make(ErrorCode::kUnavailable, "ClaimNotBound",
                                fmt::format("persistentvolumeclaim \"{}\" is bound to volume "
                                            "\"{}\", which does not exist yet",
                                            claim, volume));
        }
        co_return std::move(pv).error();
      }
      info.driver = stringAt(*pv, {"spec", "csi", "driver"});
      if (info.storageClass.empty()) {
        info.storageClass = stringAt(*pv, {"spec", "storageClassName"});
      }
      read.pv = std::move(*pv);
    } else if (!info.storageClass.empty()) {
      std::string cls = info.storageClass;
      auto sc = co_await cluster_.storageClass(cls);
      if (!sc.ok()) {
        if (sc.error().code == ErrorCode::kNotFound) {
          co_return Error::make(ErrorCode::kUnavailable, "StorageClassNotFound",
                                fmt::format("storageclass \"{}\" of persistentvolumeclaim \"{}\" "
                                            "does not exist yet",
                                            cls, claim));
        }
        co_return std::move(sc).error();
      }
      info.driver = stringAt(*sc, {"parameters", "csi.storage.k8s.io/csi-driver-name"});
      if (info.driver.empty()) {
        info.driver = stringAt(*sc, {"provisioner"});
      }
    }
    read.pvc = std::move(*pvc);
    out.emplace(claim, std::move(read));
  }
  co_return out;
}

// One co_await per statement: GCC 12 miscompiles co_await inside a conditional expression.
asio::awaitable<Result<Json>> CciProvider::readSource(const std::string& kind,
                                                      const std::string& ns,
                                                      const std::string& name) {
  if (kind == "ConfigMap") {
    co_return co_await cluster_.configMap(ns, name);
  }
  co_return co_await cluster_.secret(ns, name);
}

asio::awaitable<Status> CciProvider::writeCopy(const std::string& kind, const Json& copy,
                                               bool exists) {
  auto s = co_await writeCopyOnce(kind, copy, exists);
  if (!s.ok() && s.error().code == ErrorCode::kInvalid) {
    // A backend refusing a copy is not the pod's fault: retried, never a permanent rejection.
    co_return Error::make(ErrorCode::kUnavailable, "CopyFailed",
                          fmt::format("the backend refused the copy {}: {}",
                                      stringAt(copy, {"metadata", "name"}), s.error().message));
  }
  co_return s;
}

asio::awaitable<Status> CciProvider::writeCopyOnce(const std::string& kind, const Json& copy,
                                                   bool exists) {
  const kube::ResourceRef& ref =
      kind == "ConfigMap"
          ? resources::kConfigMaps
          : (kind == "Secret" ? resources::kSecrets : resources::kPersistentVolumeClaims);
  std::string ns = options_.backendNamespace;
  std::string name = stringAt(copy, {"metadata", "name"});
  if (!exists) {
    Json body = copy;
    auto created = co_await backend_.create(ref, ns, std::move(body));
    if (created.ok()) {
      stats_.copyCreates.fetch_add(1);
      std::lock_guard lock(mu_);
      gone_.erase(copyId(kind, name));
      co_return okStatus();
    }
    if (created.error().code != ErrorCode::kAlreadyExists) {
      co_return std::move(created).error();
    }
    // Another create made it a moment ago (pods sharing a ConfigMap start together): a read
    // is cheaper than a write when it already holds the same content.
    auto current = co_await backend_.get(ref, ns, name);
    if (current.ok() && sameCopy(*current, copy)) {
      co_return okStatus();
    }
  }
  Json body = copy;
  auto updated = co_await backend_.update(ref, ns, name, std::move(body));
  if (updated.ok()) {
    stats_.copyUpdates.fetch_add(1);
    co_return okStatus();
  }
  if (updated.error().code != ErrorCode::kInvalid) {
    co_return std::move(updated).error();
  }
  // An immutable copy refuses updates (422): its source was deleted and created again, the only
  // way to change an immutable object, so the copy is too. Pods running keep what they mounted.
  // Read fresh: the informer may not show the copy yet.
  auto current = co_await backend_.get(ref, ns, name);
  if (!current.ok() || !boolAt(*current, {"immutable"})) {
    co_return std::move(updated).error();
  }
  kube::DeleteOptions o;
  o.preconditionUid = std::string(kube::objectUid(*current));
  auto removed = co_await backend_.remove(ref, ns, name, o);
  if (!removed.ok() && removed.error().code != ErrorCode::kNotFound) {
    co_return std::move(removed).error();
  }
  Json replacement = copy;
  auto created = co_await backend_.create(ref, ns, std::move(replacement));
  if (!created.ok()) {
    co_return std::move(created).error();
  }
  stats_.copyUpdates.fetch_add(1);
  co_return okStatus();
}

void CciProvider::forgetWaiting(const std::string& source, const std::string& podKey) {
  if (auto it = waiting_.find(source); it != waiting_.end()) {
    it->second.erase(podKey);
    if (it->second.empty()) {
      waiting_.erase(it);
    }
  }
}

asio::awaitable<Status> CciProvider::ensureCopy(const std::string& kind, const std::string& ns,
                                                const std::string& name, bool optional,
                                                const std::string& podKey) {
  const std::string source = fmt::format("{}/{}/{}", kind, ns, name);
  if (!optional) {
    // Registered before the read: an object created between the read and a later
    // registration would wake nobody.
    std::lock_guard lock(mu_);
    waiting_[source].insert(podKey);
  }
  auto object = co_await readSource(kind, ns, name);
  if (!object.ok()) {
    if (object.error().code != ErrorCode::kNotFound || optional) {
      std::lock_guard lock(mu_);
      forgetWaiting(source, podKey);
    }
    if (object.error().code != ErrorCode::kNotFound) {
      co_return std::move(object).error();
    }
    if (optional) {
      co_return okStatus();
    }
    // The kubelet's words for a mount that cannot be set up yet; the pod is retried and woken
    // when the object appears (clusterObjectChanged).
    co_return Error::make(
        ErrorCode::kNotFound, kCreateContainerConfigError,
        fmt::format("{} \"{}\" not found", kind == "ConfigMap" ? "configmap" : "secret", name));
  }
  {
    std::lock_guard lock(mu_);
    forgetWaiting(source, podKey);
  }
  auto copy = kind == "ConfigMap" ? toBackendConfigMap(*object, translate_)
                                  : toBackendSecret(*object, translate_);
  if (!copy.ok()) {
    co_return std::move(copy).error();
  }
  const std::string backendName = stringAt(*copy, {"metadata", "name"});
  auto existing = copiesOf(kind).store().get(options_.backendNamespace + "/" + backendName);
  {
    std::lock_guard lock(mu_);
    if (gone_.count(copyId(kind, backendName)) != 0) {
      existing = nullptr;  // deleted by the sweep; the informer has not shown it yet
    }
  }
  if (existing && sameContent(*existing, *object)) {
    co_return okStatus();
  }
  const bool exists = existing != nullptr;
  if (!exists) {
    co_return co_await writeCopy(kind, *copy, exists);
  }
  // An update takes part in the per-copy order of refreshes (refreshing_/dirty_), so that an
  // older read never lands after a newer one.
  const std::string id = copyId(kind, backendName);
  {
    std::lock_guard lock(mu_);
    if (refreshing_.count(id) != 0) {
      dirty_.insert(id);  // the refresh in flight writes again, with what is current then
      co_return okStatus();
    }
    refreshing_.insert(id);
  }
  auto s = co_await writeCopy(kind, *copy, exists);
  bool again = false;
  {
    std::lock_guard lock(mu_);
    again = dirty_.erase(id) != 0 && !stopped_;
    if (again) {
      ++running_;
    } else {
      refreshing_.erase(id);
    }
  }
  if (again) {
    asio::co_spawn(executor_, refreshCopy(kind, ns, name),
                   [this](const std::exception_ptr&) { --running_; });
  }
  co_return s;
}

asio::awaitable<Status> CciProvider::ensureClaim(const std::string& ns, const std::string& claim,
                                                 const Claim& read) {
  const Json& pvc = read.pvc;
  const std::string name = copyName(options_.nodeName, ns, claim);
  auto existing = claims_->store().get(options_.backendNamespace + "/" + name);
  {
    std::lock_guard lock(mu_);
    if (gone_.count(copyId("PersistentVolumeClaim", name)) != 0) {
      existing = nullptr;  // deleted by the sweep; the informer has not shown it yet
    }
  }
  if (existing) {
    if (stringAt(*existing, {"metadata", "annotations", kSourceUidAnnotation}) ==
        kube::objectUid(pvc)) {
      co_return okStatus();
    }
    // The claim was deleted and created again (another volume): the old copy must go first,
    // which the sweep does once no pod uses it. Never mount the old file system.
    co_return Error::make(
        ErrorCode::kUnavailable, "ClaimReplaced",
        fmt::format("persistentvolumeclaim \"{}\" was replaced; its old backend copy is still in "
                    "use",
                    claim));
  }
  if (!read.pv) {
    co_return Error::make(
        ErrorCode::kUnavailable, "ClaimNotBound",
        fmt::format("persistentvolumeclaim \"{}\" is not bound to a volume yet", claim));
  }
  const Json& pv = *read.pv;
  auto backendPv = toBackendPersistentVolume(pvc, pv, translate_);
  if (!backendPv.ok()) {
    co_return std::move(backendPv).error();
  }
  // Volumes are cluster-scoped: the cluster id tells ours from other clusters' on the backend.
  if (auto& meta = backendPv->as_object()["metadata"]; meta.is_object()) {
    auto& labels = meta.as_object()["labels"];
    if (!labels.is_object()) {
      labels = json::object{};
    }
    labels.as_object()[kClusterIdLabel] = options_.clusterID;
  }
  std::string none;
  Json wantedPv = *backendPv;
  auto createdPv =
      co_await backend_.create(resources::kPersistentVolumes, none, std::move(*backendPv));
  if (!createdPv.ok() && createdPv.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(createdPv).error();
  }
  if (!createdPv.ok()) {
    // Left by an earlier copy of this claim (the sweep deletes it later), or not ours at all.
    if (auto s = co_await reuseVolume(wantedPv); !s.ok()) {
      co_return s;
    }
  }
  auto backendPvc = toBackendPersistentVolumeClaim(pvc, pv, translate_);
  if (!backendPvc.ok()) {
    co_return std::move(backendPvc).error();
  }
  std::string bns = options_.backendNamespace;
  auto createdPvc =
      co_await backend_.create(resources::kPersistentVolumeClaims, bns, std::move(*backendPvc));
  if (!createdPvc.ok() && createdPvc.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(createdPvc).error();
  }
  stats_.copyCreates.fetch_add(1);
  co_return okStatus();
}

asio::awaitable<Status> CciProvider::reuseVolume(const Json& wanted) {
  std::string none;
  std::string pvName = stringAt(wanted, {"metadata", "name"});
  auto found = co_await backend_.get(resources::kPersistentVolumes, none, pvName);
  if (!found.ok()) {
    co_return std::move(found).error();  // deleted meanwhile: the retry makes it again
  }
  // A binding to the claim copy as it exists now (another create made the pair a moment ago)
  // is not stale: read that claim only when the volume is bound at all.
  std::string liveClaimUid;
  if (!stringAt(*found, {"spec", "claimRef", "uid"}).empty()) {
    std::string bns = options_.backendNamespace;
    std::string claim = stringAt(wanted, {"spec", "claimRef", "name"});
    auto live = co_await backend_.get(resources::kPersistentVolumeClaims, bns, claim);
    if (!live.ok() && live.error().code != ErrorCode::kNotFound) {
      co_return std::move(live).error();
    }
    liveClaimUid = live.ok() ? std::string(kube::objectUid(*live)) : "";
  }
  const auto check = checkExistingVolume(*found, wanted, options_.clusterID, liveClaimUid);
  switch (check.verdict) {
    case ExistingVolume::Verdict::kUse:
      co_return okStatus();
    case ExistingVolume::Verdict::kNotOurs:
      co_return Error::make(ErrorCode::kConflict, check.reason, check.message);
    case ExistingVolume::Verdict::kReplaced:
      co_return Error::make(ErrorCode::kUnavailable, check.reason, check.message);
    case ExistingVolume::Verdict::kRebind:
      break;
  }
  std::string body = rebindPatch(*found, wanted);
  auto patched = co_await backend_.patch(resources::kPersistentVolumes, none, pvName,
                                         kube::PatchType::kJsonMerge, std::move(body));
  if (!patched.ok()) {
    co_return std::move(patched).error();  // 409: the PV controller moved first; retried
  }
  spdlog::info("msg=\"backend volume handed to a new claim copy\" volume={} claim={}", pvName,
               stringAt(wanted, {"spec", "claimRef", "name"}));
  co_return okStatus();
}

void CciProvider::clusterObjectChanged(std::string_view kind, const Json& object) {
  const std::string k(kind);
  const std::string ns(kube::objectNamespace(object));
  const std::string name(kube::objectName(object));
  std::set<std::string> wake;
  {
    std::lock_guard lock(mu_);
    if (auto it = waiting_.find(fmt::format("{}/{}/{}", k, ns, name)); it != waiting_.end()) {
      wake = std::move(it->second);
      waiting_.erase(it);
    }
  }
  std::function<void(const PodRef&)> cb;
  {
    std::lock_guard lock(mu_);
    cb = callback_;
  }
  if (cb) {
    for (const auto& key : wake) {
      const auto slash = key.find('/');
      cb(PodRef{key.substr(0, slash), key.substr(slash + 1), ""});
    }
  }
  if (k != "ConfigMap" && k != "Secret") {
    return;
  }
  const std::string copy = copyName(options_.nodeName, ns, name);
  const std::string id = copyId(k, copy);
  {
    std::lock_guard lock(mu_);
    if (stopped_) {
      return;
    }
    const bool copied = copiesOf(k).store().get(options_.backendNamespace + "/" + copy) != nullptr;
    if (!copied && inUse_.count(id) == 0) {
      return;  // no copy, none being made: nothing on the backend to follow
    }
    // One refresh per copy at a time, repeated while changes keep coming, so an older read
    // never overwrites a newer one.
    if (refreshing_.count(id) != 0) {
      dirty_.insert(id);
      return;
    }
    refreshing_.insert(id);
    ++running_;
  }
  asio::co_spawn(executor_, refreshCopy(k, ns, name),
                 [this](const std::exception_ptr&) { --running_; });
}

asio::awaitable<void> CciProvider::refreshCopy(std::string kind, std::string ns, std::string name) {
  const std::string id = copyId(kind, copyName(options_.nodeName, ns, name));
  while (true) {
    co_await refreshCopyOnce(kind, ns, name);
    std::lock_guard lock(mu_);
    if (dirty_.erase(id) == 0 || stopped_) {
      refreshing_.erase(id);
      dirty_.erase(id);
      break;
    }
  }
}

asio::awaitable<void> CciProvider::refreshCopyOnce(const std::string& kind, const std::string& ns,
                                                   const std::string& name) {
  auto object = co_await readSource(kind, ns, name);
  if (!object.ok()) {
    co_return;  // deleted: the copy stays while pods use it, as a kubelet keeps the files
  }
  auto existing = copiesOf(kind).store().get(options_.backendNamespace + "/" +
                                             copyName(options_.nodeName, ns, name));
  if (!existing || sameContent(*existing, *object)) {
    co_return;
  }
  auto copy = kind == "ConfigMap" ? toBackendConfigMap(*object, translate_)
                                  : toBackendSecret(*object, translate_);
  if (!copy.ok()) {
    co_return;
  }
  const bool exists = true;
  auto s = co_await writeCopy(kind, *copy, exists);
  if (!s.ok()) {
    spdlog::warn("msg=\"could not update backend copy\" kind={} source={}/{} error=\"{}\"", kind,
                 ns, name, s.error().toString());
    co_return;
  }
  spdlog::info("msg=\"updated backend copy\" kind={} source={}/{}", kind, ns, name);
}

asio::awaitable<void> CciProvider::sweepLoop() {
  while (!stopped_) {
    const auto next = clock_.steadyNow() + options_.sweepInterval;
    while (!stopped_ && clock_.steadyNow() < next) {
      co_await sleepFor(std::chrono::milliseconds(100));
    }
    if (stopped_) {
      break;
    }
    if (auto s = co_await sweep(); !s.ok()) {
      spdlog::warn("msg=\"backend sweep failed\" error=\"{}\"", s.error().toString());
    }
  }
}

asio::awaitable<Status> CciProvider::sweep() {
  std::set<std::string> referenced;
  for (const auto& p : pods_->store().list()) {
    referencesOf(*p, &referenced, nullptr);
  }
  {
    std::lock_guard lock(mu_);
    const auto now = clock_.steadyNow();
    for (auto it = recent_.begin(); it != recent_.end();) {
      if (now - it->second.at > kRecentTtl) {
        it = recent_.erase(it);
        continue;
      }
      referencesOf(*it->second.pod, &referenced, nullptr);
      ++it;
    }
  }
  std::string bns = options_.backendNamespace;
  std::set<std::string> liveClaims;
  for (const char* kind : {"ConfigMap", "Secret", "PersistentVolumeClaim"}) {
    const std::string k(kind);
    const kube::ResourceRef& ref =
        k == "ConfigMap"
            ? resources::kConfigMaps
            : (k == "Secret" ? resources::kSecrets : resources::kPersistentVolumeClaims);
    for (const auto& copy : copiesOf(k).store().list()) {
      if (stopped_) {
        co_return okStatus();
      }
      const std::string name(kube::objectName(*copy));
      const std::string id = copyId(k, name);
      bool remove = false;
      {
        // Decided and announced (deleting_) under one lock: a create that holds the copy from
        // now on waits until the delete is done, then makes the copy again.
        std::lock_guard lock(mu_);
        if (referenced.count(id) != 0 || inUse_.count(id) != 0 || gone_.count(id) != 0) {
          marked_.erase(id);
        } else if (marked_.count(id) != 0) {
          remove = true;
          deleting_.insert(id);
        } else {
          marked_.insert(id);
        }
      }
      if (!remove) {
        if (k == "PersistentVolumeClaim") {
          liveClaims.insert(name);
        }
        continue;
      }
      auto r = co_await backend_.remove(ref, bns, name);
      std::lock_guard lock(mu_);
      deleting_.erase(id);
      marked_.erase(id);
      if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
        co_return std::move(r).error();
      }
      gone_.insert(id);  // until the informer shows the delete
      stats_.copyDeletes.fetch_add(1);
    }
  }
  // Backend volumes whose claim is gone. Retain policy: the file system itself stays.
  kube::ListOptions lo;
  lo.labelSelector =
      ourSelector(options_) + fmt::format(",{}={}", kClusterIdLabel, options_.clusterID);
  std::string none;
  auto pvs = co_await backend_.list(resources::kPersistentVolumes, none, lo);
  if (!pvs.ok()) {
    co_return std::move(pvs).error();
  }
  if (const auto* items = arrayAt(*pvs, {"items"})) {
    for (const auto& pv : *items) {
      if (stopped_) {
        co_return okStatus();
      }
      const std::string claim = stringAt(pv, {"spec", "claimRef", "name"});
      std::string pvName(kube::objectName(pv));
      const std::string id = copyId("PersistentVolume", pvName);
      std::string claimKey = bns;
      claimKey.append("/").append(claim);
      bool remove = false;
      {
        // Two passes like copies: a volume is made before its claim, which the informer shows
        // later still. Decided and announced (deleting_) under one lock, as for copies: a create
        // holding the volume from now on waits for the delete, then makes the volume again.
        std::lock_guard lock(mu_);
        const bool used = liveClaims.count(claim) != 0 || claims_->store().get(claimKey) ||
                          inUse_.count(copyId("PersistentVolumeClaim", claim)) != 0 ||
                          inUse_.count(id) != 0;
        if (used) {
          marked_.erase(id);
        } else if (marked_.count(id) != 0) {
          remove = true;
          deleting_.insert(id);
        } else {
          marked_.insert(id);
        }
      }
      if (!remove) {
        continue;
      }
      // Last check against the backend itself, not a cache: the claim must really be gone.
      auto fresh = co_await backend_.get(resources::kPersistentVolumeClaims, bns, claim);
      const bool claimGone = !fresh.ok() && fresh.error().code == ErrorCode::kNotFound;
      Status removed = okStatus();
      if (claimGone) {
        auto r = co_await backend_.remove(resources::kPersistentVolumes, none, pvName);
        if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
          removed = std::move(r).error();
        }
      }
      {
        std::lock_guard lock(mu_);
        marked_.erase(id);
        deleting_.erase(id);
      }
      if (!claimGone) {
        continue;
      }
      if (!removed.ok()) {
        co_return removed;
      }
      stats_.copyDeletes.fetch_add(1);
    }
  }
  co_return okStatus();
}

}  // namespace burstlet::provider::cci
