// What the admission webhook reads from informer caches rather than the API server: the
// owners a pod's burst label may sit on (ReplicaSets, Deployments, StatefulSets, Jobs,
// CronJobs; labels and owner references only), the BurstProfiles (once their CRD is served),
// and, for the profiles' maxNum, the pods profiles placed and the virtual nodes
// (admission::ProfileLedger), with the loop that lets held-back pods burst.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "admission/burst_grants.h"
#include "admission/profile.h"
#include "admission/profile_ledger.h"
#include "admission/webhook.h"
#include "common/clock.h"
#include "common/wait.h"
#include "kube/informer.h"
#include "kube/rest.h"

namespace burstlet::daemon {

// Owners from informer caches; one read through `fallback` when the cache misses (not synced
// yet, or an owner created a moment ago that the watch has not brought).
class CachedOwnerSource final : public admission::OwnerSource {
 public:
  // Informers by resource plural ("replicasets", ...); all must outlive this.
  CachedOwnerSource(std::map<std::string, kube::Informer*> informers,
                    admission::OwnerSource& fallback)
      : informers_(std::move(informers)), fallback_(fallback) {}
  boost::asio::awaitable<Result<boost::json::value>> read(const kube::ResourceRef& resource,
                                                          std::string ns,
                                                          std::string name) override;
  uint64_t hits() const { return hits_.load(); }
  uint64_t misses() const { return misses_.load(); }

 private:
  const std::map<std::string, kube::Informer*> informers_;
  admission::OwnerSource& fallback_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

class AdmissionCaches {
 public:
  // `cluster` and `fallback` must outlive this.
  AdmissionCaches(kube::RestClient& cluster, admission::OwnerSource& fallback,
                  const admission::PlacementOptions& options, const Clock& clock);

  CachedOwnerSource& owners() { return *owners_; }
  admission::ProfileSources profileSources() { return {&profiles_, &ledger_}; }

  // Starts the informers and the grant loop on strands of `io`.
  void start(boost::asio::io_context& io);
  // Stops them; returns once they have ended.
  boost::asio::awaitable<void> stop();

 private:
  boost::asio::awaitable<void> markLedgerSynced();
  // Runs the profile informer once the API server serves BurstProfiles (checked every minute).
  boost::asio::awaitable<void> runProfilesWhenServed();

  kube::RestClient& cluster_;
  const Clock& clock_;
  std::vector<std::unique_ptr<kube::Informer>> ownerInformers_;
  std::unique_ptr<kube::Informer> profileInformer_;
  std::unique_ptr<kube::Informer> podInformer_;
  std::unique_ptr<kube::Informer> nodeInformer_;
  std::unique_ptr<CachedOwnerSource> owners_;
  admission::ProfileIndex profiles_;
  admission::ProfileLedger ledger_;
  admission::BurstGrants grants_;
  Latch stop_;
  Gate running_;
};

}  // namespace burstlet::daemon
