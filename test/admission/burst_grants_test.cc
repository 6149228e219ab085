// BurstGrants: one pass patches the pods the ledger says may burst (JSON patch to the pod),
// a failed patch gives the room back, and nothing is granted before the ledger synced.
#include "admission/burst_grants.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "mocks/fake_clock.h"
#include "mocks/fake_transport.h"
#include "mocks/run_sync.h"

namespace burstlet::admission {
namespace {

namespace json = boost::json;
using testing::FakeTransport;
using testing::jsonResponse;

json::value gatedPod(std::string_view name) {
  return json::object{
      {"metadata",
       json::object{{"name", name},
                    {"namespace", "app"},
                    {"uid", std::string("uid-") + std::string(name)},
                    {"creationTimestamp", std::string("2026-01-01T00:00:0") + name.back() + "Z"},
                    {"labels", json::object{{kProfileLabel, "web"}, {kSlotLabel, "burst"}}}}},
      {"spec",
       json::object{{"schedulingGates", json::array{json::object{{"name", kCapacityGate}}}}}},
      {"status", json::object{{"phase", "Pending"}}}};
}

json::value profileObject(int burstMax) {
  return json::parse(fmt::format(R"({{"metadata":{{"name":"web","namespace":"app"}},
      "spec":{{"strategy":"auto","burst":{{"maxNum":{}}}}}}})",
                                 burstMax));
}

struct Fixture {
  boost::asio::io_context io;
  testing::FakeClock clock;
  ProfileLedger ledger{clock};
  ProfileIndex profiles;
  std::vector<kube::HttpRequest> seen;
  unsigned status = 200;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<BurstGrants> grants;

  Fixture() {
    kube::RestOptions o;
    o.retry.maxRetries = 0;
    client = std::make_unique<kube::RestClient>(
        io.get_executor(), std::make_unique<FakeTransport>([this](const kube::HttpRequest& r) {
          seen.push_back(r);
          if (status != 200) {
            return jsonResponse(status, fmt::format(R"({{"kind":"Status","code":{}}})", status));
          }
          return jsonResponse(200, R"({"metadata":{"name":"x"}})");
        }),
        kube::ClientConfig{}, o);
    grants = std::make_unique<BurstGrants>(*client, ledger, profiles, PlacementOptions{}, clock);
    ledger.upsertNode("virtual");
  }
  int once() { return testing::runSync(io, grants->grantOnce()); }
};

TEST(BurstGrantsTest, PatchesWhatTheLedgerGrantsWithinTheProfilesCap) {
  Fixture f;
  ASSERT_TRUE(f.profiles.upsert(profileObject(1)).ok());
  f.ledger.markSynced();
  f.ledger.upsertPod(gatedPod("p2"));
  f.ledger.upsertPod(gatedPod("p1"));
  EXPECT_EQ(f.once(), 1);
  ASSERT_EQ(f.seen.size(), 1U);
  EXPECT_EQ(f.seen[0].method, kube::Verb::patch);
  EXPECT_EQ(f.seen[0].target, "/api/v1/namespaces/app/pods/p1");  // the oldest
  EXPECT_EQ(f.seen[0].contentType, "application/json-patch+json");
  const json::value ops = json::parse(f.seen[0].body);
  EXPECT_EQ(kube::stringAt(ops.as_array()[0], {"path"}), "/metadata/uid");
  EXPECT_EQ(kube::stringAt(ops.as_array()[0], {"value"}), "uid-p1");
  EXPECT_EQ(kube::stringAt(ops.as_array().back(), {"op"}), "remove");
  // p1 counts as burst now: nothing more within burst.maxNum 1.
  EXPECT_EQ(f.once(), 0);
  EXPECT_EQ(f.seen.size(), 1U);
}

TEST(BurstGrantsTest, AFailedPatchIsTriedAgain) {
  Fixture f;
  ASSERT_TRUE(f.profiles.upsert(profileObject(1)).ok());
  f.ledger.markSynced();
  f.ledger.upsertPod(gatedPod("p1"));
  f.status = 409;
  EXPECT_EQ(f.once(), 0);
  f.status = 200;
  EXPECT_EQ(f.once(), 1);
  EXPECT_EQ(f.seen.size(), 2U);
}

TEST(BurstGrantsTest, PodsOfADeletedProfileAreAllLetGo) {
  Fixture f;
  f.ledger.markSynced();
  f.ledger.upsertPod(gatedPod("p1"));
  f.ledger.upsertPod(gatedPod("p2"));
  EXPECT_EQ(f.once(), 2);
}

TEST(BurstGrantsTest, RunGrantsOnlyOnceTheLedgerSyncedAndStops) {
  Fixture f;
  f.ledger.upsertPod(gatedPod("p1"));
  Latch stop;
  bool ended = false;
  boost::asio::co_spawn(f.io, f.grants->run(stop, std::chrono::seconds(1)),
                        [&](const std::exception_ptr&) { ended = true; });
  f.io.poll();
  EXPECT_TRUE(f.seen.empty());  // not synced
  f.ledger.markSynced();
  f.clock.advance(std::chrono::seconds(1));
  f.io.poll();
  EXPECT_EQ(f.seen.size(), 1U);
  stop.set();
  f.io.poll();
  EXPECT_TRUE(ended);
}

}  // namespace
}  // namespace burstlet::admission
