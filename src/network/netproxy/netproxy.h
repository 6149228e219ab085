// `burstlet netproxy`: the network proxy that runs as a sidecar in each backend pod (sidecar.h)
// and makes the cluster's ClusterIP Services reachable from the pod. It watches Services and
// EndpointSlices with the read-only identity in its credentials directory and keeps the pod's
// nftables DNAT rules (proxy_table.h) equal to them, a new ruleset a moment after each change.
//
// Why kernel DNAT and not a userspace proxy: the pod's processes connect to ClusterIPs, which
// are no address of the pod; to catch those connections a proxy needs the addresses on a local
// interface or TPROXY, both of which also take CAP_NET_ADMIN. So NET_ADMIN is needed either
// way, and with it the kernel forwards TCP and UDP without copying every byte through a
// process. Rules stay in place when the proxy exits (a restart keeps traffic flowing on the last
// known endpoints). The master Service goes to the address the proxy reaches the API server at,
// so in-cluster clients in the pod (KUBERNETES_SERVICE_HOST) reach it the same way.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "kube/config.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "network/netproxy/nftables.h"
#include "network/netproxy/proxy_table.h"

namespace burstlet::network {

struct NetProxyOptions {
  // The files of the proxy's node secret (proxy_credentials.h): token (re-read as it is
  // renewed), ca.crt, server, and tls-server-name when the server's address is not in its
  // certificate.
  std::string credentialsDir;
  // Changes that come within this long of each other make one ruleset.
  std::chrono::milliseconds settle{200};
  // Where the master Service (default/kubernetes, KUBERNETES_SERVICE_HOST) goes: the API server
  // address the proxy itself uses (the credentials' `server`), when it is an IPv4 address.
  std::optional<ProxyEndpoint> apiServer;
  // The pod's annotations as the downward API writes them (`key="value"` lines): once they
  // carry provider::kInjectedStopAnnotation, the pod's own containers are done and the proxy
  // exits (successfully) so that the pod can end. "" = run until stopped.
  std::string stopFile;
  // Instead of running: wait until the proxy's table exists in this network namespace (its
  // first ruleset applied), at most this long; exit 0 when it does, 1 when not. The sidecar's
  // postStart hook: the kubelet starts the pod's own containers only after it returns, so they
  // never run without the rules. 0 = run the proxy.
  std::chrono::milliseconds waitForRules{0};
};

// Whether the downward API annotations file at `path` tells injected containers to stop.
bool stopRequested(const std::string& path);

// The client configuration in `dir`. kInvalid naming the missing or bad file.
Result<kube::ClientConfig> proxyClientConfig(const std::string& dir);

class NetProxy {
 public:
  NetProxy(kube::RestClient& cluster, RuleApplier& rules, NetProxyOptions options,
           const Clock& clock);

  // Until stop() or the stop file says so. ready once the first ruleset is applied. An error only
  // when the rules can never be applied (no CAP_NET_ADMIN): what the API says is retried by the
  // informers.
  boost::asio::awaitable<Status> run();
  void stop();
  const Signals& signals() const { return signals_; }
  uint64_t rulesetsApplied() const { return applied_.load(); }

 private:
  boost::asio::awaitable<Status> applyLoop();
  // True (and logged) once the stop file says so.
  bool stopAsked() const;
  void markChanged();

  RuleApplier& rules_;
  const NetProxyOptions options_;
  const Clock& clock_;
  kube::Informer services_;
  kube::Informer slices_;
  Wakeup changed_;
  Latch stop_;
  Signals signals_;
  std::atomic<uint64_t> applied_{0};
  std::atomic<bool> dirty_{true};  // Services or EndpointSlices changed since the last ruleset
};

// The subcommand: connects, applies, runs until SIGTERM/SIGINT. Exit code.
int runNetProxy(const NetProxyOptions& options);

}  // namespace burstlet::network
