// FakeClock: a Clock that moves only when a test advances it.
#pragma once

#include <mutex>

#include "common/clock.h"

namespace burstlet::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(WallTime start = WallTime(std::chrono::seconds(1'700'000'000)))
      : wall_(start) {}

  WallTime now() const override {
    std::lock_guard lock(mu_);
    return wall_;
  }
  SteadyTime steadyNow() const override {
    std::lock_guard lock(mu_);
    return steady_;
  }
  void advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
    steady_ += std::chrono::duration_cast<SteadyTime::duration>(d);
  }

 private:
  mutable std::mutex mu_;  // guards wall_ and steady_
  WallTime wall_;
  SteadyTime steady_{};
};

}  // namespace burstlet::testing
