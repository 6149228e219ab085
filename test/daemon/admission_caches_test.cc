// AdmissionCaches: owners answered from informer caches (trimmed to what the policy reads) with
// one fallback read on a miss, BurstProfiles followed only once the API server serves them,
// the profile ledger fed and marked synced, and everything stopped.
#include "daemon/admission_caches.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "mocks/fake_clock.h"
#include "mocks/fake_owner_source.h"
#include "mocks/memory_api.h"
#include "mocks/run_sync.h"

namespace burstlet::daemon {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

const kube::ResourceRef kReplicaSets{"apps", "v1", "replicasets", true, "ReplicaSet"};
// The informers list and watch across namespaces; MemoryApi keeps such a collection apart from
// the namespaced ones, so the objects are put where the informers look.
const std::string kReplicaSetPath = "/apis/apps/v1/replicasets";
const std::string kProfilePath = "/apis/burstlet.io/v1alpha1/burstprofiles";

struct Fixture {
  asio::io_context io;
  testing::FakeClock clock;
  testing::MemoryApi api;
  testing::FakeOwnerSource fallback;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<AdmissionCaches> caches;

  Fixture() {
    client = std::make_unique<kube::RestClient>(io.get_executor(), api.transport(),
                                                kube::ClientConfig{}, kube::RestOptions{});
    api.put(kReplicaSetPath, json::parse(R"({"metadata":{"name":"web-1","namespace":"app",
              "labels":{"virtual-kubelet.io/burst-to-cci":"auto"},
              "ownerReferences":[{"kind":"Deployment","name":"web","controller":true}]},
              "spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"big"}]}}}})"));
    api.put("/api/v1/nodes", json::parse(R"({"metadata":{"name":"vk",
              "labels":{"type":"virtual-kubelet"}}})"));
    caches =
        std::make_unique<AdmissionCaches>(*client, fallback, admission::PlacementOptions{}, clock);
  }
  ~Fixture() {
    bool stopped = false;
    asio::co_spawn(io, caches->stop(), [&](const std::exception_ptr&) { stopped = true; });
    testing::runUntil(io, [&] { return stopped; });
  }

  Result<json::value> read(const kube::ResourceRef& r, std::string ns, std::string name) {
    std::optional<Result<json::value>> out;
    auto work = [&]() -> asio::awaitable<void> {
      out.emplace(co_await caches->owners().read(r, ns, name));
    };
    asio::co_spawn(io, work(), asio::detached);
    testing::runUntil(io, [&] { return out.has_value(); });
    return std::move(*out);
  }
  json::value profile(std::string_view name) {
    return json::object{{"metadata", json::object{{"name", name}, {"namespace", "app"}}},
                        {"spec", json::object{{"strategy", "enforce"}}}};
  }
};

TEST(AdmissionCachesTest, OwnersComeFromTheCacheTrimmedAndMissesReadOnce) {
  Fixture f;
  f.caches->start(f.io);
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.caches->profileSources().ledger->synced(); }));
  // The owner informers may sync after the ledger's: until then a read misses and goes to
  // the fallback (which has nothing here).
  Result<json::value> rs = Error::make(ErrorCode::kNotFound, "NotFound", "not read");
  ASSERT_TRUE(testing::runUntil(f.io, [&] {
    rs = f.read(kReplicaSets, "app", "web-1");
    return f.caches->owners().hits() >= 1;
  }));
  ASSERT_TRUE(rs.ok()) << rs.error().toString();
  EXPECT_GE(f.caches->owners().hits(), 1U);
  EXPECT_EQ(kube::stringAt(*rs, {"metadata", "labels", "virtual-kubelet.io/burst-to-cci"}), "auto");
  ASSERT_NE(kube::at(*rs, {"metadata", "ownerReferences"}), nullptr);
  EXPECT_EQ(kube::at(*rs, {"spec"}), nullptr);  // only what the policy reads is kept
  EXPECT_EQ(f.api.count(kube::Verb::get, "/apis/apps/v1/namespaces/app/replicasets/web-1"), 0);

  const int before = f.fallback.reads();
  auto missing = f.read(kReplicaSets, "app", "created-a-moment-ago");
  EXPECT_FALSE(missing.ok());  // the fallback does not have it either
  EXPECT_EQ(f.fallback.reads(), before + 1);
  EXPECT_EQ(f.caches->owners().misses(), static_cast<uint64_t>(f.fallback.reads()));
}

TEST(AdmissionCachesTest, ProfilesAreFollowedOnceTheirApiIsServed) {
  Fixture f;
  f.api.put(kProfilePath, f.profile("early"));
  // The CRD is not installed yet: its group-version is not found.
  f.api.failNext(kube::Verb::get, "/apis/burstlet.io/v1alpha1", 1, 404, "NotFound");
  f.caches->start(f.io);
  ASSERT_TRUE(testing::runUntil(
      f.io, [&] { return f.api.count(kube::Verb::get, "/apis/burstlet.io/v1alpha1") == 1; }));
  testing::runUntil(
      f.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_TRUE(f.caches->profileSources().index->inNamespace("app").empty());
  EXPECT_EQ(f.api.count(kube::Verb::get, "/apis/burstlet.io/v1alpha1/burstprofiles"), 0);

  // The CRD installed: seen at the next check, a minute later.
  f.clock.advance(std::chrono::minutes(1));
  ASSERT_TRUE(testing::runUntil(
      f.io, [&] { return f.caches->profileSources().index->inNamespace("app").size() == 1; }));
  f.api.put(kProfilePath, f.profile("later"));
  ASSERT_TRUE(testing::runUntil(
      f.io, [&] { return f.caches->profileSources().index->find("app/later").has_value(); }));
  f.api.remove(kProfilePath, "early");
  ASSERT_TRUE(testing::runUntil(
      f.io, [&] { return !f.caches->profileSources().index->find("app/early").has_value(); }));
}

TEST(AdmissionCachesTest, TheLedgerCountsThePodsProfilesPlaced) {
  Fixture f;
  f.api.put("/api/v1/pods", json::parse(R"({"metadata":{"name":"p1","namespace":"app",
              "labels":{"burstlet.io/profile":"web","burstlet.io/burst-slot":"burst"}},
              "spec":{"nodeName":"vk","containers":[{"name":"c"}]},
              "status":{"phase":"Running"}})"));
  f.api.put("/api/v1/pods", json::parse(R"({"metadata":{"name":"unplaced","namespace":"app"},
              "spec":{"nodeName":"vk"}})"));
  f.caches->start(f.io);
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.caches->profileSources().ledger->synced(); }));
  const auto c = f.caches->profileSources().ledger->counts("app/web");
  EXPECT_EQ(c.burst, 1);
  EXPECT_EQ(c.local, 0);
  EXPECT_EQ(f.caches->profileSources().ledger->profileKeys(), std::vector<std::string>{"app/web"});
}

}  // namespace
}  // namespace burstlet::daemon
