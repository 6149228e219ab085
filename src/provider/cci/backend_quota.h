// BackendQuota: the virtual node's resources from the backend namespace's ResourceQuotas
// (quota_resources.h says how they combine with the configured numbers). An informer follows
// every quota in the namespace (no label selector: the quotas are the operator's or CCI's;
// burstlet only reads them), and the pods informer of this node reports its own pods' changes
// (podChanged), summed as the quota counts them. Each change recomputes the answer; a different
// answer calls the onChange callback, so the node writes it within seconds.
//
// Without a quota, before the first list, and when the quotas cannot be read (403 from CCI or
// RBAC, 401, or a backend without the resource: logged once, asked again every
// kUnreadableRetry), the answer is the configured numbers. Nothing here fails the provider.
//
// mu_ guards own_, resources_ and reported_; callbackMu_ guards callback_ and is held while it
// runs (see Provider::onResourcesChange). run() is one coroutine on a strand.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/wait.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/quota_resources.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

inline const kube::ResourceRef kResourceQuotas{"", "v1", "resourcequotas", true, "ResourceQuota"};

// How long after a refused read the quotas are asked for again (RBAC or CCI's permissions may be
// granted meanwhile).
inline constexpr std::chrono::minutes kUnreadableRetry{5};

class BackendQuota {
 public:
  // `backend` must outlive this.
  BackendQuota(kube::RestClient& backend, const CciOptions& options, const Clock& clock);
  ~BackendQuota();

  // Follows the quotas until stop(). Never fails.
  boost::asio::awaitable<void> run();
  // Ends run() soon. Thread-safe, idempotent.
  void stop();

  // One of this node's backend pods changed: `old` is what it was (null when new), `current`
  // what it is (null when gone). Thread-safe.
  void podChanged(const kube::ObjectPtr& old, const kube::ObjectPtr& current);
  // The node's capacity and allocatable now. Thread-safe.
  NodeResources resources() const;
  // Called when resources() changed (Provider::onResourcesChange). Thread-safe.
  void onChange(std::function<void()> callback);

  // Whether the quotas are followed (listed at least once); false while they cannot be read.
  bool following() const { return informer_->synced(); }

 private:
  // Computes the answer from the quotas and own pods; calls the callback when it changed.
  void recompute();

  kube::RestClient& backend_;
  const std::string namespace_;
  const NodeCapacity cap_;
  const Clock& clock_;
  std::unique_ptr<kube::Informer> informer_;
  Latch stop_;
  mutable std::mutex mu_;
  PodUsage own_;
  NodeResources resources_;
  std::set<std::string> reported_;  // lines of quotas left out, each logged once
  std::mutex callbackMu_;
  std::function<void()> callback_;
};

}  // namespace burstlet::provider::cci
