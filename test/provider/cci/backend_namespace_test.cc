// BackendNamespace: through the provider (run() creates or adopts the backend namespace), and
// on its own (waits while the namespace terminates, retries on the clock).
#include "provider/cci/backend_namespace.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "provider/cci/cci_errors.h"
#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

TEST(BackendNamespaceTest, RunCreatesOwnedNamespace) {
  CciOptions o = defaultOptions();
  o.cci = true;
  o.flavor = "general-computing";
  Harness h(o);
  ASSERT_TRUE(h.startAndSettle());
  auto ns = h.api.get(kNamespaces, kNs);
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(stringAt(*ns, {"metadata", "labels", kManagedByLabel}), kManagedByValue);
  EXPECT_EQ(stringAt(*ns, {"metadata", "labels", kClusterIdLabel}), kClusterId);
  EXPECT_EQ(stringAt(*ns, {"metadata", "annotations", kCciFlavorAnnotation}), "general-computing");
  EXPECT_EQ(countExactly(h.api, Verb::post, kNamespaces), 1);
  EXPECT_FALSE(h.runDone);
}

TEST(BackendNamespaceTest, RunWithoutCciModeWritesNoFlavor) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto ns = h.api.get(kNamespaces, kNs);
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(stringAt(*ns, {"metadata", "annotations", kCciFlavorAnnotation}), "");
  EXPECT_EQ(stringAt(*ns, {"metadata", "labels", kClusterIdLabel}), kClusterId);
}

TEST(BackendNamespaceTest, RunRefusesNamespaceItDoesNotOwn) {
  for (const auto& labels : {json::object{}, json::object{{kManagedByLabel, kManagedByValue},
                                                          {kClusterIdLabel, "another-cluster"}}}) {
    Harness h;
    h.api.put(kNamespaces, json::value{{"metadata", {{"name", kNs}, {"labels", labels}}}});
    h.start();
    ASSERT_TRUE(h.runUntil([&] { return h.runDone; }));
    ASSERT_TRUE(h.runStatus.has_value());
    ASSERT_FALSE(h.runStatus->ok());
    EXPECT_EQ(h.runStatus->error().code, ErrorCode::kForbidden);
    EXPECT_EQ(h.runStatus->error().reason, "NamespaceNotOwned");
    EXPECT_EQ(h.api.writes(), 0);
    EXPECT_FALSE(h.provider->ready());
    // The namespace is left as it was.
    EXPECT_EQ(stringAt(*h.api.get(kNamespaces, kNs), {"metadata", "labels"}),
              json::serialize(labels));
  }
}

TEST(BackendNamespaceTest, RunKeepsTryingWhileBackendUnavailable) {
  Harness h;
  // More failures than the client retries: run() itself must try again.
  h.api.failNext(Verb::get, kNamespaces, 6, 503);
  ASSERT_TRUE(h.startAndSettle(std::chrono::seconds(10)));  // its backoff sleeps on the clock
  EXPECT_GE(h.api.count(Verb::get, resources::kNamespaces.path("", kNs)), 7);
  EXPECT_TRUE(h.api.get(kNamespaces, kNs).has_value());
}

// --- BackendNamespace on its own ----------------------------------------------------------

struct NamespaceHarness {
  MemoryApi api;
  FakeClock clock;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<BackendNamespace> ns;
  Latch stop;
  std::optional<Status> result;
  asio::io_context io;  // last: destroyed first

  NamespaceHarness() {
    kube::RestOptions ro;
    ro.retry.baseDelay = std::chrono::milliseconds(1);
    ro.retry.maxDelay = std::chrono::milliseconds(5);
    ro.dialect = cciError;  // as in CCI mode
    client = std::make_unique<kube::RestClient>(io.get_executor(), api.transport(),
                                                kube::ClientConfig{}, ro);
    ns = std::make_unique<BackendNamespace>(*client, defaultOptions(), clock);
  }
  void ensure() { asio::co_spawn(io, deliver(ns->ensure(stop), &result), asio::detached); }
  bool runUntil(const std::function<bool()>& pred,
                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    return burstlet::testing::runUntil(io, pred, limit);
  }
};

json::value ownedNamespace() {
  return json::value{
      {"metadata",
       {{"name", kNs},
        {"labels", {{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, kClusterId}}}}}};
}

// `burstlet cleanup` is deleting the namespace: ensure() waits (on the clock) until it is gone,
// then makes it again.
TEST(BackendNamespaceTest, WaitsWhileTheNamespaceTerminatesThenMakesItAgain) {
  NamespaceHarness h;
  auto terminating = ownedNamespace();
  terminating.as_object()["metadata"].as_object()["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  h.api.put(kNamespaces, terminating);
  h.ensure();
  ASSERT_TRUE(h.runUntil([&] { return h.api.count(Verb::get, kNamespaces) == 1; }));
  h.clock.advance(std::chrono::milliseconds(500));
  ASSERT_TRUE(h.runUntil([&] { return h.api.count(Verb::get, kNamespaces) == 2; }));
  EXPECT_FALSE(h.result.has_value());
  EXPECT_EQ(countExactly(h.api, Verb::post, kNamespaces), 0);

  ASSERT_TRUE(h.api.remove(kNamespaces, kNs));
  h.clock.advance(std::chrono::milliseconds(500));
  ASSERT_TRUE(h.runUntil([&] { return h.result.has_value(); }));
  EXPECT_TRUE(h.result->ok()) << errorText(*h.result);
  EXPECT_EQ(countExactly(h.api, Verb::post, kNamespaces), 1);
  auto made = h.api.get(kNamespaces, kNs);
  ASSERT_TRUE(made.has_value());
  EXPECT_EQ(stringAt(*made, {"metadata", "labels", kClusterIdLabel}), kClusterId);
}

// While the backend does not answer, attempts are 200 ms apart at first, then longer, on the
// clock; stop ends the wait at once with kCancelled.
TEST(BackendNamespaceTest, RetriesOnTheClockUntilStopped) {
  NamespaceHarness h;
  h.api.failNext(Verb::get, kNamespaces, 1'000'000, 503);
  h.ensure();
  h.runUntil([] { return false; }, std::chrono::milliseconds(200));
  const int first = h.api.count(Verb::get, kNamespaces);
  ASSERT_GT(first, 0);
  h.runUntil([] { return false; }, std::chrono::milliseconds(100));
  EXPECT_EQ(h.api.count(Verb::get, kNamespaces), first);  // asleep on the clock
  h.clock.advance(std::chrono::milliseconds(200));
  ASSERT_TRUE(h.runUntil([&] { return h.api.count(Verb::get, kNamespaces) > first; }));
  EXPECT_FALSE(h.result.has_value());

  h.stop.set();
  ASSERT_TRUE(h.runUntil([&] { return h.result.has_value(); }));
  ASSERT_FALSE(h.result->ok());
  EXPECT_EQ(h.result->error().code, ErrorCode::kCancelled);
}

// CCI's refusal as it answers it: a Status with its errorCode.
std::string cciRefusal(unsigned status, const std::string& code, const std::string& message) {
  return json::serialize(json::object{{"kind", "Status"},
                                      {"apiVersion", "v1"},
                                      {"status", "Failure"},
                                      {"code", status},
                                      {"reason", status == 409 ? "AlreadyExists" : "BadRequest"},
                                      {"message", message},
                                      {"errorCode", code}});
}

// CCI keeps a new namespace Pending a while: ensure() returns only once it is Active.
TEST(BackendNamespaceTest, WaitsWhileTheNamespaceIsPending) {
  NamespaceHarness h;
  auto pending = ownedNamespace();
  pending.as_object()["status"] = json::object{{"phase", "Pending"}};
  h.api.put(kNamespaces, pending);
  h.ensure();
  ASSERT_TRUE(h.runUntil([&] { return h.api.count(Verb::get, kNamespaces) == 1; }));
  h.clock.advance(std::chrono::milliseconds(500));
  ASSERT_TRUE(h.runUntil([&] { return h.api.count(Verb::get, kNamespaces) == 2; }));
  EXPECT_FALSE(h.result.has_value());
  auto active = ownedNamespace();
  active.as_object()["status"] = json::object{{"phase", "Active"}};
  h.api.put(kNamespaces, active);
  h.clock.advance(std::chrono::milliseconds(500));
  ASSERT_TRUE(h.runUntil([&] { return h.result.has_value(); }));
  EXPECT_TRUE(h.result->ok()) << errorText(*h.result);
  EXPECT_EQ(countExactly(h.api, Verb::post, kNamespaces), 0);
}

// The account's namespace quota is used up: ensure() stops at once with one line that says so.
TEST(BackendNamespaceTest, QuotaExceededStopsWithItsReason) {
  NamespaceHarness h;
  h.api.failNextWithBody(
      Verb::post, kNamespaces, 1, 400,
      cciRefusal(400, "CCI.02.400106", "used namespaces exceeds quota, could not create any more"));
  h.ensure();
  ASSERT_TRUE(h.runUntil([&] { return h.result.has_value(); }));
  ASSERT_FALSE(h.result->ok());
  EXPECT_EQ(h.result->error().code, ErrorCode::kForbidden);
  EXPECT_EQ(h.result->error().reason, kNamespaceQuotaExceeded);
  EXPECT_NE(h.result->error().message.find("used namespaces exceeds quota"), std::string::npos)
      << h.result->error().message;
  EXPECT_EQ(countExactly(h.api, Verb::post, kNamespaces), 1);
}

// CCI says the name exists, but this account cannot see it: another account holds it.
TEST(BackendNamespaceTest, NameHeldByAnotherAccountStopsWithItsReason) {
  NamespaceHarness h;
  h.api.failNextWithBody(Verb::post, kNamespaces, 3, 409,
                         cciRefusal(409, "CCI.02.409101", "namespace name is already exist"));
  h.ensure();
  // Tries again a moment apart (on the clock) before it gives up.
  for (int post = 1; post < 3; ++post) {
    ASSERT_TRUE(h.runUntil([&] { return countExactly(h.api, Verb::post, kNamespaces) == post; }));
    h.runUntil([] { return false; }, std::chrono::milliseconds(20));
    EXPECT_FALSE(h.result.has_value());
    h.clock.advance(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(h.runUntil([&] { return h.result.has_value(); }));
  ASSERT_FALSE(h.result->ok());
  EXPECT_EQ(h.result->error().code, ErrorCode::kForbidden);
  EXPECT_EQ(h.result->error().reason, kNamespaceNameTaken);
  EXPECT_NE(h.result->error().message.find("choose another provider.cci.clusterID"),
            std::string::npos)
      << h.result->error().message;
  EXPECT_EQ(countExactly(h.api, Verb::post, kNamespaces), 3);
  EXPECT_FALSE(h.api.get(kNamespaces, kNs).has_value());
}

// Another account's namespace may be forbidden to read rather than absent: the create's conflict
// tells, as above.
TEST(BackendNamespaceTest, NameForbiddenToReadAndTakenStopsWithItsReason) {
  NamespaceHarness h;
  h.api.failNextWithBody(Verb::get, kNamespaces, 3, 403,
                         cciRefusal(403, "CCI.01.403104", "current user has no right"));
  h.api.failNextWithBody(Verb::post, kNamespaces, 3, 409,
                         cciRefusal(409, "CCI.02.409101", "namespace name is already exist"));
  h.ensure();
  for (int post = 1; post < 3; ++post) {
    ASSERT_TRUE(h.runUntil([&] { return countExactly(h.api, Verb::post, kNamespaces) == post; }));
    h.clock.advance(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(h.runUntil([&] { return h.result.has_value(); }));
  ASSERT_FALSE(h.result->ok());
  EXPECT_EQ(h.result->error().reason, kNamespaceNameTaken);
}

// Forbidden to read and to create: the account's permissions, said as they are.
TEST(BackendNamespaceTest, ForbiddenToReadAndCreateIsForbidden) {
  NamespaceHarness h;
  h.api.failNextWithBody(Verb::get, kNamespaces, 1, 403,
                         cciRefusal(403, "CCI.01.403104", "current user has no right"));
  h.api.failNextWithBody(Verb::post, kNamespaces, 1, 403,
                         cciRefusal(403, "CCI.01.403105", "insufficient operation permission"));
  h.ensure();
  ASSERT_TRUE(h.runUntil([&] { return h.result.has_value(); }));
  ASSERT_FALSE(h.result->ok());
  EXPECT_EQ(h.result->error().code, ErrorCode::kForbidden);
  EXPECT_NE(h.result->error().reason, kNamespaceNameTaken);
}

// A 409 once (our own create whose answer was lost, a lagging read) is no taken name.
TEST(BackendNamespaceTest, OneNameConflictIsTriedAgain) {
  NamespaceHarness h;
  h.api.failNextWithBody(Verb::post, kNamespaces, 1, 409,
                         cciRefusal(409, "CCI.02.409101", "namespace name is already exist"));
  h.ensure();
  ASSERT_TRUE(h.runUntil([&] { return countExactly(h.api, Verb::post, kNamespaces) == 1; }));
  h.clock.advance(std::chrono::milliseconds(500));
  ASSERT_TRUE(h.runUntil([&] { return h.result.has_value(); }));
  EXPECT_TRUE(h.result->ok()) << errorText(*h.result);
  EXPECT_TRUE(h.api.get(kNamespaces, kNs).has_value());
}

TEST(BackendNamespaceTest, CheckReadsTheNamespace) {
  NamespaceHarness h;
  auto absent = burstlet::testing::runSync(h.io, h.ns->check());
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, ErrorCode::kNotFound);
  h.api.put(kNamespaces, ownedNamespace());
  EXPECT_TRUE(burstlet::testing::runSync(h.io, h.ns->check()).ok());
}

}  // namespace
}  // namespace burstlet::provider::cci
