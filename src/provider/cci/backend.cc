#include "provider/cci/backend.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/this_coro.hpp>

#include "kube/transport.h"
#include "provider/cci/api_fields.h"
#include "provider/cci/auth.h"
#include "provider/cci/cce_discovery.h"
#include "provider/cci/cci_errors.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

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

}  // namespace burstlet::provider::cci
