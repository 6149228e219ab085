// FakeClock: a Clock that moves only when a test advances it. Sleepers on it (common/wait.h)
// wake when advance() moves it past their deadline, so tests advance time instead of sleeping.
#pragma once

#include <map>
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
  // Moves both times by `d` and rings the alarms that came due. They ring under the lock, so
  // an alarm cancelled by another thread is never rung after cancelAlarm() returned.
  void advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
    steady_ += std::chrono::duration_cast<SteadyTime::duration>(d);
    for (auto it = alarms_.begin(); it != alarms_.end();) {
      if (it->second <= steady_) {
        it->first->ring();
        it = alarms_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Sleepers waiting on this clock now.
  size_t sleepers() const {
    std::lock_guard lock(mu_);
    return alarms_.size();
  }

  bool setAlarm(Alarm& alarm, SteadyTime at) const override {
    bool now = false;
    {
      std::lock_guard lock(mu_);
      now = at <= steady_;
      if (!now) {
        alarms_[&alarm] = at;
      }
    }
    if (now) {
      alarm.ring();
    }
    return true;
  }
  void cancelAlarm(Alarm& alarm) const override {
    std::lock_guard lock(mu_);
    alarms_.erase(&alarm);
  }

 private:
  mutable std::mutex mu_;  // guards everything below
  WallTime wall_;
  SteadyTime steady_{};
  mutable std::map<Alarm*, SteadyTime> alarms_;
};

}  // namespace burstlet::testing
