// The admission webhook's own certificates when no files are given: a CA and a serving
// certificate it signs, kept in a Secret in burstlet's namespace so that a restart serves the
// same CA (and the MutatingWebhookConfiguration's caBundle stays as it is), and renewed before
// they expire while the listener keeps serving.
//
// The Secret (type kubernetes.io/tls, label burstlet.io/managed-by=burstlet) holds tls.crt and
// tls.key (the serving pair), ca.crt (the CA bundle the API server is to trust, the newest CA
// first) and ca.key (the newest CA's key). Renewal:
// - the serving certificate when a third of its validity is left, or when it is unusable
//   (damaged, expired, not for the hosts, not from a CA in the bundle);
// - the CA when a third of its validity is left: the new CA joins the bundle beside the old
//   one (kept until it expires), and signs serving certificates only once it has been in the
//   bundle for `caOverlap` and the registration holds that bundle, so the API server never
//   sees a certificate it does not trust. The annotation burstlet.io/ca-added-at says when.
// Key material never reaches a log line or an error message.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "admission/registration.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "daemon/config.h"
#include "kube/rest.h"
#include "server/certificates.h"
#include "server/http_server.h"

namespace burstlet::daemon {

struct WebhookCertOptions {
  std::string ns;          // of the Secret
  std::string secretName;  // burstlet-webhook-<node>
  std::vector<std::string> hosts;
  std::chrono::seconds certValidity{std::chrono::hours(24 * 365)};
  std::chrono::seconds caValidity{std::chrono::hours(24 * 365 * 10)};
  // How often run() looks; 0: a sixth of certValidity, between 1 s and 1 h.
  std::chrono::milliseconds checkInterval{0};
  // How long a new CA is only trusted before it signs; 0: the check interval (the API server
  // takes a changed caBundle within seconds).
  std::chrono::milliseconds caOverlap{0};
};

// burstlet's own namespace: admission.namespace, else $POD_NAMESPACE, else kube-system.
std::string ownNamespace(const Config::Admission& admission);
// The same rule for any configured namespace ("" = $POD_NAMESPACE, else kube-system).
std::string ownNamespace(const std::string& configured);

// The options for `config` serving `hosts`.
WebhookCertOptions webhookCertOptions(const Config& config, std::vector<std::string> hosts);

// What the listener serves and what the API server is to trust for it.
struct WebhookCertSet {
  server::PemPair serving;
  std::string caBundle;  // PEM, newest CA first

  bool operator==(const WebhookCertSet&) const = default;
};

class WebhookCertificates {
 public:
  WebhookCertificates(WebhookCertOptions options, const Clock& clock);

  // Reads the Secret and returns its certificates, after renewing what is due or unusable and
  // storing the result (create when absent; update with the read resourceVersion; on a 409 the
  // Secret is read again and what the other writer stored is used when it is good).
  // Errors: the API's.
  boost::asio::awaitable<Result<WebhookCertSet>> ensure(kube::RestClient& cluster);

  // Until `stop` is set: ensure() at once and then every check interval (10 s at most after a
  // failure). The first serving pair goes to `server`'s TLS context and starts it; later ones
  // replace it for new connections. With `registration`, the webhook is registered with the CA
  // bundle (ensureRegistration) whenever the bundle changes, and a new serving pair is used
  // only once the registration holds its bundle. `server` must have a TLS context made
  // without files.
  boost::asio::awaitable<void> run(kube::RestClient& cluster, server::HttpServer& server,
                                   std::optional<admission::Registration> registration,
                                   const Latch& stop);

  const WebhookCertOptions& options() const { return options_; }
  std::chrono::milliseconds checkInterval() const;

 private:
  const WebhookCertOptions options_;
  const Clock& clock_;
};

}  // namespace burstlet::daemon
