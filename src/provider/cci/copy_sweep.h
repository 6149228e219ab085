// CopySweep: deletes the copies no backend pod references any more, and the backend volumes
// whose claim copy is gone, every sweepInterval. A copy goes only when two sweeps in a row find
// it unused and no create holds it (CopyLedger), so a pod being created is never robbed of its
// copy. Volumes are deleted only after a last look at the backend itself; their reclaim policy
// is Retain, so the file systems stay.
//
// Owns no state of its own: the marks are in the CopyLedger, what exists in the informers'
// stores and the backend pods come from BackendPods (all owned by others). One sweep runs at a
// time (run() is its only caller); its coroutines run on a strand.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/copy_ledger.h"

namespace burstlet::provider::cci {

// The backend's copies as the copies' informers show them.
struct CopyStores {
  const kube::Store& configMaps;
  const kube::Store& secrets;
  const kube::Store& claims;

  // By kind: "ConfigMap", "Secret", else claims.
  const kube::Store& of(std::string_view kind) const;
};

class CopySweep {
 public:
  // Every backend pod of the node (those the pods informer shows and those just created).
  using BackendPodList = std::function<std::vector<kube::ObjectPtr>()>;

  // All must outlive this.
  CopySweep(kube::RestClient& backend, CopyLedger& ledger, CopyStores stores, BackendPodList pods,
            const CciOptions& options, const Clock& clock, CciStats& stats);

  // A pass every sweepInterval on the clock, until `stop` is set.
  boost::asio::awaitable<void> run(const Latch& stop);
  // One pass; ends early (ok) when `stop` is set.
  boost::asio::awaitable<Status> pass(const Latch& stop);

 private:
  // Copies (ConfigMaps, Secrets, claims) no pod references. Adds the claim copies kept to
  // `liveClaims`.
  boost::asio::awaitable<Status> sweepCopies(const std::set<std::string>& referenced,
                                             std::set<std::string>& liveClaims, const Latch& stop);
  // Deletes a copy the ledger gave up (sweepDeletes).
  boost::asio::awaitable<Status> removeCopy(const std::string& kind, const std::string& name);
  boost::asio::awaitable<Status> sweepVolumes(const std::set<std::string>& liveClaims,
                                              const Latch& stop);
  boost::asio::awaitable<Status> sweepVolume(const boost::json::value& pv,
                                             const std::set<std::string>& liveClaims);

  kube::RestClient& backend_;
  CopyLedger& ledger_;
  const CopyStores stores_;
  const BackendPodList pods_;
  const std::string backendNamespace_;
  const std::string clusterID_;
  const std::string selector_;
  const std::chrono::milliseconds interval_;
  // CCI mode: claim copies are imports, unbound rather than deleted; no volumes to sweep.
  const bool cci_;
  const Clock& clock_;
  CciStats& stats_;
};

}  // namespace burstlet::provider::cci
