// ProfileLedger: where the pods of each BurstProfile are, so the webhook can hold its
// `local.maxNum` and `burst.maxNum`.
//
// The webhook labels every pod a profile places with the profile's name (kProfileLabel) and its
// slot (kSlotLabel), and annotates it with the admission's uid (kAdmissionAnnotation). An
// informer on that label feeds the ledger; admissions whose pod the informer has not shown yet
// are held as reservations (dropped when the pod shows up, or after `reservationTtl` when it
// never does: another webhook refused it), so pods admitted together are counted together.
//
// A pod counts as
//   burst    bound to a virtual node; or unbound with slot burst and no capacity gate; or granted
//   local    bound to an ordinary node; or unbound with slot local or capped
//   waiting  unbound, slot burst, held by the scheduling gate kCapacityGate
// Succeeded, Failed and deleted pods do not count.
//
// Slots at admission (slotFor):
//   burst        strategy enforce, or local.maxNum reached: the pod is placed as enforce
//   burst+gate   the same, with burst.maxNum reached (burst + waiting): it waits, gated
//   capped       auto/localPrefer under a burst.maxNum: no toleration yet; it gets one (a
//                grant) when the scheduler finds no ordinary node for it and burst has room
//   local        auto/localPrefer without a burst.maxNum: the strategy's placement
// grantsDue() picks the gated and the unschedulable capped pods that burst has room for,
// oldest first; the grant loop (burst_grants.h) patches them.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "admission/profile.h"
#include "common/clock.h"

namespace burstlet::admission {

inline constexpr std::string_view kProfileLabel = "burstlet.io/profile";
inline constexpr std::string_view kSlotLabel = "burstlet.io/burst-slot";
inline constexpr std::string_view kAdmissionAnnotation = "burstlet.io/admission";
inline constexpr std::string_view kCapacityGate = "burstlet.io/burst-capacity";

enum class Slot { kLocal, kCapped, kBurst, kBurstGated };
// The kSlotLabel value: local, capped, burst (gated pods are burst with the gate).
std::string_view slotLabel(Slot slot);

struct Counts {
  int64_t local = 0;
  int64_t burst = 0;
  int64_t waiting = 0;
};

// The slot of a new pod of `profile` whose strategy is `strategy` (not off), given `counts`.
Slot slotFor(const BurstProfile& profile, Strategy strategy, const Counts& counts);

// A pod to let burst: remove the capacity gate, or add the virtual node's toleration.
struct Grant {
  std::string ns;
  std::string name;
  std::string uid;
  bool ungate = false;          // else: tolerate
  int gateIndex = -1;           // ungate: index of kCapacityGate in spec.schedulingGates
  bool hasTolerations = false;  // tolerate: spec.tolerations exists
};

// Thread-safe.
class ProfileLedger {
 public:
  explicit ProfileLedger(const Clock& clock,
                         std::chrono::seconds reservationTtl = std::chrono::seconds(30));

  // The pod informer's changes (pods labelled kProfileLabel).
  void upsertPod(const boost::json::value& pod);
  void erasePod(const boost::json::value& pod);
  // The virtual nodes (nodes labelled type=virtual-kubelet).
  void upsertNode(const std::string& name);
  void eraseNode(const std::string& name);
  // Until then the counts are not known and admit() answers nullopt.
  void markSynced();
  bool synced() const;

  // The slot for a new pod of `profile` (slotFor over the counts), reserved under
  // `admissionUid` until the pod shows up (unless `reserve` is false: a dry run); nullopt
  // before the informers have synced.
  std::optional<Slot> admit(const BurstProfile& profile, Strategy strategy,
                            const std::string& admissionUid, bool reserve = true);
  Counts counts(const std::string& profileKey);
  // Profiles (namespace/name) that have pods.
  std::vector<std::string> profileKeys() const;

  // The pods of `profileKey` that may burst now: gated ones, then capped ones the scheduler
  // found no node for, oldest first, as many as `burstMax` leaves room for (all of them when
  // nullopt: no cap, or the profile is gone). Each is counted as burst from now until the
  // informer shows it changed, or the grant is dropped (grantFailed) or expires.
  std::vector<Grant> grantsDue(const std::string& profileKey, std::optional<int64_t> burstMax);
  void grantFailed(const std::string& ns, const std::string& name);

 private:
  struct PodState {
    std::string profileKey;
    std::string ns;
    std::string name;
    std::string uid;
    std::string created;
    std::string slot;  // kSlotLabel
    std::string nodeName;
    int gateIndex = -1;
    bool unschedulable = false;
    bool hasTolerations = false;
  };
  struct Reservation {
    std::string profileKey;
    Slot slot;
    Clock::SteadyTime expires;
  };
  enum class Where { kLocal, kBurst, kWaiting };

  Where whereLocked(const std::string& key, const PodState& pod) const;
  Counts countsLocked(const std::string& profileKey);
  void expireLocked();

  const Clock& clock_;
  const std::chrono::seconds ttl_;
  mutable std::mutex mu_;
  bool synced_ = false;
  std::unordered_map<std::string, PodState> pods_;  // by namespace/name
  std::map<std::string, std::set<std::string>> byProfile_;
  std::set<std::string> virtualNodes_;
  std::unordered_map<std::string, Reservation> reservations_;  // by admission uid
  std::unordered_map<std::string, Clock::SteadyTime> grants_;  // pod key -> expiry
};

}  // namespace burstlet::admission
