// The node's capacity and allocatable follow the provider's resources(): a change the provider
// reports is written within the loop (not at the next periodic write), at most once per
// resourcesInterval, and only when it differs from what was written.
#include <gtest/gtest.h>

#include "node/node_controller.h"
#include "node/node_harness.h"

namespace burstlet::node {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

provider::NodeResources quota(const std::string& cpu, const std::string& allocatableCpu) {
  provider::NodeResources r;
  r.capacity.cpu = cpu;
  r.capacity.memory = "16Gi";
  r.allocatable.cpu = allocatableCpu;
  r.allocatable.memory = "12Gi";
  return r;
}

// "capacity cpu/allocatable cpu" of a status write.
std::string cpuOf(const json::value& statusPatch) {
  const auto& s = statusPatch.at("status");
  return std::string(s.at("capacity").at("cpu").as_string()) + "/" +
         std::string(s.at("allocatable").at("cpu").as_string());
}

// Started, registered, and every write the start brings (the first ping's condition) done.
void settle(Harness& h) {
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
}

TEST(NodeResourcesTest, RegistersWithTheProvidersResources) {
  Harness h(true);
  h.provider.setResources(quota("8", "6"), false);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  std::lock_guard lock(h.api.mu);
  const auto& s = h.api.existingNode.at("status");
  EXPECT_EQ(s.at("capacity").at("cpu"), "8");
  EXPECT_EQ(s.at("capacity").at("memory"), "16Gi");
  EXPECT_EQ(s.at("capacity").at("pods"), "10000");
  EXPECT_EQ(s.at("allocatable").at("cpu"), "6");
  EXPECT_EQ(s.at("allocatable").at("memory"), "12Gi");
  EXPECT_EQ(s.at("allocatable").at("ephemeral-storage"), "20Ti");
}

// The clock does not move: the status interval (60 s) never passes, yet the change is written.
TEST(NodeResourcesTest, AReportedChangeIsWrittenAtOnce) {
  Harness h(true);
  ASSERT_NO_FATAL_FAILURE(settle(h));
  const size_t before = h.statusPatches();
  h.provider.setResources(quota("8", "6"));
  ASSERT_TRUE(h.statusWhere([](const json::value& s) { return cpuOf(s) == "8/6"; }, before));
  const auto last = h.lastStatus();
  EXPECT_EQ(last.at("status").at("capacity").at("memory"), "16Gi");
  EXPECT_EQ(last.at("status").at("allocatable").at("memory"), "12Gi");
  // Conditions ride along as on every status write.
  EXPECT_EQ(conditionOf(last, "Ready"), "True/KubeletReady");
}

TEST(NodeResourcesTest, AReportNothingChangedWritesNothing) {
  Harness h(true);
  ASSERT_NO_FATAL_FAILURE(settle(h));
  const size_t before = h.statusPatches();
  h.provider.setResources(h.provider.resources());  // the same again
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(h.statusPatches(), before);
}

// A burst of changes (allocatable moving with other nodes' pods) is one write per interval, of
// the latest value.
TEST(NodeResourcesTest, ChangesAreWrittenAtMostOncePerInterval) {
  Harness h(true);
  ASSERT_NO_FATAL_FAILURE(settle(h));
  h.provider.setResources(quota("8", "6"));
  ASSERT_TRUE(h.statusWhere([](const json::value& s) { return cpuOf(s) == "8/6"; }));
  const size_t first = h.statusPatches();
  h.provider.setResources(quota("8", "5"));
  h.provider.setResources(quota("8", "4"));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(h.statusPatches(), first);
  h.fakeClock.advance(std::chrono::milliseconds(4'900));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(h.statusPatches(), first);
  h.fakeClock.advance(std::chrono::milliseconds(100));
  ASSERT_TRUE(h.statusWhere([](const json::value& s) { return cpuOf(s) == "8/4"; }, first));
  EXPECT_EQ(h.statusPatches(), first + 1);
  std::lock_guard lock(h.api.mu);
  for (const auto& s : h.api.statusPatches) {
    EXPECT_NE(cpuOf(s), "8/5");
  }
}

TEST(NodeResourcesTest, TheIntervalIsConfigurable) {
  Harness h(true, [](NodeOptions& o) { o.resourcesInterval = std::chrono::seconds(30); });
  ASSERT_NO_FATAL_FAILURE(settle(h));
  h.provider.setResources(quota("8", "6"));
  ASSERT_TRUE(h.statusWhere([](const json::value& s) { return cpuOf(s) == "8/6"; }));
  const size_t first = h.statusPatches();
  h.provider.setResources(quota("8", "5"));
  h.fakeClock.advance(std::chrono::seconds(10));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(h.statusPatches(), first);
  h.fakeClock.advance(std::chrono::seconds(20));
  EXPECT_TRUE(h.statusWhere([](const json::value& s) { return cpuOf(s) == "8/5"; }, first));
}

// A change the provider did not report still reaches the node with the periodic status write.
TEST(NodeResourcesTest, AnUnreportedChangeShowsAtTheNextPeriodicWrite) {
  Harness h(true);
  ASSERT_NO_FATAL_FAILURE(settle(h));
  const size_t before = h.statusPatches();
  h.provider.setResources(quota("8", "6"), false);
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(h.statusPatches(), before);
  h.fakeClock.advance(std::chrono::seconds(60));
  EXPECT_TRUE(h.statusWhere([](const json::value& s) { return cpuOf(s) == "8/6"; }, before));
}

// The provider's callback is unset with the node, so a provider that outlives it never calls
// into a destroyed controller.
TEST(NodeResourcesTest, TheCallbackGoesWithTheNode) {
  PingProvider provider;
  {
    boost::asio::io_context io;
    FakeClock clock;
    auto t = std::make_unique<FakeTransport>(
        [](const kube::HttpRequest&) { return jsonResponse(404, status(404, "NotFound")); });
    kube::RestClient client(io.get_executor(), std::move(t), kube::ClientConfig{},
                            kube::RestOptions{});
    NodeController node(client, provider, NodeOptions{}, clock);
  }
  provider.setResources(quota("8", "6"));  // ASan would catch a call into the gone controller
  EXPECT_EQ(provider.resources().capacity.cpu, "8");
}

}  // namespace
}  // namespace burstlet::node
