#include "node/node_controller.h"

#include <spdlog/spdlog.h>
#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <exception>

#include "kube/json_path.h"

namespace burstlet::node {

namespace json = boost::json;
using kube::PatchType;
namespace resources = kube::resources;

namespace {
constexpr std::string_view kLeaseNamespace = "kube-node-lease";
constexpr std::string_view kTaintKey = "virtual-kubelet.io/provider";
// PreferNoSchedule: pods the burst policy makes `auto` or `localPrefer` tolerate kTaintKey only,
// so the scheduler's TaintToleration score ranks ordinary nodes first (src/admission).
constexpr std::string_view kPreferenceTaintKey = "virtual-kubelet.io/burst-preference";
// The conditions burstlet writes, in the kubelet's order and then its own (statusObject() lists
// them so).
constexpr std::array<std::string_view, 5> kConditionOrder = {
    "MemoryPressure", "DiskPressure", "PIDPressure", "Ready", "ProviderUnavailable"};
// burstlet before 0.2 wrote NetworkUnavailable, which a kubelet never sets, with this reason:
// one carrying it is ours to remove.
constexpr std::string_view kStaleNetworkCondition = "NetworkUnavailable";
constexpr std::string_view kStaleNetworkReason = "ProviderNetworkReady";

// The condition of `type` in a Node's status, or null.
const json::object* conditionOf(const json::value& node, std::string_view type) {
  const json::array* list = kube::arrayOf(kube::path(&node, {"status", "conditions"}));
  if (list == nullptr) {
    return nullptr;
  }
  for (const auto& c : *list) {
    if (c.is_object() && kube::stringOf(kube::child(&c, "type")) == type) {
      return &c.as_object();
    }
  }
  return nullptr;
}

bool carriesStaleCondition(const json::value& node) {
  const auto* c = conditionOf(node, kStaleNetworkCondition);
  return c != nullptr && kube::stringOf(kube::child(c, "reason")) == kStaleNetworkReason;
}

std::string architecture() {
  utsname u{};
  if (uname(&u) != 0) {
    return "amd64";
  }
  std::string m = u.machine;
  if (m == "x86_64") {
    return "amd64";
  }
  if (m == "aarch64") {
    return "arm64";
  }
  return m;
}
}  // namespace

NodeController::NodeController(kube::RestClient& client, provider::Provider& provider,
                               NodeOptions options, const Clock& clock)
    : client_(client),
      provider_(provider),
      options_(std::move(options)),
      clock_(clock),
      health_(provider, ProviderHealthOptions{options_.pingInterval, options_.pingTimeout}, clock) {
  if (options_.internalIP.empty()) {
    options_.internalIP = detectInternalIP();
  }
  kubeletVersionSettled_ = !options_.kubeletVersion.empty();
  kubeletVersion_ = kubeletVersionSettled_
                        ? options_.kubeletVersion
                        : kubeletVersionFor(kDefaultKubernetesRelease, options_.burstletVersion);
  started_ = clock_.now();
  // The kubelet's words: the pressure conditions stay False (the provider's resources are its
  // own to manage) and Ready is True while burstlet runs.
  memoryCondition_ = {false, "KubeletHasSufficientMemory",
                      "kubelet has sufficient memory available", started_};
  diskCondition_ = {false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", started_};
  pidCondition_ = {false, "KubeletHasSufficientPID", "kubelet has sufficient PID available",
                   started_};
  readyCondition_ = {true, "KubeletReady", "kubelet is posting ready status", started_};
  providerCondition_.since = started_;
  health_.onChange([this] { wakeup_.notify(); });
  provider_.onResourcesChange([this] {
    resourcesChanged_ = true;
    wakeup_.notify();
  });
  refreshConditions();
}

NodeController::~NodeController() { provider_.onResourcesChange(nullptr); }

json::value NodeController::nodeObject() const {
  const std::string providerName(provider_.name());
  json::object labels{{"type", "virtual-kubelet"},
                      {"kubernetes.io/role", "agent"},
                      {"kubernetes.io/os", "linux"},
                      {"kubernetes.io/arch", architecture()},
                      {"kubernetes.io/hostname", options_.nodeName},
                      {"node.kubernetes.io/instance-type", options_.instanceType},
                      {"burstlet.io/provider", providerName}};
  json::array taints;
  applyOurTaints(taints);
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", json::object{{"name", options_.nodeName}, {"labels", std::move(labels)}}},
      {"spec", json::object{{"taints", std::move(taints)}}}};
}

bool NodeController::applyOurTaints(json::array& taints) const {
  auto find = [&taints](std::string_view key) {
    return std::find_if(taints.begin(), taints.end(), [key](const json::value& t) {
      return kube::stringOf(kube::child(&t, "key")) == key;
    });
  };
  bool changed = false;
  if (find(kTaintKey) == taints.end()) {
    taints.push_back(json::object{
        {"key", kTaintKey}, {"value", std::string(provider_.name())}, {"effect", "NoSchedule"}});
    changed = true;
  }
  if (find(kPreferenceTaintKey) == taints.end()) {
    taints.push_back(json::object{{"key", kPreferenceTaintKey},
                                  {"value", std::string(provider_.name())},
                                  {"effect", "PreferNoSchedule"}});
    changed = true;
  }
  const auto unavailable = find(kProviderUnavailableTaint);
  if (taintWanted() && unavailable == taints.end()) {
    taints.push_back(json::object{{"key", kProviderUnavailableTaint},
                                  {"value", std::string(provider_.name())},
                                  {"effect", "NoSchedule"}});
    changed = true;
  } else if (!taintWanted() && unavailable != taints.end()) {
    taints.erase(unavailable);
    changed = true;
  }
  return changed;
}

bool NodeController::setCondition(ConditionState& c, bool status, std::string reason,
                                  std::string message, Clock::WallTime at) {
  const bool flipped = status != c.status;
  // The network's state is in the message (Initializing, then Failed): a new one is news.
  const bool changed = flipped || reason != c.reason ||
                       (reason == provider::kBackendNetworkNotActive && message != c.message);
  if (flipped) {
    c.since = at;
  }
  c.status = status;
  c.reason = std::move(reason);
  c.message = std::move(message);
  return changed;
}

void NodeController::refreshConditions() {
  const ProviderHealthState h = health_.state();
  const std::string provider(provider_.name());
  bool changed = false;
  if (h.reachable) {
    changed |= setCondition(providerCondition_, false, "ProviderReachable",
                            "the " + provider + " provider answers", h.since);
  } else if (h.reason == provider::kBackendNetworkNotActive) {
    // The backend answers but cannot run pods yet: say so, not that it is unreachable.
    changed |= setCondition(providerCondition_, true, h.reason,
                            "the " + provider + " provider cannot run pods: " + h.error, h.since);
  } else {
    changed |= setCondition(providerCondition_, true, "ProviderUnreachable",
                            "the " + provider + " provider is unreachable: " + h.error, h.since);
  }
  notReadyAt_.reset();
  bool ready = true;
  const auto after = options_.notReadyAfterProviderOutage;
  if (!h.reachable && after.count() > 0) {
    notReadyAt_ = h.outageStart + after;
    ready = clock_.steadyNow() < *notReadyAt_;
  }
  const bool wasReady = readyCondition_.status;
  if (ready) {
    changed |= setCondition(readyCondition_, true, "KubeletReady",
                            "kubelet is posting ready status", clock_.now());
  } else {
    changed |= setCondition(readyCondition_, false, "KubeletNotReady",
                            "the " + provider + " provider has been unreachable for over " +
                                durationText(after) + ": " + h.error,
                            clock_.now());
  }
  if (wasReady != readyCondition_.status) {
    spdlog::info("msg=\"node readiness changed\" node={} ready={} reason={}", options_.nodeName,
                 readyCondition_.status, readyCondition_.reason);
  }
  if (changed) {
    statusDirty_ = true;
  }
}

json::value NodeController::statusObject() const { return statusWith(provider_.resources()); }

json::value NodeController::statusWith(const provider::NodeResources& r) const {
  const auto list = [](const provider::NodeCapacity& c) {
    return json::object{{"cpu", c.cpu},
                        {"memory", c.memory},
                        {"pods", c.pods},
                        {"ephemeral-storage", c.ephemeralStorage}};
  };
  const std::string now = formatRfc3339(clock_.now());
  auto cond = [&](std::string_view type, const ConditionState& c) {
    return json::object{{"type", type},
                        {"status", c.status ? "True" : "False"},
                        {"lastHeartbeatTime", now},
                        {"lastTransitionTime", formatRfc3339(c.since)},
                        {"reason", c.reason},
                        {"message", c.message}};
  };
  json::array conditions{cond("MemoryPressure", memoryCondition_),
                         cond("DiskPressure", diskCondition_), cond("PIDPressure", pidCondition_),
                         cond("Ready", readyCondition_),
                         cond("ProviderUnavailable", providerCondition_)};
  const std::string providerName(provider_.name());
  json::object status{
      {"capacity", list(r.capacity)},
      {"allocatable", list(r.allocatable)},
      {"conditions", std::move(conditions)},
      {"addresses",
       json::array{json::object{{"type", "InternalIP"}, {"address", options_.internalIP}},
                   json::object{{"type", "Hostname"}, {"address", options_.nodeName}}}},
      {"daemonEndpoints",
       json::object{{"kubeletEndpoint", json::object{{"Port", options_.kubeletPort}}}}},
      {"nodeInfo", json::object{{"machineID", ""},
                                {"systemUUID", ""},
                                {"bootID", ""},
                                // No kernel of its own: the provider runs the pods.
                                {"kernelVersion", ""},
                                {"osImage", "burstlet virtual node (" + providerName + ")"},
                                {"containerRuntimeVersion", providerName + "://burstlet"},
                                {"kubeletVersion", kubeletVersion_},
                                {"kubeProxyVersion", ""},
                                {"operatingSystem", "linux"},
                                {"architecture", architecture()}}}};
  if (!options_.declaredFeatures.empty()) {
    // Absent, not empty, without any: what a kubelet that declares nothing writes.
    json::array declared;
    for (const auto& feature : options_.declaredFeatures) {
      declared.emplace_back(feature);
    }
    status["declaredFeatures"] = std::move(declared);
  }
  return status;
}

json::value NodeController::leaseObject() const {
  return json::object{
      {"apiVersion", "coordination.k8s.io/v1"},
      {"kind", "Lease"},
      {"metadata",
       json::object{{"name", options_.nodeName},
                    {"namespace", kLeaseNamespace},
                    {"ownerReferences", json::array{json::object{{"apiVersion", "v1"},
                                                                 {"kind", "Node"},
                                                                 {"name", options_.nodeName},
                                                                 {"uid", nodeUid_}}}}}},
      {"spec", json::object{{"holderIdentity", options_.nodeName},
                            {"leaseDurationSeconds", options_.leaseDuration.count()},
                            {"renewTime", formatRfc3339Micro(clock_.now())}}}};
}

asio::awaitable<Result<json::value>> NodeController::writeTaints(bool withLabels) {
  const std::string cluster;  // named: see kube/rest.h on co_await temporaries
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string name = options_.nodeName;
    auto current = co_await client_.get(resources::kNodes, cluster, name);
    if (!current.ok()) {
      co_return std::move(current).error();
    }
    json::array taints;
    if (const auto* t = kube::arrayOf(kube::path(&*current, {"spec", "taints"}))) {
      taints = *t;
    }
    if (!applyOurTaints(taints) && !withLabels) {
      co_return std::move(*current);
    }
    // The taint list has no merge key: a patch replaces it whole. The resourceVersion makes the
    // write conditional on the list we edited, so a taint someone added meanwhile is not lost.
    json::object metadata{{"resourceVersion", std::string(kube::objectResourceVersion(*current))}};
    if (withLabels) {
      metadata["labels"] = nodeObject().at("metadata").at("labels");
    }
    json::object patch{{"metadata", std::move(metadata)},
                       {"spec", json::object{{"taints", std::move(taints)}}}};
    std::string body = json::serialize(patch);
    auto patched = co_await client_.patch(resources::kNodes, cluster, name,
                                          PatchType::kStrategicMerge, std::move(body));
    if (patched.ok() || patched.error().code != ErrorCode::kConflict) {
      co_return patched;
    }
  }
  co_return Error::make(ErrorCode::kConflict, "Conflict",
                        "node " + options_.nodeName + " kept changing while writing its taints");
}

void NodeController::checkResources(Clock::SteadyTime now) {
  resourcesDue_ = false;
  const auto r = provider_.resources();
  if (resourcesWritten_ && *resourcesWritten_ == r) {
    return;  // changed and changed back, or written meanwhile
  }
  statusDirty_ = true;  // the provider logs what changed
  nextResources_ = now + options_.resourcesInterval;
}

asio::awaitable<Status> NodeController::registerNode() {
  json::value node = nodeObject();
  const auto resources = provider_.resources();
  node.as_object()["status"] = statusWith(resources);
  const std::string cluster;  // named: see kube/rest.h on co_await temporaries
  auto created = co_await client_.create(resources::kNodes, cluster, node);
  if (created.ok()) {
    nodeUid_ = std::string(kube::objectUid(*created));
    spdlog::info("msg=\"node registered\" node={} uid={}", options_.nodeName, nodeUid_);
    statusDirty_ = false;
    resourcesWritten_ = resources;
    taintWritten_ = taintWanted();
    lease_.reset();
    co_return okStatus();
  }
  if (created.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(created).error();
  }
  // Already there (a restart): add our labels and taints to what is there.
  auto adopted = co_await writeTaints(true);
  if (!adopted.ok()) {
    co_return std::move(adopted).error();
  }
  nodeUid_ = std::string(kube::objectUid(*adopted));
  adoptTransitionTimes(*adopted);
  spdlog::info("msg=\"node adopted\" node={} uid={}", options_.nodeName, nodeUid_);
  statusDirty_ = true;
  taintWritten_ = taintWanted();
  lease_.reset();
  co_return okStatus();
}

void NodeController::adoptTransitionTimes(const json::value& node) {
  const std::array<std::pair<std::string_view, ConditionState*>, 5> ours = {{
      {"MemoryPressure", &memoryCondition_},
      {"DiskPressure", &diskCondition_},
      {"PIDPressure", &pidCondition_},
      {"Ready", &readyCondition_},
      {"ProviderUnavailable", &providerCondition_},
  }};
  for (const auto& [type, state] : ours) {
    const auto* c = conditionOf(node, type);
    if (c == nullptr ||
        kube::stringOf(kube::child(c, "status")) != (state->status ? "True" : "False")) {
      continue;
    }
    if (auto since = parseRfc3339(kube::stringOf(kube::child(c, "lastTransitionTime")))) {
      state->since = *since;
    }
  }
}

asio::awaitable<Status> NodeController::removeStaleConditions() {
  const std::string cluster;  // named: see kube/rest.h on co_await temporaries
  std::string name = options_.nodeName;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto current = co_await client_.get(resources::kNodes, cluster, name);
    if (!current.ok()) {
      co_return std::move(current).error();
    }
    if (!carriesStaleCondition(*current)) {
      staleConditions_ = false;
      co_return okStatus();
    }
    // On the version read: a NetworkUnavailable someone else wrote since is not ours to delete.
    json::object patch{
        {"metadata",
         json::object{{"resourceVersion", std::string(kube::objectResourceVersion(*current))}}},
        {"status", json::object{{"conditions",
                                 json::array{json::object{{"$patch", "delete"},
                                                          {"type", kStaleNetworkCondition}}}}}}};
    std::string body = json::serialize(patch);
    std::string subresource = "status";
    auto r = co_await client_.patch(resources::kNodes, cluster, name, PatchType::kStrategicMerge,
                                    std::move(body), subresource);
    if (r.ok()) {
      staleConditions_ = false;
      spdlog::info("msg=\"removed the condition an older burstlet wrote\" node={} condition={}",
                   options_.nodeName, kStaleNetworkCondition);
      co_return okStatus();
    }
    if (r.error().code != ErrorCode::kConflict) {
      co_return std::move(r).error();
    }
  }
  co_return Error::make(ErrorCode::kConflict, "Conflict",
                        "node " + options_.nodeName + " kept changing while removing " +
                            std::string(kStaleNetworkCondition));
}

asio::awaitable<void> NodeController::resolveKubeletVersion() {
  auto release = co_await kube::serverRelease(client_);
  if (release.ok()) {
    kubeletVersion_ = kubeletVersionFor(*release, options_.burstletVersion);
    kubeletVersionSettled_ = true;
    spdlog::info("msg=\"node version\" node={} kubeletVersion={}", options_.nodeName,
                 kubeletVersion_);
    co_return;
  }
  // No answer may pass (asked again at the next status write); a wrong answer will not.
  kubeletVersionSettled_ = !isRetryable(release.error().code);
  spdlog::warn(
      "msg=\"cluster version unknown, the node reports {}\" node={} default={} error=\"{}\"",
      kubeletVersion_, options_.nodeName, kDefaultKubernetesRelease, release.error().toString());
}

asio::awaitable<Status> NodeController::syncTaints() {
  auto written = co_await writeTaints(false);
  if (!written.ok()) {
    co_return std::move(written).error();
  }
  if (std::string uid(kube::objectUid(*written)); uid != nodeUid_) {
    nodeUid_ = uid;  // re-created by someone else: the lease must follow the new UID
    lease_.reset();
  }
  if (taintWritten_ != taintWanted()) {
    spdlog::info("msg=\"node taint {}\" node={} taint={}", taintWanted() ? "added" : "removed",
                 options_.nodeName, kProviderUnavailableTaint);
  }
  taintWritten_ = taintWanted();
  co_return okStatus();
}

asio::awaitable<Status> NodeController::patchStatus() {
  const auto resources = provider_.resources();
  json::value status = statusWith(resources);
  // Our conditions in our order also on a node whose list an older burstlet ordered otherwise;
  // conditions others wrote keep their places among them.
  json::array order;
  for (const auto type : kConditionOrder) {
    order.push_back(json::object{{"type", type}});
  }
  status.as_object()["$setElementOrder/conditions"] = std::move(order);
  json::object patch{{"status", std::move(status)}};
  std::string name = options_.nodeName;
  const std::string cluster;  // named: see kube/rest.h on co_await temporaries
  std::string body = json::serialize(patch);
  std::string subresource = "status";
  auto r = co_await client_.patch(resources::kNodes, cluster, name, PatchType::kStrategicMerge,
                                  std::move(body), subresource);
  if (!r.ok()) {
    co_return std::move(r).error();
  }
  if (std::string uid(kube::objectUid(*r)); uid != nodeUid_) {
    // Deleted and re-created by someone else in between: the lease must follow the new UID.
    nodeUid_ = uid;
    lease_.reset();
  }
  statusDirty_ = false;
  resourcesWritten_ = resources;
  staleConditions_ = carriesStaleCondition(*r);
  co_return okStatus();
}

asio::awaitable<Status> NodeController::renewLease() {
  std::string ns(kLeaseNamespace);
  std::string name = options_.nodeName;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!lease_) {
      auto current = co_await client_.get(resources::kLeases, ns, name);
      if (current.ok()) {
        lease_ = std::move(*current);
      } else if (current.error().code == ErrorCode::kNotFound) {
        json::value fresh = leaseObject();
        auto created = co_await client_.create(resources::kLeases, ns, fresh);
        if (created.ok()) {
          lease_ = std::move(*created);
          co_return okStatus();
        }
        if (created.error().code != ErrorCode::kAlreadyExists) {
          co_return std::move(created).error();
        }
        continue;
      } else {
        co_return std::move(current).error();
      }
    }
    json::value next = leaseObject();
    next.as_object()["metadata"].as_object()["resourceVersion"] =
        std::string(kube::objectResourceVersion(*lease_));
    auto updated = co_await client_.update(resources::kLeases, ns, name, next);
    if (updated.ok()) {
      lease_ = std::move(*updated);
      co_return okStatus();
    }
    lease_.reset();
    if (updated.error().code == ErrorCode::kNotFound) {
      // The garbage collector removes the lease with its Node: is the Node gone?
      const std::string cluster;
      auto node = co_await client_.get(resources::kNodes, cluster, name);
      if (!node.ok() && node.error().code == ErrorCode::kNotFound) {
        co_return Error::make(ErrorCode::kNotFound, "NodeDeleted", "node " + name + " was deleted");
      }
      if (node.ok()) {
        nodeUid_ = std::string(kube::objectUid(*node));
      }
      continue;
    }
    if (updated.error().code != ErrorCode::kConflict) {
      co_return std::move(updated).error();
    }
  }
  co_return Error::make(ErrorCode::kConflict, "Conflict", "lease kept changing");
}

asio::awaitable<void> NodeController::releaseLease() {
  if (!lease_) {
    co_return;
  }
  json::value released = *lease_;
  released.as_object()["spec"].as_object().erase("holderIdentity");
  std::string ns(kLeaseNamespace);
  std::string name = options_.nodeName;
  auto r = co_await client_.update(resources::kLeases, ns, name, released);
  if (!r.ok()) {
    spdlog::warn("msg=\"releasing the node lease failed\" error=\"{}\"", r.error().toString());
  }
}

void NodeController::stop() {
  stopped_ = true;
  health_.stop();
  wakeup_.notify();
}

asio::awaitable<void> NodeController::run() {
  // Health checks run beside the loop: a ping that hangs must not hold up the lease.
  signals_.started.set();
  auto healthDone = std::make_shared<Latch>();
  const auto executor = co_await asio::this_coro::executor;
  asio::co_spawn(executor, health_.run(),
                 [healthDone](const std::exception_ptr&) { healthDone->set(); });
  bool registered = false;
  int failures = 0;
  auto nextLease = clock_.steadyNow();
  auto nextStatus = clock_.steadyNow() + options_.statusInterval;
  auto nextTaints = clock_.steadyNow();
  while (!stopped_) {
    refreshConditions();
    if (!registered) {
      if (!kubeletVersionSettled_) {
        co_await resolveKubeletVersion();
      }
      auto s = co_await registerNode();
      if (!s.ok()) {
        ready_ = false;
        spdlog::warn("msg=\"node registration failed\" node={} error=\"{}\"", options_.nodeName,
                     s.error().toString());
        const std::chrono::seconds delay(int64_t{1} << std::min(failures++, 5));
        co_await wakeup_.sleep(clock_, std::min(delay, std::chrono::seconds(30)));
        continue;
      }
      registered = true;
      failures = 0;
      nextLease = clock_.steadyNow();
    }
    const auto now = clock_.steadyNow();
    if (resourcesChanged_.exchange(false)) {
      resourcesDue_ = true;
    }
    if (resourcesDue_ && now >= nextResources_) {
      checkResources(now);
    }
    if (now >= nextLease) {
      // The lease outlives a deleted Node until the garbage collector gets to it: look at the
      // Node itself, so that one deleted by hand is back within a renewal interval.
      {
        const std::string cluster;  // named: see kube/rest.h on co_await temporaries
        std::string name = options_.nodeName;
        auto node = co_await client_.get(kube::resources::kNodes, cluster, name);
        if (!node.ok() && node.error().code == ErrorCode::kNotFound) {
          spdlog::info("msg=\"node was deleted, registering it again\" node={}", options_.nodeName);
          registered = false;
          ready_ = false;
          continue;
        }
      }
      auto s = co_await renewLease();
      if (s.ok()) {
        ready_ = true;
        signals_.ready.set();
        nextLease = now + options_.renewInterval;
      } else {
        spdlog::warn("msg=\"lease renewal failed\" node={} error=\"{}\"", options_.nodeName,
                     s.error().toString());
        if (s.error().reason == "NodeDeleted") {
          spdlog::info("msg=\"node was deleted, registering it again\" node={}", options_.nodeName);
          registered = false;
          ready_ = false;
          continue;
        }
        // Retry sooner than a full interval: the lease lasts only leaseDuration.
        nextLease = now + std::chrono::seconds(1);
      }
    }
    if (statusDirty_ || now >= nextStatus) {
      if (!kubeletVersionSettled_) {
        co_await resolveKubeletVersion();
      }
      auto s = co_await patchStatus();
      if (!s.ok()) {
        spdlog::warn("msg=\"node status update failed\" node={} error=\"{}\"", options_.nodeName,
                     s.error().toString());
        if (s.error().code == ErrorCode::kNotFound) {
          registered = false;
          continue;
        }
      }
      nextStatus = now + options_.statusInterval;
      if (staleConditions_) {
        auto removed = co_await removeStaleConditions();
        if (!removed.ok()) {  // tried again after the next status write
          spdlog::warn("msg=\"removing a stale node condition failed\" node={} error=\"{}\"",
                       options_.nodeName, removed.error().toString());
        }
      }
    }
    const bool taintsDue = taintWritten_ != taintWanted();
    if (taintsDue && now >= nextTaints) {
      auto s = co_await syncTaints();
      if (!s.ok()) {
        spdlog::warn("msg=\"node taint update failed\" node={} error=\"{}\"", options_.nodeName,
                     s.error().toString());
        if (s.error().code == ErrorCode::kNotFound) {
          registered = false;
          continue;
        }
        nextTaints = now + std::chrono::seconds(1);
      }
    }
    auto wake = std::min(nextLease, nextStatus);
    if (taintWritten_ != taintWanted()) {
      wake = std::min(wake, nextTaints);
    }
    if (notReadyAt_ && readyCondition_.status) {
      wake = std::min(wake, *notReadyAt_);
    }
    if (resourcesDue_) {
      wake = std::min(wake, nextResources_);
    }
    const auto left = wake - clock_.steadyNow();
    if (left > std::chrono::steady_clock::duration::zero()) {
      co_await wakeup_.sleep(clock_, left);
    }
  }
  co_await releaseLease();
  ready_ = false;
  // The health coroutine ends once its ping in flight, if any, has answered.
  co_await healthDone->wait();
  signals_.stopped.set();
}

}  // namespace burstlet::node
