#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <iterator>
#include <limits>
#include <set>

namespace burstlet::metrics {

namespace {

bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Every integer up to 2^53 is exact as a double; above that "%d" would print digits the value
// does not have.
constexpr double kMaxExactInteger = 9007199254740992.0;

void appendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::trunc(v) && std::fabs(v) < kMaxExactInteger) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<int64_t>(v));
  } else {
    // Shortest text that reads back as the same double; Prometheus parses exponents too.
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

void appendLabelValue(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void appendHelp(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// One sample line. `le` is the histogram bucket label, empty for other samples.
void appendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& labelNames,
                  const std::vector<std::string>& labelValues, std::string_view le, double value) {
  out += name;
  out += suffix;
  if (!labelNames.empty() || !le.empty()) {
    out += '{';
    for (size_t i = 0; i < labelNames.size(); ++i) {
      if (i > 0) {
        out += ',';
      }
      out += labelNames[i];
      out += "=\"";
      appendLabelValue(out, labelValues[i]);
      out += '"';
    }
    if (!le.empty()) {
      out += labelNames.empty() ? "le=\"" : ",le=\"";
      out += le;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  appendNumber(out, value);
  out += '\n';
}

void renderChild(std::string& out, const std::string& name, const std::vector<std::string>& names,
                 const std::vector<std::string>& values, const Counter& c) {
  appendSample(out, name, "", names, values, "", c.value());
}

void renderChild(std::string& out, const std::string& name, const std::vector<std::string>& names,
                 const std::vector<std::string>& values, const Gauge& g) {
  appendSample(out, name, "", names, values, "", g.value());
}

void renderChild(std::string& out, const std::string& name, const std::vector<std::string>& names,
                 const std::vector<std::string>& values, const Histogram& h) {
  const auto snap = h.snapshot();
  const auto& bounds = h.bounds();
  std::string le;
  for (size_t i = 0; i < bounds.size(); ++i) {
    le.clear();
    appendNumber(le, bounds[i]);
    appendSample(out, name, "_bucket", names, values, le, static_cast<double>(snap.cumulative[i]));
  }
  appendSample(out, name, "_bucket", names, values, "+Inf", static_cast<double>(snap.count));
  appendSample(out, name, "_sum", names, values, "", snap.sum);
  appendSample(out, name, "_count", names, values, "", static_cast<double>(snap.count));
}

bool validLabels(const std::vector<std::string>& names, detail::Type type) {
  std::set<std::string_view> seen;
  for (const auto& n : names) {
    if (!isValidLabelName(n) || !seen.insert(n).second) {
      return false;
    }
    if (type == detail::Type::kHistogram && n == "le") {
      return false;  // the bucket label
    }
  }
  return true;
}

bool validBuckets(const std::vector<double>& b) {
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(b[i]) || (i > 0 && b[i] <= b[i - 1])) {
      return false;
    }
  }
  return true;
}

// A gauge family whose single sample comes from a callback.
class FuncFamily final : public detail::FamilyBase {
 public:
  FuncFamily(std::string name, std::string help, std::vector<std::string> labelNames,
             const std::vector<double>& /*buckets*/)
      : FamilyBase(std::move(name), std::move(help), std::move(labelNames)) {}

  std::string_view typeName() const override { return "gauge"; }
  GaugeFunc& gauge() { return gauge_; }

 protected:
  void renderSamples(std::string& out) const override {
    const double v = gauge_.value();
    if (!std::isnan(v)) {
      appendSample(out, name(), "", {}, {}, "", v);
    }
  }

 private:
  GaugeFunc gauge_;
};

}  // namespace

bool isValidMetricName(std::string_view name) {
  if (name.empty() || !(isNameStart(name[0]) || name[0] == ':')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return isNameStart(c) || isDigit(c) || c == ':'; });
}

bool isValidLabelName(std::string_view name) {
  if (name.empty() || !isNameStart(name[0]) || name.starts_with("__")) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) { return isNameStart(c) || isDigit(c); });
}

const std::vector<double>& defaultLatencyBuckets() {
  static const std::vector<double> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                               1,     2.5,  5,     10,   30,  60};
  return kBuckets;
}

void Counter::inc(double amount) {
  if (amount > 0) {  // false for NaN too
    value_.fetch_add(amount, std::memory_order_relaxed);
  }
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double seconds) {
  if (std::isnan(seconds)) {
    return;
  }
  // The first bound >= the value: buckets are "less than or equal".
  const auto i = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(seconds, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.reserve(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

void GaugeFunc::reset(std::function<double()> fn) {
  std::lock_guard lock(mu_);
  fn_ = std::move(fn);
}

double GaugeFunc::value() const {
  std::lock_guard lock(mu_);
  return fn_ ? fn_() : std::numeric_limits<double>::quiet_NaN();
}

namespace detail {

void FamilyBase::render(std::string& out) const {
  out += "# HELP ";
  out += name_;
  out += ' ';
  appendHelp(out, help_);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += typeName();
  out += '\n';
  renderSamples(out);
}

}  // namespace detail

template <typename M>
Family<M>::Family(std::string name, std::string help, std::vector<std::string> labelNames,
                  std::vector<double> buckets)
    : FamilyBase(std::move(name), std::move(help), std::move(labelNames)),
      buckets_(std::move(buckets)) {}

template <typename M>
M& Family<M>::with(const std::vector<std::string>& labelValues) {
  if (labelValues.size() != labelNames().size()) {
    assert(false && "metrics: wrong number of label values");
    std::vector<std::string> fixed = labelValues;
    fixed.resize(labelNames().size());
    return with(fixed);
  }
  {
    std::shared_lock lock(mu_);
    if (auto it = children_.find(labelValues); it != children_.end()) {
      return *it->second;
    }
  }
  std::unique_lock lock(mu_);
  auto [it, inserted] = children_.try_emplace(labelValues);
  if (inserted) {
    if constexpr (std::is_same_v<M, Histogram>) {
      it->second = std::make_unique<Histogram>(buckets_);
    } else {
      it->second = std::make_unique<M>();
    }
  }
  return *it->second;
}

template <typename M>
std::string_view Family<M>::typeName() const {
  if constexpr (std::is_same_v<M, Counter>) {
    return "counter";
  } else if constexpr (std::is_same_v<M, Gauge>) {
    return "gauge";
  } else {
    return "histogram";
  }
}

template <typename M>
void Family<M>::renderSamples(std::string& out) const {
  std::shared_lock lock(mu_);
  for (const auto& [values, child] : children_) {
    renderChild(out, name(), labelNames(), values, *child);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

struct Registry::Entry {
  detail::Type type;
  std::unique_ptr<detail::FamilyBase> family;
  std::vector<double> buckets;
  bool exported;  // false for a family registered in error (see the header)
};

Registry::Registry() = default;
Registry::~Registry() = default;

template <typename F>
F& Registry::add(detail::Type type, std::string name, std::string help,
                 std::vector<std::string> labelNames, std::vector<double> buckets) {
  if (!buckets.empty() && std::isinf(buckets.back()) && buckets.back() > 0) {
    buckets.pop_back();
  }
  bool valid = isValidMetricName(name) && validLabels(labelNames, type) && validBuckets(buckets);
  assert(valid && "metrics: invalid metric name, label name or buckets");
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    if (!e->exported || e->family->name() != name) {
      continue;
    }
    if (e->type == type && e->family->labelNames() == labelNames && e->buckets == buckets) {
      return static_cast<F&>(*e->family);
    }
    assert(false && "metrics: name registered twice with a different type or labels");
    valid = false;
    break;
  }
  auto family =
      std::make_unique<F>(std::move(name), std::move(help), std::move(labelNames), buckets);
  F& out = *family;
  entries_.push_back(
      std::make_unique<Entry>(Entry{type, std::move(family), std::move(buckets), valid}));
  return out;
}

Family<Counter>& Registry::counterFamily(std::string name, std::string help,
                                         std::vector<std::string> labelNames) {
  return add<Family<Counter>>(detail::Type::kCounter, std::move(name), std::move(help),
                              std::move(labelNames), {});
}

Family<Gauge>& Registry::gaugeFamily(std::string name, std::string help,
                                     std::vector<std::string> labelNames) {
  return add<Family<Gauge>>(detail::Type::kGauge, std::move(name), std::move(help),
                            std::move(labelNames), {});
}

Family<Histogram>& Registry::histogramFamily(std::string name, std::string help,
                                             std::vector<std::string> labelNames,
                                             std::vector<double> buckets) {
  return add<Family<Histogram>>(detail::Type::kHistogram, std::move(name), std::move(help),
                                std::move(labelNames), std::move(buckets));
}

Counter& Registry::counter(std::string name, std::string help) {
  return counterFamily(std::move(name), std::move(help), {}).with({});
}

Gauge& Registry::gauge(std::string name, std::string help) {
  return gaugeFamily(std::move(name), std::move(help), {}).with({});
}

Histogram& Registry::histogram(std::string name, std::string help, std::vector<double> buckets) {
  return histogramFamily(std::move(name), std::move(help), {}, std::move(buckets)).with({});
}

GaugeFunc& Registry::gaugeFunc(std::string name, std::string help, std::function<double()> fn) {
  auto& family =
      add<FuncFamily>(detail::Type::kGaugeFunc, std::move(name), std::move(help), {}, {});
  family.gauge().reset(std::move(fn));
  return family.gauge();
}

std::string Registry::render() const {
  // Families are never removed, so the pointers outlive the lock; rendering without it lets a
  // gaugeFunc callback touch the registry.
  std::vector<const detail::FamilyBase*> families;
  {
    std::lock_guard lock(mu_);
    families.reserve(entries_.size());
    for (const auto& e : entries_) {
      if (e->exported) {
        families.push_back(e->family.get());
      }
    }
  }
  std::string out;
  for (const auto* f : families) {
    f->render(out);
  }
  return out;
}

}  // namespace burstlet::metrics
