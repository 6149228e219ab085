#include "kube/leader_election.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>
#include <random>

#include "kube/json_path.h"
#include "kube/resource.h"

namespace burstlet::kube {

namespace asio = boost::asio;
namespace json = boost::json;

std::string uniqueIdentity(std::string_view base) {
  std::random_device rd;
  std::uniform_int_distribution<uint32_t> d;
  return fmt::format("{}_{:08x}", base, d(rd));
}

LeaderElector::LeaderElector(RestClient& client, LeaderElectionOptions options, const Clock& clock)
    : client_(client), options_(std::move(options)), clock_(clock) {}

std::string LeaderElector::holder() const {
  std::lock_guard lock(mu_);
  return holder_;
}

void LeaderElector::stop() { stop_.set(); }

void LeaderElector::Observed::see(const json::value* seen, const Clock& clock) {
  std::string serialized = seen != nullptr ? json::serialize(*seen) : std::string();
  if (serialized != spec) {
    spec = std::move(serialized);
    at = clock.steadyNow();
  }
}

void LeaderElector::observe(const json::value& spec) {
  observed_.see(&spec, clock_);
  std::string holder = stringAt(spec, {"holderIdentity"});
  std::lock_guard lock(mu_);
  if (holder != holder_) {
    spdlog::info("msg=\"leader election\" lease={}/{} holder={} self={}", options_.ns,
                 options_.name, holder.empty() ? "none" : holder, options_.identity);
    holder_ = std::move(holder);
  }
}

json::value LeaderElector::leaseSpec(const json::object* old, bool renewing) const {
  json::object spec = old != nullptr ? *old : json::object{};
  const std::string now = formatRfc3339Micro(clock_.now());
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(options_.leaseDuration).count();
  int64_t transitions = 0;
  if (old != nullptr) {
    if (const auto* t = old->if_contains("leaseTransitions"); t != nullptr && t->is_int64()) {
      transitions = t->as_int64();
    }
  }
  spec["holderIdentity"] = options_.identity;
  spec["leaseDurationSeconds"] = seconds;
  spec["renewTime"] = now;
  if (!renewing) {
    spec["acquireTime"] = now;
    spec["leaseTransitions"] = old != nullptr ? transitions + 1 : 0;
  }
  return spec;
}

std::chrono::milliseconds LeaderElector::validity(const json::object& spec) const {
  if (const auto* d = spec.if_contains("leaseDurationSeconds"); d != nullptr && d->is_int64()) {
    return std::max(options_.leaseDuration,
                    std::chrono::milliseconds(std::chrono::seconds(d->as_int64())));
  }
  return options_.leaseDuration;
}

asio::awaitable<Result<bool>> LeaderElector::guardHeld() {
  if (options_.guardName.empty()) {
    co_return false;
  }
  std::string ns = options_.guardNs;
  std::string name = options_.guardName;
  auto got = co_await client_.get(resources::kLeases, ns, name);
  if (!got.ok()) {
    if (got.error().code == ErrorCode::kNotFound) {
      co_return false;
    }
    co_return std::move(got).error();
  }
  guard_.see(got->as_object().if_contains("spec"), clock_);
  const bool held = clock_.steadyNow() < guard_.at + options_.leaseDuration;
  if (held) {
    spdlog::info(
        "msg=\"leader election: waiting for the node's heartbeat to stop before the "
        "first lease\" lease={}/{} heartbeat={}/{}",
        options_.ns, options_.name, ns, name);
  }
  co_return held;
}

asio::awaitable<Result<bool>> LeaderElector::tryAcquireOrRenew() {
  std::string ns = options_.ns;
  std::string name = options_.name;
  auto got = co_await client_.get(resources::kLeases, ns, name);
  if (!got.ok() && got.error().code != ErrorCode::kNotFound) {
    co_return std::move(got).error();
  }
  if (!got.ok()) {
    auto guarded = co_await guardHeld();
    if (!guarded.ok()) {
      co_return std::move(guarded).error();
    }
    if (*guarded) {
      co_return false;
    }
    json::value lease = json::object{
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata",
         json::object{{"name", name},
                      {"namespace", ns},
                      {"labels", json::object{{"app.kubernetes.io/managed-by", "burstlet"}}}}},
        {"spec", leaseSpec(nullptr, false)}};
    auto created = co_await client_.create(resources::kLeases, ns, lease);
    if (!created.ok()) {
      if (created.error().code == ErrorCode::kConflict ||
          created.error().code == ErrorCode::kAlreadyExists) {
        co_return false;  // another replica made it first
      }
      co_return std::move(created).error();
    }
    observe(created->at("spec"));
    co_return true;
  }
  json::object empty;
  const json::object* spec = &empty;
  if (auto* s = got->as_object().if_contains("spec"); s != nullptr && s->is_object()) {
    spec = &s->as_object();
  }
  observe(*spec);
  const std::string current = holder();
  const bool ours = current == options_.identity;
  if (!ours && !current.empty() && clock_.steadyNow() < observed_.at + validity(*spec)) {
    co_return false;  // held, and renewed within its duration as seen from here
  }
  json::value lease = *got;
  lease.as_object()["spec"] = leaseSpec(spec, ours);
  auto updated = co_await client_.update(resources::kLeases, ns, name, lease);
  if (!updated.ok()) {
    if (updated.error().code != ErrorCode::kConflict) {
      co_return std::move(updated).error();
    }
    // Changed since read: someone else renewed or took it — or this very write landed and its
    // answer was lost, and the client's retry met its own new resourceVersion.
    auto again = co_await client_.get(resources::kLeases, ns, name);
    if (!again.ok()) {
      co_return std::move(again).error();
    }
    const json::value* s = again->as_object().if_contains("spec");
    if (s != nullptr) {
      observe(*s);
    }
    co_return holder() == options_.identity;
  }
  observe(updated->at("spec"));
  co_return true;
}

asio::awaitable<void> LeaderElector::release() {
  std::string ns = options_.ns;
  std::string name = options_.name;
  auto got = co_await client_.get(resources::kLeases, ns, name);
  if (!got.ok() || stringAt(*got, {"spec", "holderIdentity"}) != options_.identity) {
    co_return;
  }
  json::value lease = *got;
  auto& spec = lease.as_object()["spec"].as_object();
  const std::string now = formatRfc3339Micro(clock_.now());
  // As client-go releases: no holder, so a standby takes it at its next attempt.
  spec["holderIdentity"] = "";
  spec["leaseDurationSeconds"] = 1;
  spec["renewTime"] = now;
  spec["acquireTime"] = now;
  auto updated = co_await client_.update(resources::kLeases, ns, name, lease);
  if (updated.ok()) {
    spdlog::info("msg=\"leader election: lease released\" lease={}/{}", ns, name);
  } else {
    spdlog::warn("msg=\"leader election: lease not released, it expires\" lease={}/{} error=\"{}\"",
                 ns, name, updated.error().toString());
  }
}

// While leading: once renewDeadline passed since the last renewal (a request may hang), the
// replica counts as lost at that moment, not when the request comes back.
asio::awaitable<void> LeaderElector::watchRenewals() {
  while (!stop_.isSet() && !lost_.isSet()) {
    const auto deadline = lastRenew_ + options_.renewDeadline;
    const auto now = clock_.steadyNow();
    if (now >= deadline) {
      spdlog::error(
          "msg=\"leader election: lease not renewed within the renew deadline\" "
          "lease={}/{} renewDeadline={}ms",
          options_.ns, options_.name, options_.renewDeadline.count());
      lost_.set();
      break;
    }
    co_await renewed_.sleep(clock_, deadline - now, &stop_);
  }
  watchDone_.set();
}

asio::awaitable<void> LeaderElector::run() {
  bool warned = false;
  bool acquired = false;
  while (!stop_.isSet()) {
    const auto started = clock_.steadyNow();
    auto r = co_await tryAcquireOrRenew();
    answering_ = r.ok();
    if (r.ok() && *r) {
      acquired = true;
      lastRenew_ = started;
      break;
    }
    if (!r.ok() && !warned) {
      warned = true;  // once: a standby may wait for hours
      spdlog::warn("msg=\"leader election: lease not read or written\" lease={}/{} error=\"{}\"",
                   options_.ns, options_.name, r.error().toString());
    }
    co_await sleepFor(clock_, options_.retryPeriod, &stop_);
  }
  if (stop_.isSet()) {
    if (acquired) {
      co_await release();  // stopped while the acquiring write was on its way
    }
    co_return;
  }
  spdlog::info("msg=\"leader election: leading\" lease={}/{} self={}", options_.ns, options_.name,
               options_.identity);
  leading_.set();
  asio::co_spawn(co_await asio::this_coro::executor, watchRenewals(), asio::detached);
  while (!stop_.isSet() && !lost_.isSet()) {
    co_await sleepFor(clock_, options_.retryPeriod, &stop_);
    if (stop_.isSet() || lost_.isSet()) {
      break;
    }
    // A renewal counts from when it was sent: the holder's own view must never run ahead of
    // what a standby measures from the Lease's change.
    const auto started = clock_.steadyNow();
    auto r = co_await tryAcquireOrRenew();
    answering_ = r.ok();
    if (lost_.isSet()) {
      break;  // too late: a standby may hold it by now
    }
    if (r.ok() && *r) {
      lastRenew_ = started;
      renewed_.notify();
    } else if (r.ok()) {
      spdlog::error("msg=\"leader election: lease taken by another replica\" lease={}/{} holder={}",
                    options_.ns, options_.name, holder());
      lost_.set();
    } else {
      spdlog::warn("msg=\"leader election: renewal failed\" lease={}/{} error=\"{}\"", options_.ns,
                   options_.name, r.error().toString());
    }
  }
  renewed_.notify();
  co_await watchDone_.wait();
  if (!lost_.isSet()) {
    co_await release();
  }
}

}  // namespace burstlet::kube
