// Certificates made in memory with OpenSSL's EVP APIs: a self-signed serving certificate for a
// listener that has no files, and (for tests and later a webhook's own CA) certificates signed
// by a CA pair. PEM text only; nothing is written to disk.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace burstlet::server {

enum class KeyType {
  kEcdsaP256,  // small and fast; what Go's crypto/tls and the kubelet prefer
  kRsa2048,    // for clients that cannot do ECDSA
};

// A certificate and its private key (PKCS#8), both PEM.
struct PemPair {
  std::string certificate;
  std::string key;

  bool operator==(const PemPair&) const = default;
};

struct CertificateSpec {
  // Subject CN. Empty: the first of `hosts`.
  std::string commonName;
  // Subject O, one entry each (for a client certificate: its groups).
  std::vector<std::string> organizations;
  // subjectAltName: each an IP address (v4 or v6) or else a DNS name.
  std::vector<std::string> hosts;
  // A CA certificate (keyCertSign) instead of one for TLS servers and clients.
  bool isCa = false;
  KeyType keyType = KeyType::kEcdsaP256;
  // Valid from an hour before `clock.now()` (tolerates skew) until `validity` after it.
  std::chrono::seconds validity{std::chrono::hours(24 * 365)};
};

// A new key and certificate for `spec`, self-signed when `issuer` is null, else signed by
// `issuer` (a CA's certificate and key). Errors: kInvalid "InvalidCertificateSpec" (no name,
// an empty host), kInvalid "InvalidIssuer" (issuer PEM unreadable), kInternal "OpenSsl".
Result<PemPair> generateCertificate(const CertificateSpec& spec, const Clock& clock,
                                    const PemPair* issuer = nullptr);

// A PKCS#10 certificate signing request (PEM) and its new private key (PKCS#8 PEM), for a CA
// that signs through an API (the cluster's CertificateSigningRequest, kubelet-serving).
struct CertificateRequest {
  std::string request;
  std::string key;
};

// A request for spec.commonName, spec.organizations and spec.hosts (subjectAltName); validity
// and CA flag are the signer's. Errors: kInvalid "InvalidCertificateSpec", kInternal "OpenSsl".
Result<CertificateRequest> generateCertificateRequest(const CertificateSpec& spec);

}  // namespace burstlet::server
