// The kubelet's resource statistics documents: /stats/summary (stats/v1alpha1 Summary) and
// /metrics/resource (Prometheus text, what metrics-server scrapes). No I/O: the provider
// supplies the pods' figures.
#pragma once

#include <boost/json/value.hpp>
#include <string>

#include "common/clock.h"

namespace burstlet::kubelet {

// Completes the provider's summary for node `nodeName`: pods kept as given (podRef, startTime,
// containers with cpu/memory), a node section that sums the pods' cpu and memory when the
// provider gave none, and the node's name and start time.
boost::json::value completeSummary(boost::json::value summary, const std::string& nodeName,
                                   Clock::WallTime nodeStart);

// The summary as the kubelet's /metrics/resource: node_cpu_usage_seconds_total,
// node_memory_working_set_bytes, container_cpu_usage_seconds_total,
// container_memory_working_set_bytes, container_start_time_seconds, pod_cpu_usage_seconds_total,
// pod_memory_working_set_bytes (labels container, pod, namespace) with the samples' times in
// milliseconds, and resource_scrape_error. Figures the summary lacks are left out, never 0.
std::string renderResourceMetrics(const boost::json::value& summary);

}  // namespace burstlet::kubelet
