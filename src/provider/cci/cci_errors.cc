#include "provider/cci/cci_errors.h"

#include <fmt/format.h>

#include <array>
#include <boost/json/parse.hpp>
#include <utility>

namespace burstlet::provider::cci {
namespace {

struct Row {
  std::string_view code;
  CciErrorClass cls;
};

constexpr CciErrorClass kRefused{ErrorCode::kInvalid, kBackendRefused};
constexpr CciErrorClass kAccount{ErrorCode::kForbidden, ""};
constexpr CciErrorClass kRetry{ErrorCode::kUnavailable, ""};

// CCI's error codes (api-cci "Error Codes", cci_02_1005; docs/cci.md "CCI's errors").
constexpr std::array kTable{
    // Request bodies and parameters: CCI will refuse the same request again.
    Row{"CCI.01.400101", kRefused},                        // request body error
    Row{"CCI.01.400102", kRefused},                        // provide namespace requested
    Row{"CCI.01.400103", {ErrorCode::kUnauthorized, ""}},  // missing user token: credentials
    Row{"CCI.01.400104", kAccount},                        // no agency quota found from IAM
    Row{"CCI.01.400105", kRefused},  // must specify namespace name through fieldSelector
    Row{"CCI.01.400106", kRefused},  // volume import: request body error
    Row{"CCI.01.400107", kRefused},  // enterprise id not valid
    Row{"CCI.01.400201", kRefused},  // subnet cidr invalid (overlaps)
    Row{"CCI.01.400202", kRefused},  // project id in network request body invalid
    // Storage.
    Row{"CCI.01.400301", kRefused},  // storage type parameter invalid
    Row{"CCI.01.400302", kRefused},  // storage volume id format invalid
    Row{"CCI.01.400303", kRefused},  // storage volume id too long
    Row{"CCI.01.400304", kRefused},  // storage request body invalid (release)
    Row{"CCI.01.400305", kRetry},    // storage volume not available (its status): may become so
    Row{"CCI.01.400306", {ErrorCode::kNotFound, kVolumeNotFound}},  // storage volume is not found
    Row{"CCI.01.400307", kRefused},                                 // nfs storage class: use nfs-rw
    Row{"CCI.01.400308", kRefused},  // storage volume type: sas/ssd/sata
    Row{"CCI.01.400309", {ErrorCode::kAlreadyExists, kVolumeAlreadyImported}},  // imported already
    // Billing requests.
    Row{"CCI.01.400401", kRefused}, Row{"CCI.01.400402", kRefused}, Row{"CCI.01.400403", kRefused},
    Row{"CCI.01.400404", kRefused},
    // The account and its permissions: not the request's fault; retried with backoff until the
    // operator acts, never a pod failure.
    Row{"CCI.01.401102", {ErrorCode::kUnauthorized, ""}},  // no agency to CCI
    Row{"CCI.01.403009", kAccount},                        // account in arrears
    Row{"CCI.01.403010", kAccount},                        // account frozen
    Row{"CCI.01.403101", kAccount},                        // GPU beta users only
    Row{"CCI.01.403102", kAccount},                        // OBS beta users only
    Row{"CCI.01.403103", kAccount},                        // token does not match
    Row{"CCI.01.403104", kAccount},                        // no right
    Row{"CCI.01.404101", kAccount},  // no agency found for user (a 404 that is no missing object)
    Row{"CCI.01.500101", kRetry},    // no cluster endpoint for the namespace
    // The namespace service.
    Row{"CCI.02.400101", kRefused},  // bad namespace body
    Row{"CCI.02.400103", kRefused},  // unsupported content type
    Row{"CCI.02.400106", {ErrorCode::kForbidden, kNamespaceQuotaExceeded}},
    Row{"CCI.02.400107", kRefused},  // delete namespace: name empty
    Row{"CCI.02.400109", kRefused},  // NamespaceNameInvalid
    Row{"CCI.02.400110", kRefused},  // NamespaceFlavorInvalid
    Row{"CCI.02.400111", kRefused},  // NamespaceFlavorMissed
    Row{"CCI.02.400112", kRefused},  // NamespaceDomainIDMissed
    Row{"CCI.02.400113", kRefused},  // NamespaceProjectIDMissed
    Row{"CCI.02.400116", kRetry},    // NoAllocatedCluster: resources insufficient, try later
    Row{"CCI.02.400118", kRefused},  // EnterpriseProjectIDEmpty
    Row{"CCI.02.400119", kRefused},  // EnterpriseProjectNotSupported
    Row{"CCI.02.404101", kRefused},  // flavor not found
    Row{"CCI.02.404102", {ErrorCode::kNotFound, ""}},  // resourcequota not found
    Row{"CCI.02.404103", {ErrorCode::kNotFound, ""}},  // quota not found
    Row{"CCI.02.409101", {ErrorCode::kAlreadyExists, kNamespaceNameTaken}},
    Row{"CCI.02.409102", {ErrorCode::kConflict, ""}},  // namespace already migrated
    // The API gateway in front of CCI.
    Row{"APIG.0308", {ErrorCode::kTooManyRequests, ""}},  // throttling threshold reached
};

std::string stringField(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A code of CCI's families that the table lacks: classed by its HTTP status.
std::optional<CciErrorClass> classOfUnknown(std::string_view code, unsigned status) {
  if (startsWith(code, "CCI.")) {
    if (status == 400 || status == 422) {
      return kRefused;
    }
    if (status == 401) {
      return CciErrorClass{ErrorCode::kUnauthorized, ""};
    }
    if (status == 403) {
      return kAccount;
    }
    if (status >= 500) {
      return kRetry;
    }
    return std::nullopt;
  }
  if ((startsWith(code, "APIG.") || startsWith(code, "APIGW.")) && status == 429) {
    return CciErrorClass{ErrorCode::kTooManyRequests, ""};
  }
  return std::nullopt;
}

}  // namespace

std::optional<CciErrorClass> classOfCciCode(std::string_view code) {
  for (const auto& row : kTable) {
    if (row.code == code) {
      return row.cls;
    }
  }
  return std::nullopt;
}

CciAnswer cciAnswerOf(const kube::HttpResponse& response) {
  boost::system::error_code ec;
  auto body = boost::json::parse(response.body, ec);
  if (ec || !body.is_object()) {
    return {};
  }
  const auto& o = body.get_object();
  CciAnswer out{stringField(o, "errorCode"), stringField(o, "message")};
  if (out.code.empty()) {
    out = CciAnswer{stringField(o, "error_code"), stringField(o, "error_msg")};
  }
  if (out.code.empty()) {
    return {};
  }
  return out;
}

Error cciError(Error error, const kube::HttpResponse& response) {
  const CciAnswer answer = cciAnswerOf(response);
  if (answer.code.empty()) {
    return error;
  }
  auto cls = classOfCciCode(answer.code);
  if (!cls) {
    cls = classOfUnknown(answer.code, response.status);
  }
  // kube's message is "<what>: <Status message>", or "<what>: HTTP <status>: <body>" for a body
  // that is no Status (the gateway's): say CCI's message instead of the raw body then.
  std::string message = error.message;
  // Server text goes into pod status and events: cut as kube cuts a body it cannot read.
  const std::string said = answer.message.substr(0, 200);
  if (!said.empty()) {
    const auto raw = message.find(fmt::format(": HTTP {}: ", response.status));
    if (raw != std::string::npos) {
      message = message.substr(0, raw) + ": " + said;
    } else if (message.find(said) == std::string::npos) {
      message += ": " + said;
    }
  }
  message += fmt::format(" (CCI error {})", answer.code);
  Error out =
      Error::make(cls ? cls->code : error.code,
                  cls && *cls->reason != '\0' ? cls->reason : error.reason, std::move(message));
  out.retryAfter = error.retryAfter;
  return out;
}

}  // namespace burstlet::provider::cci
