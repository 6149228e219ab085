// Credentials: what a request presents to the API server. A CredentialSource yields the
// current credential and knows when to refresh it (token files rotate, exec plugins return
// credentials with an expiry). Sources never log or return secrets in error messages.
// Besides the Kubernetes forms (bearer token, client certificate, basic auth) a credential may
// carry extra headers and a RequestSigner, for servers that authenticate each request by a
// signature over its bytes (the CCI backend's AK/SK signing).
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "kube/config.h"

namespace burstlet::kube {

// A request as it will go on the wire, for a RequestSigner to sign.
struct SignableRequest {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // path and query exactly as sent, base path included
  std::string_view body;
  // Every header that will be sent, Host included, names as the transport spells them.
  std::vector<std::pair<std::string, std::string>> headers;

  // The value of the first header named `name` (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
  // Replaces the headers named `name` (case-insensitive) with one, or appends it.
  void setHeader(std::string_view name, std::string value);
};

// Signs requests by adding headers (a date, a signature). Called once per request, after the
// body and every other header are final, so a signature covers exactly what is sent. Shared by
// concurrent requests: sign() must be thread-safe.
class RequestSigner {
 public:
  virtual ~RequestSigner() = default;
  // Adds or replaces headers of `request`; the transport sends whatever changed. An error
  // fails the request without sending it; its message never contains key material.
  virtual Status sign(SignableRequest& request) const = 0;
};

struct Credential {
  std::string bearerToken;    // "Authorization: Bearer <token>" when non-empty
  std::string clientCertPem;  // TLS client certificate (from an exec plugin or the config)
  std::string clientKeyPem;
  std::string basicAuth;  // "user:password" when non-empty
  // When the credential must be fetched again (exec plugin expirationTimestamp).
  std::optional<Clock::WallTime> expiresAt;
  // Sent with every request after the request's own headers, replacing same-named ones
  // (X-Auth-Token, X-Project-Id).
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, signs every request last.
  std::shared_ptr<const RequestSigner> signer;
};

// What identifies one version of a credential file: a rewrite changes mtime or size, an atomic
// rename (how the kubelet rotates projected tokens and updates mounted Secrets) changes the
// inode. Sources re-read a file when its stamp changes.
struct FileStamp {
  timespec mtime{};
  off_t size = 0;
  ino_t inode = 0;
  dev_t device = 0;

  static FileStamp of(const struct stat& st) {
    return FileStamp{st.st_mtim, st.st_size, st.st_ino, st.st_dev};
  }
  bool operator==(const FileStamp& o) const {
    return mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec && size == o.size &&
           inode == o.inode && device == o.device;
  }
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
