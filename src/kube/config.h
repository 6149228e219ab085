// Client configuration: where an API server is and how to authenticate to it, loaded from
// kubeconfig files (KUBECONFIG semantics) or from the in-cluster ServiceAccount. Certificates
// and keys are held in memory as PEM; nothing secret is written to disk or logged.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace burstlet::kube {

// An exec credential plugin (client.authentication.k8s.io/v1 or v1beta1).
struct ExecConfig {
  // Resolved: absolute, relative to the kubeconfig's directory, or a PATH name.
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string apiVersion = "client.authentication.k8s.io/v1";
  bool provideClusterInfo = false;
  std::string installHint;
  // "Never", "IfAvailable" or "Always"; burstlet never has a terminal, so Always is rejected and
  // IfAvailable behaves like Never.
  std::string interactiveMode = "Never";
  // How long the plugin may run before it is killed. Not a kubeconfig field (client-go has no
  // such knob either); it exists so tests need not wait for the default.
  std::chrono::milliseconds timeout{30'000};
};

struct ClientConfig {
  std::string server;         // "https://host:port" (path prefix allowed)
  std::string tlsServerName;  // overrides the name checked in the server certificate
  std::string caPem;          // empty: system roots
  bool insecureSkipTlsVerify = false;
  std::string clientCertPem;
  std::string clientKeyPem;
  std::string token;      // static bearer token
  std::string tokenFile;  // bearer token re-read when the file changes
  std::optional<ExecConfig> exec;
  std::string username, password;  // basic auth (kubeconfig allows it; rarely used)
  std::string defaultNamespace;    // the context's namespace, "" when unset
  std::string userAgent = "burstlet";
  // Where the configuration came from, for error messages ("kubeconfig /x context y").
  std::string source;
  // Client-side rate limit; 0 = off (the API server has priority and fairness).
  double qps = 0;
  int burst = 0;
  std::chrono::milliseconds timeout{30'000};
};

struct KubeconfigOptions {
  // Files in KUBECONFIG order; empty = $KUBECONFIG, then ~/.kube/config.
  std::vector<std::string> paths;
  std::string context;  // empty = current-context
  std::string cluster;  // override the context's cluster
  std::string user;     // override the context's user
};

// Splits a KUBECONFIG-style value ("a:b:c") into paths, dropping empty entries.
std::vector<std::string> splitKubeconfigEnv(const std::string& value);

// Loads and merges kubeconfig files like client-go: for contexts, clusters and users the first
// file that defines a name wins; current-context comes from the first file that sets it.
// Relative file references resolve against the file that holds them. Errors (missing file,
// bad YAML, unknown context/cluster/user, unreadable certificate, conflicting auth) are
// kInvalid with a message naming the file and field.
Result<ClientConfig> loadKubeconfig(const KubeconfigOptions& options);

// In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount files under
// `saDir` (token re-read as it rotates, ca.crt).
Result<ClientConfig> inClusterConfig(
    const std::string& saDir = "/var/run/secrets/kubernetes.io/serviceaccount");

// Reads a whole file; kInvalid naming `what` when it cannot be read.
Result<std::string> readFileNamed(const std::string& path, const std::string& what);

}  // namespace burstlet::kube
