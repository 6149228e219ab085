// Retry policy and client-side rate limiting, computed against a Clock so tests need no
// sleeping.
#pragma once

#include <chrono>
#include <mutex>
#include <random>

#include "common/clock.h"
#include "common/result.h"

namespace burstlet::kube {

struct RetryPolicy {
  int maxRetries = 3;
  std::chrono::milliseconds baseDelay{100};
  std::chrono::milliseconds maxDelay{5'000};
  // Upper bound on a server-requested Retry-After we are willing to wait.
  std::chrono::seconds maxRetryAfter{30};
};

// Delay before retry number `attempt` (0-based): exponential from baseDelay, capped at maxDelay,
// with up to +50% jitter drawn from `rng`; a server's Retry-After wins when present (capped).
std::chrono::milliseconds retryDelay(const RetryPolicy& policy, int attempt, const Error& error,
                                     std::mt19937_64& rng);

// Whether a failed request may be sent again. Responses that prove the server did not act
// (429, 503, connection refused/unavailable before a response) are retryable for every method;
// timeouts and 5xx only for idempotent methods.
bool shouldRetry(const Error& error, bool idempotent);

// Token bucket: `qps` tokens per second, at most `burst` stored. Disabled when qps <= 0.
class TokenBucket {
 public:
  TokenBucket(double qps, int burst, const Clock& clock);
  // Takes a token; returns how long the caller must wait before using it (zero if none).
  std::chrono::nanoseconds reserve();
  bool enabled() const { return qps_ > 0; }

 private:
  double qps_;
  double burst_;
  const Clock& clock_;
  std::mutex mu_;  // guards tokens_ and last_
  double tokens_;
  Clock::SteadyTime last_;
};

}  // namespace burstlet::kube
