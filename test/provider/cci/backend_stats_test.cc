// The node's pod stats from the backend's PodMetrics: matched by backend name, memory as given,
// CPU integrated into a cumulative counter that grows with the latest rate between samples.
#include "provider/cci/backend_stats.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "mocks/fake_clock.h"
#include "mocks/memory_api.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

json::value sourcePod() {
  return json::parse(R"({"metadata":{"namespace":"shop","name":"web-0","uid":"u0"},
      "status":{"startTime":"2026-12-06T09:00:00Z","containerStatuses":[
        {"name":"app","state":{"running":{"startedAt":"2026-12-06T09:00:05Z"}}}]}})");
}

json::value metrics(const std::string& timestamp, const std::string& cpu) {
  return json::object{
      {"items",
       json::array{json::object{
           {"metadata", json::object{{"name", backendName("shop", "web-0")}}},
           {"timestamp", timestamp},
           {"window", "10s"},
           {"containers",
            json::array{json::object{
                {"name", "app"}, {"usage", json::object{{"cpu", cpu}, {"memory", "64Mi"}}}}}}}}}};
}

TEST(BackendStats, CumulativeCpuFollowsTheLatestRate) {
  boost::asio::io_context io;
  testing::MemoryApi api;
  kube::RestClient client(io.get_executor(), api.transport(), kube::ClientConfig{},
                          kube::RestOptions{});
  testing::FakeClock clock(*parseRfc3339("2026-12-06T10:00:00Z"));
  BackendStats stats(client, "cce-burst-x", clock);
  const std::vector<json::value> pods{sourcePod()};

  auto first = stats.summarize(pods, metrics("2026-12-06T10:00:00Z", "250m"));
  ASSERT_EQ(first.at("pods").as_array().size(), 1u);
  const auto& pod = first.at("pods").at(0);
  EXPECT_EQ(pod.at("podRef").at("uid").as_string(), "u0");
  EXPECT_EQ(pod.at("startTime").as_string(), "2026-12-06T09:00:00Z");
  const auto& c = pod.at("containers").at(0);
  EXPECT_EQ(c.at("startTime").as_string(), "2026-12-06T09:00:05Z");
  EXPECT_EQ(c.at("memory").at("workingSetBytes").to_number<uint64_t>(), 64u * 1024 * 1024);
  EXPECT_EQ(c.at("cpu").at("usageNanoCores").to_number<uint64_t>(), 250'000'000u);
  EXPECT_EQ(c.at("cpu").at("usageCoreNanoSeconds").to_number<uint64_t>(), 0u);

  // 10 s later, the same sample: the counter grew by 0.25 cores x 10 s.
  clock.advance(10s);
  auto second = stats.summarize(pods, metrics("2026-12-06T10:00:00Z", "250m"));
  EXPECT_EQ(second.at("pods")
                .at(0)
                .at("containers")
                .at(0)
                .at("cpu")
                .at("usageCoreNanoSeconds")
                .to_number<uint64_t>(),
            2'500'000'000u);
  // A new sample at 10:00:15 with 1 core; scraped at 10:00:20: 0.25 x 15 s + 1 x 5 s.
  clock.advance(10s);
  auto third = stats.summarize(pods, metrics("2026-12-06T10:00:15Z", "1"));
  EXPECT_EQ(third.at("pods")
                .at(0)
                .at("containers")
                .at(0)
                .at("cpu")
                .at("usageCoreNanoSeconds")
                .to_number<uint64_t>(),
            8'750'000'000u);
  EXPECT_EQ(third.at("pods").at(0).at("cpu").at("usageNanoCores").to_number<uint64_t>(),
            1'000'000'000u);
}

TEST(BackendStats, PodsWithoutMetricsAreLeftOut) {
  boost::asio::io_context io;
  testing::MemoryApi api;
  kube::RestClient client(io.get_executor(), api.transport(), kube::ClientConfig{},
                          kube::RestOptions{});
  BackendStats stats(client, "cce-burst-x");
  auto other = json::parse(R"({"metadata":{"namespace":"shop","name":"web-1","uid":"u1"}})");
  auto doc = stats.summarize({other}, metrics("2026-12-06T10:00:00Z", "250m"));
  EXPECT_TRUE(doc.at("pods").as_array().empty());
}

}  // namespace
}  // namespace burstlet::provider::cci
