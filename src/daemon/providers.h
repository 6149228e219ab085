// The provider the configuration names, and what it needs from the process: the cci provider
// gets its backend client (AK/SK read from a cluster Secret when configured), in CCI mode its
// Network settings (discovered from CCE where missing), the cluster-side
// reader of ConfigMaps/Secrets/claims and a metric of backend requests; the fake provider
// nothing. The daemon then drives either through the provider seam alone.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/result.h"
#include "daemon/config.h"
#include "kube/config.h"
#include "kube/events.h"
#include "kube/rest.h"
#include "provider/provider.h"

namespace burstlet::daemon {

class ApiClusterObjects;

// The provider and the objects it uses; destroyed in reverse order of declaration.
struct ProviderParts {
  ProviderParts();
  ProviderParts(ProviderParts&&) noexcept;
  ProviderParts& operator=(ProviderParts&&) noexcept;
  ~ProviderParts();

  std::unique_ptr<kube::RestClient> backend;
  std::unique_ptr<ApiClusterObjects> clusterObjects;
  std::unique_ptr<provider::Provider> provider;
  // Why the backend could not run a pod ("" when it could), for the admission webhook; empty
  // for a provider that runs anything.
  std::function<std::string(const boost::json::value& pod)> backendCheck;
};

struct ProviderContext {
  boost::asio::io_context& io;
  boost::asio::any_io_executor strand;  // the provider's
  kube::RestClient& cluster;
  kube::EventRecorder& events;
  metrics::Registry& registry;
  std::string nodeIP;
  std::string version;
  const Clock& clock;
};

// Errors: the backend connection (kInvalid for configuration, as connectBackend reports), the
// Network settings in CCI mode (resolveNetwork) or the fake provider's options.
Result<ProviderParts> makeProvider(const Config& config, ProviderContext context);

// The cluster connection: in-cluster, or the kubeconfig files and context of the config.
Result<kube::ClientConfig> clusterConfig(const Config& config);

// The backend client of the cci provider. Reads the AK/SK Secret through `cluster` (may be null
// when none is configured) by running `io` until it is read, so call it before the loop runs.
Result<std::unique_ptr<kube::RestClient>> connectBackend(boost::asio::io_context& io,
                                                         const Config& config,
                                                         kube::RestClient* cluster,
                                                         const std::string& version,
                                                         const Clock& clock);

}  // namespace burstlet::daemon
