// Result<T>: the value of an operation or the Error that stopped it. Errors are classified by
// capability, the way the Kubernetes API classifies them, so callers decide on retry, backoff
// or surfacing without parsing messages. No exceptions cross module boundaries.
#pragma once

#include <cassert>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace burstlet {

enum class ErrorCode {
  kNotFound,         // 404: the object or route does not exist
  kAlreadyExists,    // 409 reason AlreadyExists
  kConflict,         // 409: resourceVersion or precondition mismatch
  kGone,             // 410: watch resourceVersion too old, relist
  kInvalid,          // 422 / bad input: never retried
  kBadRequest,       // 400
  kUnauthorized,     // 401
  kForbidden,        // 403
  kTooManyRequests,  // 429: retry after the server's delay
  kTimeout,          // 504 / deadline passed
  kUnavailable,      // 503, connection refused or reset: retry with backoff
  kCancelled,        // the caller stopped the operation
  kNotSupported,     // 501: the capability does not exist here (a provider without logs)
  kInternal,         // 500 and anything unclassified
};

// Stable lower-case name of a code, as used in logs and metrics labels.
std::string_view errorCodeName(ErrorCode code);

// True for the classes where trying the same request again may succeed.
bool isRetryable(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  // Machine-readable CamelCase reason (e.g. "NotFound", "ProviderFailed", "HostNetwork").
  std::string reason;
  // Human-readable explanation. Never contains secrets.
  std::string message;
  // For kTooManyRequests / kUnavailable: the delay the server asked for, if any.
  std::optional<std::chrono::seconds> retryAfter;

  // "<code>: <reason>: <message>" for logs and status text.
  std::string toString() const;

  static Error make(ErrorCode code, std::string reason, std::string message) {
    return Error{code, std::move(reason), std::move(message), std::nullopt};
  }
};

namespace detail {
struct ValueTag {};
}  // namespace detail

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Error>, "Result<Error> is ambiguous");

 public:
  // Implicit from a value or an Error, so functions can `return value;` or `return error;`.
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(state_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(state_));
  }

  T valueOr(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> state_;
};

// Result of an operation with no value.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& {
    assert(!ok());
    return *error_;
  }
  Error&& error() && {
    assert(!ok());
    return std::move(*error_);
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status okStatus() { return Status{}; }

}  // namespace burstlet

// Propagates the error of a Result-returning expression out of the enclosing function,
// which must itself return a Result or Status.
#define BURSTLET_RETURN_IF_ERROR(expr)            \
  do {                                            \
    auto burstlet_status_ = (expr);               \
    if (!burstlet_status_.ok()) {                 \
      return std::move(burstlet_status_).error(); \
    }                                             \
  } while (false)
