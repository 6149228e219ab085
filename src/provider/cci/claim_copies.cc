#include "provider/cci/claim_copies.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/cci_errors.h"
#include "provider/cci/claims.h"
#include "provider/cci/references.h"
#include "provider/cci/storage_import.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;
using kube::arrayAt;
using kube::stringAt;

ClaimCopies::ClaimCopies(kube::RestClient& backend, ClusterObjects& cluster,
                         const kube::Store& copies, CopyLedger& ledger, const CciOptions& options,
                         CciStats& stats)
    : backend_(backend),
      cluster_(cluster),
      copies_(copies),
      ledger_(ledger),
      backendNamespace_(options.backendNamespace),
      nodeName_(options.nodeName),
      clusterID_(options.clusterID),
      translate_(translateOptionsOf(options)),
      cci_(options.cci),
      stats_(stats) {}

asio::awaitable<Result<PodClaims>> ClaimCopies::read(const json::value& pod) {
  PodClaims out;
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
    auto read = co_await readOne(ns, claim);
    if (!read.ok()) {
      if (read.error().code == ErrorCode::kNotFound) {
        continue;  // validation answers ClaimNotFound (retried)
      }
      co_return std::move(read).error();
    }
    out.emplace(claim, std::move(*read));
  }
  co_return out;
}

asio::awaitable<Result<ReadClaim>> ClaimCopies::readOne(const std::string& ns,
                                                        const std::string& claim) {
  auto pvc = co_await cluster_.persistentVolumeClaim(ns, claim);
  if (!pvc.ok()) {
    co_return std::move(pvc).error();
  }
  ReadClaim read;
  read.info.storageClass = stringAt(*pvc, {"spec", "storageClassName"});
  std::string volume = stringAt(*pvc, {"spec", "volumeName"});
  Status s = okStatus();
  if (!volume.empty()) {
    s = co_await readVolume(claim, volume, read);
  } else if (!read.info.storageClass.empty()) {
    s = co_await readStorageClass(claim, read);
  }
  if (!s.ok()) {
    co_return std::move(s).error();
  }
  read.pvc = std::move(*pvc);
  co_return read;
}

asio::awaitable<Status> ClaimCopies::readVolume(const std::string& claim, const std::string& volume,
                                                ReadClaim& read) {
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
  read.info.driver = stringAt(*pv, {"spec", "csi", "driver"});
  if (read.info.storageClass.empty()) {
    read.info.storageClass = stringAt(*pv, {"spec", "storageClassName"});
  }
  if (cci_) {
    read.info.notImportable = notImportable(*pv);
  }
  read.pv = std::move(*pv);
  co_return okStatus();
}

asio::awaitable<Status> ClaimCopies::readStorageClass(const std::string& claim, ReadClaim& read) {
  std::string cls = read.info.storageClass;
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
  read.info.driver = stringAt(*sc, {"parameters", "csi.storage.k8s.io/csi-driver-name"});
  if (read.info.driver.empty()) {
    read.info.driver = stringAt(*sc, {"provisioner"});
  }
  co_return okStatus();
}

asio::awaitable<Status> ClaimCopies::ensure(const std::string& ns, const std::string& claim,
                                            const ReadClaim& read) {
  const json::value& pvc = read.pvc;
  const std::string name = copyName(nodeName_, ns, claim);
  auto existing = copies_.get(backendNamespace_ + "/" + name);
  if (ledger_.gone(copyId("PersistentVolumeClaim", name))) {
    existing = nullptr;  // deleted by the sweep; the informer has not shown it yet
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
  if (cci_) {
    co_return co_await importClaim(ns, claim, name, read);
  }
  if (auto s = co_await ensureVolume(pvc, *read.pv); !s.ok()) {
    co_return s;
  }
  auto backendPvc = toBackendPersistentVolumeClaim(pvc, *read.pv, translate_);
  if (!backendPvc.ok()) {
    co_return std::move(backendPvc).error();
  }
  std::string bns = backendNamespace_;
  auto createdPvc =
      co_await backend_.create(resources::kPersistentVolumeClaims, bns, std::move(*backendPvc));
  if (!createdPvc.ok() && createdPvc.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(createdPvc).error();
  }
  stats_.copyCreates.fetch_add(1);
  co_return okStatus();
}

asio::awaitable<Status> ClaimCopies::ensureVolume(const json::value& pvc, const json::value& pv) {
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
    labels.as_object()[kClusterIdLabel] = clusterID_;
  }
  std::string none;
  json::value wanted = *backendPv;
  auto created =
      co_await backend_.create(resources::kPersistentVolumes, none, std::move(*backendPv));
  if (created.ok()) {
    co_return okStatus();
  }
  if (created.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(created).error();
  }
  // Left by an earlier copy of this claim (the sweep deletes it later), or not ours at all.
  co_return co_await reuseVolume(wanted);
}

asio::awaitable<Status> ClaimCopies::reuseVolume(const json::value& wanted) {
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
    std::string bns = backendNamespace_;
    std::string claim = stringAt(wanted, {"spec", "claimRef", "name"});
    auto live = co_await backend_.get(resources::kPersistentVolumeClaims, bns, claim);
    if (!live.ok() && live.error().code != ErrorCode::kNotFound) {
      co_return std::move(live).error();
    }
    liveClaimUid = live.ok() ? std::string(kube::objectUid(*live)) : "";
  }
  const auto check = checkExistingVolume(*found, wanted, clusterID_, liveClaimUid);
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

asio::awaitable<Status> ClaimCopies::importClaim(const std::string& ns, const std::string& claim,
                                                 const std::string& name, const ReadClaim& read) {
  auto body = toImportedClaim(read.pvc, *read.pv, translate_);
  if (!body.ok()) {
    co_return std::move(body).error();
  }
  const std::string volumeID = stringAt(*body, {"metadata", "annotations", "volumeID"});
  std::string bns = backendNamespace_;
  auto created = co_await backend_.create(kExtendedPersistentVolumeClaims, bns, std::move(*body));
  if (created.ok()) {
    spdlog::info("msg=\"file system imported\" claim={}/{} copy={} volume={}", ns, claim, name,
                 volumeID);
    stats_.copyCreates.fetch_add(1);
    co_return okStatus();
  }
  Error error = std::move(created).error();
  if (error.reason == kVolumeNotFound) {
    // The cluster's volume names a file system CCI does not have (another region or project):
    // asking again changes nothing.
    co_return Error::make(ErrorCode::kInvalid, kVolumeNotFound,
                          fmt::format("persistentvolumeclaim \"{}\": CCI cannot import file "
                                      "system {}: {}",
                                      claim, volumeID, error.message));
  }
  if (error.code != ErrorCode::kAlreadyExists) {
    co_return error;
  }
  // CCI imports a file system once. Ours when the claim copy of that name is this claim's (the
  // answer to an earlier import was lost); the claims informer may not show it yet.
  auto live = co_await backend_.get(resources::kPersistentVolumeClaims, bns, name);
  if (live.ok() && stringAt(*live, {"metadata", "annotations", kSourceUidAnnotation}) ==
                       kube::objectUid(read.pvc)) {
    co_return okStatus();
  }
  if (!live.ok() && live.error().code != ErrorCode::kNotFound) {
    co_return std::move(live).error();
  }
  co_return Error::make(
      ErrorCode::kUnavailable, kVolumeAlreadyImported,
      fmt::format("persistentvolumeclaim \"{}\": file system {} is imported into CCI by another "
                  "claim (CCI imports a file system once); waiting for it to be released: {}",
                  claim, volumeID, error.message));
}

}  // namespace burstlet::provider::cci
