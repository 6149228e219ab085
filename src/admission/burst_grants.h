// BurstGrants: lets the pods a BurstProfile holds back burst once burst.maxNum has room (a
// burst pod finished or went, or the cap was raised): every interval, for each profile with
// pods, it patches what ProfileLedger::grantsDue() names (grantPatch: the capacity gate
// removed, or the virtual node's toleration added to a capped pod the scheduler found no
// ordinary node for). A profile that is gone caps nothing: its waiting pods are all let go.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>

#include "admission/placement.h"
#include "admission/profile.h"
#include "admission/profile_ledger.h"
#include "common/clock.h"
#include "common/wait.h"
#include "kube/rest.h"

namespace burstlet::admission {

class BurstGrants {
 public:
  // All must outlive this.
  BurstGrants(kube::RestClient& cluster, ProfileLedger& ledger, const ProfileIndex& profiles,
              PlacementOptions options, const Clock& clock);

  // Grants until `stop` is set, once per `interval` while the ledger is synced.
  boost::asio::awaitable<void> run(const Latch& stop,
                                   std::chrono::milliseconds interval = std::chrono::seconds(1));
  // One pass; the number of pods patched.
  boost::asio::awaitable<int> grantOnce();

 private:
  kube::RestClient& cluster_;
  ProfileLedger& ledger_;
  const ProfileIndex& profiles_;
  const PlacementOptions options_;
  const Clock& clock_;
};

}  // namespace burstlet::admission
