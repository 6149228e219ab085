#include "admission/profile_ledger.h"

#include <algorithm>
#include <boost/json.hpp>
#include <tuple>

#include "kube/json_path.h"

namespace burstlet::admission {

namespace json = boost::json;
using kube::stringAt;

namespace {

std::string podKey(std::string_view ns, std::string_view name) {
  return std::string(ns) + "/" + std::string(name);
}

// Whether the pod no longer counts: finished, or being deleted.
bool gone(const json::value& pod) {
  const std::string phase = stringAt(pod, {"status", "phase"});
  return phase == "Succeeded" || phase == "Failed" ||
         kube::at(pod, {"metadata", "deletionTimestamp"}) != nullptr;
}

int gateIndexOf(const json::value& pod) {
  const auto* gates = kube::at(pod, {"spec", "schedulingGates"});
  if (gates == nullptr || !gates->is_array()) {
    return -1;
  }
  const auto& list = gates->get_array();
  for (size_t i = 0; i < list.size(); ++i) {
    if (stringAt(list[i], {"name"}) == kCapacityGate) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// PodScheduled False with reason Unschedulable: the scheduler found no node.
bool unschedulable(const json::value& pod) {
  const auto* conditions = kube::at(pod, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) {
    return false;
  }
  for (const auto& c : conditions->get_array()) {
    if (stringAt(c, {"type"}) == "PodScheduled") {
      return stringAt(c, {"status"}) == "False" && stringAt(c, {"reason"}) == "Unschedulable";
    }
  }
  return false;
}

}  // namespace

std::string_view slotLabel(Slot slot) {
  switch (slot) {
    case Slot::kLocal:
      return "local";
    case Slot::kCapped:
      return "capped";
    case Slot::kBurst:
    case Slot::kBurstGated:
      return "burst";
  }
  return "local";
}

Slot slotFor(const BurstProfile& profile, Strategy strategy, const Counts& counts) {
  const bool wantsBurst =
      strategy == Strategy::kEnforce || (profile.localMax && counts.local >= *profile.localMax);
  if (wantsBurst) {
    // Pods already waiting take the room first.
    const bool full = profile.burstMax && counts.burst + counts.waiting >= *profile.burstMax;
    return full ? Slot::kBurstGated : Slot::kBurst;
  }
  return profile.burstMax ? Slot::kCapped : Slot::kLocal;
}

ProfileLedger::ProfileLedger(const Clock& clock, std::chrono::seconds reservationTtl)
    : clock_(clock), ttl_(reservationTtl) {}

void ProfileLedger::upsertPod(const json::value& pod) {
  const std::string ns = stringAt(pod, {"metadata", "namespace"});
  const std::string name = stringAt(pod, {"metadata", "name"});
  const std::string key = podKey(ns, name);
  const std::string profile = stringAt(pod, {"metadata", "labels", kProfileLabel});
  std::lock_guard lock(mu_);
  if (const std::string uid = stringAt(pod, {"metadata", "annotations", kAdmissionAnnotation});
      !uid.empty()) {
    reservations_.erase(uid);
  }
  if (auto it = pods_.find(key); it != pods_.end()) {
    byProfile_[it->second.profileKey].erase(key);
    if (byProfile_[it->second.profileKey].empty()) {
      byProfile_.erase(it->second.profileKey);
    }
    pods_.erase(it);
  }
  if (profile.empty() || gone(pod)) {
    grants_.erase(key);
    return;
  }
  PodState s;
  s.profileKey = podKey(ns, profile);
  s.ns = ns;
  s.name = name;
  s.uid = stringAt(pod, {"metadata", "uid"});
  s.created = stringAt(pod, {"metadata", "creationTimestamp"});
  s.slot = stringAt(pod, {"metadata", "labels", kSlotLabel});
  s.nodeName = stringAt(pod, {"spec", "nodeName"});
  s.gateIndex = gateIndexOf(pod);
  s.unschedulable = unschedulable(pod);
  const auto* tolerations = kube::at(pod, {"spec", "tolerations"});
  s.hasTolerations = tolerations != nullptr && tolerations->is_array();
  // A grant is done once the pod shows it: slot burst and no gate.
  if (s.slot == slotLabel(Slot::kBurst) && s.gateIndex < 0) {
    grants_.erase(key);
  }
  byProfile_[s.profileKey].insert(key);
  pods_.emplace(key, std::move(s));
}

void ProfileLedger::erasePod(const json::value& pod) {
  const std::string key =
      podKey(stringAt(pod, {"metadata", "namespace"}), stringAt(pod, {"metadata", "name"}));
  std::lock_guard lock(mu_);
  grants_.erase(key);
  auto it = pods_.find(key);
  if (it == pods_.end()) {
    return;
  }
  auto& keys = byProfile_[it->second.profileKey];
  keys.erase(key);
  if (keys.empty()) {
    byProfile_.erase(it->second.profileKey);
  }
  pods_.erase(it);
}

void ProfileLedger::upsertNode(const std::string& name) {
  std::lock_guard lock(mu_);
  virtualNodes_.insert(name);
}

void ProfileLedger::eraseNode(const std::string& name) {
  std::lock_guard lock(mu_);
  virtualNodes_.erase(name);
}

void ProfileLedger::markSynced() {
  std::lock_guard lock(mu_);
  synced_ = true;
}

bool ProfileLedger::synced() const {
  std::lock_guard lock(mu_);
  return synced_;
}

ProfileLedger::Where ProfileLedger::whereLocked(const std::string& key, const PodState& pod) const {
  if (!pod.nodeName.empty()) {
    return virtualNodes_.contains(pod.nodeName) ? Where::kBurst : Where::kLocal;
  }
  if (grants_.contains(key)) {
    return Where::kBurst;
  }
  if (pod.slot == slotLabel(Slot::kBurst)) {
    return pod.gateIndex >= 0 ? Where::kWaiting : Where::kBurst;
  }
  return Where::kLocal;
}

void ProfileLedger::expireLocked() {
  const auto now = clock_.steadyNow();
  std::erase_if(reservations_, [&](const auto& r) { return r.second.expires <= now; });
  std::erase_if(grants_, [&](const auto& g) { return g.second <= now; });
}

Counts ProfileLedger::countsLocked(const std::string& profileKey) {
  expireLocked();
  Counts c;
  if (auto it = byProfile_.find(profileKey); it != byProfile_.end()) {
    for (const auto& key : it->second) {
      switch (whereLocked(key, pods_.at(key))) {
        case Where::kLocal:
          ++c.local;
          break;
        case Where::kBurst:
          ++c.burst;
          break;
        case Where::kWaiting:
          ++c.waiting;
          break;
      }
    }
  }
  for (const auto& [uid, r] : reservations_) {
    if (r.profileKey != profileKey) {
      continue;
    }
    switch (r.slot) {
      case Slot::kLocal:
      case Slot::kCapped:
        ++c.local;
        break;
      case Slot::kBurst:
        ++c.burst;
        break;
      case Slot::kBurstGated:
        ++c.waiting;
        break;
    }
  }
  return c;
}

Counts ProfileLedger::counts(const std::string& profileKey) {
  std::lock_guard lock(mu_);
  return countsLocked(profileKey);
}

std::optional<Slot> ProfileLedger::admit(const BurstProfile& profile, Strategy strategy,
                                         const std::string& admissionUid, bool reserve) {
  std::lock_guard lock(mu_);
  if (!synced_) {
    return std::nullopt;
  }
  const Slot slot = slotFor(profile, strategy, countsLocked(profile.key()));
  // The API server may call again for the same request (reinvocation): one reservation.
  if (!reserve) {
    return slot;
  }
  reservations_[admissionUid] = Reservation{profile.key(), slot, clock_.steadyNow() + ttl_};
  return slot;
}

std::vector<std::string> ProfileLedger::profileKeys() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [k, pods] : byProfile_) {
    keys.push_back(k);
  }
  return keys;
}

std::vector<Grant> ProfileLedger::grantsDue(const std::string& profileKey,
                                            std::optional<int64_t> burstMax) {
  std::lock_guard lock(mu_);
  const Counts c = countsLocked(profileKey);
  int64_t room = burstMax ? *burstMax - c.burst : INT64_MAX;
  auto it = byProfile_.find(profileKey);
  if (room <= 0 || it == byProfile_.end()) {
    return {};
  }
  std::vector<const PodState*> gated;
  std::vector<const PodState*> capped;
  for (const auto& key : it->second) {
    const PodState& p = pods_.at(key);
    if (!p.nodeName.empty() || grants_.contains(key)) {
      continue;
    }
    if (p.slot == slotLabel(Slot::kBurst) && p.gateIndex >= 0) {
      gated.push_back(&p);
    } else if (p.slot == slotLabel(Slot::kCapped) && p.unschedulable) {
      capped.push_back(&p);
    }
  }
  auto oldest = [](const PodState* a, const PodState* b) {
    return std::tie(a->created, a->name) < std::tie(b->created, b->name);
  };
  std::sort(gated.begin(), gated.end(), oldest);
  std::sort(capped.begin(), capped.end(), oldest);
  std::vector<Grant> out;
  const auto expires = clock_.steadyNow() + ttl_;
  for (const auto* list : {&gated, &capped}) {
    for (const PodState* p : *list) {
      if (room <= 0) {
        return out;
      }
      --room;
      Grant g{p->ns, p->name, p->uid, p->gateIndex >= 0, p->gateIndex, p->hasTolerations};
      grants_[podKey(p->ns, p->name)] = expires;
      out.push_back(std::move(g));
    }
  }
  return out;
}

void ProfileLedger::grantFailed(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  grants_.erase(podKey(ns, name));
}

}  // namespace burstlet::admission
