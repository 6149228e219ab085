#include "provider/cci/copy_ledger.h"

#include <algorithm>
#include <utility>

namespace burstlet::provider::cci {

void CopyLedger::hold(const std::vector<std::string>& ids) {
  std::lock_guard lock(mu_);
  for (const auto& id : ids) {
    ++held_[id];
    marked_.erase(id);
  }
}

void CopyLedger::release(const std::vector<std::string>& ids) {
  std::lock_guard lock(mu_);
  for (const auto& id : ids) {
    if (auto it = held_.find(id); it != held_.end() && --it->second <= 0) {
      held_.erase(it);
    }
  }
}

bool CopyLedger::held(const std::string& id) const {
  std::lock_guard lock(mu_);
  return heldLocked(id);
}

bool CopyLedger::heldLocked(std::string_view id) const { return held_.find(id) != held_.end(); }

boost::asio::awaitable<void> CopyLedger::awaitDeletes(const std::vector<std::string>& ids,
                                                      const Latch& stop) const {
  while (!stop.isSet()) {
    std::shared_ptr<Latch> ended;
    {
      // The latch is taken under the same lock as the look: a delete that ends after the look
      // sets this latch, so its end is never missed.
      std::lock_guard lock(mu_);
      const bool busy = std::any_of(ids.begin(), ids.end(), [this](const std::string& id) {
        return deleting_.count(id) != 0;
      });
      if (busy) {
        ended = deleteEnded_;
      }
    }
    if (!ended) {
      break;
    }
    co_await waitAny(*ended, stop);
  }
}

bool CopyLedger::sweepDeletes(const std::string& id, bool used, std::string_view alsoHeld) {
  std::lock_guard lock(mu_);
  if (used || heldLocked(id) || (!alsoHeld.empty() && heldLocked(alsoHeld)) ||
      gone_.count(id) != 0) {
    marked_.erase(id);
    return false;
  }
  if (marked_.count(id) != 0) {
    deleting_.insert(id);
    return true;
  }
  marked_.insert(id);
  return false;
}

void CopyLedger::deleted(const std::string& id, bool gone) {
  std::shared_ptr<Latch> ended;
  {
    std::lock_guard lock(mu_);
    deleting_.erase(id);
    marked_.erase(id);
    if (gone) {
      gone_.insert(id);
    }
    ended = std::exchange(deleteEnded_, std::make_shared<Latch>());
  }
  ended->set();
}

void CopyLedger::present(const std::string& id) {
  std::lock_guard lock(mu_);
  gone_.erase(id);
}

bool CopyLedger::gone(const std::string& id) const {
  std::lock_guard lock(mu_);
  return gone_.count(id) != 0;
}

}  // namespace burstlet::provider::cci
