#include "kube/errors.h"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace burstlet::kube {

ErrorCode classifyStatus(unsigned httpStatus, std::string_view reason) {
  switch (httpStatus) {
    case 400:
    case 405:  // the server has no such method for the route: asking again will not help
      return ErrorCode::kBadRequest;
    case 401:
      return ErrorCode::kUnauthorized;
    case 403:
      return ErrorCode::kForbidden;
    case 404:
      return ErrorCode::kNotFound;
    case 408:
    case 504:
      return ErrorCode::kTimeout;
    case 409:
      return reason == "AlreadyExists" ? ErrorCode::kAlreadyExists : ErrorCode::kConflict;
    case 410:
      return ErrorCode::kGone;
    case 422:
      return ErrorCode::kInvalid;
    case 429:
      return ErrorCode::kTooManyRequests;
    case 502:
    case 503:
      return ErrorCode::kUnavailable;
    default:
      break;
  }
  if (reason == "Expired" || reason == "Gone") {
    return ErrorCode::kGone;
  }
  return ErrorCode::kInternal;
}

namespace {
std::string_view defaultReason(unsigned status) {
  switch (status) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "InternalError";
  }
}
}  // namespace

Error errorFromResponse(const HttpResponse& response, std::string_view what) {
  std::string reason;
  std::string message;
  std::optional<std::chrono::seconds> retryAfter = response.retryAfter;
  boost::system::error_code ec;
  auto body = boost::json::parse(response.body, ec);
  if (!ec && body.is_object()) {
    const auto& o = body.get_object();
    if (auto* k = o.if_contains("kind"); k && k->is_string() && k->get_string() == "Status") {
      if (auto* r = o.if_contains("reason"); r && r->is_string()) {
        reason = std::string(r->get_string());
      }
      if (auto* m = o.if_contains("message"); m && m->is_string()) {
        message = std::string(m->get_string());
      }
      if (auto* d = o.if_contains("details"); d && d->is_object()) {
        if (auto* ra = d->get_object().if_contains("retryAfterSeconds");
            ra && ra->is_int64() && !retryAfter) {
          retryAfter = std::chrono::seconds(ra->get_int64());
        }
      }
    }
  }
  if (reason.empty()) {
    reason = std::string(defaultReason(response.status));
  }
  if (message.empty()) {
    // Non-Status bodies (proxies, plain text) are cut short; they carry no secrets of ours.
    std::string_view b = response.body;
    message = fmt::format("HTTP {}{}{}", response.status, b.empty() ? "" : ": ",
                          b.substr(0, std::min<size_t>(b.size(), 200)));
  }
  const ErrorCode code = classifyStatus(response.status, reason);
  Error err = Error::make(code, std::move(reason), fmt::format("{}: {}", what, message));
  err.retryAfter = retryAfter;
  return err;
}

}  // namespace burstlet::kube
