// AK/SK request signing for the CCI backend: Huawei Cloud API Gateway's SDK-HMAC-SHA256.
// Each request carries X-Sdk-Date and
//   Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<names>, Signature=<hex>
// where the signature is hex(HMAC-SHA256(SK, string to sign)) and
//   string to sign    = "SDK-HMAC-SHA256\n" <X-Sdk-Date> "\n" hex(sha256(canonical request))
//   canonical request = method "\n" canonical URI "\n" canonical query "\n"
//                       canonical headers "\n" signed header names "\n" hex(sha256(body))
// The gateway rebuilds the canonical request from what it received, so the signer works on the
// request exactly as the transport writes it (kube::SignableRequest).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "kube/credentials.h"

namespace burstlet::provider::cci {

// An access key and its secret. The secret never appears in logs or error messages.
struct AkSk {
  std::string accessKey;
  std::string secretKey;
};

inline constexpr std::string_view kSigningAlgorithm = "SDK-HMAC-SHA256";

// X-Sdk-Date for `t`: UTC, "20191115T033655Z".
std::string sdkDate(Clock::WallTime t);

// Lowercase hex of sha256(data).
std::string sha256Hex(std::string_view data);

// `text` percent-encoded byte by byte, everything but A-Z a-z 0-9 - _ . ~ as %XX (upper case).
std::string uriEscape(std::string_view text);

// The path of `target` (up to '?'), each segment decoded and re-encoded with uriEscape, ending
// in "/": "/v1/a b" -> "/v1/a%20b/".
std::string canonicalUri(std::string_view target);

// The query of `target` (after '?'): pairs decoded (a '+' is a space), sorted by key then
// value, re-encoded with uriEscape and joined with '&'; a key without '=' has an empty value.
std::string canonicalQueryString(std::string_view target);

// The lowercase names of the headers of `request` that are signed, sorted: those of
// content-type, host, x-project-id and x-sdk-date that it has. Other headers (User-Agent,
// Accept-Encoding) are left out so that a proxy rewriting them does not break the signature.
std::vector<std::string> signedHeaderNames(const kube::SignableRequest& request);

// The canonical request of `request` over `signedHeaders` (lowercase, sorted): for each name,
// "name:value\n" per header of that name (values trimmed, sorted).
std::string canonicalRequest(const kube::SignableRequest& request,
                             const std::vector<std::string>& signedHeaders);

// "SDK-HMAC-SHA256\n" + date + "\n" + sha256Hex(canonicalRequest).
std::string stringToSign(std::string_view sdkDate, std::string_view canonicalRequest);

// Lowercase hex of HMAC-SHA256(secretKey, stringToSign).
std::string signature(std::string_view secretKey, std::string_view stringToSign);

// Signs each request with the keys `keys` returns at that moment (they may rotate), dated by
// `clock`. A failure of `keys` fails the request; the clock must outlive the signer.
class AkSkSigner final : public kube::RequestSigner {
 public:
  using KeyProvider = std::function<Result<AkSk>()>;

  AkSkSigner(KeyProvider keys, const Clock& clock);
  // Fixed keys.
  AkSkSigner(AkSk keys, const Clock& clock);

  // Sets X-Sdk-Date and Authorization.
  Status sign(kube::SignableRequest& request) const override;

 private:
  const KeyProvider keys_;
  const Clock& clock_;
};

}  // namespace burstlet::provider::cci
