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
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

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
    : client_(client), provider_(provider), options_(std::move(options)), clock_(clock) {
  if (options_.internalIP.empty()) {
    options_.internalIP = detectInternalIP();
  }
  if (options_.hostname.empty()) {
    options_.hostname = hostName();
  }
  readyCondition_.since = clock_.now();
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
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", json::object{{"name", options_.nodeName}, {"labels", std::move(labels)}}},
      {"spec", json::object{{"taints", json::array{json::object{{"key", kTaintKey},
                                                                {"value", providerName},
                                                                {"effect", "NoSchedule"}}}}}}};
}

json::value NodeController::statusObject() {
  const auto cap = provider_.capacity();
  const json::object resources{{"cpu", cap.cpu},
                               {"memory", cap.memory},
                               {"pods", cap.pods},
                               {"ephemeral-storage", cap.ephemeralStorage}};
  const std::string now = formatRfc3339(clock_.now());
  const std::string since = formatRfc3339(readyCondition_.since);
  auto cond = [&](std::string_view type, bool status, std::string_view reason,
                  std::string_view message) {
    return json::object{{"type", type},
                        {"status", status ? "True" : "False"},
                        {"lastHeartbeatTime", now},
                        {"lastTransitionTime", since},
                        {"reason", reason},
                        {"message", message}};
  };
  json::array conditions{
      cond("Ready", readyCondition_.ok, readyCondition_.reason, readyCondition_.message),
      cond("MemoryPressure", false, "KubeletHasSufficientMemory",
           "the provider has memory available"),
      cond("DiskPressure", false, "KubeletHasNoDiskPressure", "the provider has no disk pressure"),
      cond("PIDPressure", false, "KubeletHasSufficientPID", "the provider has PIDs available"),
      cond("NetworkUnavailable", false, "ProviderNetworkReady",
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

asio::awaitable<Status> NodeController::registerNode() {
  json::value node = nodeObject();
  node.as_object()["status"] = statusObject();
  const std::string cluster;  // named: see kube/rest.h on co_await temporaries
  auto created = co_await client_.create(resources::kNodes, cluster, node);
  if (created.ok()) {
    nodeUid_ = std::string(kube::objectUid(*created));
    spdlog::info("msg=\"node registered\" node={} uid={}", options_.nodeName, nodeUid_);
    statusDirty_ = false;
    lease_.reset();
    co_return okStatus();
  }
  if (created.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(created).error();
  }
  // Already there (a restart): add our labels and taint to what is there, conditionally on the
  // version we read so that a concurrent writer is not overwritten.
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string name = options_.nodeName;
    auto current = co_await client_.get(resources::kNodes, cluster, name);
    if (!current.ok()) {
      co_return std::move(current).error();
    }
    json::array taints;
    bool haveTaint = false;
    if (const auto* spec = current->as_object().if_contains("spec");
        spec != nullptr && spec->is_object()) {
      if (const auto* t = spec->as_object().if_contains("taints"); t != nullptr && t->is_array()) {
        taints = t->as_array();
      }
    }
    const json::value wanted = nodeObject();
    const json::value& ours = wanted.at("spec").at("taints").at(0);
    for (const auto& t : taints) {
      if (t.is_object() && t.as_object().if_contains("key") != nullptr &&
          t.at("key") == ours.at("key")) {
        haveTaint = true;
      }
    }
    if (!haveTaint) {
      taints.push_back(ours);
    }
    json::object patch{
        {"metadata",
         json::object{{"labels", wanted.at("metadata").at("labels")},
                      {"resourceVersion", std::string(kube::objectResourceVersion(*current))}}},
        {"spec", json::object{{"taints", std::move(taints)}}}};
    std::string body = json::serialize(patch);
    auto patched = co_await client_.patch(resources::kNodes, cluster, name,
                                          PatchType::kStrategicMerge, std::move(body));
    if (patched.ok()) {
      nodeUid_ = std::string(kube::objectUid(*patched));
      spdlog::info("msg=\"node adopted\" node={} uid={}", options_.nodeName, nodeUid_);
      statusDirty_ = true;
      lease_.reset();
      co_return okStatus();
    }
    if (patched.error().code != ErrorCode::kConflict) {
      co_return std::move(patched).error();
    }
  }
  co_return Error::make(ErrorCode::kConflict, "Conflict",
                        "node " + options_.nodeName + " kept changing while adopting it");
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

asio::awaitable<void> NodeController::checkHealth() {
  auto s = co_await provider_.ping();
  const bool ok = s.ok();
  const std::string reason = ok ? "KubeletReady" : "ProviderUnreachable";
  const std::string message = ok ? "burstlet is posting ready status"
                                 : "the " + std::string(provider_.name()) +
                                       " provider is unreachable: " + s.error().message;
  if (ok != readyCondition_.ok || reason != readyCondition_.reason) {
    if (ok != readyCondition_.ok) {
      readyCondition_.since = clock_.now();
      spdlog::info("msg=\"node readiness changed\" node={} ready={} reason={}", options_.nodeName,
                   ok, reason);
    }
    statusDirty_ = true;
  }
  readyCondition_.ok = ok;
  readyCondition_.reason = reason;
  readyCondition_.message = message;
  healthy_ = ok;
}

asio::awaitable<void> NodeController::sleepFor(std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  {
    std::lock_guard lock(mu_);
    timer_ = &timer;
  }
  if (!stopped_) {
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  std::lock_guard lock(mu_);
  timer_ = nullptr;
}

void NodeController::stop() {
  stopped_ = true;
  std::lock_guard lock(mu_);
  if (executor_) {
    asio::post(*executor_, [this] {
      std::lock_guard inner(mu_);
      if (timer_ != nullptr) {
        timer_->cancel();
      }
    });
  }
}

asio::awaitable<void> NodeController::run() {
  {
    std::lock_guard lock(mu_);
    executor_ = co_await asio::this_coro::executor;
  }
  readyCondition_.reason = "KubeletReady";
  readyCondition_.message = "burstlet is posting ready status";
  co_await checkHealth();
  bool registered = false;
  int failures = 0;
  auto nextLease = clock_.steadyNow();
  auto nextStatus = clock_.steadyNow() + options_.statusInterval;
  auto nextPing = clock_.steadyNow() + options_.pingInterval;
  while (!stopped_) {
    if (!registered) {
      auto s = co_await registerNode();
      if (!s.ok()) {
        ready_ = false;
        spdlog::warn("msg=\"node registration failed\" node={} error=\"{}\"", options_.nodeName,
                     s.error().toString());
        const std::chrono::seconds delay(int64_t{1} << std::min(failures++, 5));
        co_await sleepFor(std::min(delay, std::chrono::seconds(30)));
        continue;
      }
      registered = true;
      failures = 0;
      nextLease = clock_.steadyNow();
    }
    const auto now = clock_.steadyNow();
    if (now >= nextPing) {
      co_await checkHealth();
      nextPing = now + options_.pingInterval;
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
    const auto wake = std::min({nextLease, nextStatus, nextPing});
    const auto left = wake - clock_.steadyNow();
    if (left > std::chrono::steady_clock::duration::zero()) {
      co_await sleepFor(left);
    }
  }
  co_await releaseLease();
  ready_ = false;
}

}  // namespace burstlet::node
