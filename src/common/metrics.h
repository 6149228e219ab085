// Prometheus metrics: counters, gauges and histograms in labelled families, rendered in the text
// exposition format 0.0.4 for the /metrics endpoint.
//
// Updating a metric is a relaxed atomic operation, so counters can be bumped from any thread on
// hot paths. Looking up a labelled child takes a shared lock (an exclusive one only to create
// it): hot paths keep the reference that with() returns. Every reference handed out stays valid
// for the registry's lifetime: families and children are never removed.
//
// Names are fixed strings in the code, so an invalid metric or label name, invalid buckets, or a
// name registered twice with a different type or labels is a programming error: it asserts in
// debug builds. In release builds the caller still gets a working family, but it is left out of
// render(), so one mistake cannot make the whole scrape unparsable. Registering the same name
// again with the same type and labels returns the existing family.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace burstlet::metrics {

// Content-Type of render()'s output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool isValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved for Prometheus itself).
bool isValidLabelName(std::string_view name);

// Upper bounds in seconds, 5 ms .. 60 s: API calls, reconciles, backend requests.
const std::vector<double>& defaultLatencyBuckets();

class Counter {
 public:
  void inc() { value_.fetch_add(1.0, std::memory_order_relaxed); }
  // Negative and NaN amounts are ignored: a counter only goes up.
  void inc(double amount);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void inc(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void dec(double amount = 1.0) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `bounds`: finite, strictly increasing upper bounds; +Inf is implied. The registry checks
  // them; a histogram made directly must be given valid ones.
  explicit Histogram(std::vector<double> bounds);

  // NaN is ignored: it would poison the sum forever.
  void observe(double seconds);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0.0;
    uint64_t count = 0;  // equals the +Inf bucket
  };
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  // Non-cumulative counts per bucket, the last one for +Inf; summed up at scrape time so that
  // observe() touches a single bucket.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

namespace detail {

enum class Type { kCounter, kGauge, kHistogram, kGaugeFunc };

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::vector<std::string> labelNames)
      : name_(std::move(name)), help_(std::move(help)), labelNames_(std::move(labelNames)) {}
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::vector<std::string>& labelNames() const { return labelNames_; }
  virtual std::string_view typeName() const = 0;
  // Appends HELP, TYPE and all samples.
  void render(std::string& out) const;

 protected:
  virtual void renderSamples(std::string& out) const = 0;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> labelNames_;
};

}  // namespace detail

// A metric with a fixed set of label names; one child per combination of label values.
template <typename M>
class Family final : public detail::FamilyBase {
 public:
  Family(std::string name, std::string help, std::vector<std::string> labelNames,
         std::vector<double> buckets = {});

  // The child for `labelValues`, in the order of the label names. A wrong number of values is
  // a programming error (asserts; in release builds missing values are empty and extra ones
  // dropped).
  M& with(const std::vector<std::string>& labelValues);

  std::string_view typeName() const override;
  const std::vector<double>& buckets() const { return buckets_; }

 protected:
  void renderSamples(std::string& out) const override;

 private:
  std::vector<double> buckets_;   // histograms only
  mutable std::shared_mutex mu_;  // guards children_ (the map, not the metrics' values)
  // Ordered by label values, which gives render() its stable order.
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// A gauge computed at scrape time, e.g. a queue's depth.
class GaugeFunc {
 public:
  // Replaces the callback. The owner of whatever the callback reads resets it to an empty
  // function before going away; an empty callback renders no sample. Waits for a running
  // callback to return, so it must not be called with a lock held that the callback takes.
  void reset(std::function<double()> fn);
  // NaN when there is no callback.
  double value() const;

 private:
  mutable std::mutex mu_;  // guards fn_; also held while it runs, so reset() waits for it
  std::function<double()> fn_;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<Counter>& counterFamily(std::string name, std::string help,
                                 std::vector<std::string> labelNames);
  Family<Gauge>& gaugeFamily(std::string name, std::string help,
                             std::vector<std::string> labelNames);
  // `buckets`: finite, strictly increasing upper bounds; +Inf is implied (and dropped if given).
  Family<Histogram>& histogramFamily(std::string name, std::string help,
                                     std::vector<std::string> labelNames,
                                     std::vector<double> buckets = defaultLatencyBuckets());

  // Metrics without labels.
  Counter& counter(std::string name, std::string help);
  Gauge& gauge(std::string name, std::string help);
  Histogram& histogram(std::string name, std::string help,
                       std::vector<double> buckets = defaultLatencyBuckets());

  // `fn` runs during render(), on the scraping thread, without any registry lock held.
  // Registering the same name again replaces the callback.
  GaugeFunc& gaugeFunc(std::string name, std::string help, std::function<double()> fn);

  // Text exposition format 0.0.4: families in registration order, children sorted by label
  // values.
  std::string render() const;

 private:
  struct Entry;
  template <typename F>
  F& add(detail::Type type, std::string name, std::string help, std::vector<std::string> labelNames,
         std::vector<double> buckets);

  mutable std::mutex mu_;  // guards entries_
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace burstlet::metrics
