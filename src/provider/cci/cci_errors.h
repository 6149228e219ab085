// CCI's errors, classed for burstlet. CCI answers a refusal with a Kubernetes Status plus its own
// `errorCode` (e.g. HTTP 400 `CCI.01.400101` for a body it refuses, 409 `CCI.02.409101` for a
// namespace name that exists); the API gateway in front of it answers with
// {"error_code": "APIG.0308", "error_msg": ...} (throttling, 429). docs/cci.md "CCI's errors"
// lists the codes and where they come from.
//
// cciError() is the backend client's dialect (kube::ErrorDialect) in CCI mode: the error kube
// made of the answer (by HTTP status and reason) is reclassed by CCI's code, so that
//   - a refusal is permanent: kInvalid with reason kBackendRefused (the pod fails once, with
//     CCI's code and message), or kForbidden for the account's state and permissions,
//   - an outage, "resources insufficient, try later" or throttling is retried (kUnavailable,
//     kTooManyRequests),
//   - the namespace quota and a namespace name taken are their own reasons (startup stops with
//     one line saying so),
// and a 400 with a CCI code is never a retried kBadRequest. Answers without a CCI code keep
// Kubernetes' classes (a plain Kubernetes backend is unaffected).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/http.h"

namespace burstlet::provider::cci {

// Reasons of CCI errors that others act on.
inline constexpr const char* kBackendRefused = "BackendRefused";
inline constexpr const char* kNamespaceQuotaExceeded = "NamespaceQuotaExceeded";
inline constexpr const char* kNamespaceNameTaken = "NamespaceNameTaken";
// The storage import: the file system is unknown to CCI / imported already.
inline constexpr const char* kVolumeNotFound = "VolumeNotFound";
inline constexpr const char* kVolumeAlreadyImported = "VolumeAlreadyImported";

// One row of the table: how a CCI code is classed.
struct CciErrorClass {
  ErrorCode code;
  const char* reason;  // kBackendRefused, a reason above, or the Kubernetes reason kept ("")
};

// The class of a CCI (or API gateway) error code; nullopt for a code the table does not know.
// Unknown codes of a known family are classed by their HTTP status in cciError().
std::optional<CciErrorClass> classOfCciCode(std::string_view code);

// The code and message an answer carries: CCI's Status `errorCode` and `message`, or the
// gateway's `error_code` and `error_msg`; empty when it carries none.
struct CciAnswer {
  std::string code;
  std::string message;
};
CciAnswer cciAnswerOf(const kube::HttpResponse& response);

// The dialect: `error` (kube's) reclassed by the code `response` carries. The message keeps
// what kube said and names CCI's code and message.
Error cciError(Error error, const kube::HttpResponse& response);

}  // namespace burstlet::provider::cci
