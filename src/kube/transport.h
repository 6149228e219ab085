// BeastTransport: HTTP/1.1 over TLS (or plain TCP for http:// servers) with Boost.Beast,
// a keep-alive connection pool, per-request deadlines, and credentials from a
// CredentialSource (bearer token header or TLS client certificate, extra headers, and a
// RequestSigner that signs each request as sent).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "kube/config.h"
#include "kube/credentials.h"
#include "kube/http.h"

namespace burstlet::kube {

struct TransportOptions {
  size_t maxIdleConnections = 64;
  // Largest response body accepted by send(), after decoding; lists are paged, so this is
  // generous.
  size_t maxBodyBytes = 512u << 20;
  // Ask for gzip-compressed responses (send() only; streams are never compressed).
  bool compression = true;
};

// Creates a transport for `config`. Fails (kInvalid) on a malformed server URL or unusable
// TLS material. `credentials` may be null (anonymous).
Result<std::unique_ptr<Transport>> makeBeastTransport(asio::any_io_executor executor,
                                                      const ClientConfig& config,
                                                      std::shared_ptr<CredentialSource> credentials,
                                                      TransportOptions options = {});

}  // namespace burstlet::kube
