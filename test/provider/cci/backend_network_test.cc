// BackendNetwork, through the provider in CCI mode: the Network is made after the namespace, the
// provider is ready (and takes pods) only once it is Active, a Failed or slow one is reported on
// the node, an existing one of ours is adopted and a foreign one refused.
#include "provider/cci/backend_network.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

inline const std::string kNetworkPath = kNetworks.path(kNs);
constexpr const char* kNetworkName = "burstlet-network";

CciOptions networkOptions(std::chrono::milliseconds activeTimeout = std::chrono::minutes(10)) {
  CciOptions o = defaultOptions();
  o.cci = true;
  NetworkSettings n = exampleNetwork();
  n.activeTimeout = activeTimeout;
  o.network = n;
  return o;
}

// The backend's controller setting the Network's state, as CCI does.
void setState(Harness& h, const std::string& state, const std::string& message = "") {
  auto n = h.api.get(kNetworkPath, kNetworkName);
  ASSERT_TRUE(n.has_value());
  json::object status{{"state", state}};
  if (!message.empty()) {
    status["message"] = message;
  }
  n->as_object()["status"] = status;
  h.api.put(kNetworkPath, *n);
}

// Node events recorded on the cluster, as "<type> <reason>: <message>".
std::vector<std::string> nodeEvents(const Harness& h) {
  std::vector<std::string> out;
  const std::string events = resources::kEvents.path("default");
  for (const auto& name : h.cluster.names(events)) {
    const auto e = h.cluster.get(events, name);
    if (stringAt(*e, {"involvedObject", "kind"}) == "Node" &&
        stringAt(*e, {"involvedObject", "name"}) == kNode) {
      out.push_back(stringAt(*e, {"type"}) + " " + stringAt(*e, {"reason"}) + ": " +
                    stringAt(*e, {"message"}));
    }
  }
  return out;
}

bool hasEvent(const Harness& h, const std::string& prefix) {
  for (const auto& e : nodeEvents(h)) {
    if (e.rfind(prefix, 0) == 0) {
      return true;
    }
  }
  return false;
}

struct NetworkHarness : Harness {
  explicit NetworkHarness(const CciOptions& o = networkOptions()) : Harness(o) {
    cluster.put(kNamespaces, json::value{{"metadata", {{"name", "default"}}}});
  }
  // Started; the Network created and the informers listed (but not Active).
  ::testing::AssertionResult startUntilCreated() {
    start();
    if (!runUntil([this] { return api.get(kNetworkPath, kNetworkName).has_value(); })) {
      return ::testing::AssertionFailure() << "no Network created";
    }
    return ::testing::AssertionSuccess();
  }
  // Lets the provider read the Network again (its polls sleep on the clock).
  bool advanceUntil(const std::function<bool()>& pred) {
    for (int i = 0; i < 50; ++i) {
      if (runUntil(pred, std::chrono::milliseconds(20))) {
        return true;
      }
      clock.advance(std::chrono::seconds(1));
    }
    return pred();
  }
  // ping() first gives a starting provider up to 5 s (on the clock) to get ready.
  Status ping() {
    std::optional<Status> out;
    asio::co_spawn(io, deliver(provider->ping(), &out), asio::detached);
    advanceUntil([&] { return out.has_value(); });
    return out ? *out : Status(Error::make(ErrorCode::kTimeout, "Test", "no answer"));
  }
};

TEST(BackendNetworkTest, CreatedAfterNamespaceAndReadyOnlyOnceActive) {
  NetworkHarness h;
  ASSERT_TRUE(h.startUntilCreated());
  const auto n = *h.api.get(kNetworkPath, kNetworkName);
  EXPECT_EQ(stringAt(n, {"metadata", "labels", kManagedByLabel}), kManagedByValue);
  EXPECT_EQ(stringAt(n, {"metadata", "labels", kClusterIdLabel}), kClusterId);
  EXPECT_EQ(stringAt(n, {"spec", "networkType"}), "underlay_neutron");
  EXPECT_EQ(stringAt(n, {"spec", "subnetID"}), "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  EXPECT_LT(firstRequest(h.api, Verb::post, kNamespaces),
            firstRequest(h.api, Verb::post, kNetworkPath));
  // Not Active: not ready, and ping names the Network.
  h.runFor(std::chrono::milliseconds(50));
  EXPECT_FALSE(h.provider->ready());
  const Status p = h.ping();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(p.error().reason, kBackendNetworkNotActive);
  EXPECT_NE(p.error().message.find("backend Network burstlet-network in namespace cce-burst-c1"),
            std::string::npos)
      << p.error().message;
  EXPECT_NE(h.provider->notReadyReason().find("burstlet-network"), std::string::npos);

  setState(h, "Initializing");
  ASSERT_TRUE(h.advanceUntil([&] {
    return h.provider->notReadyReason().find("is Initializing") != std::string::npos;
  })) << h.provider->notReadyReason();
  setState(h, "Active");
  ASSERT_TRUE(h.advanceUntil([&] { return h.provider->ready(); }));
  EXPECT_EQ(h.provider->notReadyReason(), "");
  EXPECT_TRUE(h.ping().ok());
  EXPECT_TRUE(h.runUntil([&] { return hasEvent(h, "Normal BackendNetworkActive"); }));
  EXPECT_FALSE(hasEvent(h, "Warning"));
  EXPECT_EQ(h.api.count(Verb::post, kNetworkPath), 1);
  // Pods go to the backend now.
  EXPECT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
}

TEST(BackendNetworkTest, FailedNetworkIsReportedOnceAndPodsWait) {
  NetworkHarness h;
  ASSERT_TRUE(h.startUntilCreated());
  setState(h, "Failed", "subnet 0a1b2c3d has no free address");
  ASSERT_TRUE(h.advanceUntil([&] { return hasEvent(h, "Warning BackendNetworkNotActive"); }));
  const auto events = nodeEvents(h);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_NE(events[0].find("is Failed: subnet 0a1b2c3d has no free address"), std::string::npos)
      << events[0];
  const Status p = h.ping();
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("is Failed: subnet 0a1b2c3d"), std::string::npos);
  EXPECT_FALSE(h.provider->ready());
  // Still Failed a while later: no second Warning, no second Network.
  for (int i = 0; i < 40; ++i) {
    h.clock.advance(std::chrono::seconds(1));
    h.runFor(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(nodeEvents(h).size(), 1U);
  EXPECT_EQ(h.api.count(Verb::post, kNetworkPath), 1);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
}

TEST(BackendNetworkTest, SlowNetworkIsReportedAfterActiveTimeoutThenRecovers) {
  NetworkHarness h(networkOptions(std::chrono::seconds(5)));
  ASSERT_TRUE(h.startUntilCreated());
  setState(h, "Pending");
  ASSERT_TRUE(h.advanceUntil([&] { return hasEvent(h, "Warning BackendNetworkNotActive"); }));
  EXPECT_NE(h.provider->notReadyReason().find("is Pending (not Active after 5s)"),
            std::string::npos)
      << h.provider->notReadyReason();
  setState(h, "Active");
  ASSERT_TRUE(h.advanceUntil([&] { return h.provider->ready(); }));
  EXPECT_TRUE(h.runUntil([&] { return hasEvent(h, "Normal BackendNetworkActive"); }));
}

TEST(BackendNetworkTest, ExistingNetworkOfOursIsAdopted) {
  NetworkHarness h;
  putOwnedNamespace(h.api);
  json::value n = networkObject(
      *networkOptions().network, kNs,
      json::object{{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, kClusterId}});
  n.as_object()["status"] = json::object{{"state", "Active"}};
  const std::string uid = stringAt(h.api.put(kNetworkPath, n), {"metadata", "uid"});
  ASSERT_TRUE(h.startAndSettle());
  EXPECT_EQ(h.api.count(Verb::post, kNetworkPath), 0);
  EXPECT_EQ(stringAt(*h.api.get(kNetworkPath, kNetworkName), {"metadata", "uid"}), uid);
}

TEST(BackendNetworkTest, ForeignNetworkIsRefused) {
  NetworkHarness h;
  putOwnedNamespace(h.api);
  json::value n = networkObject(*networkOptions().network, kNs, json::object{{"team", "other"}});
  n.as_object()["status"] = json::object{{"state", "Active"}};
  h.api.put(kNetworkPath, n);
  h.start();
  ASSERT_TRUE(h.runUntil([&] { return h.runDone; }));
  ASSERT_TRUE(h.runStatus.has_value());
  ASSERT_FALSE(h.runStatus->ok());
  EXPECT_EQ(h.runStatus->error().code, ErrorCode::kForbidden);
  EXPECT_EQ(h.runStatus->error().reason, kNetworkNotOwned);
  EXPECT_FALSE(h.provider->ready());
  EXPECT_EQ(h.api.count(Verb::post, kNetworkPath), 0);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
}

TEST(BackendNetworkTest, DeletedNetworkIsMadeAgainAndPodsWaitMeanwhile) {
  NetworkHarness h;
  ASSERT_TRUE(h.startUntilCreated());
  setState(h, "Active");
  ASSERT_TRUE(h.advanceUntil([&] { return h.provider->ready(); }));
  ASSERT_TRUE(h.api.remove(kNetworkPath, kNetworkName));
  ASSERT_TRUE(h.advanceUntil([&] { return h.api.count(Verb::post, kNetworkPath) == 2; }));
  // A pod created while the new Network is not Active waits (retryable), nothing is sent.
  const Status s = h.createPod(clusterPod("web", "u1"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().reason, kBackendNetworkNotActive);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
  setState(h, "Active");
  ASSERT_TRUE(h.advanceUntil([&] { return h.provider->notReadyReason().empty(); }));
  EXPECT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
}

TEST(BackendNetworkTest, BackendRefusalRightAfterActiveIsTriedAgainOwnRefusalIsNot) {
  NetworkHarness h;
  ASSERT_TRUE(h.startUntilCreated());
  setState(h, "Active");
  ASSERT_TRUE(h.advanceUntil([&] { return h.provider->ready(); }));
  // The backend refuses at once after Active: retryable, naming the Network.
  h.api.failNext(Verb::post, kPods, 1, 422, "Invalid");
  Status s = h.createPod(clusterPod("web", "u1"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().reason, kBackendNetworkNotActive);
  EXPECT_TRUE(h.createPod(clusterPod("web", "u1")).ok());
  // burstlet's own refusal at the same moment stays final, with its rule.
  auto host = clusterPod("host", "u2");
  host.as_object()["spec"].as_object()["hostNetwork"] = true;
  s = h.createPod(host);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().reason, "HostNetwork");
  // Later, a backend refusal is final too.
  h.clock.advance(std::chrono::seconds(11));
  h.api.failNext(Verb::post, kPods, 1, 422, "Invalid");
  s = h.createPod(clusterPod("late", "u3"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
}

TEST(BackendNetworkTest, RefusedCreateIsShownAndTriedAgain) {
  NetworkHarness h;
  h.api.failNext(Verb::post, kNetworkPath, 1, 403, "Forbidden");
  h.start();
  ASSERT_TRUE(h.runUntil([&] {
    return h.provider->notReadyReason().find("creating it failed") != std::string::npos;
  })) << h.provider->notReadyReason();
  EXPECT_FALSE(h.runDone);
  ASSERT_TRUE(h.advanceUntil([&] { return h.api.get(kNetworkPath, kNetworkName).has_value(); }));
}

TEST(BackendNetworkTest, PlainModeMakesNoNetwork) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  EXPECT_EQ(h.api.count(Verb::get, kNetworkPath), 0);
  EXPECT_EQ(h.api.count(Verb::post, kNetworkPath), 0);
  EXPECT_EQ(h.provider->notReadyReason(), "");
}

}  // namespace
}  // namespace burstlet::provider::cci
