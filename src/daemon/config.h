// Configuration of `burstlet run`: a YAML file, then flags on top. Every problem in the file is
// an error naming the key, never a crash or a silently ignored setting.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "provider/cci/backend.h"
#include "provider/fake/fake_provider.h"

namespace burstlet::daemon {

struct Config {
  // Cluster connection.
  std::vector<std::string> kubeconfigs;  // empty: $KUBECONFIG, then ~/.kube/config
  std::string context;
  bool inCluster = false;
  // The virtual node.
  std::string nodeName = "burstlet";
  std::string nodeIP;  // empty: detected
  std::string instanceType = "burstlet-virtual";
  int kubeletPort = 10250;
  // Once the provider has been unreachable this long, the node's Ready goes False so that the
  // cluster evicts its pods by their tolerations; 0 = never (Ready and the lease are burstlet's
  // own health, and an outage only taints the node NoSchedule).
  std::chrono::milliseconds notReadyAfterProviderOutage{0};
  // Work.
  int workers = 16;
  int threads = 2;
  // Listeners.
  std::string healthListen = "0.0.0.0:10255";
  std::string logLevel = "info";
  // The burst-policy admission webhook (src/admission): off unless `listen` is set.
  struct Admission {
    std::string listen;  // "host:port"; "" : no webhook
    // Serving certificate and the CA bundle the API server trusts for it, PEM files; without
    // them burstlet's own CA and a serving certificate for `hosts` it signs, kept in the Secret
    // burstlet-webhook-<node> in `ns` and renewed once a third of their validity is left
    // (daemon/webhook_certs.h).
    std::string certFile;
    std::string keyFile;
    std::string caFile;
    std::vector<std::string> hosts;  // default: the node IP
    // burstlet's own namespace (the Secret's; never sent to the webhook). Empty: $POD_NAMESPACE,
    // else kube-system.
    std::string ns;
    std::chrono::milliseconds certValidity{std::chrono::hours(24 * 365)};
    std::chrono::milliseconds caValidity{std::chrono::hours(24 * 365 * 10)};
    // How the API server reaches the webhook; default https://<first host>:<port>/mutate-pods.
    std::string url;
    bool registerWebhook = true;  // create or update the MutatingWebhookConfiguration
    std::vector<std::string> skipNamespaces = {"kube-system"};
  } admission;
  // The kubelet API (src/kubelet): logs, exec, attach, port-forward and stats of the node's
  // pods for the API server and metrics-server.
  struct KubeletApi {
    bool enabled = true;
    std::string listen;  // "host:port"; default <node IP>:<kubeletPort>
    // Serving certificate, PEM files (re-read when they change). Without them a self-signed
    // one for the node's IP and name (an API server run with --kubelet-certificate-authority,
    // or metrics-server without --kubelet-insecure-tls, will not trust it).
    std::string certFile;
    std::string keyFile;
    // CAs whose client certificates are accepted (the API server's --kubelet-client-certificate
    // is signed by the cluster CA). Empty: bearer tokens only.
    std::string clientCAFile;
    // Without certificate files: ask the cluster's CSR API for a kubernetes.io/kubelet-serving
    // certificate (daemon/kubelet_certs.h) and serve it once issued; `approveOwnRequest` has
    // burstlet approve it (RBAC permitting), else an operator does.
    bool serverTLSBootstrap = false;
    bool approveOwnRequest = false;
    // Off: requests are served without authentication or authorization (local debugging only).
    bool authentication = true;
    // Declare ExtendWebSocketsToKubelet in the node's status.declaredFeatures.
    bool webSocketsToKubelet = true;
  } kubeletApi;
  // Service networking of burst pods (src/network, docs/networking.md).
  struct Network {
    // The cluster DNS (the kubelet's --cluster-dns, --cluster-domain): ClusterFirst pods go to
    // the backend with dnsPolicy None and these. Empty: DNS is left to the backend.
    std::vector<std::string> clusterDNS;
    std::string clusterDomain = "cluster.local";
    // Where backend pods reach the API server ("host:port"): KUBERNETES_SERVICE_* without the
    // proxy, and the proxy's own connection. "" = the address in the EndpointSlice
    // default/kubernetes. `apiServerName`: the name to check in its certificate when the host
    // is not in it.
    std::string apiServer;
    std::string apiServerName;
    // The network proxy sidecar (network/sidecar.h), off by default.
    struct Proxy {
      bool enabled = false;
      std::string image;
      std::vector<std::string> command = {"burstlet"};
      std::string cpu = "100m";
      std::string memory = "64Mi";
      // Its read-only identity in the cluster; namespace "" = burstlet's ($POD_NAMESPACE, else
      // kube-system).
      std::string serviceAccount = "burstlet-netproxy";
      std::string ns;
      std::chrono::milliseconds tokenLifetime{std::chrono::hours(1)};
    } proxy;
  } network;
  // High availability (daemon/leader.h): several replicas of one node, one of them working.
  struct LeaderElection {
    bool enabled = false;
    // The coordination.k8s.io Lease held by the working replica: <ns>/<leaseName>. "" =
    // $POD_NAMESPACE, else kube-system; "" = burstlet-<node name>.
    std::string ns;
    std::string leaseName;
    // This replica's name in the Lease; "" = $POD_NAME, else the host name, plus a random suffix.
    std::string identity;
    // A standby takes the Lease once its holder has not renewed it for leaseDuration; the holder
    // stops working when it could not renew it for renewDeadline; attempts every retryPeriod.
    std::chrono::milliseconds leaseDuration{15'000};
    std::chrono::milliseconds renewDeadline{10'000};
    std::chrono::milliseconds retryPeriod{2'000};
  } leaderElection;
  // Provider.
  std::string provider = "fake";
  provider::FakeProviderOptions fake;
  // provider "cci": the backend (CCI or any Kubernetes API server) and what the node offers.
  provider::cci::BackendConfig backend;
  provider::NodeCapacity backendCapacity{"2000", "8Ti", "10000", "20Ti"};
};

// Go-style durations: "0", "250ms", "2s", "1m30s", "1h".
Result<std::chrono::milliseconds> parseDuration(std::string_view text);

// Reads a YAML config file over `base`. Unknown keys, wrong types and bad values are kInvalid
// errors whose message names the file and the key.
Result<Config> loadConfigFile(const std::string& path, Config base);

// Checks values that flags may also have set (workers > 0, provider known, ...).
Status validate(const Config& config);

}  // namespace burstlet::daemon
