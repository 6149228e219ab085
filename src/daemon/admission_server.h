// The admission webhook's part of `burstlet run`: its HTTPS listener (files, or burstlet's own
// CA and certificate kept in a Secret, webhook_certs.h), owners read from the cluster, and the
// MutatingWebhookConfiguration registered (tried again every 10 s until it is).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "admission/registration.h"
#include "admission/webhook.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "daemon/admission_caches.h"
#include "daemon/config.h"
#include "daemon/webhook_certs.h"
#include "kube/rest.h"
#include "server/http_server.h"

namespace burstlet::daemon {

// Owners read from the cluster's API server, one GET each, each given `perRead` at most: with
// a client that does not retry, the three reads of a chain stay well inside the webhook's
// timeout (the API server then admits the pod unchanged, and it stays local).
class ApiOwnerSource final : public admission::OwnerSource {
 public:
  ApiOwnerSource(kube::RestClient& cluster, std::chrono::milliseconds perRead)
      : cluster_(cluster), perRead_(perRead) {}
  boost::asio::awaitable<Result<boost::json::value>> read(const kube::ResourceRef& resource,
                                                          std::string ns,
                                                          std::string name) override;

 private:
  kube::RestClient& cluster_;
  const std::chrono::milliseconds perRead_;
};

struct AdmissionParts {
  std::unique_ptr<kube::RestClient> client;  // the owner reads': no retries
  std::unique_ptr<ApiOwnerSource> owners;    // the caches' fallback
  // Owners, profiles and the profiles' ledger from informers; start() them, stop() at shutdown.
  std::unique_ptr<AdmissionCaches> caches;
  std::unique_ptr<admission::AdmissionWebhook> webhook;
  std::unique_ptr<server::HttpServer> server;
  // Without certificate files: burstlet's own, from a Secret; its run() starts `server` once
  // they are loaded and keeps `registration` (caBundle empty here) registered.
  std::unique_ptr<WebhookCertificates> certificates;
  admission::Registration registration;
};

// Listening (not started) on config.admission.listen with the webhook's route.
Result<AdmissionParts> makeAdmission(const boost::asio::any_io_executor& executor,
                                     const Config& config, const kube::ClientConfig& clusterConfig,
                                     const std::string& nodeIP, admission::BackendCheck check,
                                     const Clock& clock);

// Registers `registration` until it succeeds or `stop` is set.
boost::asio::awaitable<void> keepRegistered(kube::RestClient& cluster,
                                            admission::Registration registration,
                                            const Clock& clock, const Latch& stop);

}  // namespace burstlet::daemon
