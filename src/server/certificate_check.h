// What a PEM certificate says about itself, for code that keeps certificates and must decide
// whether they are still good (validity window, names, issuer, key): the webhook's CA and
// serving certificate kept in a Secret. Messages never carry PEM text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "server/certificates.h"

namespace burstlet::server {

struct CertificateFacts {
  Clock::WallTime notBefore;
  Clock::WallTime notAfter;
  bool isCa = false;  // basicConstraints CA:TRUE
};

// The first certificate of `pem`. Errors: kInvalid "InvalidCertificate".
Result<CertificateFacts> inspectCertificate(std::string_view pem);

// Each certificate of a PEM bundle as a PEM block of its own, in order. Errors: kInvalid
// "InvalidCertificate" (none, or one damaged).
Result<std::vector<std::string>> splitCertificates(std::string_view pem);

// True when `pair.key` parses and is the key of the first certificate of `pair.certificate`.
bool keyMatches(const PemPair& pair);

// True when the first certificate of `pem` names every one of `hosts` (IP addresses and DNS
// names) in its subjectAltName; the subject CN does not count.
bool coversHosts(std::string_view pem, const std::vector<std::string>& hosts);

// True when the first certificate of `pem` names the first certificate of `caPem` as its
// issuer and carries its signature.
bool issuedBy(std::string_view pem, std::string_view caPem);

}  // namespace burstlet::server
