#include "kube/retry.h"

#include <algorithm>

namespace burstlet::kube {

std::chrono::milliseconds retryDelay(const RetryPolicy& policy, int attempt, const Error& error,
                                     std::mt19937_64& rng) {
  const auto shift = std::min(attempt, 20);
  const auto base = std::min<std::chrono::milliseconds>(policy.baseDelay * (int64_t{1} << shift),
                                                        policy.maxDelay);
  if (error.retryAfter) {
    // The server's delay wins, capped; a zero or negative one never skips our own backoff.
    const auto asked = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min<std::chrono::seconds>(*error.retryAfter, policy.maxRetryAfter));
    return std::max(asked, base);
  }
  std::uniform_int_distribution<int64_t> jitter(0, base.count() / 2);
  return std::min<std::chrono::milliseconds>(base + std::chrono::milliseconds(jitter(rng)),
                                             policy.maxDelay);
}

bool shouldRetry(const Error& error, bool idempotent) {
  switch (error.code) {
    case ErrorCode::kTooManyRequests:
      return true;
    case ErrorCode::kUnavailable:
      // 503 from the server, or no connection: nothing was done. A connection that broke
      // after the request was sent is also reported as unavailable; only idempotent requests
      // may be repeated then, except when the server explicitly asked to retry later.
      return idempotent || error.retryAfter.has_value() || error.reason == "ConnectFailed";
    case ErrorCode::kTimeout:
      return idempotent;
    case ErrorCode::kInternal:
      // A response the client refuses (too large, or encoded in a way it did not ask for)
      // would be refused again.
      return idempotent && error.reason != "ResponseTooLarge" &&
             error.reason != "UnsupportedContentEncoding";
    default:
      return false;
  }
}

TokenBucket::TokenBucket(double qps, int burst, const Clock& clock)
    : qps_(qps),
      burst_(std::max(1, burst)),
      clock_(clock),
      tokens_(std::max(1, burst)),
      last_(clock.steadyNow()) {}

std::chrono::nanoseconds TokenBucket::reserve() {
  if (qps_ <= 0) {
    return std::chrono::nanoseconds(0);
  }
  std::lock_guard lock(mu_);
  const auto now = clock_.steadyNow();
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
  tokens_ -= 1;
  if (tokens_ >= 0) {
    return std::chrono::nanoseconds(0);
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(-tokens_ / qps_ * 1e9));
}

}  // namespace burstlet::kube
