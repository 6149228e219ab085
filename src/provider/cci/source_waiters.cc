#include "provider/cci/source_waiters.h"

#include <fmt/format.h>

#include <iterator>

namespace burstlet::provider::cci {

std::string SourceWaiters::sourceId(std::string_view kind, std::string_view ns,
                                    std::string_view name) {
  return fmt::format("{}/{}/{}", kind, ns, name);
}

void SourceWaiters::add(const std::string& source, const std::string& podKey) {
  std::lock_guard lock(mu_);
  waiting_[source].insert(podKey);
}

void SourceWaiters::remove(const std::string& source, const std::string& podKey) {
  std::lock_guard lock(mu_);
  if (auto it = waiting_.find(source); it != waiting_.end()) {
    it->second.erase(podKey);
    if (it->second.empty()) {
      waiting_.erase(it);
    }
  }
}

void SourceWaiters::removePod(const std::string& podKey) {
  std::lock_guard lock(mu_);
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    it->second.erase(podKey);
    it = it->second.empty() ? waiting_.erase(it) : std::next(it);
  }
}

std::set<std::string> SourceWaiters::take(const std::string& source) {
  std::lock_guard lock(mu_);
  auto it = waiting_.find(source);
  if (it == waiting_.end()) {
    return {};
  }
  auto pods = std::move(it->second);
  waiting_.erase(it);
  return pods;
}

}  // namespace burstlet::provider::cci
