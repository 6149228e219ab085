#include "common/metrics.h"

#include <prometheus/check_names.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cassert>
#include <stdexcept>

namespace burstlet::metrics {

const std::vector<double>& defaultLatencyBuckets() {
  static const std::vector<double> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                               1,     2.5,  5,     10,   30,  60};
  return kBuckets;
}

template <typename M>
M& Family<M>::with(const std::vector<std::string>& labelValues) {
  {
    std::shared_lock lock(mu_);
    if (auto it = children_.find(labelValues); it != children_.end()) {
      return *it->second;
    }
  }
  assert(labelValues.size() == labelNames_.size() && "metrics: wrong number of label values");
  prometheus::Labels labels;
  for (size_t i = 0; i < std::min(labelNames_.size(), labelValues.size()); ++i) {
    labels.emplace(labelNames_[i], labelValues[i]);
  }
  std::unique_lock lock(mu_);
  auto it = children_.find(labelValues);
  if (it == children_.end()) {
    it = children_.emplace(labelValues, &family_.Add(labels)).first;
  }
  return *it->second;
}

template <typename M>
Family<M>::Family(prometheus::Family<M>& family, std::vector<std::string> labelNames)
    : family_(family), labelNames_(std::move(labelNames)) {
  // prometheus-cpp checks label names only when it adds a child: check them at registration.
  for (const auto& name : labelNames_) {
    if (!prometheus::CheckLabelName(name)) {
      throw std::invalid_argument("Invalid label name");
    }
  }
}

template class Family<prometheus::Counter>;
template class Family<prometheus::Gauge>;

Family<prometheus::Counter>& Registry::counterFamily(const std::string& name,
                                                     const std::string& help,
                                                     std::vector<std::string> labelNames) {
  auto& family = prometheus::BuildCounter().Name(name).Help(help).Register(registry_);
  std::lock_guard lock(mu_);
  return counters_.emplace_back(family, std::move(labelNames));
}

Family<prometheus::Gauge>& Registry::gaugeFamily(const std::string& name, const std::string& help,
                                                 std::vector<std::string> labelNames) {
  auto& family = prometheus::BuildGauge().Name(name).Help(help).Register(registry_);
  std::lock_guard lock(mu_);
  return gauges_.emplace_back(family, std::move(labelNames));
}

prometheus::Histogram& Registry::histogram(const std::string& name, const std::string& help,
                                           const std::vector<double>& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry_).Add({}, buckets);
}

void Registry::gaugeFunc(const std::string& name, const std::string& help,
                         std::function<double()> fn) {
  auto* gauge = &prometheus::BuildGauge().Name(name).Help(help).Register(registry_).Add({});
  std::lock_guard lock(mu_);
  auto it = std::find_if(funcs_.begin(), funcs_.end(),
                         [gauge](const auto& f) { return f.first == gauge; });
  if (it != funcs_.end()) {
    it->second = std::move(fn);
  } else {
    funcs_.emplace_back(gauge, std::move(fn));
  }
}

std::string Registry::render() const {
  decltype(funcs_) funcs;
  {
    std::lock_guard lock(mu_);
    funcs = funcs_;
  }
  for (const auto& [gauge, fn] : funcs) {
    gauge->Set(fn());
  }
  return prometheus::TextSerializer().Serialize(registry_.Collect());
}

}  // namespace burstlet::metrics
