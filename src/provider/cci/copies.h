// Copies: the ConfigMaps, Secrets and SFS claims the node's pods mount, copied into the backend
// namespace (one copy per source and virtual node, translate.h) and kept as their sources are.
//   ensure  — before a pod is created, every copy it needs is made or brought up to date; a
//             required source that is missing fails the create, and its appearance wakes the pod
//             (SourceWaiters);
//   refresh — the daemon reports every change of a cluster ConfigMap or Secret
//             (sourceChanged): a copy that differs is updated, as a kubelet refreshes mounted
//             ConfigMaps; one refresh per copy at a time, repeated while changes keep coming;
//   sweep   — copies no pod references are deleted (CopySweep).
// Claims go through ClaimCopies. Informers on the backend namespace show the copies there.
//
// Thread-safety: every public member may be called from any thread; coroutines run on a strand.
// `mu_` guards refreshing_ and dirty_; the ledger and the waiters have locks of their own.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/wait.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/claim_copies.h"
#include "provider/cci/cluster_objects.h"
#include "provider/cci/copy_ledger.h"
#include "provider/cci/copy_sweep.h"
#include "provider/cci/pod_copies.h"
#include "provider/cci/source_waiters.h"

namespace burstlet::provider::cci {

class Copies final : public PodCopies {
 public:
  // Wakes a pod (onPodStatusChange): the source it waited for appeared.
  using WakePod = std::function<void(const PodRef&)>;

  // `backend`, `cluster` and `stats` must outlive this. `pods` lists the node's backend pods
  // for the sweep; `wake` is called without locks held.
  Copies(asio::any_io_executor executor, kube::RestClient& backend, ClusterObjects& cluster,
         const CciOptions& options, const Clock& clock, CciStats& stats,
         CopySweep::BackendPodList pods, WakePod wake);
  ~Copies() override;

  // The informers on the backend's copies (ConfigMaps, Secrets, claims), for the owner to run.
  std::vector<kube::Informer*> informers();

  // PodCopies.
  asio::awaitable<Result<PodClaims>> readClaims(const boost::json::value& pod) override;
  asio::awaitable<Result<CopyHold>> ensure(const boost::json::value& pod,
                                           const PodClaims& claims) override;
  void forget(const std::string& podKey) override;

  // A cluster ConfigMap or Secret (`kind`) changed or appeared (its metadata is enough): wakes
  // the pods waiting for it, and refreshes its copy when there is one. Never blocks.
  void sourceChanged(std::string_view kind, const boost::json::value& object);

  // The sweep, every sweepInterval until stop().
  asio::awaitable<void> sweep();
  // Ends the sweep and the refreshes soon; no refresh starts after it. Idempotent.
  void stop();
  // Returns once the refreshes in flight ended (after stop()).
  asio::awaitable<void> drain();

 private:
  // The copies of `ref`'s pod named in `all`, and the backend volumes of its claims: what a
  // create holds.
  std::vector<std::string> heldBy(const PodRef& ref, const std::set<std::string>& all,
                                  const PodClaims& claims) const;
  asio::awaitable<Status> ensureCopy(const std::string& kind, const std::string& ns,
                                     const std::string& name, bool optional,
                                     const std::string& podKey);
  // The source of a copy; a required one that is missing registers `podKey` as waiting.
  asio::awaitable<Result<std::optional<boost::json::value>>> readRequired(
      const std::string& kind, const std::string& ns, const std::string& name, bool optional,
      const std::string& podKey);
  // Updates the copy `id` that exists, in order with the refreshes of that copy.
  asio::awaitable<Status> updateCopy(const std::string& id, const std::string& kind,
                                     const std::string& ns, const std::string& name,
                                     const boost::json::value& copy);
  asio::awaitable<Result<boost::json::value>> readSource(const std::string& kind,
                                                         const std::string& ns,
                                                         const std::string& name);
  Result<boost::json::value> translate(const std::string& kind,
                                       const boost::json::value& source) const;
  kube::ObjectPtr existingCopy(const std::string& kind, const std::string& backendName) const;
  asio::awaitable<Status> writeCopy(const std::string& kind, const boost::json::value& copy,
                                    bool exists);
  asio::awaitable<Status> writeCopyOnce(const std::string& kind, const boost::json::value& copy,
                                        bool exists);
  // Deletes `current`, an immutable copy, and makes `copy` in its place.
  asio::awaitable<Status> replaceCopy(const std::string& kind, const boost::json::value& current,
                                      const boost::json::value& copy);
  // Starts refreshCopy; `id` is in refreshing_ already.
  void spawnRefresh(const std::string& id, const std::string& kind, const std::string& ns,
                    const std::string& name);
  asio::awaitable<void> refreshCopy(std::string id, std::string kind, std::string ns,
                                    std::string name);
  asio::awaitable<void> refreshCopyOnce(const std::string& kind, const std::string& ns,
                                        const std::string& name);

  asio::any_io_executor executor_;
  kube::RestClient& backend_;
  ClusterObjects& cluster_;
  const std::string backendNamespace_;
  const std::string nodeName_;
  const TranslateOptions translate_;
  CciStats& stats_;
  const WakePod wake_;
  std::unique_ptr<kube::Informer> configMaps_;
  std::unique_ptr<kube::Informer> secrets_;
  std::unique_ptr<kube::Informer> claimCopies_;
  CopyLedger ledger_;
  SourceWaiters waiters_;
  ClaimCopies claims_;
  CopySweep sweep_;
  Latch stop_;
  Gate refreshes_;  // refreshCopy coroutines in flight
  std::mutex mu_;   // guards refreshing_ and dirty_
  // Copies (copy ids) being refreshed or updated, and those that changed again meanwhile: the
  // refresh in flight writes again, with what is current then, so an older read never lands
  // after a newer one.
  std::set<std::string> refreshing_;
  std::set<std::string> dirty_;
};

}  // namespace burstlet::provider::cci
