// CciProvider, the composition: where run() is (signals), how stop() ends it, and ping().
#include "provider/cci/cci_provider.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "common/base64.h"
#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

TEST(CciProviderTest, SignalsStartedReadyAndStopped) {
  Harness h;
  const Signals& s = h.provider->signals();
  EXPECT_FALSE(s.started.isSet());
  ASSERT_TRUE(h.startAndSettle());
  EXPECT_TRUE(s.started.isSet());
  EXPECT_TRUE(s.ready.isSet());
  EXPECT_FALSE(s.stopped.isSet());
  EXPECT_TRUE(h.provider->ready());
  EXPECT_EQ(h.provider->name(), "cci");
  EXPECT_EQ(h.provider->followedKinds(), (std::vector<std::string>{"ConfigMap", "Secret"}));

  h.provider->stop();
  ASSERT_TRUE(h.runUntil([&] { return h.runDone; }));
  ASSERT_TRUE(h.runStatus.has_value());
  EXPECT_TRUE(h.runStatus->ok()) << errorText(*h.runStatus);
  EXPECT_TRUE(s.stopped.isSet());
  EXPECT_FALSE(h.provider->ready());
  EXPECT_EQ(h.api.openWatches(), 0);
}

// The backend never answers: run() waits between attempts on the clock, and stop() ends that
// wait at once, without an error.
TEST(CciProviderTest, StopWhileTheBackendDoesNotAnswerIsNoFailure) {
  Harness h;
  h.api.failNext(Verb::get, kNamespaces, 1'000'000, 503);
  h.start();
  h.runFor(std::chrono::milliseconds(200));
  ASSERT_FALSE(h.runDone);
  h.provider->stop();
  ASSERT_TRUE(h.runUntil([&] { return h.runDone; }, std::chrono::seconds(2)));
  ASSERT_TRUE(h.runStatus.has_value());
  EXPECT_TRUE(h.runStatus->ok()) << errorText(*h.runStatus);
  EXPECT_FALSE(h.provider->signals().ready.isSet());
  EXPECT_TRUE(h.provider->signals().stopped.isSet());
}

TEST(CciProviderTest, PingAnswersOnceReady) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  const auto s = h.call(h.provider->ping());
  EXPECT_TRUE(s.ok()) << errorText(s);
}

// A ping at start waits for the provider to get ready instead of failing at once.
TEST(CciProviderTest, PingWaitsForReadiness) {
  Harness h;
  std::optional<Status> answer;
  asio::co_spawn(h.io, deliver(h.provider->ping(), &answer), asio::detached);
  h.runFor(std::chrono::milliseconds(50));
  ASSERT_FALSE(answer.has_value());
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.runUntil([&] { return answer.has_value(); }));
  EXPECT_TRUE(answer->ok()) << errorText(*answer);
}

// Not ready within 5 s on the clock: the backend's answer is given (here: no namespace).
TEST(CciProviderTest, PingGivesUpWaitingAfterFiveSeconds) {
  Harness h;
  std::optional<Status> answer;
  asio::co_spawn(h.io, deliver(h.provider->ping(), &answer), asio::detached);
  h.runFor(std::chrono::milliseconds(50));
  h.clock.advance(std::chrono::milliseconds(4'900));
  h.runFor(std::chrono::milliseconds(50));
  ASSERT_FALSE(answer.has_value());
  h.clock.advance(std::chrono::milliseconds(100));
  ASSERT_TRUE(h.runUntil([&] { return answer.has_value(); }));
  ASSERT_FALSE(answer->ok());
  EXPECT_EQ(answer->error().code, ErrorCode::kNotFound);
}

// The network proxy's credentials: a Secret of the node's own, written whole each time, which the
// copy sweep never takes for an unused copy.
TEST(CciProviderTest, NodeSecretIsWrittenWholeAndNeverSwept) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  const std::string name = h.provider->nodeSecretName("netproxy");
  EXPECT_EQ(name, nodeSecretName(kNode, "netproxy"));
  const std::string secrets = resources::kSecrets.path(kNs);
  ASSERT_TRUE(
      h.call(h.provider->putNodeSecret("netproxy", {{"token", "t1"}, {"server", "s"}})).ok());
  auto got = h.api.get(secrets, name);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->at("data").at("token").as_string(), base64Encode("t1"));
  EXPECT_EQ(got->at("metadata").at("labels").at(kNodeSecretLabel).as_string(), kNode);
  EXPECT_EQ(got->at("metadata").at("labels").as_object().if_contains(kNodeLabel), nullptr);
  ASSERT_TRUE(h.call(h.provider->putNodeSecret("netproxy", {{"token", "t2"}})).ok());
  got = h.api.get(secrets, name);
  EXPECT_EQ(got->at("data").at("token").as_string(), base64Encode("t2"));
  EXPECT_EQ(got->at("data").as_object().if_contains("server"), nullptr);  // replaced whole
  ASSERT_TRUE(h.sweepPass(1));
  ASSERT_TRUE(h.sweepPass(2));
  ASSERT_TRUE(h.sweepPass(3));
  EXPECT_TRUE(h.api.get(secrets, name).has_value());
}

// A standby replica (standBy): the backend's pods and copies are listed and watched, but
// nothing is written — no Network followed, no events mirrored, no sweep — and the provider is
// not ready until it leads.
TEST(CciProviderTest, AStandbyWatchesButWritesNothingUntilItLeads) {
  Harness h(cciModeOptions());
  putCciBackend(h.api);
  Latch leading;
  ASSERT_TRUE(h.provider->standBy(leading));
  h.start();
  // Pods, three kinds of copies and quotas; not the events the mirror would write from.
  ASSERT_TRUE(h.runUntil([&] { return h.api.openWatches() == 5 && h.api.watchesIdle(); }));
  h.clock.advance(std::chrono::minutes(2));  // sweeps would have come by now
  h.runFor(std::chrono::milliseconds(100));
  EXPECT_FALSE(h.provider->ready());
  int writes = 0;
  for (const auto& r : h.api.requests()) {
    writes += r.method != Verb::get ? 1 : 0;  // not even the node's marker
  }
  EXPECT_EQ(writes, 0);
  EXPECT_EQ(h.provider->notReadyReason(), "") << "a warm standby could take over";
  EXPECT_EQ(h.api.count(Verb::get, kNetworks.path(kNs)), 0);
  EXPECT_EQ(h.api.count(Verb::get, resources::kPersistentVolumes.path("")), 0);  // no sweep
  leading.set();
  ASSERT_TRUE(h.runUntil([&] { return h.provider->ready(); }));
  EXPECT_TRUE(h.settle());
  EXPECT_GT(h.api.count(Verb::get, kNetworks.path(kNs)), 0);
  int markers = 0;
  for (const auto& r : h.api.requests()) {
    markers += r.method == Verb::post && isNodeMarker(r) ? 1 : 0;
  }
  EXPECT_EQ(markers, 1) << "the leader marks the namespace as its node's";
}

// A standby whose backend namespace does not exist yet (the first install, or it was removed)
// waits with empty caches; the namespace is made only once it leads.
TEST(CciProviderTest, AStandbyMakesNoNamespace) {
  Harness h;
  Latch leading;
  ASSERT_TRUE(h.provider->standBy(leading));
  h.start();
  h.runFor(std::chrono::milliseconds(200));
  h.clock.advance(std::chrono::minutes(1));
  h.runFor(std::chrono::milliseconds(100));
  EXPECT_EQ(h.api.count(Verb::post, kNamespaces), 0);
  EXPECT_FALSE(h.provider->ready());
  leading.set();
  ASSERT_TRUE(h.runUntil([&] { return h.provider->ready(); }));
  EXPECT_EQ(countExactly(h.api, Verb::post, kNamespaces), 1);
}

}  // namespace
}  // namespace burstlet::provider::cci
