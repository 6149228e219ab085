#include "daemon/leadership.h"

#include <unistd.h>

#include <array>
#include <boost/json.hpp>
#include <cstdlib>

#include "daemon/webhook_certs.h"
#include "kube/resource.h"

namespace burstlet::daemon {

namespace {

std::string replicaName(const std::string& configured) {
  if (!configured.empty()) {
    return configured;
  }
  const char* pod = std::getenv("POD_NAME");  // NOLINT(concurrency-mt-unsafe)
  if (pod != nullptr && *pod != '\0') {
    return pod;
  }
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) == 0 && host[0] != '\0') {
    return host.data();
  }
  return "burstlet";
}

}  // namespace

kube::LeaderElectionOptions leaderElectionOptions(const Config& config) {
  const auto& l = config.leaderElection;
  kube::LeaderElectionOptions o;
  o.ns = ownNamespace(l.ns);
  o.name = l.leaseName.empty() ? "burstlet-" + config.nodeName : l.leaseName;
  o.identity = kube::uniqueIdentity(replicaName(l.identity));
  o.leaseDuration = l.leaseDuration;
  o.renewDeadline = l.renewDeadline;
  o.retryPeriod = l.retryPeriod;
  // The node's heartbeat: a predecessor without leader election (one replica before, an older
  // version) renews it while it works, and the first election Lease waits for it to stop.
  o.guardNs = "kube-node-lease";
  o.guardName = config.nodeName;
  return o;
}

boost::asio::awaitable<Status> markOwnPod(kube::RestClient& cluster, bool leader) {
  const char* pod = std::getenv("POD_NAME");  // NOLINT(concurrency-mt-unsafe)
  if (pod == nullptr || *pod == '\0') {
    co_return okStatus();
  }
  std::string name = pod;
  std::string ns = ownNamespace(std::string());
  // A JSON merge patch: null removes the label, and an absent one stays absent.
  boost::json::value label = leader ? boost::json::value("true") : boost::json::value(nullptr);
  std::string body = boost::json::serialize(boost::json::object{
      {"metadata", boost::json::object{{"labels", boost::json::object{{kLeaderLabel, label}}}}}});
  auto r = co_await cluster.patch(kube::resources::kPods, ns, name, kube::PatchType::kJsonMerge,
                                  std::move(body));
  if (!r.ok()) {
    co_return std::move(r).error();
  }
  co_return okStatus();
}

}  // namespace burstlet::daemon
