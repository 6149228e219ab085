#include "provider/cci/backend_stats.h"

#include <boost/json.hpp>
#include <unordered_map>

#include "common/quantity.h"
#include "kube/json_path.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace json = boost::json;

namespace {

const kube::ResourceRef kPodMetrics{"metrics.k8s.io", "v1beta1", "pods", true, "PodMetrics"};

// Counters of containers not seen for this long are forgotten.
constexpr auto kForgetAfter = std::chrono::minutes(10);

double nanos(const std::string& quantity) {
  auto q = Quantity::parse(quantity);
  if (!q.ok()) {
    return 0;
  }
  // milliValue is exact for the sizes metrics carry; nano precision is below any sample's.
  return static_cast<double>(q->milliValue()) * 1e6;
}

double bytes(const std::string& quantity) {
  auto q = Quantity::parse(quantity);
  return q.ok() ? static_cast<double>(q->value()) : 0;
}

// The container's start from the pod's status ("running.startedAt"), or "".
std::string startedAt(const json::value& pod, const std::string& container) {
  if (const auto* statuses = kube::arrayAt(pod, {"status", "containerStatuses"})) {
    for (const auto& s : *statuses) {
      if (kube::stringAt(s, {"name"}) == container) {
        return kube::stringAt(s, {"state", "running", "startedAt"});
      }
    }
  }
  return {};
}

}  // namespace

json::value BackendStats::summarize(const std::vector<json::value>& pods,
                                    const json::value& metrics) {
  std::unordered_map<std::string, const json::value*> byName;
  if (const auto* items = kube::arrayAt(metrics, {"items"})) {
    for (const auto& m : *items) {
      byName[kube::stringAt(m, {"metadata", "name"})] = &m;
    }
  }
  const auto now = clock_.now();
  const std::string nowText = formatRfc3339(now);
  std::lock_guard lock(mu_);
  json::array out;
  for (const auto& pod : pods) {
    const auto ns = kube::stringAt(pod, {"metadata", "namespace"});
    const auto name = kube::stringAt(pod, {"metadata", "name"});
    const auto uid = kube::stringAt(pod, {"metadata", "uid"});
    const auto it = byName.find(backendName(ns, name));
    if (it == byName.end()) {
      continue;
    }
    const json::value& m = *it->second;
    const auto sampleTime = parseRfc3339(kube::stringAt(m, {"timestamp"})).value_or(now);
    json::array containers;
    double podNanoCores = 0;
    double podCoreNanoSeconds = 0;
    double podWorkingSet = 0;
    if (const auto* list = kube::arrayAt(m, {"containers"})) {
      for (const auto& c : *list) {
        const auto container = kube::stringAt(c, {"name"});
        const double rate = nanos(kube::stringAt(c, {"usage", "cpu"}));
        const double workingSet = bytes(kube::stringAt(c, {"usage", "memory"}));
        std::string key = uid;
        key += '/';
        key += container;
        auto& counter = counters_[key];
        if (counter.sampleTime == Clock::WallTime{}) {
          counter.sampleTime = sampleTime;
          counter.nanoCores = rate;
        } else if (sampleTime > counter.sampleTime) {
          // The old rate held until the new sample.
          counter.coreNanoSeconds +=
              counter.nanoCores *
              std::chrono::duration<double>(sampleTime - counter.sampleTime).count();
          counter.sampleTime = sampleTime;
          counter.nanoCores = rate;
        }
        counter.seen = now;
        const double sinceSample =
            std::max(0.0, std::chrono::duration<double>(now - counter.sampleTime).count());
        const double cumulative = counter.coreNanoSeconds + counter.nanoCores * sinceSample;
        podNanoCores += rate;
        podCoreNanoSeconds += cumulative;
        podWorkingSet += workingSet;
        json::object entry{
            {"name", container},
            {"cpu", json::object{{"time", nowText},
                                 {"usageNanoCores", static_cast<uint64_t>(rate)},
                                 {"usageCoreNanoSeconds", static_cast<uint64_t>(cumulative)}}},
            {"memory", json::object{{"time", nowText},
                                    {"workingSetBytes", static_cast<uint64_t>(workingSet)},
                                    {"usageBytes", static_cast<uint64_t>(workingSet)}}},
        };
        if (auto start = startedAt(pod, container); !start.empty()) {
          entry["startTime"] = start;
        }
        containers.push_back(std::move(entry));
      }
    }
    json::object podStats{
        {"podRef", json::object{{"name", name}, {"namespace", ns}, {"uid", uid}}},
        {"containers", std::move(containers)},
        {"cpu", json::object{{"time", nowText},
                             {"usageNanoCores", static_cast<uint64_t>(podNanoCores)},
                             {"usageCoreNanoSeconds", static_cast<uint64_t>(podCoreNanoSeconds)}}},
        {"memory", json::object{{"time", nowText},
                                {"workingSetBytes", static_cast<uint64_t>(podWorkingSet)}}},
    };
    if (auto start = kube::stringAt(pod, {"status", "startTime"}); !start.empty()) {
      podStats["startTime"] = start;
    }
    out.push_back(std::move(podStats));
  }
  std::erase_if(counters_, [now](const auto& e) { return now - e.second.seen > kForgetAfter; });
  return json::object{{"pods", std::move(out)}};
}

boost::asio::awaitable<Result<json::value>> BackendStats::summary(
    const std::vector<json::value>& pods) {
  auto metrics = co_await backend_.list(kPodMetrics, ns_);
  if (!metrics.ok()) {
    co_return metrics.error();
  }
  co_return summarize(pods, *metrics);
}

}  // namespace burstlet::provider::cci
