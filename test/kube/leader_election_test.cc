#include "kube/leader_election.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <memory>

#include "mocks/fake_clock.h"
#include "mocks/memory_api.h"

namespace burstlet::kube {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using burstlet::testing::FakeClock;
using burstlet::testing::MemoryApi;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kLeases = "/apis/coordination.k8s.io/v1/namespaces/burstlet/leases";

// One replica: its own event loop (a stopped loop is a replica that died: it renews nothing)
// and client, on the shared API and clock.
struct Replica {
  std::unique_ptr<asio::io_context> ioOwned = std::make_unique<asio::io_context>();
  asio::io_context& io = *ioOwned;
  std::unique_ptr<RestClient> client;
  std::unique_ptr<LeaderElector> elector;
  bool done = false;

  Replica(MemoryApi& api, const FakeClock& clock, const std::string& name, int retries = 0,
          bool guarded = false) {
    RestOptions ro;
    ro.retry.maxRetries = retries;
    // The client's retry delays are real timers: none, so that retries keep up with the clock.
    ro.retry.baseDelay = milliseconds(0);
    ro.retry.maxDelay = milliseconds(0);
    ro.clock = &clock;
    client = std::make_unique<RestClient>(io.get_executor(), api.transport(), ClientConfig{}, ro);
    LeaderElectionOptions o;
    o.ns = "burstlet";
    o.name = "burstlet-node";
    o.identity = name;
    if (guarded) {
      o.guardNs = "kube-node-lease";
      o.guardName = "node";
    }
    elector = std::make_unique<LeaderElector>(*client, o, clock);
  }
  // Ends run() (its frames refer to the elector, and its sleepers' timers to the loop).
  ~Replica() {
    elector->stop();
    poll();
  }
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;
  void start() {
    asio::co_spawn(io, elector->run(), [this](const std::exception_ptr&) { done = true; });
  }
  void poll() {
    for (int i = 0; i < 100; ++i) {
      io.restart();
      if (io.poll() == 0) {
        break;
      }
    }
  }
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  LeaderElectionTest() {
    api_.put("/api/v1/namespaces", json::parse(R"({"metadata":{"name":"burstlet"}})"));
  }
  // Time passes in steps; the replicas in `alive` do what they would meanwhile.
  void pass(milliseconds d, std::initializer_list<Replica*> alive) {
    for (auto* r : alive) {
      r->poll();
    }
    for (milliseconds done{0}; done < d; done += milliseconds(100)) {
      clock_.advance(milliseconds(100));
      for (auto* r : alive) {
        r->poll();
      }
    }
  }
  json::value lease() { return *api_.get(kLeases, "burstlet-node"); }
  std::string holder() { return std::string(lease().at("spec").at("holderIdentity").as_string()); }

  MemoryApi api_;
  FakeClock clock_;
};

TEST_F(LeaderElectionTest, OneReplicaLeadsTheOtherStandsBy) {
  Replica a(api_, clock_, "a");
  Replica b(api_, clock_, "b");
  a.start();
  pass(milliseconds(0), {&a});
  ASSERT_TRUE(a.elector->leading().isSet());
  b.start();
  pass(seconds(60), {&a, &b});
  EXPECT_TRUE(a.elector->leading().isSet());
  EXPECT_FALSE(a.elector->lost().isSet());
  EXPECT_FALSE(b.elector->leading().isSet());
  EXPECT_EQ(b.elector->holder(), "a");
  EXPECT_EQ(holder(), "a");
  EXPECT_EQ(lease().at("spec").at("leaseTransitions").as_int64(), 0);
  EXPECT_EQ(lease().at("spec").at("leaseDurationSeconds").as_int64(), 15);
  // Renewed every retryPeriod (2s) for the minute: about 30 writes, not one per poll.
  const int puts = api_.count(Verb::put, kLeases);
  EXPECT_GE(puts, 28);
  EXPECT_LE(puts, 31);
}

TEST_F(LeaderElectionTest, AStandbyTakesOverOnlyOnceTheLeaseWentUnrenewedForItsDuration) {
  Replica a(api_, clock_, "a");
  Replica b(api_, clock_, "b");
  a.start();
  b.start();
  pass(seconds(5), {&a, &b});
  ASSERT_TRUE(a.elector->leading().isSet());
  ASSERT_FALSE(b.elector->leading().isSet());
  // a dies (SIGKILL: no release). Its last renewal was within the last retryPeriod.
  const std::string lastRenew(lease().at("spec").at("renewTime").as_string());
  pass(seconds(12), {&b});
  EXPECT_FALSE(b.elector->leading().isSet()) << "took a lease renewed 12s ago";
  pass(seconds(6), {&b});
  ASSERT_TRUE(b.elector->leading().isSet()) << "not taken 18s after the last renewal";
  EXPECT_EQ(holder(), "b");
  EXPECT_EQ(lease().at("spec").at("leaseTransitions").as_int64(), 1);
  EXPECT_NE(std::string(lease().at("spec").at("acquireTime").as_string()), lastRenew);
}

TEST_F(LeaderElectionTest, TheHolderCountsItselfLostBeforeAStandbyMayTakeOver) {
  Replica a(api_, clock_, "a");
  a.start();
  pass(milliseconds(0), {&a});
  ASSERT_TRUE(a.elector->leading().isSet());
  // Every renewal fails from now on (500: not retried by the client).
  api_.failNext(Verb::put, kLeases, 1000, 500);
  pass(seconds(9), {&a});
  EXPECT_FALSE(a.elector->lost().isSet());
  pass(seconds(2), {&a});
  EXPECT_TRUE(a.elector->lost().isSet()) << "renewDeadline (10s) passed without a renewal";
  EXPECT_TRUE(a.done);
  // Lost, it leaves the Lease to expire: releasing could hand a standby a lease it already took.
  EXPECT_EQ(holder(), "a");
}

TEST_F(LeaderElectionTest, StoppingReleasesTheLeaseAndAStandbyTakesItAtOnce) {
  Replica a(api_, clock_, "a");
  Replica b(api_, clock_, "b");
  a.start();
  pass(milliseconds(0), {&a});
  b.start();
  pass(seconds(3), {&a, &b});
  a.elector->stop();
  pass(milliseconds(0), {&a});
  EXPECT_TRUE(a.done);
  EXPECT_EQ(holder(), "");
  pass(seconds(2), {&b});
  EXPECT_TRUE(b.elector->leading().isSet()) << "waited for a released lease";
  EXPECT_EQ(holder(), "b");
}

TEST_F(LeaderElectionTest, ALeaseTakenByAnotherReplicaEndsLeadingAtTheNextRenewal) {
  Replica a(api_, clock_, "a");
  a.start();
  pass(milliseconds(0), {&a});
  ASSERT_TRUE(a.elector->leading().isSet());
  auto l = lease();
  l.at("spec").as_object()["holderIdentity"] = "intruder";
  api_.put(kLeases, l);
  pass(seconds(3), {&a});
  EXPECT_TRUE(a.elector->lost().isSet());
  EXPECT_EQ(a.elector->holder(), "intruder");
  EXPECT_EQ(holder(), "intruder") << "a lost replica must not write the lease";
}

TEST_F(LeaderElectionTest, AStandbyWaitsWhileTheLeaseCannotBeRead) {
  Replica b(api_, clock_, "b");
  api_.failNext(Verb::get, kLeases, 5, 500);
  b.start();
  pass(seconds(4), {&b});
  EXPECT_FALSE(b.elector->leading().isSet());
  pass(seconds(8), {&b});
  EXPECT_TRUE(b.elector->leading().isSet());
}

// The answer to a renewal is lost after the write landed; the client sends it again and meets
// its own new resourceVersion (409): still the holder, not lost.
TEST_F(LeaderElectionTest, ARenewalWhoseAnswerWasLostIsStillARenewal) {
  Replica a(api_, clock_, "a", /*retries=*/3);
  a.start();
  pass(milliseconds(0), {&a});
  ASSERT_TRUE(a.elector->leading().isSet());
  api_.loseAnswerNext(Verb::put, kLeases);
  pass(seconds(30), {&a});
  EXPECT_FALSE(a.elector->lost().isSet());
  EXPECT_EQ(holder(), "a");
}

// A predecessor that did not elect (one replica, an older version) keeps the node's heartbeat
// Lease fresh: the first election Lease waits until that has stopped for leaseDuration.
TEST_F(LeaderElectionTest, TheFirstLeaseWaitsForTheNodesHeartbeatToStop) {
  api_.put("/api/v1/namespaces", json::parse(R"({"metadata":{"name":"kube-node-lease"}})"));
  const std::string heartbeats = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
  auto beat = [&](int i) {
    api_.put(heartbeats, json::parse(R"({"metadata":{"name":"node","namespace":"kube-node-lease"},
        "spec":{"holderIdentity":"node","renewTime":"2026-12-07T00:00:)" +
                                     std::to_string(10 + i) + R"(.000000Z"}})"));
  };
  beat(0);
  Replica a(api_, clock_, "a", 0, /*guarded=*/true);
  a.start();
  for (int i = 1; i <= 10; ++i) {  // the old process renews every 10s for 100s
    pass(seconds(10), {&a});
    beat(i);
  }
  EXPECT_FALSE(a.elector->leading().isSet());
  EXPECT_FALSE(api_.get(kLeases, "burstlet-node").has_value());
  pass(seconds(12), {&a});
  EXPECT_FALSE(a.elector->leading().isSet()) << "the heartbeat stopped only 12s ago";
  pass(seconds(6), {&a});
  EXPECT_TRUE(a.elector->leading().isSet());
}

// A holder configured with a longer lease (before an upgrade shortened it) counts on its own.
TEST_F(LeaderElectionTest, AStandbyHonoursTheLeasesOwnDurationWhenLonger) {
  Replica a(api_, clock_, "a");
  a.start();
  pass(milliseconds(0), {&a});
  auto l = lease();
  l.at("spec").as_object()["leaseDurationSeconds"] = 60;
  api_.put(kLeases, l);  // as a holder of an older configuration writes it
  Replica b(api_, clock_, "b");
  b.start();
  // a is gone (not polled): b waits the Lease's 60s, not its own 15s.
  pass(seconds(40), {&b});
  EXPECT_FALSE(b.elector->leading().isSet());
  pass(seconds(25), {&b});
  EXPECT_TRUE(b.elector->leading().isSet());
}

TEST(LeaderIdentity, IsUniquePerStart) {
  const auto a = uniqueIdentity("burstlet-7d9f");
  const auto b = uniqueIdentity("burstlet-7d9f");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("burstlet-7d9f_", 0), 0U);
}

}  // namespace
}  // namespace burstlet::kube
