#include "daemon/providers.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <optional>

#include "daemon/api_cluster_objects.h"
#include "kube/json_path.h"
#include "provider/cci/auth.h"
#include "provider/cci/backend.h"
#include "provider/cci/cci_provider.h"
#include "provider/fake/fake_provider.h"

namespace burstlet::daemon {

namespace asio = boost::asio;

ProviderParts::ProviderParts() = default;
ProviderParts::ProviderParts(ProviderParts&&) noexcept = default;
ProviderParts& ProviderParts::operator=(ProviderParts&&) noexcept = default;
ProviderParts::~ProviderParts() {
  provider.reset();  // uses the others
}

namespace {

asio::awaitable<void> fetchSecret(kube::RestClient* client, std::string ns, std::string name,
                                  std::optional<Result<boost::json::value>>* out) {
  *out = co_await client->get(kube::resources::kSecrets, std::move(ns), std::move(name));
}

}  // namespace

namespace {

// The AK/SK pair of provider.cci.akskSecret, read from the cluster; nullopt when not configured.
Result<std::optional<provider::cci::AkSk>> readAkSk(asio::io_context& io, const Config& config,
                                                    kube::RestClient* cluster) {
  const std::string& ref = config.backend.akskSecret;
  if (ref.empty()) {
    return std::optional<provider::cci::AkSk>();
  }
  if (cluster == nullptr) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       "provider.cci.akskSecret needs the cluster connection");
  }
  const auto slash = ref.find('/');
  std::optional<Result<boost::json::value>> got;
  asio::co_spawn(io, fetchSecret(cluster, ref.substr(0, slash), ref.substr(slash + 1), &got),
                 asio::detached);
  io.run();
  io.restart();
  if (!got || !got->ok()) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("provider.cci.akskSecret {}: {}", ref,
                                   got ? got->error().toString() : std::string("not read")));
  }
  const auto* data = kube::objectOf(&kube::valueAt(got->value(), {"data"}));
  auto keys = provider::cci::akskFromSecretData(data != nullptr ? *data : boost::json::object{});
  if (!keys.ok()) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("provider.cci.akskSecret {}: {}", ref, keys.error().message));
  }
  return std::optional<provider::cci::AkSk>(std::move(*keys));
}

asio::awaitable<void> resolveInto(const Config* config, std::optional<provider::cci::AkSk> aksk,
                                  std::string userAgent, const Clock* clock,
                                  std::optional<Result<provider::cci::NetworkSettings>>* out) {
  // Named arguments: GCC 12 mishandles class-type temporaries in a co_await (kube/rest.h).
  *out = co_await provider::cci::resolveNetwork(config->backend, aksk, userAgent, *clock);
}

}  // namespace

Result<std::unique_ptr<kube::RestClient>> connectBackend(asio::io_context& io, const Config& config,
                                                         kube::RestClient* cluster,
                                                         const std::string& version,
                                                         const Clock& clock) {
  auto aksk = readAkSk(io, config, cluster);
  if (!aksk.ok()) {
    return std::move(aksk).error();
  }
  return provider::cci::connectBackend(io.get_executor(), config.backend, std::move(*aksk),
                                       "burstlet/" + version, clock);
}

namespace {

// provider.cci.network completed from CCE where settings are missing, then validated
// (provider::cci::resolveNetwork). Runs `io` until that is done, so call it before the loop runs.
Result<provider::cci::NetworkSettings> resolveNetwork(asio::io_context& io, const Config& config,
                                                      std::optional<provider::cci::AkSk> aksk,
                                                      const std::string& version,
                                                      const Clock& clock) {
  std::optional<Result<provider::cci::NetworkSettings>> got;
  asio::co_spawn(io, resolveInto(&config, std::move(aksk), "burstlet/" + version, &clock, &got),
                 asio::detached);
  io.run();
  io.restart();
  if (!got) {
    return Error::make(ErrorCode::kInternal, "NetworkNotResolved",
                       "provider.cci.network: not resolved");
  }
  return std::move(*got);
}

}  // namespace

namespace {

Result<ProviderParts> makeCci(const Config& config, ProviderContext& c) {
  ProviderParts parts;
  auto aksk = readAkSk(c.io, config, &c.cluster);  // once, for the backend and discovery
  if (!aksk.ok()) {
    return std::move(aksk).error();
  }
  auto b = provider::cci::connectBackend(c.io.get_executor(), config.backend, *aksk,
                                         "burstlet/" + c.version, c.clock);
  if (!b.ok()) {
    return std::move(b).error();
  }
  parts.backend = std::move(*b);
  auto& requests = c.registry.counterFamily("burstlet_backend_requests_total",
                                            "Requests to the backend API server by verb and code.",
                                            {"verb", "code"});
  parts.backend->setRequestObserver([&requests](std::string_view verb, std::string_view code) {
    requests.with({std::string(verb), std::string(code)}).Increment();
  });
  parts.clusterObjects = std::make_unique<ApiClusterObjects>(c.cluster);
  provider::cci::CciOptions o;
  o.clusterID = config.backend.clusterID;
  o.backendNamespace =
      provider::cci::namespaceFor(config.backend.namespacePrefix, config.backend.clusterID);
  o.nodeName = config.nodeName;
  o.nodeIP = c.nodeIP;
  o.cci = config.backend.cciApi();
  if (o.cci) {
    auto network = resolveNetwork(c.io, config, *aksk, c.version, c.clock);
    if (!network.ok()) {
      return std::move(network).error();
    }
    o.network = std::move(*network);
  }
  o.validate.storageDrivers = config.backend.storageDrivers;
  o.validate.storageClasses = config.backend.storageClasses;
  o.backendVersion = config.backend.backendVersion;
  o.capacity = config.backendCapacity;
  o.sweepInterval = config.backend.sweepInterval;
  // The webhook asks the provider's own rules (claims are not known yet: not checked).
  provider::cci::ValidateOptions check = o.validate;
  if (!o.cci) {
    check.limits = provider::cci::CciLimits::none();
  }
  parts.backendCheck = [check](const boost::json::value& pod) -> std::string {
    boost::json::value copy = pod;
    const Status s = provider::cci::admit(copy, check, nullptr);
    return s.ok() || s.error().code != ErrorCode::kInvalid ? std::string() : s.error().message;
  };
  parts.provider = std::make_unique<provider::cci::CciProvider>(
      c.strand, *parts.backend, *parts.clusterObjects, c.events, o, c.clock);
  return parts;
}

}  // namespace

Result<ProviderParts> makeProvider(const Config& config, ProviderContext context) {
  if (config.provider == "cci") {
    return makeCci(config, context);
  }
  provider::FakeProviderOptions fake = config.fake;
  fake.nodeIP = context.nodeIP;
  auto p = provider::FakeProvider::create(context.strand, fake, context.clock);
  if (!p.ok()) {
    return std::move(p).error();
  }
  ProviderParts parts;
  parts.provider = std::move(*p);
  return parts;
}

Result<kube::ClientConfig> clusterConfig(const Config& config) {
  return config.inCluster ? kube::inClusterConfig()
                          : kube::loadKubeconfig(kube::KubeconfigOptions{config.kubeconfigs,
                                                                         config.context, "", ""});
}

}  // namespace burstlet::daemon
