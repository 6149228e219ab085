// ProfileLedger: the slot of a new pod from the counts, how pods count (bound where, unbound
// with which slot, gated), reservations for pods not seen yet, and the grants that let held
// pods burst when burst.maxNum has room.
#include "admission/profile_ledger.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "mocks/fake_clock.h"

namespace burstlet::admission {
namespace {

namespace json = boost::json;

BurstProfile profileWith(std::optional<int64_t> localMax, std::optional<int64_t> burstMax) {
  BurstProfile p;
  p.ns = "app";
  p.name = "web";
  p.strategy = Strategy::kAuto;
  p.localMax = localMax;
  p.burstMax = burstMax;
  return p;
}

struct PodShape {
  std::string slot = "local";
  std::string node;
  bool gated = false;
  bool unschedulable = false;
  std::string phase = "Pending";
  std::string admission;
  std::string created = "2026-01-01T00:00:00Z";
};

json::value pod(std::string_view name, const PodShape& s) {
  json::object labels{{kProfileLabel, "web"}, {kSlotLabel, s.slot}};
  json::object meta{{"name", name},
                    {"namespace", "app"},
                    {"uid", fmt::format("uid-{}", name)},
                    {"creationTimestamp", s.created},
                    {"labels", std::move(labels)}};
  if (!s.admission.empty()) {
    meta["annotations"] = json::object{{kAdmissionAnnotation, s.admission}};
  }
  json::object spec;
  if (!s.node.empty()) {
    spec["nodeName"] = s.node;
  }
  if (s.gated) {
    spec["schedulingGates"] =
        json::array{json::object{{"name", "other"}}, json::object{{"name", kCapacityGate}}};
  }
  json::object status{{"phase", s.phase}};
  if (s.unschedulable) {
    status["conditions"] = json::array{
        json::object{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "Unschedulable"}}};
  }
  return json::object{
      {"metadata", std::move(meta)}, {"spec", std::move(spec)}, {"status", std::move(status)}};
}

struct Fixture {
  testing::FakeClock clock;
  ProfileLedger ledger{clock, std::chrono::seconds(30)};
  Fixture() {
    ledger.upsertNode("virtual");
    ledger.markSynced();
  }
};

TEST(SlotForTest, EveryCase) {
  const auto slot = [](std::optional<int64_t> localMax, std::optional<int64_t> burstMax,
                       Strategy strategy,
                       Counts c) { return slotFor(profileWith(localMax, burstMax), strategy, c); };
  // Without caps the strategy's own placement.
  EXPECT_EQ(slot({}, {}, Strategy::kAuto, {100, 100, 0}), Slot::kLocal);
  EXPECT_EQ(slot({}, {}, Strategy::kEnforce, {0, 0, 0}), Slot::kBurst);
  // local.maxNum: below it local, at it burst.
  EXPECT_EQ(slot(3, {}, Strategy::kAuto, {2, 0, 0}), Slot::kLocal);
  EXPECT_EQ(slot(3, {}, Strategy::kLocalPrefer, {3, 0, 0}), Slot::kBurst);
  EXPECT_EQ(slot(0, {}, Strategy::kAuto, {0, 0, 0}), Slot::kBurst);
  // burst.maxNum: an auto pod under it is capped (bursts only by grant).
  EXPECT_EQ(slot({}, 2, Strategy::kAuto, {0, 0, 0}), Slot::kCapped);
  EXPECT_EQ(slot(3, 2, Strategy::kAuto, {3, 1, 0}), Slot::kBurst);
  EXPECT_EQ(slot(3, 2, Strategy::kAuto, {3, 2, 0}), Slot::kBurstGated);
  // Pods already waiting are ahead.
  EXPECT_EQ(slot(3, 2, Strategy::kAuto, {3, 1, 1}), Slot::kBurstGated);
  EXPECT_EQ(slot({}, 0, Strategy::kEnforce, {0, 0, 0}), Slot::kBurstGated);
  EXPECT_EQ(slotLabel(Slot::kBurstGated), "burst");
  EXPECT_EQ(slotLabel(Slot::kCapped), "capped");
}

TEST(ProfileLedgerTest, NothingIsAdmittedBeforeTheCachesSynced) {
  testing::FakeClock clock;
  ProfileLedger ledger(clock);
  EXPECT_FALSE(ledger.admit(profileWith(3, {}), Strategy::kAuto, "a1"));
  ledger.markSynced();
  EXPECT_EQ(ledger.admit(profileWith(3, {}), Strategy::kAuto, "a1"), Slot::kLocal);
}

TEST(ProfileLedgerTest, PodsCountByWhereTheyAre) {
  Fixture f;
  f.ledger.upsertPod(pod("bound-local", {.slot = "local", .node = "worker-1"}));
  f.ledger.upsertPod(pod("bound-virtual", {.slot = "burst", .node = "virtual"}));
  f.ledger.upsertPod(pod("capped-on-virtual", {.slot = "capped", .node = "virtual"}));
  f.ledger.upsertPod(pod("pending-local", {.slot = "local"}));
  f.ledger.upsertPod(pod("pending-capped", {.slot = "capped"}));
  f.ledger.upsertPod(pod("pending-burst", {.slot = "burst"}));
  f.ledger.upsertPod(pod("gated", {.slot = "burst", .gated = true}));
  f.ledger.upsertPod(pod("done", {.slot = "burst", .node = "virtual", .phase = "Succeeded"}));
  f.ledger.upsertPod(pod("failed", {.slot = "local", .node = "worker-1", .phase = "Failed"}));
  Counts c = f.ledger.counts("app/web");
  EXPECT_EQ(c.local, 3);    // bound-local, pending-local, pending-capped
  EXPECT_EQ(c.burst, 3);    // bound-virtual, capped-on-virtual, pending-burst
  EXPECT_EQ(c.waiting, 1);  // gated
  EXPECT_EQ(f.ledger.profileKeys(), std::vector<std::string>{"app/web"});

  // A pod that finishes or goes stops counting; a node that stops being virtual moves pods.
  f.ledger.upsertPod(pod("bound-virtual", {.slot = "burst", .node = "virtual", .phase = "Failed"}));
  f.ledger.erasePod(pod("pending-burst", {}));
  f.ledger.eraseNode("virtual");
  c = f.ledger.counts("app/web");
  EXPECT_EQ(c.local, 4);  // capped-on-virtual now counts where its node is: not virtual
  EXPECT_EQ(c.burst, 0);
}

TEST(ProfileLedgerTest, AdmissionsAreReservedUntilThePodShowsUpOrTheyExpire) {
  Fixture f;
  const auto profile = profileWith(2, {});
  EXPECT_EQ(f.ledger.admit(profile, Strategy::kAuto, "a1"), Slot::kLocal);
  EXPECT_EQ(f.ledger.admit(profile, Strategy::kAuto, "a2"), Slot::kLocal);
  // Two admitted but not seen yet: the third is beyond local.maxNum already.
  EXPECT_EQ(f.ledger.admit(profile, Strategy::kAuto, "a3"), Slot::kBurst);
  // The API server calling again for the same request keeps one reservation.
  EXPECT_EQ(f.ledger.admit(profile, Strategy::kAuto, "a3"), Slot::kBurst);
  EXPECT_EQ(f.ledger.counts("app/web").burst, 1);

  // The pod of a1 shows up: its reservation becomes the pod.
  f.ledger.upsertPod(pod("p1", {.slot = "local", .admission = "a1"}));
  Counts c = f.ledger.counts("app/web");
  EXPECT_EQ(c.local, 2);
  EXPECT_EQ(c.burst, 1);

  // a2's pod never comes (another webhook refused it): gone after the TTL.
  f.clock.advance(std::chrono::seconds(31));
  c = f.ledger.counts("app/web");
  EXPECT_EQ(c.local, 1);
  EXPECT_EQ(c.burst, 0);
  EXPECT_EQ(f.ledger.admit(profile, Strategy::kAuto, "a4"), Slot::kLocal);
}

TEST(ProfileLedgerTest, DryRunsReserveNothing) {
  Fixture f;
  const auto profile = profileWith(1, {});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(f.ledger.admit(profile, Strategy::kAuto, fmt::format("dry-{}", i), false),
              Slot::kLocal);
  }
  EXPECT_EQ(f.ledger.counts("app/web").local, 0);
}

TEST(ProfileLedgerTest, GrantsGoToGatedPodsFirstOldestFirstWithinTheRoom) {
  Fixture f;
  f.ledger.upsertPod(pod("running", {.slot = "burst", .node = "virtual"}));
  f.ledger.upsertPod(
      pod("gated-new", {.slot = "burst", .gated = true, .created = "2026-01-01T00:00:03Z"}));
  f.ledger.upsertPod(
      pod("gated-old", {.slot = "burst", .gated = true, .created = "2026-01-01T00:00:01Z"}));
  f.ledger.upsertPod(pod("capped-stuck", {.slot = "capped", .unschedulable = true}));
  f.ledger.upsertPod(pod("capped-waiting-for-scheduler", {.slot = "capped"}));

  // burst.maxNum 2 with one running: room for one, the oldest gated pod.
  auto grants = f.ledger.grantsDue("app/web", 2);
  ASSERT_EQ(grants.size(), 1U);
  EXPECT_EQ(grants[0].name, "gated-old");
  EXPECT_TRUE(grants[0].ungate);
  EXPECT_EQ(grants[0].gateIndex, 1);
  EXPECT_EQ(grants[0].uid, "uid-gated-old");
  // Granted counts as burst at once: no room for another.
  EXPECT_EQ(f.ledger.counts("app/web").burst, 2);
  EXPECT_TRUE(f.ledger.grantsDue("app/web", 2).empty());

  // The running pod finishes: room for the next gated, then the capped pod the scheduler
  // could not place (never the one it has not tried yet).
  f.ledger.upsertPod(pod("running", {.slot = "burst", .node = "virtual", .phase = "Succeeded"}));
  grants = f.ledger.grantsDue("app/web", 3);
  ASSERT_EQ(grants.size(), 2U);
  EXPECT_EQ(grants[0].name, "gated-new");
  EXPECT_EQ(grants[1].name, "capped-stuck");
  EXPECT_FALSE(grants[1].ungate);
  EXPECT_FALSE(grants[1].hasTolerations);

  // A failed patch gives the room back.
  f.ledger.grantFailed("app", "capped-stuck");
  grants = f.ledger.grantsDue("app/web", 3);
  ASSERT_EQ(grants.size(), 1U);
  EXPECT_EQ(grants[0].name, "capped-stuck");
}

TEST(ProfileLedgerTest, AGrantHoldsUntilThePodShowsItOrItExpires) {
  Fixture f;
  f.ledger.upsertPod(pod("gated", {.slot = "burst", .gated = true}));
  ASSERT_EQ(f.ledger.grantsDue("app/web", 1).size(), 1U);
  EXPECT_EQ(f.ledger.counts("app/web").burst, 1);
  // The informer shows the gate gone: the pod counts as burst on its own.
  f.ledger.upsertPod(pod("gated", {.slot = "burst"}));
  EXPECT_EQ(f.ledger.counts("app/web").burst, 1);
  EXPECT_EQ(f.ledger.counts("app/web").waiting, 0);

  // A grant the informer never confirms lapses after the TTL and is due again.
  f.ledger.upsertPod(pod("gated-2", {.slot = "burst", .gated = true}));
  ASSERT_EQ(f.ledger.grantsDue("app/web", 2).size(), 1U);
  EXPECT_TRUE(f.ledger.grantsDue("app/web", 2).empty());
  f.clock.advance(std::chrono::seconds(31));
  EXPECT_EQ(f.ledger.grantsDue("app/web", 2).size(), 1U);
}

TEST(ProfileLedgerTest, WithoutACapEveryHeldPodIsDue) {
  Fixture f;  // the profile was deleted, or its burst.maxNum removed
  for (int i = 0; i < 5; ++i) {
    f.ledger.upsertPod(pod(fmt::format("gated-{}", i), {.slot = "burst", .gated = true}));
  }
  EXPECT_EQ(f.ledger.grantsDue("app/web", std::nullopt).size(), 5U);
  EXPECT_TRUE(f.ledger.grantsDue("app/other", std::nullopt).empty());
}

}  // namespace
}  // namespace burstlet::admission
