// `burstlet cleanup --stop-deployment NAMESPACE/NAME`: burstlet's own Deployment (the chart's
// release) scaled to 0 and its pods waited for before cleanup removes anything. A burstlet that
// still runs makes again what cleanup deletes (a restart loop on the node's pods; with other
// virtual nodes left, cleanup stops with NodeStillRunning), and a helm pre-delete hook runs while
// the release's Deployment still does.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "kube/rest.h"

namespace burstlet::daemon {

struct DeploymentRef {
  std::string ns;
  std::string name;
};

// "<namespace>/<name>"; kInvalid naming the flag otherwise.
Result<DeploymentRef> parseDeploymentRef(std::string_view text);

// A Deployment's spec.selector (matchLabels, matchExpressions with In, NotIn, Exists,
// DoesNotExist) as a labelSelector query; kInvalid for an empty or malformed one (an empty one
// would select every pod of the namespace).
Result<std::string> labelSelectorQuery(const boost::json::value& selector);

struct StopDeploymentReport {
  bool found = false;          // the Deployment existed (a missing one is already stopped)
  int64_t replicasBefore = 0;  // its spec.replicas (0: it was scaled down already)
  std::string selector;        // its pods, as a labelSelector
  int podsAtStart = 0;         // of them, not yet terminal when the wait began
  std::chrono::milliseconds waited{0};
};

// Scales the Deployment to 0 (PATCH deployments/<name>/scale), then polls its pods (its
// spec.selector) every `poll` on `clock` until none is left that may still run (pods Succeeded
// or Failed have no process); a pod terminating counts until it is gone, as its burstlet may still
// write. A missing Deployment is ok (found false). A refusal is kForbidden
// "StopDeploymentForbidden" naming the verb and resource the cluster's RBAC must grant; pods left
// after `timeout` are kTimeout "DeploymentStillRunning" naming them. Retryable errors of a poll
// are tried again at the next one.
boost::asio::awaitable<Result<StopDeploymentReport>> stopDeployment(
    kube::RestClient& cluster, DeploymentRef ref, std::chrono::nanoseconds timeout,
    const Clock& clock, std::chrono::nanoseconds poll);

// What stopping did, in lines for cleanup's output.
std::vector<std::string> describeStop(const StopDeploymentReport& report, const DeploymentRef& ref);

// For `burstlet cleanup`: runs stopDeployment with the real clock on `io` (not running) and
// prints what it did (or the error, to stderr). False when cleanup must not start. `timeout`
// becomes what is left of it for the cleanup.
bool stopBeforeCleanup(boost::asio::io_context& io, kube::RestClient& cluster,
                       const DeploymentRef& ref, std::chrono::milliseconds& timeout);

}  // namespace burstlet::daemon
