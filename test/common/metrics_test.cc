#include "common/metrics.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

namespace burstlet::metrics {
namespace {

bool contains(const std::string& out, const std::string& line) {
  return out.find(line) != std::string::npos;
}

// The labels of a sample are written sorted by name (prometheus-cpp keeps them in a map); the
// values given to with() follow the order of the family's label names.
TEST(MetricsTest, CounterFamilyWithLabels) {
  Registry r;
  auto& f =
      r.counterFamily("burstlet_api_requests_total",
                      "Requests to the cluster API server by verb and code.", {"verb", "code"});
  f.with({"GET", "200"}).Increment();
  f.with({"GET", "200"}).Increment(2);
  f.with({"DELETE", "404"}).Increment(0.5);
  EXPECT_EQ(&f.with({"GET", "200"}), &f.with({"GET", "200"}));
  const std::string out = r.render();
  EXPECT_TRUE(out.starts_with(
      "# HELP burstlet_api_requests_total Requests to the cluster API server by verb and code.\n"
      "# TYPE burstlet_api_requests_total counter\n"))
      << out;
  EXPECT_TRUE(contains(out, "\nburstlet_api_requests_total{code=\"200\",verb=\"GET\"} 3\n")) << out;
  EXPECT_TRUE(contains(out, "\nburstlet_api_requests_total{code=\"404\",verb=\"DELETE\"} 0.5\n"))
      << out;
}

TEST(MetricsTest, GaugeFamilyAndLabelEscaping) {
  Registry r;
  auto& g = r.gaugeFamily("burstlet_pods", "Pods bound to the node by phase.", {"phase"});
  g.with({"Running"}).Set(3);
  g.with({"Running"}).Set(2);
  EXPECT_EQ(r.render(),
            "# HELP burstlet_pods Pods bound to the node by phase.\n"
            "# TYPE burstlet_pods gauge\n"
            "burstlet_pods{phase=\"Running\"} 2\n");
  g.with({"a\\b\"c\nd"}).Set(-2.25);
  EXPECT_TRUE(contains(r.render(), "\nburstlet_pods{phase=\"a\\\\b\\\"c\\nd\"} -2.25\n"));
}

TEST(MetricsTest, HistogramWithDefaultBuckets) {
  Registry r;
  auto& h = r.histogram("burstlet_pod_sync_duration_seconds",
                        "Duration of one pod sync (provider and API calls).");
  h.Observe(0.003);
  h.Observe(0.005);  // on the bound: counted in le="0.005"
  h.Observe(2);
  h.Observe(100);
  const std::string out = r.render();
  EXPECT_TRUE(
      out.starts_with("# HELP burstlet_pod_sync_duration_seconds Duration of one pod sync "
                      "(provider and API calls).\n"
                      "# TYPE burstlet_pod_sync_duration_seconds histogram\n"))
      << out;
  for (const char* line : {
           "burstlet_pod_sync_duration_seconds_bucket{le=\"0.005\"} 2\n",
           "burstlet_pod_sync_duration_seconds_bucket{le=\"0.01\"} 2\n",
           "burstlet_pod_sync_duration_seconds_bucket{le=\"0.025\"} 2\n",
           "burstlet_pod_sync_duration_seconds_bucket{le=\"1\"} 2\n",
           "burstlet_pod_sync_duration_seconds_bucket{le=\"2.5\"} 3\n",
           "burstlet_pod_sync_duration_seconds_bucket{le=\"60\"} 3\n",
           "burstlet_pod_sync_duration_seconds_bucket{le=\"+Inf\"} 4\n",
           "burstlet_pod_sync_duration_seconds_sum 102.008\n",
           "burstlet_pod_sync_duration_seconds_count 4\n",
       }) {
    EXPECT_TRUE(contains(out, std::string("\n") + line)) << line << out;
  }
  EXPECT_EQ(defaultLatencyBuckets().size(), 13U);
  EXPECT_EQ(defaultLatencyBuckets().front(), 0.005);
  EXPECT_EQ(defaultLatencyBuckets().back(), 60);
}

TEST(MetricsTest, GaugeFuncEvaluatedAtRender) {
  Registry r;
  int depth = 3;
  r.gaugeFunc("burstlet_pod_queue_depth", "Pods waiting for a sync.", [&depth] { return depth; });
  EXPECT_EQ(r.render(),
            "# HELP burstlet_pod_queue_depth Pods waiting for a sync.\n"
            "# TYPE burstlet_pod_queue_depth gauge\n"
            "burstlet_pod_queue_depth 3\n");
  depth = 7;
  EXPECT_TRUE(contains(r.render(), "\nburstlet_pod_queue_depth 7\n"));
  // Registering again replaces the callback.
  r.gaugeFunc("burstlet_pod_queue_depth", "Pods waiting for a sync.", [] { return 1.5; });
  EXPECT_TRUE(contains(r.render(), "\nburstlet_pod_queue_depth 1.5\n"));
}

TEST(MetricsTest, GaugeFuncMayUseRegistry) {
  Registry r;
  auto& c = r.counterFamily("c_total", "c", {});
  c.with({}).Increment(2);
  // The callback runs without the registry's lock: reading (or registering) does not deadlock.
  r.gaugeFunc("families", "f",
              [&r] { return r.counterFamily("c_total", "c", {}).with({}).Value(); });
  EXPECT_TRUE(contains(r.render(), "\nfamilies 2\n"));
}

TEST(MetricsTest, LabelledFamilyWithoutChildrenIsLeftOut) {
  Registry r;
  r.counterFamily("errors_total", "Errors.", {"reason"});
  EXPECT_EQ(r.render(), "");
}

TEST(MetricsTest, ConcurrentIncrementsSum) {
  Registry r;
  auto& f = r.counterFamily("hits_total", "h", {"worker"});
  auto& h = r.histogram("obs", "o", {1});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        // Half through a fresh lookup, to race child creation with increments.
        f.with({"shared"}).Increment();
        f.with({std::to_string(i % 8)}).Increment();
        h.Observe(0.5);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(f.with({"shared"}).Value(), kThreads * kPerThread);
  double perWorker = 0;
  for (int w = 0; w < 8; ++w) {
    perWorker += f.with({std::to_string(w)}).Value();
  }
  EXPECT_EQ(perWorker, kThreads * kPerThread);
  const std::string out = r.render();
  EXPECT_TRUE(contains(out, "\nobs_bucket{le=\"1\"} 80000\n")) << out;
  EXPECT_TRUE(contains(out, "\nobs_count 80000\n")) << out;
  EXPECT_TRUE(contains(out, "\nobs_sum 40000\n")) << out;
}

// Mistakes in names or buckets surface at registration, when the daemon starts.
TEST(MetricsTest, InvalidRegistrationThrows) {
  Registry r;
  r.counterFamily("ok_total", "ok", {});
  EXPECT_THROW(r.counterFamily("bad-name", "b", {}), std::invalid_argument);
  EXPECT_THROW(r.gaugeFunc("ok_total", "clash", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(r.histogram("unsorted", "u", {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.counterFamily("labels", "l", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.gaugeFamily("labels", "l", {"a-b"}), std::invalid_argument);
}

}  // namespace
}  // namespace burstlet::metrics
