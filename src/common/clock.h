// Clock: the one source of time for anything timed (backoff, leases, resyncs, rate limits),
// so that tests advance time instead of sleeping.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace burstlet {

class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  // Calendar time: timestamps written to the API (lease renewTime, event times).
  virtual WallTime now() const = 0;
  // Monotonic time: durations, deadlines, backoff.
  virtual SteadyTime steadyNow() const = 0;
};

// The process clock.
class RealClock final : public Clock {
 public:
  WallTime now() const override { return std::chrono::system_clock::now(); }
  SteadyTime steadyNow() const override { return std::chrono::steady_clock::now(); }
};

// A process-wide RealClock for code that is handed no clock.
const Clock& realClock();

// RFC 3339 UTC with second precision, as Kubernetes writes metav1.Time ("2026-01-02T03:04:05Z").
std::string formatRfc3339(Clock::WallTime t);
// RFC 3339 UTC with microseconds, as Kubernetes writes metav1.MicroTime.
std::string formatRfc3339Micro(Clock::WallTime t);

// Parses RFC 3339 as found in API objects and exec credentials: "2026-01-02T03:04:05Z",
// with optional fractional seconds (up to nanoseconds; further digits are truncated) and a
// "Z" or numeric "+08:00"/"-05:30" offset. Returns nullopt for anything else, including
// out-of-range fields (month 13, February 30, second 60).
std::optional<Clock::WallTime> parseRfc3339(std::string_view text);

}  // namespace burstlet
