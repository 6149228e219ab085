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

  // Sleepers (common/wait.h) ask the clock to ring an alarm once steadyNow() reaches `at`.
  // A clock that moves by itself answers false and the sleeper arms a real timer for the
  // remaining time; a test clock keeps the alarm (answers true) and rings it, from the thread
  // that advances it, once it has been moved past `at` (at once when `at` has passed).
  class Alarm {
   public:
    virtual void ring() = 0;  // from any thread; must not call back into the clock

   protected:
    ~Alarm() = default;
  };
  virtual bool setAlarm(Alarm& /*alarm*/, SteadyTime /*at*/) const { return false; }
  // Forgets an alarm set earlier (rung or not). Once it returns, ring() is not called.
  virtual void cancelAlarm(Alarm& /*alarm*/) const {}
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
