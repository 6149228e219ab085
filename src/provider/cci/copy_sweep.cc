#include "provider/cci/copy_sweep.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/references.h"
#include "provider/cci/storage_import.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;
using kube::arrayAt;
using kube::stringAt;

const kube::Store& CopyStores::of(std::string_view kind) const {
  if (kind == "ConfigMap") {
    return configMaps;
  }
  if (kind == "Secret") {
    return secrets;
  }
  return claims;
}

CopySweep::CopySweep(kube::RestClient& backend, CopyLedger& ledger, CopyStores stores,
                     BackendPodList pods, const CciOptions& options, const Clock& clock,
                     CciStats& stats)
    : backend_(backend),
      ledger_(ledger),
      stores_(stores),
      pods_(std::move(pods)),
      backendNamespace_(options.backendNamespace),
      clusterID_(options.clusterID),
      selector_(ourSelector(options)),
      interval_(options.sweepInterval),
      cci_(options.cci),
      clock_(clock),
      stats_(stats) {}

asio::awaitable<void> CopySweep::run(const Latch& stop) {
  while (true) {
    const bool due = co_await sleepFor(clock_, interval_, &stop);
    if (!due) {
      break;
    }
    if (auto s = co_await pass(stop); !s.ok()) {
      spdlog::warn("msg=\"backend sweep failed\" error=\"{}\"", s.error().toString());
    }
  }
}

asio::awaitable<Status> CopySweep::pass(const Latch& stop) {
  std::set<std::string> referenced;
  for (const auto& p : pods_()) {
    referencesOf(*p, &referenced, nullptr);
  }
  std::set<std::string> liveClaims;
  if (auto s = co_await sweepCopies(referenced, liveClaims, stop); !s.ok()) {
    co_return s;
  }
  if (cci_) {
    co_return okStatus();  // CCI has no volumes of their own: the claim copy is the import
  }
  co_return co_await sweepVolumes(liveClaims, stop);
}

asio::awaitable<Status> CopySweep::sweepCopies(const std::set<std::string>& referenced,
                                               std::set<std::string>& liveClaims,
                                               const Latch& stop) {
  for (const char* kind : {"ConfigMap", "Secret", "PersistentVolumeClaim"}) {
    const std::string k(kind);
    for (const auto& copy : stores_.of(k).list()) {
      if (stop.isSet()) {
        co_return okStatus();
      }
      const std::string name(kube::objectName(*copy));
      const std::string id = copyId(k, name);
      // Decided and announced (deleting) in one step: a create that holds the copy from now on
      // waits until the delete is done, then makes the copy again.
      if (!ledger_.sweepDeletes(id, referenced.count(id) != 0)) {
        if (k == "PersistentVolumeClaim") {
          liveClaims.insert(name);
        }
        continue;
      }
      if (auto s = co_await removeCopy(k, name); !s.ok()) {
        co_return s;
      }
    }
  }
  co_return okStatus();
}

asio::awaitable<Status> CopySweep::removeCopy(const std::string& kind, const std::string& name) {
  std::string bns = backendNamespace_;
  // An imported claim is unbound, never deleted: a plain delete would delete the file system.
  kube::DeleteOptions o =
      cci_ && kind == "PersistentVolumeClaim" ? unbindOptions() : kube::DeleteOptions();
  auto r = co_await backend_.remove(copyResource(kind), bns, name, o);
  const bool gone = r.ok() || r.error().code == ErrorCode::kNotFound;
  ledger_.deleted(copyId(kind, name), gone);  // gone until the informer shows the delete
  if (!gone) {
    co_return std::move(r).error();
  }
  stats_.copyDeletes.fetch_add(1);
  co_return okStatus();
}

asio::awaitable<Status> CopySweep::sweepVolumes(const std::set<std::string>& liveClaims,
                                                const Latch& stop) {
  // Backend volumes whose claim is gone. Retain policy: the file system itself stays.
  kube::ListOptions lo;
  lo.labelSelector = selector_ + fmt::format(",{}={}", kClusterIdLabel, clusterID_);
  std::string none;
  auto pvs = co_await backend_.list(resources::kPersistentVolumes, none, lo);
  if (!pvs.ok()) {
    co_return std::move(pvs).error();
  }
  if (const auto* items = arrayAt(*pvs, {"items"})) {
    for (const auto& pv : *items) {
      if (stop.isSet()) {
        co_return okStatus();
      }
      if (auto s = co_await sweepVolume(pv, liveClaims); !s.ok()) {
        co_return s;
      }
    }
  }
  co_return okStatus();
}

asio::awaitable<Status> CopySweep::sweepVolume(const json::value& pv,
                                               const std::set<std::string>& liveClaims) {
  std::string claim = stringAt(pv, {"spec", "claimRef", "name"});
  std::string pvName(kube::objectName(pv));
  const std::string id = copyId("PersistentVolume", pvName);
  std::string bns = backendNamespace_;
  // Two passes like copies: a volume is made before its claim, which the informer shows later
  // still. Decided and announced in one step, as for copies: a create holding the volume from
  // now on waits for the delete, then makes the volume again.
  const bool used = liveClaims.count(claim) != 0 || stores_.claims.get(bns + "/" + claim);
  if (!ledger_.sweepDeletes(id, used, copyId("PersistentVolumeClaim", claim))) {
    co_return okStatus();
  }
  // Last check against the backend itself, not a cache: the claim must really be gone.
  auto fresh = co_await backend_.get(resources::kPersistentVolumeClaims, bns, claim);
  const bool claimGone = !fresh.ok() && fresh.error().code == ErrorCode::kNotFound;
  Status removed = okStatus();
  if (claimGone) {
    std::string none;
    auto r = co_await backend_.remove(resources::kPersistentVolumes, none, pvName);
    if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
      removed = std::move(r).error();
    }
  }
  ledger_.deleted(id, false);
  if (!claimGone || !removed.ok()) {
    co_return removed;
  }
  stats_.copyDeletes.fetch_add(1);
  co_return okStatus();
}

}  // namespace burstlet::provider::cci
