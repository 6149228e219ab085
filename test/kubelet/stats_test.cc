// The summary completed with a node section, and the resource metrics metrics-server reads.
#include "kubelet/stats.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::kubelet {
namespace {

const char* kSummary = R"({"pods":[
  {"podRef":{"name":"web-0","namespace":"shop","uid":"u0"},
   "cpu":{"time":"2026-12-06T10:00:00Z","usageNanoCores":250000000,"usageCoreNanoSeconds":5000000000},
   "memory":{"time":"2026-12-06T10:00:00Z","workingSetBytes":1048576},
   "containers":[{"name":"app","startTime":"2026-12-06T09:00:00Z",
     "cpu":{"time":"2026-12-06T10:00:00Z","usageNanoCores":250000000,"usageCoreNanoSeconds":5000000000},
     "memory":{"time":"2026-12-06T10:00:00Z","workingSetBytes":1048576}}]},
  {"podRef":{"name":"web-1","namespace":"shop","uid":"u1"},
   "cpu":{"time":"2026-12-06T10:00:01Z","usageNanoCores":750000000,"usageCoreNanoSeconds":1000000000},
   "memory":{"time":"2026-12-06T10:00:01Z","workingSetBytes":3145728},
   "containers":[{"name":"app","startTime":"2026-12-06T09:30:00Z",
     "cpu":{"time":"2026-12-06T10:00:01Z","usageCoreNanoSeconds":1000000000}}]}]})";

TEST(CompleteSummary, SumsThePodsIntoTheNode) {
  auto doc = completeSummary(boost::json::parse(kSummary), "vk-1",
                             std::chrono::system_clock::time_point(std::chrono::seconds(0)));
  const auto& node = doc.at("node");
  EXPECT_EQ(node.at("nodeName").as_string(), "vk-1");
  EXPECT_EQ(node.at("startTime").as_string(), "1970-01-01T00:00:00Z");
  EXPECT_EQ(node.at("cpu").at("usageNanoCores").to_number<uint64_t>(), 1000000000u);
  EXPECT_EQ(node.at("cpu").at("usageCoreNanoSeconds").to_number<uint64_t>(), 6000000000u);
  EXPECT_EQ(node.at("cpu").at("time").as_string(), "2026-12-06T10:00:01Z");
  EXPECT_EQ(node.at("memory").at("workingSetBytes").to_number<uint64_t>(), 4194304u);
  EXPECT_EQ(doc.at("pods").as_array().size(), 2u);
}

TEST(CompleteSummary, EmptyProviderDocumentStillHasANode) {
  auto doc = completeSummary(boost::json::value(), "vk-1", std::chrono::system_clock::now());
  EXPECT_TRUE(doc.at("pods").as_array().empty());
  EXPECT_EQ(doc.at("node").at("nodeName").as_string(), "vk-1");
  EXPECT_FALSE(doc.at("node").as_object().contains("cpu"));
}

TEST(RenderResourceMetrics, SeriesMetricsServerReads) {
  auto doc =
      completeSummary(boost::json::parse(kSummary), "vk-1", std::chrono::system_clock::now());
  const auto text = renderResourceMetrics(doc);
  EXPECT_NE(text.find("# TYPE container_cpu_usage_seconds_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("container_cpu_usage_seconds_total{container=\"app\",namespace=\"shop\","
                      "pod=\"web-0\"} 5 1796551200000\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("container_memory_working_set_bytes{container=\"app\",namespace=\"shop\","
                      "pod=\"web-0\"} 1048576 1796551200000\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("container_start_time_seconds{container=\"app\",namespace=\"shop\","
                      "pod=\"web-1\"} 1796549400\n"),
            std::string::npos)
      << text;
  // web-1's container has no memory figure: it is left out, never reported as 0.
  EXPECT_EQ(text.find("container_memory_working_set_bytes{container=\"app\",namespace=\"shop\","
                      "pod=\"web-1\"}"),
            std::string::npos);
  EXPECT_NE(text.find("node_cpu_usage_seconds_total 6 1796551201000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("node_memory_working_set_bytes 4194304 "), std::string::npos);
  EXPECT_NE(text.find("pod_cpu_usage_seconds_total{namespace=\"shop\",pod=\"web-1\"} 1 "),
            std::string::npos);
  EXPECT_NE(text.find("resource_scrape_error 0\n"), std::string::npos);
}

TEST(RenderResourceMetrics, EscapesLabelValues) {
  auto doc = boost::json::parse(R"({"pods":[{"podRef":{"name":"a\"b","namespace":"n\\s"},
      "containers":[{"name":"c","memory":{"time":"2026-12-06T10:00:00Z","workingSetBytes":1}}]}]})");
  const auto text = renderResourceMetrics(doc);
  EXPECT_NE(text.find(R"(container="c",namespace="n\\s",pod="a\"b")"), std::string::npos) << text;
}

}  // namespace
}  // namespace burstlet::kubelet
