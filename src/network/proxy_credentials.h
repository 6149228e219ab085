// The network proxy's credentials on the backend: a token of a read-only cluster identity (the
// ServiceAccount `burstlet-netproxy`, bound to get/list/watch on Services and EndpointSlices
// only; deploy/rbac/cluster.yaml), the cluster CA and the API server's address, written into the
// provider's node secret that every proxy sidecar mounts. Tokens come from the TokenRequest API
// with a bounded lifetime and are renewed when 80% of it has passed, so a leaked backend
// secret stops working within the lifetime. The token never appears in a log line or error.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "kube/rest.h"
#include "network/api_server.h"
#include "provider/provider.h"

namespace burstlet::network {

struct ProxyCredentialsOptions {
  std::string serviceAccountNamespace = "kube-system";
  std::string serviceAccount = "burstlet-netproxy";
  std::chrono::seconds tokenLifetime{std::chrono::hours(1)};
  ApiServerEndpoint apiServer;
  // The CA the sidecar trusts for the API server; "" = the cluster's own, read from the
  // ConfigMap kube-root-ca.crt of serviceAccountNamespace.
  std::string caPem;
};

// The secret's keys, read by `burstlet netproxy --credentials=<dir>` (netproxy.h).
inline constexpr const char* kCredentialToken = "token";
inline constexpr const char* kCredentialCA = "ca.crt";
inline constexpr const char* kCredentialServer = "server";
inline constexpr const char* kCredentialServerName = "tls-server-name";

class ProxyCredentials {
 public:
  ProxyCredentials(kube::RestClient& cluster, provider::Provider& provider,
                   ProxyCredentialsOptions options, const Clock& clock);

  // Writes the secret, then renews it, until `stop`. Failures are logged and retried (backoff up
  // to a minute; sooner than the token's expiry). signals().ready is set after the first write.
  boost::asio::awaitable<void> run(const Latch& stop);
  const Signals& signals() const { return signals_; }

  // One round: a new token and the secret written. Returns when the token expires.
  boost::asio::awaitable<Result<Clock::WallTime>> refresh();

 private:
  kube::RestClient& cluster_;
  provider::Provider& provider_;
  const ProxyCredentialsOptions options_;
  const Clock& clock_;
  Signals signals_;
};

}  // namespace burstlet::network
