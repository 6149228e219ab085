#include "admission/burst_grants.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "admission/profile_patch.h"

namespace burstlet::admission {

namespace asio = boost::asio;

BurstGrants::BurstGrants(kube::RestClient& cluster, ProfileLedger& ledger,
                         const ProfileIndex& profiles, PlacementOptions options, const Clock& clock)
    : cluster_(cluster),
      ledger_(ledger),
      profiles_(profiles),
      options_(std::move(options)),
      clock_(clock) {}

asio::awaitable<void> BurstGrants::run(const Latch& stop, std::chrono::milliseconds interval) {
  // Named locals, no co_await inside conditions: GCC 12 miscompiles some of those forms.
  for (;;) {
    if (stop.isSet()) {
      co_return;
    }
    if (ledger_.synced()) {
      const int patched = co_await grantOnce();
      (void)patched;
    }
    const std::chrono::nanoseconds wait = interval;
    const bool slept = co_await sleepFor(clock_, wait, &stop);
    if (!slept) {
      co_return;
    }
  }
}

asio::awaitable<int> BurstGrants::grantOnce() {
  int patched = 0;
  for (const auto& key : ledger_.profileKeys()) {
    const auto profile = profiles_.find(key);
    const std::optional<int64_t> cap = profile ? profile->burstMax : std::nullopt;
    for (const auto& grant : ledger_.grantsDue(key, cap)) {
      std::string body = boost::json::serialize(grantPatch(grant, options_));
      std::string ns = grant.ns;
      std::string name = grant.name;
      auto r = co_await cluster_.patch(kube::resources::kPods, std::move(ns), std::move(name),
                                       kube::PatchType::kJson, std::move(body));
      if (!r.ok()) {
        ledger_.grantFailed(grant.ns, grant.name);
        if (r.error().code != ErrorCode::kNotFound) {
          spdlog::warn("msg=\"burst not granted\" pod={}/{} profile={} error=\"{}\"", grant.ns,
                       grant.name, key, r.error().toString());
        }
        continue;
      }
      ++patched;
      spdlog::info("msg=\"burst granted\" pod={}/{} profile={} how={}", grant.ns, grant.name, key,
                   grant.ungate ? "ungated" : "tolerated");
    }
  }
  co_return patched;
}

}  // namespace burstlet::admission
