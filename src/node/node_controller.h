// NodeController: the virtual node. Registers the Node (labels, taint, capacity from the
// provider, conditions, addresses, kubelet endpoint, nodeInfo), keeps a Lease in
// kube-node-lease renewed, and writes node status on change and at least every statusInterval.
// A Node deleted by someone is registered again.
//
// The lease and Ready say whether burstlet itself is alive, so no provider call ever stands in
// their way: the provider's health is checked by ProviderHealth in a coroutine of its own and
// shows as the ProviderUnavailable condition and the provider-unavailable NoSchedule taint
// (no new pods while the backend is away, and none evicted because of it). Ready goes False
// over it only after notReadyAfterProviderOutage, when set.
//
// The status is what a kubelet of the cluster's version writes (README: "The virtual node's
// status"): kubeletVersion is the cluster's release marked as burstlet's, the Hostname address
// is the node's name, and the conditions are the kubelet's MemoryPressure, DiskPressure,
// PIDPressure and Ready in that order, each with its own lastTransitionTime, then burstlet's
// ProviderUnavailable.
//
// All writes keep what others wrote: labels are merged, conditions are merged by type, and the
// taint list (atomic in the API) is read, edited and written back on the version read.
//
// capacity and allocatable are the provider's resources() at each status write. When the
// provider reports a change (onResourcesChange), the loop wakes, compares with what it wrote
// last, and writes the status when they differ, at most once per resourcesInterval.
#pragma once

#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/wait.h"
#include "kube/informer.h"  // objectUid, objectResourceVersion
#include "kube/rest.h"
#include "node/host_address.h"
#include "node/node_version.h"
#include "node/provider_health.h"
#include "provider/provider.h"

namespace burstlet::node {

namespace asio = boost::asio;

struct NodeOptions {
  std::string nodeName = "burstlet";
  // The InternalIP address reported in status; empty = detected (first non-loopback IPv4). The
  // Hostname address is the node's name.
  std::string internalIP;
  int kubeletPort = 10250;
  std::string instanceType = "burstlet-virtual";
  // Reported as nodeInfo.kubeletVersion when set; empty = the cluster's release (GET /version)
  // as "<vX.Y.Z>-burstlet.<burstletVersion>", kDefaultKubernetesRelease when unknown.
  std::string kubeletVersion;
  std::string burstletVersion = "0.0.0";
  std::chrono::seconds leaseDuration{40};
  std::chrono::seconds renewInterval{10};
  std::chrono::seconds statusInterval{60};
  std::chrono::milliseconds pingInterval{10'000};
  // A ping unanswered this long counts as the provider being unreachable (not waited for).
  std::chrono::milliseconds pingTimeout{10'000};
  // Once the provider has been unreachable this long, Ready goes False (reason
  // KubeletNotReady) and the cluster evicts the pods by their tolerations; 0 = never.
  std::chrono::milliseconds notReadyAfterProviderOutage{0};
  // status.declaredFeatures: features of the kubelet API the API server may rely on, e.g.
  // "ExtendWebSocketsToKubelet" (a 1.36 API server then passes exec/attach WebSockets and
  // port-forward tunnels straight through instead of translating them to SPDY).
  std::vector<std::string> declaredFeatures;
  // The least time between two status writes for changed resources: while a backend quota is
  // shared, allocatable moves with every pod of another node, and a burst of them must not
  // become a burst of node writes. A change waits at most this long (the first at once).
  std::chrono::milliseconds resourcesInterval{5'000};
};

// The taint on the node while the provider cannot be reached (effect NoSchedule).
inline constexpr std::string_view kProviderUnavailableTaint =
    "virtual-kubelet.io/provider-unavailable";

class NodeController {
 public:
  NodeController(kube::RestClient& client, provider::Provider& provider, NodeOptions options,
                 const Clock& clock);
  // Unsets the provider's onResourcesChange callback.
  ~NodeController();
  NodeController(const NodeController&) = delete;
  NodeController& operator=(const NodeController&) = delete;

  // Registers and heartbeats until stop(); then releases the lease.
  asio::awaitable<void> run();
  // Ends run() soon. Thread-safe.
  void stop();
  // Registered, and the lease renewed at least once since.
  bool ready() const { return ready_.load(); }
  // started: run() began; stopped: run() returned (lease released, health checks ended).
  const Signals& signals() const { return signals_; }
  // Whether the provider answered its last ping in time.
  bool providerHealthy() const { return health_.state().reachable; }
  const NodeOptions& options() const { return options_; }
  // The nodeInfo.kubeletVersion written: the cluster's once run() has read it.
  const std::string& kubeletVersion() const { return kubeletVersion_; }

  // The Node as registered (for tests and the create call).
  boost::json::value nodeObject() const;
  // The status part, with the conditions as last refreshed by run() and the provider's
  // resources now.
  boost::json::value statusObject() const;

 private:
  struct ConditionState {
    bool status = false;  // "True"
    std::string reason;
    std::string message;
    Clock::WallTime since;  // lastTransitionTime
  };
  // Reads the cluster's release for kubeletVersion_; on failure keeps what it has (the default
  // at first) and says so. Settled unless the failure may pass (then asked again later).
  asio::awaitable<void> resolveKubeletVersion();
  // Takes the lastTransitionTime of each of our conditions from `node` (one registered before)
  // where its status there is the one we report: a restart is no transition.
  void adoptTransitionTimes(const boost::json::value& node);
  // Removes the NetworkUnavailable condition an older burstlet wrote (recognised by its reason),
  // conditional on the version read so that one written by someone else meanwhile stays.
  asio::awaitable<Status> removeStaleConditions();
  // Brings the conditions and the wanted taints up to date with the provider's health; marks
  // the status dirty when a condition flipped or changed its reason.
  void refreshConditions();
  bool setCondition(ConditionState& c, bool status, std::string reason, std::string message,
                    Clock::WallTime at);
  boost::json::value statusWith(const provider::NodeResources& resources) const;
  // After the provider reported changed resources: marks the status dirty when they differ from
  // those written, unless a resources write was too recent (then at nextResources_).
  void checkResources(Clock::SteadyTime now);
  bool taintWanted() const { return providerCondition_.status; }
  // Our taints in `taints`, everyone else's kept in place. True when it changed the list.
  bool applyOurTaints(boost::json::array& taints) const;
  // Reads the Node, applies our taints (and our labels when `withLabels`) and writes it back
  // on the version read, reading again on a conflict. Without labels nothing is written when
  // the taints are right already. The Node as written (or read).
  asio::awaitable<Result<boost::json::value>> writeTaints(bool withLabels);
  asio::awaitable<Status> registerNode();
  asio::awaitable<Status> patchStatus();
  asio::awaitable<Status> syncTaints();
  asio::awaitable<Status> renewLease();
  asio::awaitable<void> releaseLease();
  boost::json::value leaseObject() const;

  kube::RestClient& client_;
  provider::Provider& provider_;
  NodeOptions options_;
  const Clock& clock_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> ready_{false};
  Signals signals_;
  ProviderHealth health_;
  Wakeup wakeup_;  // run()'s sleeps, cut short by stop(), health and resources changes
  std::atomic<bool> resourcesChanged_{false};  // set by the provider's callback
  // Touched only by run() (statusObject() and nodeObject() read them from there): no lock.
  std::string nodeUid_;
  std::optional<boost::json::value> lease_;  // last lease written (holds resourceVersion)
  bool statusDirty_ = true;
  Clock::WallTime started_;
  std::string kubeletVersion_;
  bool kubeletVersionSettled_ = false;
  // The node carries a condition an older burstlet wrote and burstlet no longer does.
  bool staleConditions_ = false;
  // MemoryPressure, DiskPressure, PIDPressure: the provider's resources are its own to manage,
  // so these stay False; kept as state for their lastTransitionTime.
  ConditionState memoryCondition_;
  ConditionState diskCondition_;
  ConditionState pidCondition_;
  ConditionState readyCondition_;
  ConditionState providerCondition_;  // ProviderUnavailable
  // When Ready is due to go False over an ongoing outage (notReadyAfterProviderOutage).
  std::optional<Clock::SteadyTime> notReadyAt_;
  // Whether the node carries the provider-unavailable taint, as last written; unknown before.
  std::optional<bool> taintWritten_;
  // The resources in the last status written, and the check the provider asked for.
  std::optional<provider::NodeResources> resourcesWritten_;
  bool resourcesDue_ = false;
  Clock::SteadyTime nextResources_{};  // no resources write before (resourcesInterval)
};

}  // namespace burstlet::node
