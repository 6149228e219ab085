#include "provider/cci/backend.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "common/wait.h"
#include "kube/json_path.h"
#include "kube/transport.h"
#include "provider/cci/api_fields.h"
#include "provider/cci/auth.h"
#include "provider/cci/cce_discovery.h"
#include "provider/cci/cci_errors.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/storage_import.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;

namespace {

std::string labelAt(const json::value& object, std::string_view key) {
  return kube::stringAt(object, {"metadata", "labels", key});
}

}  // namespace

Status validateBackend(const BackendConfig& c) {
  if (c.clusterID.empty()) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       "clusterID is required: the backend namespace is named after it");
  }
  const std::string ns = namespaceFor(c.namespacePrefix, c.clusterID);
  bool dns = !ns.empty() && ns.size() <= 63 && ns.front() != '-' && ns.back() != '-';
  for (char ch : ns) {
    dns = dns && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-');
  }
  if (!dns) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("backend namespace \"{}\" (namespacePrefix + "
                                   "clusterID) is not a DNS label of at most 63 characters",
                                   ns));
  }
  if (auto minor = backendMinor(c.backendVersion, std::nullopt, c.cciApi()); !minor.ok()) {
    return std::move(minor).error();
  }
  if (c.usesEndpoint() == !c.kubeconfig.empty()) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       "set exactly one of kubeconfig (a Kubernetes-compatible backend) "
                       "and endpoint (CCI)");
  }
  if (c.usesEndpoint()) {
    if (c.endpoint.rfind("https://", 0) != 0) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         fmt::format("endpoint \"{}\" must be an https:// URL", c.endpoint));
    }
    const int auths = !c.tokenFile.empty() + !c.akskFile.empty() + !c.akskSecret.empty();
    if (auths != 1) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         "CCI needs exactly one of tokenFile, akskFile and "
                         "akskSecret");
    }
    if (!c.akskSecret.empty() && c.akskSecret.find('/') == std::string::npos) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         "akskSecret must be \"namespace/name\"");
    }
  } else if (!c.context.empty() && c.kubeconfig.empty()) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig", "context needs kubeconfig");
  }
  if (c.sweepInterval.count() <= 0) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig", "sweepInterval must be positive");
  }
  if (c.api != "" && c.api != "cci" && c.api != "kubernetes") {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("api {:?} is neither cci nor kubernetes", c.api));
  }
  if (c.cciApi()) {
    // Settings discovery will fill are checked once it has (resolveNetwork).
    if (auto s = validateNetwork(c.network, "provider.cci.network", !c.canDiscover()); !s.ok()) {
      return s;
    }
    for (const auto& [key, value] :
         {std::pair{"endpoint", &c.cce.endpoint}, std::pair{"vpcEndpoint", &c.cce.vpcEndpoint},
          std::pair{"iamEndpoint", &c.cce.iamEndpoint}}) {
      if (!value->empty() && value->rfind("https://", 0) != 0) {
        return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                           fmt::format("cce.{} \"{}\" must be an https:// URL", key, *value));
      }
    }
  }
  return okStatus();
}

Result<std::unique_ptr<kube::RestClient>> connectBackend(const asio::any_io_executor& executor,
                                                         const BackendConfig& config,
                                                         std::optional<AkSk> aksk,
                                                         const std::string& userAgent,
                                                         const Clock& clock) {
  BURSTLET_RETURN_IF_ERROR(validateBackend(config));
  if (!config.usesEndpoint()) {
    auto client =
        kube::loadKubeconfig(kube::KubeconfigOptions{{config.kubeconfig}, config.context, "", ""});
    if (!client.ok()) {
      return std::move(client).error();
    }
    client->userAgent = userAgent;
    kube::RestOptions options;
    if (config.cciApi()) {
      options.dialect = cciError;  // a CCI stand-in behind a kubeconfig speaks CCI's errors too
    }
    return kube::RestClient::create(executor, *client, options);
  }
  return connectService(executor, config, config.endpoint, std::move(aksk), userAgent, clock);
}

Result<std::unique_ptr<kube::RestClient>> connectService(
    const asio::any_io_executor& executor, const BackendConfig& config, const std::string& endpoint,
    std::optional<AkSk> aksk, const std::string& userAgent, const Clock& clock) {
  kube::ClientConfig client;
  client.server = endpoint;
  client.source = "endpoint";
  client.userAgent = userAgent;
  client.insecureSkipTlsVerify = config.insecureSkipTLSVerify;
  if (!config.caFile.empty()) {
    auto ca = kube::readFileNamed(config.caFile, "backend.caFile");
    if (!ca.ok()) {
      return std::move(ca).error();
    }
    client.caPem = std::move(*ca);
  }
  CciAuthOptions auth;
  auth.projectID = config.projectID;
  auth.tokenFile = config.tokenFile;
  auth.akskFile = config.akskFile;
  auth.aksk = std::move(aksk);
  auto credentials = makeCciCredentialSource(std::move(auth), clock);
  if (!credentials.ok()) {
    return std::move(credentials).error();
  }
  auto transport = kube::makeBeastTransport(
      executor, client, std::shared_ptr<kube::CredentialSource>(std::move(*credentials)));
  if (!transport.ok()) {
    return std::move(transport).error();
  }
  kube::RestOptions options;
  options.clock = &clock;
  if (config.cciApi()) {
    options.dialect = cciError;
  }
  return std::make_unique<kube::RestClient>(executor, std::move(*transport), client, options);
}

asio::awaitable<Result<NetworkSettings>> resolveNetwork(BackendConfig config,
                                                        std::optional<AkSk> aksk,
                                                        std::string userAgent, const Clock& clock) {
  const std::string where = "provider.cci.network";
  NetworkSettings settings = config.network;
  if (config.canDiscover() && !missingNetworkKeys(settings).empty()) {
    const auto executor = co_await asio::this_coro::executor;
    std::unique_ptr<kube::RestClient> clients[3];
    CceSources sources;
    kube::RestClient** slots[] = {&sources.cce, &sources.vpc, &sources.iam};
    const std::pair<std::string, std::string> endpoints[] = {{config.cce.endpoint, "cce"},
                                                             {config.cce.vpcEndpoint, "vpc"},
                                                             {config.cce.iamEndpoint, "iam"}};
    for (size_t i = 0; i < 3; ++i) {
      std::string endpoint = endpoints[i].first.empty()
                                 ? regionalEndpoint(config.endpoint, endpoints[i].second)
                                 : endpoints[i].first;
      if (endpoint.empty()) {
        continue;  // discovery names the service should it be needed
      }
      auto c = connectService(executor, config, endpoint, aksk, userAgent, clock);
      if (!c.ok()) {
        co_return std::move(c).error();
      }
      clients[i] = std::move(*c);
      *slots[i] = clients[i].get();
    }
    const std::string cluster =
        config.cce.clusterID.empty() ? config.clusterID : config.cce.clusterID;
    auto found = co_await discoverNetwork(sources, config.projectID, cluster, settings);
    if (!found.ok()) {
      Error e = std::move(found).error();
      e.message =
          fmt::format("{}: settings missing and not discovered from CCE: {}", where, e.message);
      co_return e;
    }
    settings = std::move(*found);
    spdlog::info(
        "msg=\"backend network settings discovered\" cluster={} vpc={} subnet={} network={} "
        "cidr={} zone={}",
        cluster, settings.vpcID, settings.subnetID, settings.networkID, settings.cidr,
        settings.availabilityZone);
  }
  if (auto s = validateNetwork(settings, where, true); !s.ok()) {
    co_return std::move(s).error();
  }
  co_return settings;
}

namespace {

// Deletes the Networks of ours in `ns` (a backend without the Network API has none).
asio::awaitable<Status> deleteNetworks(kube::RestClient& backend, const std::string& ns,
                                       const std::string& clusterID) {
  kube::ListOptions lo;
  lo.labelSelector =
      fmt::format("{}={},{}={}", kManagedByLabel, kManagedByValue, kClusterIdLabel, clusterID);
  auto networks = co_await backend.list(kNetworks, ns, lo);
  if (!networks.ok()) {
    const ErrorCode code = networks.error().code;
    if (code == ErrorCode::kNotFound) {
      co_return okStatus();  // no such API here (a plain Kubernetes backend)
    }
    if (code == ErrorCode::kForbidden) {
      // The namespace's deletion takes its Networks along.
      spdlog::warn(
          "msg=\"backend networks not listed, left to the namespace deletion\" "
          "namespace={} error=\"{}\"",
          ns, networks.error().toString());
      co_return okStatus();
    }
    co_return std::move(networks).error();
  }
  const auto* items = kube::arrayAt(*networks, {"items"});
  if (items == nullptr) {
    co_return okStatus();
  }
  for (const auto& network : *items) {
    std::string name(kube::objectName(network));
    auto r = co_await backend.remove(kNetworks, ns, name);
    if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
      co_return std::move(r).error();
    }
    spdlog::info("msg=\"deleting backend network\" namespace={} network={}", ns, name);
  }
  co_return okStatus();
}

// How long after its grace period a terminating pod is left before cleanup forces it.
constexpr std::chrono::seconds kStuckPodSlack{10};

asio::awaitable<Status> forceStuckPods(kube::RestClient& backend, const std::string& ns,
                                       const Clock& clock) {
  const kube::ListOptions all;
  auto pods = co_await backend.list(resources::kPods, ns, all);
  if (!pods.ok()) {
    co_return pods.error().code == ErrorCode::kNotFound ? okStatus() : Status(pods.error());
  }
  const auto* items = pods->as_object().if_contains("items");
  if (items == nullptr || !items->is_array()) {
    co_return okStatus();
  }
  for (const auto& pod : items->as_array()) {
    const auto* meta = pod.as_object().if_contains("metadata");
    const auto* ts = meta != nullptr && meta->is_object()
                         ? meta->as_object().if_contains("deletionTimestamp")
                         : nullptr;
    const auto* grace = meta != nullptr && meta->is_object()
                            ? meta->as_object().if_contains("deletionGracePeriodSeconds")
                            : nullptr;
    if (ts == nullptr || !ts->is_string() ||
        (grace != nullptr && grace->is_int64() && grace->as_int64() == 0)) {
      continue;
    }
    const auto when = parseRfc3339(ts->as_string());
    if (!when || clock.now() < *when + kStuckPodSlack) {
      continue;
    }
    std::string name(kube::objectName(pod));
    kube::DeleteOptions o;
    o.gracePeriodSeconds = 0;
    o.preconditionUid = std::string(kube::objectUid(pod));
    auto r = co_await backend.remove(resources::kPods, ns, name, o);
    if (!r.ok() && r.error().code != ErrorCode::kNotFound &&
        r.error().code != ErrorCode::kConflict) {
      co_return std::move(r).error();
    }
    spdlog::warn("msg=\"forced the deletion of a backend pod stuck terminating\" pod={}/{}", ns,
                 name);
  }
  co_return okStatus();
}

// Unbinds every claim in `ns` (CCI mode): an imported claim deleted with its namespace would
// take its file system along (storage_import.h).
asio::awaitable<Status> unbindClaims(kube::RestClient& backend, const std::string& ns) {
  const kube::ListOptions all;
  auto claims = co_await backend.list(resources::kPersistentVolumeClaims, ns, all);
  if (!claims.ok()) {
    co_return claims.error().code == ErrorCode::kNotFound ? okStatus() : Status(claims.error());
  }
  const auto* items = kube::arrayAt(*claims, {"items"});
  if (items == nullptr) {
    co_return okStatus();
  }
  for (const auto& claim : *items) {
    std::string name(kube::objectName(claim));
    auto r = co_await backend.remove(resources::kPersistentVolumeClaims, ns, name, unbindOptions());
    if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
      co_return Error::make(r.error().code, r.error().reason,
                            fmt::format("backend namespace {} left in place: claim {} could not "
                                        "be unbound, and deleting the namespace would delete its "
                                        "file system: {}",
                                        ns, name, r.error().message));
    }
    spdlog::info("msg=\"unbound backend claim, its file system kept\" namespace={} claim={}", ns,
                 name);
  }
  co_return okStatus();
}

// Waits until `ns` is gone, forcing pods stuck terminating; kTimeout after `timeout`.
asio::awaitable<Status> awaitNamespaceGone(kube::RestClient& backend, const std::string& ns,
                                           std::chrono::milliseconds timeout, const Clock& clock) {
  std::string none;
  const auto deadline = clock.steadyNow() + timeout;
  while (true) {
    auto still = co_await backend.get(resources::kNamespaces, none, ns);
    if (!still.ok()) {
      if (still.error().code == ErrorCode::kNotFound) {
        co_return okStatus();
      }
      co_return std::move(still).error();
    }
    // Pods still terminating well after their grace period (a backend that never finishes
    // them) would keep the namespace, and the bill, forever: they are deleted forcibly.
    if (auto s = co_await forceStuckPods(backend, ns, clock); !s.ok()) {
      spdlog::warn("msg=\"forcing stuck backend pods failed\" namespace={} error=\"{}\"", ns,
                   s.error().toString());
    }
    if (clock.steadyNow() >= deadline) {
      co_return Error::make(
          ErrorCode::kTimeout, "CleanupTimeout",
          fmt::format("backend namespace {} still exists after {} s", ns,
                      std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
    }
    co_await sleepFor(clock, std::chrono::milliseconds(500));
  }
}

}  // namespace

asio::awaitable<Status> cleanupBackend(kube::RestClient& backend, const std::string& ns,
                                       const std::string& clusterID, bool cciApi,
                                       std::chrono::milliseconds timeout, const Clock& clock) {
  std::string none;
  auto got = co_await backend.get(resources::kNamespaces, none, ns);
  if (!got.ok() && got.error().code != ErrorCode::kNotFound) {
    co_return std::move(got).error();
  }
  if (got.ok()) {
    if (labelAt(*got, kManagedByLabel) != kManagedByValue ||
        labelAt(*got, kClusterIdLabel) != clusterID) {
      co_return Error::make(
          ErrorCode::kForbidden, "NamespaceNotOwned",
          fmt::format("backend namespace {} is not labelled as burstlet's for cluster {}: "
                      "left alone",
                      ns, clusterID));
    }
    if (auto s = co_await deleteNetworks(backend, ns, clusterID); !s.ok()) {
      co_return s;
    }
    // Deleting the namespace deletes its claims; an imported one would take its file system
    // with it. Every claim is unbound first, and the namespace stays when one cannot be.
    if (cciApi) {
      if (auto s = co_await unbindClaims(backend, ns); !s.ok()) {
        co_return s;
      }
    }
    kube::DeleteOptions o;
    o.propagationPolicy = "Background";
    auto r = co_await backend.remove(resources::kNamespaces, none, ns, o);
    if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
      co_return std::move(r).error();
    }
    spdlog::info("msg=\"deleting backend namespace\" namespace={}", ns);
  }
  // Volumes are cluster-scoped and outlive the namespace; ours carry the cluster id. Their
  // reclaim policy is Retain: the file systems stay, only the backend's handles go. CCI has no
  // volume API: its imports were the claims.
  if (cciApi) {
    co_return co_await awaitNamespaceGone(backend, ns, timeout, clock);
  }
  kube::ListOptions lo;
  lo.labelSelector =
      fmt::format("{}={},{}={}", kManagedByLabel, kManagedByValue, kClusterIdLabel, clusterID);
  auto pvs = co_await backend.list(resources::kPersistentVolumes, none, lo);
  if (!pvs.ok() && pvs.error().code != ErrorCode::kForbidden) {
    co_return std::move(pvs).error();
  }
  if (pvs.ok()) {
    if (const auto* items = pvs->as_object().if_contains("items"); items && items->is_array()) {
      for (const auto& pv : items->as_array()) {
        std::string name(kube::objectName(pv));
        auto r = co_await backend.remove(resources::kPersistentVolumes, none, name);
        if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
          co_return std::move(r).error();
        }
      }
    }
  }
  co_return co_await awaitNamespaceGone(backend, ns, timeout, clock);
}

}  // namespace burstlet::provider::cci
