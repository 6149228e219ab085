// The kubelet's stats of the node's pods from the backend's metrics API (metrics.k8s.io
// PodMetrics of the backend namespace: CPU rate and memory working set per container). The
// kubelet reports CPU as a cumulative counter (metrics-server takes the rate between two
// scrapes), so the rate the backend reports is integrated over time: at every scrape the counter
// has grown by the latest rate times the time since the sample, and a new sample carries the
// counter on with its rate.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "kube/rest.h"

namespace burstlet::provider::cci {

class BackendStats {
 public:
  BackendStats(kube::RestClient& backend, std::string backendNamespace,
               const Clock& clock = realClock())
      : backend_(backend), ns_(std::move(backendNamespace)), clock_(clock) {}

  // The summary (stats/v1alpha1 "pods" only) for `pods`, the node's pods as listPods() shows
  // them (source namespace, name, uid; container statuses). A pod without metrics yet is left
  // out. Errors: the metrics API's (kNotFound when the backend has none).
  boost::asio::awaitable<Result<boost::json::value>> summary(
      const std::vector<boost::json::value>& pods);

  // The summary document from PodMetrics already read (for tests): `metrics` a PodMetricsList.
  boost::json::value summarize(const std::vector<boost::json::value>& pods,
                               const boost::json::value& metrics);

 private:
  struct CpuCounter {
    double coreNanoSeconds = 0;
    double nanoCores = 0;
    Clock::WallTime sampleTime;  // the backend sample `nanoCores` came from
    Clock::WallTime seen;        // last scrape that saw the container
  };

  kube::RestClient& backend_;
  const std::string ns_;
  const Clock& clock_;
  std::mutex mu_;  // guards counters_
  // Keyed "<pod uid>/<container>".
  std::map<std::string, CpuCounter> counters_;
};

}  // namespace burstlet::provider::cci
