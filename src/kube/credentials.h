// Credentials: what a request presents to the API server. A CredentialSource yields the
// current credential and knows when to refresh it (token files rotate, exec plugins return
// credentials with an expiry). Sources never log or return secrets in error messages.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "kube/config.h"

namespace burstlet::kube {

struct Credential {
  std::string bearerToken;    // "Authorization: Bearer <token>" when non-empty
  std::string clientCertPem;  // TLS client certificate (from an exec plugin or the config)
  std::string clientKeyPem;
  std::string basicAuth;  // "user:password" when non-empty
  // When the credential must be fetched again (exec plugin expirationTimestamp).
  std::optional<Clock::WallTime> expiresAt;
};

class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  // The credential to use now, refreshed if it expired or its file changed. Blocking (may run
  // an exec plugin); call it off the I/O threads or accept the rare blocking refresh.
  virtual Result<Credential> current() = 0;
  // The server answered 401 with the credential from current(): drop any cache so the next
  // call fetches a fresh one.
  virtual void invalidate() = 0;
};

// The source for a ClientConfig: static token/cert/basic auth, token file, or exec plugin.
std::unique_ptr<CredentialSource> makeCredentialSource(const ClientConfig& config,
                                                       const Clock& clock = realClock());

}  // namespace burstlet::kube
