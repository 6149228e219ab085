// Internal to src/server: owning pointers for OpenSSL objects, PEM parsing from memory and
// OpenSSL's error queue as an Error. Not for other areas.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace burstlet::server::detail {

template <auto FreeFn>
struct OpenSslFree {
  template <typename T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};

using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;

// The oldest error on this thread's OpenSSL error queue as text (queue cleared), or
// `fallback` when the queue is empty.
std::string takeOpenSslError(std::string_view fallback = "unknown OpenSSL error");

// Every certificate in `pem`, in order. Errors: kInvalid "InvalidCertificate" when there is
// none or one does not parse; `what` names the source in the message.
Result<std::vector<X509Ptr>> parseCertificates(std::string_view pem, std::string_view what);

// The first private key in `pem`. Errors: kInvalid "InvalidKey".
Result<EvpPkeyPtr> parsePrivateKey(std::string_view pem, std::string_view what);

// The subject's first CN and every O of `cert`.
std::string subjectCommonName(X509* cert);
std::vector<std::string> subjectOrganizations(X509* cert);

}  // namespace burstlet::server::detail
