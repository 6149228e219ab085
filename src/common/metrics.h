// Prometheus metrics for /metrics, on prometheus-cpp (core): its families, counters, gauges,
// histograms and text exposition format 0.0.4. What this adds is what burstlet's callers need on
// top of it:
//  * label values given in the order of the family's label names, and the children cached so
//    that a hot path's lookup stays a shared lock and a map find (prometheus::Family::Add takes
//    a mutex and builds a candidate child on every call);
//  * gauges computed at scrape time (prometheus-cpp has none): render() sets them, then
//    serializes.
//
// Updating a metric is lock-free (a histogram's observe takes its own uncontended mutex), and
// every reference handed out stays valid for the registry's lifetime.
//
// Names, labels and buckets are fixed in the code, so a mistake in them (an invalid name,
// unsorted buckets, a name registered twice with different types) is a programming error:
// prometheus-cpp throws std::invalid_argument at registration, which is when the daemon starts.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace burstlet::metrics {

// Content-Type of render()'s output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Upper bounds in seconds, 5 ms .. 60 s: API calls, reconciles, backend requests.
const std::vector<double>& defaultLatencyBuckets();

// A prometheus family with a fixed list of label names; one child per combination of values.
template <typename M>
class Family {
 public:
  // Throws std::invalid_argument on an invalid label name.
  Family(prometheus::Family<M>& family, std::vector<std::string> labelNames);
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The child for `labelValues`, in the order of the label names (a wrong number of them is a
  // programming error: asserts; in release builds the extra names or values are left out).
  M& with(const std::vector<std::string>& labelValues);

 private:
  prometheus::Family<M>& family_;
  const std::vector<std::string> labelNames_;
  std::shared_mutex mu_;  // guards children_ (the map, not the metrics' values)
  std::map<std::vector<std::string>, M*> children_;
};

extern template class Family<prometheus::Counter>;
extern template class Family<prometheus::Gauge>;

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<prometheus::Counter>& counterFamily(const std::string& name, const std::string& help,
                                             std::vector<std::string> labelNames);
  Family<prometheus::Gauge>& gaugeFamily(const std::string& name, const std::string& help,
                                         std::vector<std::string> labelNames);
  // Without labels. `buckets`: strictly increasing upper bounds; +Inf is implied.
  prometheus::Histogram& histogram(const std::string& name, const std::string& help,
                                   const std::vector<double>& buckets = defaultLatencyBuckets());

  // A gauge without labels whose value `fn` returns; it runs in render(), on the scraping thread,
  // without any registry lock held, and must stay callable while the registry renders.
  // Registering the same name again replaces the callback.
  void gaugeFunc(const std::string& name, const std::string& help, std::function<double()> fn);

  // Text exposition format 0.0.4 (kContentType), by prometheus::TextSerializer.
  std::string render() const;

 private:
  prometheus::Registry registry_;
  mutable std::mutex mu_;  // guards the three containers below (not what they point to)
  std::deque<Family<prometheus::Counter>> counters_;
  std::deque<Family<prometheus::Gauge>> gauges_;
  std::vector<std::pair<prometheus::Gauge*, std::function<double()>>> funcs_;
};

}  // namespace burstlet::metrics
