#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace burstlet::metrics {
namespace {

TEST(MetricsTest, CounterWithLabelsRendersSortedChildren) {
  Registry r;
  auto& f = r.counterFamily("burstlet_api_requests_total", "API requests by verb and code.",
                            {"verb", "code"});
  f.with({"GET", "200"}).inc();
  f.with({"GET", "200"}).inc(2);
  f.with({"DELETE", "404"}).inc(0.5);
  EXPECT_EQ(r.render(),
            "# HELP burstlet_api_requests_total API requests by verb and code.\n"
            "# TYPE burstlet_api_requests_total counter\n"
            "burstlet_api_requests_total{verb=\"DELETE\",code=\"404\"} 0.5\n"
            "burstlet_api_requests_total{verb=\"GET\",code=\"200\"} 3\n");
}

TEST(MetricsTest, CounterIgnoresNegativeAndNaN) {
  Registry r;
  auto& c = r.counter("c_total", "c");
  c.inc(4);
  c.inc(-1);
  c.inc(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(c.value(), 4);
}

TEST(MetricsTest, GaugeAndEscaping) {
  Registry r;
  auto& g = r.gaugeFamily("pods", "Help with \\ backslash\nand newline \"quoted\".", {"name"});
  g.with({"a\\b\"c\nd"}).set(-2.25);
  auto& plain = r.gauge("queue_depth", "q");
  plain.inc(5);
  plain.dec();
  plain.dec(0.5);
  EXPECT_EQ(r.render(),
            "# HELP pods Help with \\\\ backslash\\nand newline \"quoted\".\n"
            "# TYPE pods gauge\n"
            "pods{name=\"a\\\\b\\\"c\\nd\"} -2.25\n"
            "# HELP queue_depth q\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth 3.5\n");
}

TEST(MetricsTest, HistogramCumulativeBuckets) {
  Registry r;
  auto& f = r.histogramFamily("latency_seconds", "Latency.", {"op"}, {0.125, 1, 2.5});
  auto& h = f.with({"get"});
  h.observe(0.0625);
  h.observe(0.125);  // on the bound: counted in le="0.125"
  h.observe(2);
  h.observe(100);
  h.observe(std::numeric_limits<double>::quiet_NaN());  // ignored
  EXPECT_EQ(r.render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{op=\"get\",le=\"0.125\"} 2\n"
            "latency_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
            "latency_seconds_bucket{op=\"get\",le=\"2.5\"} 3\n"
            "latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
            "latency_seconds_sum{op=\"get\"} 102.1875\n"
            "latency_seconds_count{op=\"get\"} 4\n");
}

TEST(MetricsTest, HistogramWithoutLabelsAndDefaultBuckets) {
  Registry r;
  auto& h = r.histogram("reconcile_seconds", "Reconcile time.");
  h.observe(0.003);
  const std::string out = r.render();
  EXPECT_NE(out.find("reconcile_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("reconcile_seconds_bucket{le=\"60\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("reconcile_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("reconcile_seconds_count 1\n"), std::string::npos) << out;
  EXPECT_EQ(defaultLatencyBuckets().front(), 0.005);
  EXPECT_EQ(defaultLatencyBuckets().back(), 60);
}

TEST(MetricsTest, ExplicitInfBucketIsDropped) {
  Registry r;
  auto& h = r.histogram("h", "h", {1, std::numeric_limits<double>::infinity()});
  h.observe(3);
  EXPECT_EQ(r.render(),
            "# HELP h h\n# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 1\nh_sum 3\nh_count 1\n");
}

TEST(MetricsTest, NumberFormatting) {
  Registry r;
  r.gauge("big", "b").set(1e15);
  r.gauge("huge", "h").set(1e300);
  r.gauge("small", "s").set(1e-7);
  r.gauge("inf", "i").set(std::numeric_limits<double>::infinity());
  r.gauge("ninf", "n").set(-std::numeric_limits<double>::infinity());
  r.gauge("nan", "n").set(std::numeric_limits<double>::quiet_NaN());
  r.gauge("negzero", "z").set(-0.0);
  const std::string out = r.render();
  EXPECT_NE(out.find("\nbig 1000000000000000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nhuge 1e+300\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nsmall 1e-07\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\ninf +Inf\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nninf -Inf\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnan NaN\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnegzero 0\n"), std::string::npos) << out;
}

TEST(MetricsTest, FamiliesInRegistrationOrderAndReRegistrationReturnsSame) {
  Registry r;
  auto& z = r.counter("zzz_total", "z");
  auto& a = r.counter("aaa_total", "a");
  EXPECT_EQ(&r.counter("zzz_total", "z"), &z);
  a.inc();
  const std::string out = r.render();
  EXPECT_LT(out.find("zzz_total"), out.find("aaa_total")) << out;
  EXPECT_EQ(out.find("zzz_total", out.find("aaa_total")), std::string::npos) << "rendered twice";
}

TEST(MetricsTest, LabelledFamilyWithoutChildrenRendersHeaderOnly) {
  Registry r;
  r.counterFamily("errors_total", "Errors.", {"reason"});
  EXPECT_EQ(r.render(), "# HELP errors_total Errors.\n# TYPE errors_total counter\n");
}

TEST(MetricsTest, GaugeFuncEvaluatedAtRender) {
  Registry r;
  int depth = 3;
  auto& g = r.gaugeFunc("workqueue_depth", "Items waiting.", [&depth] { return depth; });
  EXPECT_EQ(r.render(),
            "# HELP workqueue_depth Items waiting.\n# TYPE workqueue_depth gauge\n"
            "workqueue_depth 3\n");
  depth = 7;
  EXPECT_NE(r.render().find("workqueue_depth 7\n"), std::string::npos);
  // Registering again replaces the callback.
  EXPECT_EQ(&r.gaugeFunc("workqueue_depth", "Items waiting.", [] { return 1.5; }), &g);
  EXPECT_NE(r.render().find("workqueue_depth 1.5\n"), std::string::npos);
  g.reset({});
  EXPECT_EQ(r.render(), "# HELP workqueue_depth Items waiting.\n# TYPE workqueue_depth gauge\n");
}

TEST(MetricsTest, GaugeFuncMayUseRegistry) {
  Registry r;
  auto& c = r.counter("c_total", "c");
  c.inc(2);
  // The callback runs without the registry lock: reading (or registering) does not deadlock.
  r.gaugeFunc("families", "f", [&r] { return r.counter("c_total", "c").value(); });
  EXPECT_NE(r.render().find("\nfamilies 2\n"), std::string::npos);
}

TEST(MetricsTest, ConcurrentIncrementsSum) {
  Registry r;
  auto& f = r.counterFamily("hits_total", "h", {"worker"});
  auto& g = r.gauge("level", "l");
  auto& h = r.histogram("obs", "o", {1});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  constexpr uint64_t kTotal = uint64_t{kThreads} * kPerThread;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        // Half through a fresh lookup, to race child creation with increments.
        f.with({"shared"}).inc();
        f.with({std::to_string(i % 8)}).inc();
        g.inc();
        h.observe(0.5);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(f.with({"shared"}).value(), kThreads * kPerThread);
  double perWorker = 0;
  for (int w = 0; w < 8; ++w) {
    perWorker += f.with({std::to_string(w)}).value();
  }
  EXPECT_EQ(perWorker, kThreads * kPerThread);
  EXPECT_EQ(g.value(), kThreads * kPerThread);
  const auto snap = h.snapshot();
  EXPECT_EQ(snap.count, kTotal);
  EXPECT_EQ(snap.cumulative[0], kTotal);
  EXPECT_EQ(snap.sum, 0.5 * kThreads * kPerThread);
}

TEST(MetricsTest, NameValidation) {
  EXPECT_TRUE(isValidMetricName("burstlet_pods_total"));
  EXPECT_TRUE(isValidMetricName(":recording:rule"));
  EXPECT_TRUE(isValidMetricName("_x9"));
  EXPECT_FALSE(isValidMetricName(""));
  EXPECT_FALSE(isValidMetricName("9lives"));
  EXPECT_FALSE(isValidMetricName("has-dash"));
  EXPECT_FALSE(isValidMetricName("has space"));
  EXPECT_TRUE(isValidLabelName("code"));
  EXPECT_TRUE(isValidLabelName("_private"));
  EXPECT_FALSE(isValidLabelName("__reserved"));
  EXPECT_FALSE(isValidLabelName("a:b"));
  EXPECT_FALSE(isValidLabelName("1a"));
  EXPECT_FALSE(isValidLabelName(""));
}

// Registration mistakes assert in debug builds; in release builds the family works but is not
// rendered.
TEST(MetricsDeathTest, InvalidRegistrationIsAProgrammingError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  r.counter("ok_total", "ok");
  EXPECT_DEBUG_DEATH(r.counter("bad-name", "b").inc(), "invalid metric name");
  EXPECT_DEBUG_DEATH(r.counterFamily("dup_labels", "d", {"a", "a"}), "invalid");
  EXPECT_DEBUG_DEATH(r.histogramFamily("le_label", "l", {"le"}), "invalid");
  EXPECT_DEBUG_DEATH(r.histogram("unsorted", "u", {2, 1}), "invalid");
  EXPECT_DEBUG_DEATH(r.gauge("ok_total", "clash"), "registered twice");
  EXPECT_DEBUG_DEATH(r.counterFamily("ok_total", "ok", {"extra"}), "registered twice");
  Registry other;
  EXPECT_DEBUG_DEATH(other.counterFamily("two", "t", {"a", "b"}).with({"x"}), "label values");
  // Whatever happened above (in this process only in release builds), the scrape stays valid.
  EXPECT_EQ(r.render(), "# HELP ok_total ok\n# TYPE ok_total counter\nok_total 0\n");
}

}  // namespace
}  // namespace burstlet::metrics
