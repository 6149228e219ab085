// The provider seam: everything the pod controller, the node controller and (later) the kubelet
// API need from the place pods really run. The controllers know nothing about CCI; `fake/` is an
// in-memory provider for tests and benchmarks, `cci/` the backend provider.
//
// Pods cross the seam in the cluster's shape (Kubernetes Pod JSON): createPod gets the
// cluster's pod with its environment already resolved; getPod/listPods answer with the source
// pod's namespace, name and UID and the backend's status, so the controllers can compare and
// copy without knowing how the backend names things.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/wait.h"

namespace burstlet::provider {

namespace asio = boost::asio;
using Json = boost::json::value;

// A cluster pod's identity.
struct PodRef {
  std::string ns;
  std::string name;
  std::string uid;

  std::string key() const { return ns + "/" + name; }
  bool operator==(const PodRef&) const = default;
};

// Identity of a pod object (namespace, name, uid from metadata); empty fields when absent.
PodRef podRefOf(const Json& pod);

// What the virtual node offers, as Kubernetes quantities.
struct NodeCapacity {
  std::string cpu = "2000";
  std::string memory = "8Ti";
  std::string pods = "10000";
  std::string ephemeralStorage = "20Ti";

  bool operator==(const NodeCapacity&) const = default;
};

// The node's status.capacity and status.allocatable: what the backend can give the node at all,
// and what of it the scheduler may still place (less what others' pods on a shared backend
// already take).
struct NodeResources {
  NodeCapacity capacity;
  NodeCapacity allocatable;

  bool operator==(const NodeResources&) const = default;
};

struct LogOptions {
  std::string container;
  bool follow = false;
  bool previous = false;
  bool timestamps = false;
  std::optional<int64_t> tailLines;
  std::optional<int64_t> sinceSeconds;
  std::optional<int64_t> limitBytes;
  std::optional<std::string> sinceTime;  // RFC 3339; at most one of sinceSeconds and sinceTime
};

// Bytes produced over time (logs; later exec/attach channels).
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // The next bytes; std::nullopt at the end.
  virtual asio::awaitable<Result<std::optional<std::string>>> read() = 0;
  // Ends a pending read with kCancelled. Thread-safe.
  virtual void cancel() = 0;
};

struct ExecOptions {
  std::string container;
  std::vector<std::string> command;  // exec only; attach joins the running process
  bool stdinOpen = false;
  bool stdoutOpen = true;
  bool stderrOpen = true;
  bool tty = false;
};

struct TerminalSize {
  uint16_t width = 0;
  uint16_t height = 0;
};

// Output of an exec or attach session: which stream (1 stdout, 2 stderr) and the bytes.
struct OutputChunk {
  int stream = 1;
  std::string data;
};

// A running exec or attach: bytes both ways, terminal resizes, and how it ended.
class ExecSession {
 public:
  virtual ~ExecSession() = default;
  // Sends bytes to the process's stdin; an empty string closes stdin.
  virtual asio::awaitable<Status> writeStdin(std::string data) = 0;
  // The next output; std::nullopt once the process ended and all output was read.
  virtual asio::awaitable<Result<std::optional<OutputChunk>>> read() = 0;
  virtual asio::awaitable<Status> resize(TerminalSize size) = 0;
  // The exit code, once read() returned std::nullopt.
  virtual asio::awaitable<Result<int>> exitCode() = 0;
  // Ends the session (the client went away). Thread-safe.
  virtual void cancel() = 0;
};

// One forwarded connection to a port of the pod.
class PortStream {
 public:
  virtual ~PortStream() = default;
  virtual asio::awaitable<Status> write(std::string data) = 0;  // empty: half-close
  virtual asio::awaitable<Result<std::optional<std::string>>> read() = 0;
  virtual void cancel() = 0;
};

// Reasons that cross the seam: the pod controller acts on them.
// A ConfigMap, Secret or key the pod needs is missing (code kNotFound: it may appear; the
// provider wakes the pod through onPodStatusChange when it does). As the kubelet words it.
inline constexpr const char* kCreateContainerConfigError = "CreateContainerConfigError";
// updatePod could not add ephemeral containers (code kInvalid).
inline constexpr const char* kEphemeralContainersNotSupported = "EphemeralContainersNotSupported";
// The backend does not answer (code kUnavailable).
inline constexpr const char* kBackendUnreachable = "BackendUnreachable";
// The provider has no such capability (code kNotSupported): logs, exec, stats.
inline constexpr const char* kNotSupported = "NotSupported";

// Whether the provider's pod (as getPod shows it) needs an update to match the cluster pod:
// labels, annotations or container images differ, or the cluster pod has an ephemeral container
// the provider's lacks. getPod must show a pod so that this is false right after createPod or
// updatePod of the same cluster pod (what the provider adds of its own is not shown).
bool needsUpdate(const Json& clusterPod, const Json& providerPod);

// deletePod's grace period when the pod's own applies: a pod gone from the cluster without a
// graceful delete (force deletion, a restart that finds an orphan) still stops as its spec says.
inline constexpr int64_t kOwnGracePeriod = -1;
// createPod's reason while the backend pod of an earlier pod of the same name stops.
inline constexpr const char* kPredecessorTerminating = "PredecessorTerminating";
// ping()'s reason (code kUnavailable) while the backend answers but cannot run pods yet because
// its network is not set up (CCI: the namespace's Network is not Active); the node shows it as
// the reason of its ProviderUnavailable condition. Also the reason of the Warning event.
inline constexpr const char* kBackendNetworkNotActive = "BackendNetworkNotActive";
// The Normal event when the backend's network turns usable.
inline constexpr const char* kBackendNetworkActive = "BackendNetworkActive";
// run()'s error (code kForbidden) when the backend's network object of that name is not ours.
inline constexpr const char* kNetworkNotOwned = "NetworkNotOwned";

// The top-level key of a prepared pod that lists what burstlet itself added to it (the network
// proxy sidecar, src/network): {"containers": [names], "volumes": [names]}. It is not a Pod field,
// so the API server never lets a user set it; the preparer writes it. Providers run what it
// names but keep it out of the pod the cluster sees (container lists and statuses), and an
// injected volume refers to the provider's node secret (nodeSecretName), not to a cluster
// object.
inline constexpr const char* kInjectedKey = "burstletInjected";

// The annotation a provider sets on its pod once the pod's own containers are done and will not
// run again (restartPolicy Never, or OnFailure after they succeeded): injected containers watch
// it through the downward API and exit, so that the pod can end (a Job's pod completes).
inline constexpr const char* kInjectedStopAnnotation = "burstlet.io/injected-stop";

// The names listed under kInjectedKey[list] ("containers" or "volumes") of a prepared pod.
std::set<std::string> injectedNames(const Json& pod, std::string_view list);

class Provider {
 public:
  virtual ~Provider() = default;

  // "fake", "cci": used in the node's taint and labels.
  virtual std::string_view name() const = 0;

  // The provider's own background work (informers on the backend, sweeps, ...) until stop().
  // signals() says where it is: `ready` once it can take pods (its backend state listed, so a
  // reconcile sees every pod), `stopped` once run() returned. The daemon starts the pod
  // controller after `ready`; an error from run() stops the process. The default has no
  // background work: ready at once, returns on stop().
  virtual asio::awaitable<Status> run();
  // Ends run() soon. Thread-safe, idempotent.
  virtual void stop();
  // With several replicas of one node (leader election), before run(): a provider that can
  // stand by takes `leading` and answers true; its run() then keeps what it reads warm but
  // writes nothing, and is not ready, until `leading` is set. The default answers false: the
  // daemon starts its run() only once this replica leads.
  virtual bool standBy(const Latch& /*leading*/) { return false; }
  virtual const Signals& signals() const;
  // Why the provider is not ready, in a line, or "" (for /readyz). Default: "".
  virtual std::string notReadyReason() const { return ""; }
  // Kinds of cluster objects ("ConfigMap", "Secret") whose changes the provider follows: once it
  // is ready, the daemon reports every add and update of one through clusterObjectChanged (the
  // object's metadata at least). Default: none.
  virtual std::vector<std::string> followedKinds() const { return {}; }
  // Thread-safe, never blocks.
  virtual void clusterObjectChanged(std::string_view /*kind*/, const Json& /*object*/) {}

  // Creates the pod. Idempotent by UID: the same pod (same UID) already there is success, so a
  // restart that repeats a create never duplicates a pod. A pod of that name with another UID
  // belongs to a pod gone from the cluster (names are unique): the provider starts deleting it
  // with its own grace period (unless it is terminating already) and answers kUnavailable with
  // reason kPredecessorTerminating; the caller tries again once it is gone. A pod the backend
  // can never run is kInvalid with a reason naming the rule: the controller reports it and does
  // not retry.
  virtual asio::awaitable<Status> createPod(Json pod) = 0;
  // Applies changed labels, annotations and container images, then adds the ephemeral containers
  // (spec.ephemeralContainers, `kubectl debug`) of `pod` that the provider's pod lacks, by name:
  // they can only be added, never changed or removed, so one the provider has already is left as
  // it is. kNotFound when absent. A backend that cannot add ephemeral containers (CCI's API has no
  // ephemeralcontainers subresource) answers kInvalid kEphemeralContainersNotSupported with a
  // message naming the backend and the containers, after the labels, annotations and images were
  // applied. getPod/listPods show the ephemeral containers added (spec.ephemeralContainers: name,
  // image) and their status (status.ephemeralContainerStatuses).
  virtual asio::awaitable<Status> updatePod(Json pod) = 0;
  // Deletes, giving containers gracePeriodSeconds to stop (kOwnGracePeriod: the pod's own
  // terminationGracePeriodSeconds). An absent pod is success.
  virtual asio::awaitable<Status> deletePod(PodRef pod, int64_t gracePeriodSeconds) = 0;
  // The pod as the backend sees it (source namespace/name/uid, spec, status); kNotFound when
  // absent.
  virtual asio::awaitable<Result<Json>> getPod(PodRef pod) = 0;
  // Every pod the backend runs for this node, for reconciling after a restart.
  virtual asio::awaitable<Result<std::vector<Json>>> listPods() = 0;
  // Called (from any thread, never under the provider's locks) when a pod's status changes on
  // the backend. Set once, before the first create.
  virtual void onPodStatusChange(std::function<void(const PodRef&)> callback) = 0;

  // The node's configured resources (the config file's numbers): what it advertises when the
  // provider knows nothing better, and the ceiling of resources().
  virtual NodeCapacity capacity() const = 0;
  // What the node advertises now, read at each status write. The default: capacity() as both.
  // A provider that learns what its backend can give (the cci provider: the backend namespace's
  // ResourceQuotas) answers that, never above capacity(), and calls the onResourcesChange
  // callback when the answer changed.
  virtual NodeResources resources() const { return {capacity(), capacity()}; }
  // Called from any thread when resources() changed. It may run under a lock of the provider's,
  // so it must be quick and not call the provider; setting it again (null to unset) returns
  // once a call in flight has ended. The default never calls it.
  // By value: implementations keep it.
  // NOLINTNEXTLINE(performance-unnecessary-value-param)
  virtual void onResourcesChange(std::function<void()> /*callback*/) {}
  // Whether the backend can be reached and accepts work; the node's ProviderUnavailable
  // condition and taint follow. May take long when the backend hangs: the node stops waiting
  // after its ping timeout, but the call runs to its end.
  virtual asio::awaitable<Status> ping() = 0;

  // Kubelet API hooks. Not every provider has them: the default answers kNotFound with
  // reason kNotSupported, code kNotSupported.
  virtual asio::awaitable<Result<std::unique_ptr<ByteStream>>> logs(PodRef pod, LogOptions options);
  virtual asio::awaitable<Result<std::unique_ptr<ExecSession>>> exec(PodRef pod,
                                                                     ExecOptions options);
  virtual asio::awaitable<Result<std::unique_ptr<ExecSession>>> attach(PodRef pod,
                                                                       ExecOptions options);
  virtual asio::awaitable<Result<std::unique_ptr<PortStream>>> portForward(PodRef pod,
                                                                           uint16_t port);
  // The kubelet's /stats/summary document (node and pods), for metrics-server and kubectl top.
  virtual asio::awaitable<Result<Json>> statsSummary();

  // A Secret the node's pods share where they run (the network proxy's credentials), for
  // `purpose` (a DNS label): its name there, which an injected volume of a prepared pod names;
  // "" when the provider has no such secrets (the default).
  virtual std::string nodeSecretName(std::string_view /*purpose*/) const { return ""; }
  // Creates or replaces that Secret with `data` (keys to plain values). The default answers
  // kNotSupported.
  virtual asio::awaitable<Status> putNodeSecret(std::string purpose,
                                                std::map<std::string, std::string> data);

 private:
  // The default run()'s.
  Signals signals_;
  Latch stop_;
};

}  // namespace burstlet::provider
