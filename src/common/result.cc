#include "common/result.h"

#include <fmt/format.h>

namespace burstlet {

std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kGone:
      return "gone";
    case ErrorCode::kInvalid:
      return "invalid";
    case ErrorCode::kBadRequest:
      return "bad_request";
    case ErrorCode::kUnauthorized:
      return "unauthorized";
    case ErrorCode::kForbidden:
      return "forbidden";
    case ErrorCode::kTooManyRequests:
      return "too_many_requests";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kNotSupported:
      return "not_supported";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

bool isRetryable(ErrorCode code) {
  switch (code) {
    case ErrorCode::kTooManyRequests:
    case ErrorCode::kTimeout:
    case ErrorCode::kUnavailable:
    case ErrorCode::kInternal:
    case ErrorCode::kConflict:
      return true;
    default:
      return false;
  }
}

std::string Error::toString() const {
  if (reason.empty()) {
    return fmt::format("{}: {}", errorCodeName(code), message);
  }
  return fmt::format("{}: {}: {}", errorCodeName(code), reason, message);
}

}  // namespace burstlet
