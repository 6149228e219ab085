// Where the backend is and how burstlet reaches it: a kubeconfig (any Kubernetes API server)
// or CCI settings (endpoint, project, X-Auth-Token or AK/SK signing). `burstlet cleanup` is in
// cleanup.h.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "kube/rest.h"
#include "provider/cci/network_settings.h"
#include "provider/cci/signer.h"

namespace burstlet::provider::cci {

namespace asio = boost::asio;

struct BackendConfig {
  // A Kubernetes-compatible backend.
  std::string kubeconfig;
  std::string context;
  // CCI: https endpoint (e.g. https://cci.cn-north-4.myhuaweicloud.com), project, and one of
  // tokenFile / akskFile / akskSecret ("namespace/name" of a cluster Secret).
  std::string endpoint;
  std::string projectID;
  std::string tokenFile;
  std::string akskFile;
  std::string akskSecret;
  std::string caFile;  // empty: system roots
  bool insecureSkipTLSVerify = false;
  // The backend namespace is <namespacePrefix><clusterID>.
  std::string clusterID;
  std::string namespacePrefix = "cce-burst-";
  // PVCs whose volume is served by one of these CSI drivers (or of one of these storage
  // classes) are made available on the backend; others are refused.
  std::vector<std::string> storageDrivers = {"nas.csi.everest.io", "sfsturbo.csi.everest.io"};
  std::vector<std::string> storageClasses;
  std::chrono::milliseconds sweepInterval{30'000};
  // What the backend is: "cci" (the namespace carries CCI's flavor annotation and holds a
  // Network) or "kubernetes" (neither). Empty: cci with `endpoint`, kubernetes with
  // `kubeconfig`.
  std::string api;
  // The backend's Kubernetes release for the pod field check (api_fields.h): "" reads GET
  // /version (CCI mode: 1.19 when it does not answer), "1.NN" fixes it, "off" checks nothing.
  std::string backendVersion;
  // The Network, in CCI mode. Settings left empty are discovered from CCE (below).
  NetworkSettings network;
  // Where the discovery reads: endpoints of CCE, VPC and IAM (empty: the region's, derived from
  // `endpoint`), and the CCE cluster's ID (empty: clusterID). With the CCI credentials.
  struct Cce {
    std::string endpoint;
    std::string vpcEndpoint;
    std::string iamEndpoint;
    std::string clusterID;
  } cce;

  // The backend is reached through `endpoint` (CCI's), not a kubeconfig.
  bool usesEndpoint() const { return !endpoint.empty(); }
  // CCI mode (see `api`).
  bool cciApi() const { return api.empty() ? usesEndpoint() : api == "cci"; }
  // Missing Network settings can be discovered: CCI mode with CCI's credentials.
  bool canDiscover() const { return cciApi() && usesEndpoint(); }
};

// kInvalid naming the key when the settings are incomplete or contradictory.
Status validateBackend(const BackendConfig& config);

// The API client for the backend. `aksk`: keys read from akskSecret by the caller.
Result<std::unique_ptr<kube::RestClient>> connectBackend(const asio::any_io_executor& executor,
                                                         const BackendConfig& config,
                                                         std::optional<AkSk> aksk,
                                                         const std::string& userAgent,
                                                         const Clock& clock = realClock());

// A client of another Huawei Cloud service (CCE, VPC, IAM) at `endpoint`, with the credentials
// of CCI's endpoint (so only when usesEndpoint()).
Result<std::unique_ptr<kube::RestClient>> connectService(
    const asio::any_io_executor& executor, const BackendConfig& config, const std::string& endpoint,
    std::optional<AkSk> aksk, const std::string& userAgent, const Clock& clock = realClock());

// `config.network` completed from CCE (when canDiscover() and settings are missing), then
// validated: kInvalid "InvalidNetworkSettings" with one line per bad key, or the discovery's
// error. Runs on the caller's executor.
asio::awaitable<Result<NetworkSettings>> resolveNetwork(BackendConfig config,
                                                        std::optional<AkSk> aksk,
                                                        std::string userAgent, const Clock& clock);

}  // namespace burstlet::provider::cci
