#include "node/node_controller.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <exception>

namespace burstlet::node {

namespace json = boost::json;
using kube::PatchType;
namespace resources = kube::resources;

namespace {
constexpr std::string_view kLeaseNamespace = "kube-node-lease";
constexpr std::string_view kTaintKey = "virtual-kubelet.io/provider";

std::string hostName() {
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0) {
    return "localhost";
  }
  return std::string(buf.data());
}

std::string kernelVersion() {
  utsname u{};
  return uname(&u) == 0 ? std::string(u.release) : std::string();
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

std::string detectInternalIP() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return "127.0.0.1";
  }
  std::string found = "127.0.0.1";
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET ||
        (a->ifa_flags & IFF_LOOPBACK) != 0 || (a->ifa_flags & IFF_UP) == 0) {
      continue;
    }
    std::array<char, INET_ADDRSTRLEN> text{};
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, text.data(), text.size()) != nullptr) {
      found = text.data();
      break;
    }
  }
  freeifaddrs(list);
  return found;
}

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
  if (options_.hostname.empty()) {
    options_.hostname = hostName();
  }
  started_ = clock_.now();
  readyCondition_ = {true, "KubeletReady", "burstlet is posting ready status", started_};
  providerCondition_.since = started_;
  health_.onChange([this] { wakeup_.notify(); });
  refreshConditions();
}

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
      const auto* k = t.is_object() ? t.as_object().if_contains("key") : nullptr;
      return k != nullptr && k->is_string() && k->as_string() == key;
    });
  };
  bool changed = false;
  if (find(kTaintKey) == taints.end()) {
    taints.push_back(json::object{
        {"key", kTaintKey}, {"value", std::string(provider_.name())}, {"effect", "NoSchedule"}});
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
  const bool changed = flipped || reason != c.reason;
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
                            "burstlet is posting ready status", clock_.now());
  } else {
    changed |= setCondition(readyCondition_, false, "ProviderUnreachable",
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

json::value NodeController::statusObject() const {
  const auto cap = provider_.capacity();
  const json::object resources{{"cpu", cap.cpu},
                               {"memory", cap.memory},
                               {"pods", cap.pods},
                               {"ephemeral-storage", cap.ephemeralStorage}};
  const std::string now = formatRfc3339(clock_.now());
  auto cond = [&](std::string_view type, const ConditionState& c) {
    return json::object{{"type", type},
                        {"status", c.status ? "True" : "False"},
                        {"lastHeartbeatTime", now},
                        {"lastTransitionTime", formatRfc3339(c.since)},
                        {"reason", c.reason},
                        {"message", c.message}};
  };
  // The node's own resources are the provider's to manage: these never change.
  auto fixed = [&](std::string_view type, std::string_view reason, std::string_view message) {
    return cond(type, ConditionState{false, std::string(reason), std::string(message), started_});
  };
  json::array conditions{
      cond("Ready", readyCondition_),
      cond("ProviderUnavailable", providerCondition_),
      fixed("MemoryPressure", "KubeletHasSufficientMemory", "the provider has memory available"),
      fixed("DiskPressure", "KubeletHasNoDiskPressure", "the provider has no disk pressure"),
      fixed("PIDPressure", "KubeletHasSufficientPID", "the provider has PIDs available"),
      fixed("NetworkUnavailable", "ProviderNetworkReady",
            "pods get their network from the provider")};
  const std::string providerName(provider_.name());
  return json::object{
      {"capacity", resources},
      {"allocatable", resources},
      {"conditions", std::move(conditions)},
      {"addresses",
       json::array{json::object{{"type", "InternalIP"}, {"address", options_.internalIP}},
                   json::object{{"type", "Hostname"}, {"address", options_.hostname}}}},
      {"daemonEndpoints",
       json::object{{"kubeletEndpoint", json::object{{"Port", options_.kubeletPort}}}}},
      {"nodeInfo", json::object{{"machineID", ""},
                                {"systemUUID", ""},
                                {"bootID", ""},
                                {"kernelVersion", kernelVersion()},
                                {"osImage", "burstlet virtual node (" + providerName + ")"},
                                {"containerRuntimeVersion", providerName + "://burstlet"},
                                {"kubeletVersion", options_.kubeletVersion},
                                {"kubeProxyVersion", ""},
                                {"operatingSystem", "linux"},
                                {"architecture", architecture()}}}};
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
    if (const auto* spec = current->as_object().if_contains("spec");
        spec != nullptr && spec->is_object()) {
      if (const auto* t = spec->as_object().if_contains("taints"); t != nullptr && t->is_array()) {
        taints = t->as_array();
      }
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

asio::awaitable<Status> NodeController::registerNode() {
  json::value node = nodeObject();
  node.as_object()["status"] = statusObject();
  const std::string cluster;  // named: see kube/rest.h on co_await temporaries
  auto created = co_await client_.create(resources::kNodes, cluster, node);
  if (created.ok()) {
    nodeUid_ = std::string(kube::objectUid(*created));
    spdlog::info("msg=\"node registered\" node={} uid={}", options_.nodeName, nodeUid_);
    statusDirty_ = false;
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
  spdlog::info("msg=\"node adopted\" node={} uid={}", options_.nodeName, nodeUid_);
  statusDirty_ = true;
  taintWritten_ = taintWanted();
  lease_.reset();
  co_return okStatus();
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
  json::object patch{{"status", statusObject()}};
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
  healthDone_ = false;
  const auto executor = co_await asio::this_coro::executor;
  asio::co_spawn(executor, health_.run(), [this](const std::exception_ptr&) {
    wakeup_.notify();
    healthDone_ = true;  // last: run() may return as soon as it sees this
  });
  bool registered = false;
  int failures = 0;
  auto nextLease = clock_.steadyNow();
  auto nextStatus = clock_.steadyNow() + options_.statusInterval;
  auto nextTaints = clock_.steadyNow();
  while (!stopped_) {
    refreshConditions();
    if (!registered) {
      auto s = co_await registerNode();
      if (!s.ok()) {
        ready_ = false;
        spdlog::warn("msg=\"node registration failed\" node={} error=\"{}\"", options_.nodeName,
                     s.error().toString());
        const std::chrono::seconds delay(int64_t{1} << std::min(failures++, 5));
        co_await wakeup_.sleep(std::min(delay, std::chrono::seconds(30)));
        continue;
      }
      registered = true;
      failures = 0;
      nextLease = clock_.steadyNow();
    }
    const auto now = clock_.steadyNow();
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
    const auto left = wake - clock_.steadyNow();
    if (left > std::chrono::steady_clock::duration::zero()) {
      co_await wakeup_.sleep(left);
    }
  }
  co_await releaseLease();
  ready_ = false;
  // The health coroutine ends once its ping in flight, if any, has answered.
  while (!healthDone_) {
    co_await wakeup_.sleep(std::chrono::seconds(1));
  }
}

}  // namespace burstlet::node
