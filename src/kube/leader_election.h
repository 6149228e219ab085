// LeaderElector: which of several replicas works, decided by a coordination.k8s.io Lease, as
// client-go's leader election decides it: a replica takes the Lease when it is free (no holder)
// or its holder has not renewed it for leaseDuration as measured on this replica's own clock
// (never by comparing the API server's timestamps with it: clocks differ); the holder renews it
// every retryPeriod and counts itself lost once renewDeadline passed without a renewal, before a
// standby may take over (renewDeadline < leaseDuration). Every write carries the resourceVersion
// read, so two replicas never both win one round.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "kube/rest.h"

namespace burstlet::kube {

struct LeaderElectionOptions {
  std::string ns;
  std::string name;
  std::string identity;  // this replica's name in the Lease; unique among the replicas
  std::chrono::milliseconds leaseDuration{15'000};
  std::chrono::milliseconds renewDeadline{10'000};
  std::chrono::milliseconds retryPeriod{2'000};
  // A Lease another writer renews while it works (the virtual node's heartbeat Lease): while the
  // election Lease does not exist yet, it is made only once this one has gone unrenewed for
  // leaseDuration — a predecessor that did not elect (one replica, an older version) may still
  // be working. Empty: none.
  std::string guardNs;
  std::string guardName;
};

// A name for this replica: `base` (a pod's name, a host name) with a random suffix, so a
// replica restarted under the same name is not taken for its predecessor.
std::string uniqueIdentity(std::string_view base);

class LeaderElector {
 public:
  LeaderElector(RestClient& client, LeaderElectionOptions options, const Clock& clock);

  // Tries for the Lease every retryPeriod until it holds it (leading() set), then renews it every
  // retryPeriod, until stop() — then releases it (no holder, so a standby takes over at once) —
  // or until a renewal has not succeeded for renewDeadline (lost() set, the Lease left to
  // expire). Run on a strand.
  boost::asio::awaitable<void> run();
  // Ends run(). Call once the holder's work has stopped: the Lease is released, not left held.
  void stop();

  const Latch& leading() const { return leading_; }
  const Latch& lost() const { return lost_; }
  const std::string& identity() const { return options_.identity; }
  // The last attempt read (and, leading, wrote) the Lease: a standby that could take over.
  bool answering() const { return answering_.load(); }
  // The holder last seen in the Lease ("" when none), for /readyz and logs.
  std::string holder() const;

 private:
  // One round: true when this replica holds the Lease afterwards.
  boost::asio::awaitable<Result<bool>> tryAcquireOrRenew();
  boost::asio::awaitable<void> release();
  boost::asio::awaitable<void> watchRenewals();
  boost::json::value leaseSpec(const boost::json::object* old, bool renewing) const;
  void observe(const boost::json::value& spec);
  // True while the guard Lease (options) was renewed within leaseDuration, as seen from here.
  boost::asio::awaitable<Result<bool>> guardHeld();
  // leaseDuration, or the Lease's own leaseDurationSeconds when longer (a holder configured
  // with a longer one counts on it).
  std::chrono::milliseconds validity(const boost::json::object& spec) const;

  RestClient& client_;
  const LeaderElectionOptions options_;
  const Clock& clock_;
  Latch leading_;
  Latch lost_;
  Latch stop_;
  Latch watchDone_;
  // A Lease's spec as last seen and when it last changed, by this replica's own clock: its
  // writer is presumed alive until leaseDuration after that.
  struct Observed {
    std::string spec;  // serialized
    Clock::SteadyTime at{};
    void see(const boost::json::value* spec, const Clock& clock);
  };
  Observed observed_;  // the election Lease
  Observed guard_;     // the guard Lease
  Clock::SteadyTime lastRenew_{};
  Wakeup renewed_;
  std::atomic<bool> answering_{false};
  mutable std::mutex mu_;  // guards holder_
  std::string holder_;
};

}  // namespace burstlet::kube
