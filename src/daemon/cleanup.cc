// `burstlet cleanup` (daemon.h): the node's backend objects, then the namespace when no other
// node uses it, the webhook registration and its certificate Secret.
#include "provider/cci/cleanup.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>

#include "admission/registration.h"
#include "daemon/daemon.h"
#include "daemon/providers.h"
#include "daemon/stop_deployment.h"
#include "daemon/webhook_certs.h"
#include "kube/resource.h"
#include "kube/rest.h"
#include "provider/cci/backend.h"
#include "provider/cci/cci_options.h"

namespace burstlet::daemon {

namespace asio = boost::asio;

namespace {

asio::awaitable<void> runCleanup(kube::RestClient* backend, provider::cci::CleanupOptions options,
                                 Result<provider::cci::CleanupReport>* out) {
  const Clock& clock = realClock();
  *out = co_await provider::cci::cleanupBackend(*backend, std::move(options), clock);
}

asio::awaitable<void> removeRegistration(kube::RestClient* cluster, std::string name, Status* out) {
  std::string none;
  auto r = co_await cluster->remove(admission::kMutatingWebhookConfigurations, none, name);
  *out = r.ok() || r.error().code == ErrorCode::kNotFound ? okStatus() : Status(r.error());
}

// The webhook's own CA and serving certificate (webhook_certs.h), when burstlet made them.
asio::awaitable<void> removeCertSecret(kube::RestClient* cluster, std::string ns, std::string name,
                                       Status* out) {
  auto r = co_await cluster->remove(kube::resources::kSecrets, ns, name);
  *out = r.ok() || r.error().code == ErrorCode::kNotFound ? okStatus() : Status(r.error());
}

}  // namespace

int cleanup(const Config& config, std::chrono::milliseconds timeout, bool allNodes,
            const std::string& stopDeploymentRef, const std::string& version) {
  if (config.provider != "cci") {
    std::fprintf(stderr,
                 "burstlet cleanup: provider.name is %s; only the cci provider leaves "
                 "anything on a backend\n",
                 config.provider.c_str());
    return 1;
  }
  if (auto s = validate(config); !s.ok()) {
    std::fprintf(stderr, "burstlet cleanup: configuration: %s\n", s.error().toString().c_str());
    return 1;
  }
  std::optional<DeploymentRef> stopRef;
  if (!stopDeploymentRef.empty()) {
    auto ref = parseDeploymentRef(stopDeploymentRef);
    if (!ref.ok()) {
      std::fprintf(stderr, "burstlet cleanup: %s\n", ref.error().message.c_str());
      return 1;
    }
    stopRef = std::move(*ref);
  }
  asio::io_context io(1);
  std::unique_ptr<kube::RestClient> cluster;
  const bool webhook = !config.admission.listen.empty() && config.admission.registerWebhook;
  const bool ownCerts = !config.admission.listen.empty() && config.admission.certFile.empty();
  if (!config.backend.akskSecret.empty() || webhook || ownCerts || stopRef) {
    auto cc = clusterConfig(config);
    if (!cc.ok()) {
      std::fprintf(stderr, "burstlet cleanup: cluster connection: %s\n",
                   cc.error().toString().c_str());
      return 1;
    }
    auto c = kube::RestClient::create(io.get_executor(), *cc);
    if (!c.ok()) {
      std::fprintf(stderr, "burstlet cleanup: cluster connection: %s\n",
                   c.error().toString().c_str());
      return 1;
    }
    cluster = std::move(*c);
  }
  auto backend = connectBackend(io, config, cluster.get(), version, realClock());
  if (!backend.ok()) {
    std::fprintf(stderr, "burstlet cleanup: backend connection: %s\n",
                 backend.error().toString().c_str());
    return 1;
  }
  // After the connections (a bad credential stops nothing), before anything is removed.
  if (stopRef && !stopBeforeCleanup(io, *cluster, *stopRef, timeout)) {
    return 1;
  }
  provider::cci::CleanupOptions options;
  options.ns =
      provider::cci::namespaceFor(config.backend.namespacePrefix, config.backend.clusterID);
  options.clusterID = config.backend.clusterID;
  options.nodeName = config.nodeName;
  options.allNodes = allNodes;
  options.cciApi = config.backend.cciApi();
  options.timeout = timeout;
  Result<provider::cci::CleanupReport> result = provider::cci::CleanupReport{};
  asio::co_spawn(io, runCleanup(backend->get(), options, &result), asio::detached);
  io.restart();
  io.run();
  if (!result.ok()) {
    std::fprintf(stderr, "burstlet cleanup: %s\n", result.error().toString().c_str());
    return 1;
  }
  for (const auto& line : provider::cci::describeCleanup(*result, options)) {
    std::printf("%s\n", line.c_str());
  }
  if (webhook) {
    // Without burstlet its registration only costs each pod create a failed call.
    const std::string name = "burstlet-" + config.nodeName;
    Status removed = okStatus();
    asio::co_spawn(io, removeRegistration(cluster.get(), name, &removed), asio::detached);
    io.restart();
    io.run();
    if (!removed.ok()) {
      std::fprintf(stderr, "burstlet cleanup: webhook registration %s: %s\n", name.c_str(),
                   removed.error().toString().c_str());
      return 1;
    }
    std::printf("webhook registration %s is gone\n", name.c_str());
  }
  if (ownCerts) {
    const WebhookCertOptions certs = webhookCertOptions(config, {});
    Status removed = okStatus();
    asio::co_spawn(io, removeCertSecret(cluster.get(), certs.ns, certs.secretName, &removed),
                   asio::detached);
    io.restart();
    io.run();
    if (!removed.ok()) {
      std::fprintf(stderr, "burstlet cleanup: webhook certificate Secret %s/%s: %s\n",
                   certs.ns.c_str(), certs.secretName.c_str(), removed.error().toString().c_str());
      return 1;
    }
    std::printf("webhook certificate Secret %s/%s is gone\n", certs.ns.c_str(),
                certs.secretName.c_str());
  }
  return 0;
}

}  // namespace burstlet::daemon
