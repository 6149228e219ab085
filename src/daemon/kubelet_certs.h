// The kubelet API's serving certificate from the cluster's CSR API, as a kubelet with
// serverTLSBootstrap gets one: a CertificateSigningRequest for signer
// kubernetes.io/kubelet-serving (CN system:node:<node>, O system:nodes, the node's IP and name),
// approved by an operator (`kubectl certificate approve`) or by burstlet itself when configured
// and allowed, then served in place of the self-signed one and renewed with a new key once a
// third of its validity is left. The API server and metrics-server, which trust the cluster CA,
// then verify the node without --kubelet-insecure-tls.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "kube/rest.h"
#include "server/tls_context.h"

namespace burstlet::daemon {

inline constexpr const char* kKubeletServingSigner = "kubernetes.io/kubelet-serving";

struct KubeletCertOptions {
  std::string nodeName;
  std::vector<std::string> hosts;  // subjectAltName: the node's IP address(es) and name
  // Approve our own request (needs `update` on certificatesigningrequests/approval and
  // `approve` on signers/kubernetes.io/kubelet-serving). Otherwise an operator approves.
  bool approve = false;
  std::chrono::milliseconds pollInterval{std::chrono::seconds(2)};
  // After a denied, failed or unanswerable request.
  std::chrono::milliseconds retryAfter{std::chrono::minutes(1)};
};

// The CertificateSigningRequest object for `requestPem` (name `name`).
boost::json::value signingRequestObject(const std::string& name, const std::string& requestPem);

class KubeletServingCertificates {
 public:
  KubeletServingCertificates(kube::RestClient& cluster, server::TlsContext& tls,
                             KubeletCertOptions options, const Clock& clock = realClock());

  // Until `stop`: gets a certificate, serves it, renews it.
  boost::asio::awaitable<void> run(const Latch& stop);
  // Whether a certificate from the cluster is being served.
  bool issued() const { return issued_.load(); }

  // One request to its end: the certificate (served from now on) or why not. Public for tests.
  boost::asio::awaitable<Result<server::PemPair>> requestOnce(const Latch& stop);

 private:
  kube::RestClient& cluster_;
  server::TlsContext& tls_;
  const KubeletCertOptions options_;
  const Clock& clock_;
  std::atomic<bool> issued_{false};
  int sequence_ = 0;
};

}  // namespace burstlet::daemon
