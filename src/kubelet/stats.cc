#include "kubelet/stats.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>
#include <optional>

#include "kube/json_path.h"

namespace burstlet::kubelet {

namespace json = boost::json;

namespace {

std::optional<double> number(const json::value* v) {
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->is_int64()) {
    return static_cast<double>(v->as_int64());
  }
  if (v->is_uint64()) {
    return static_cast<double>(v->as_uint64());
  }
  if (v->is_double()) {
    return v->as_double();
  }
  return std::nullopt;
}

// A sample's time in Unix milliseconds; nullopt without a readable time.
std::optional<int64_t> millis(const json::value& section) {
  const auto text = kube::stringAt(section, {"time"});
  auto t = parseRfc3339(text);
  if (!t) {
    return std::nullopt;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

// Prometheus label values escape backslash, quote and newline.
std::string escapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string formatValue(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(v));
  }
  return fmt::format("{}", v);
}

struct Family {
  const char* name;
  const char* help;
  const char* type;
  std::string lines;
};

void sample(Family& f, const std::string& labels, double value, std::optional<int64_t> ms) {
  f.lines += f.name;
  if (!labels.empty()) {
    f.lines += '{' + labels + '}';
  }
  f.lines += ' ' + formatValue(value);
  if (ms) {
    f.lines += fmt::format(" {}", *ms);
  }
  f.lines += '\n';
}

// Adds `section`'s cpu and memory to the sums; false when it has neither.
void addUsage(const json::value& section, double& cpuNanoCores, double& cpuCoreNanoSeconds,
              double& workingSet, bool& any) {
  if (auto v = number(kube::at(section, {"cpu", "usageNanoCores"}))) {
    cpuNanoCores += *v;
    any = true;
  }
  if (auto v = number(kube::at(section, {"cpu", "usageCoreNanoSeconds"}))) {
    cpuCoreNanoSeconds += *v;
    any = true;
  }
  if (auto v = number(kube::at(section, {"memory", "workingSetBytes"}))) {
    workingSet += *v;
    any = true;
  }
}

}  // namespace

json::value completeSummary(json::value summary, const std::string& nodeName,
                            Clock::WallTime nodeStart) {
  if (!summary.is_object()) {
    summary = json::object{};
  }
  auto& doc = summary.as_object();
  if (!doc.contains("pods") || !doc["pods"].is_array()) {
    doc["pods"] = json::array{};
  }
  if (!doc.contains("node") || !doc["node"].is_object()) {
    doc["node"] = json::object{};
  }
  auto& node = doc["node"].as_object();
  node["nodeName"] = nodeName;
  if (!node.contains("startTime")) {
    node["startTime"] = formatRfc3339(nodeStart);
  }
  if (!node.contains("cpu") && !node.contains("memory")) {
    double nanoCores = 0;
    double coreNanoSeconds = 0;
    double workingSet = 0;
    bool any = false;
    std::string latest;
    for (const auto& pod : doc["pods"].as_array()) {
      addUsage(pod, nanoCores, coreNanoSeconds, workingSet, any);
      const auto t = kube::stringAt(pod, {"cpu", "time"});
      latest = std::max(latest, t);  // RFC 3339 UTC strings order as times
    }
    if (any) {
      if (latest.empty()) {
        latest = formatRfc3339(std::chrono::system_clock::now());
      }
      node["cpu"] = json::object{{"time", latest},
                                 {"usageNanoCores", static_cast<uint64_t>(nanoCores)},
                                 {"usageCoreNanoSeconds", static_cast<uint64_t>(coreNanoSeconds)}};
      node["memory"] =
          json::object{{"time", latest}, {"workingSetBytes", static_cast<uint64_t>(workingSet)}};
    }
  }
  return summary;
}

std::string renderResourceMetrics(const json::value& summary) {
  Family nodeCpu{"node_cpu_usage_seconds_total",
                 "Cumulative cpu time consumed by the node in core-seconds",
                 "counter",
                 {}};
  Family nodeMem{
      "node_memory_working_set_bytes", "Current working set of the node in bytes", "gauge", {}};
  Family podCpu{"pod_cpu_usage_seconds_total",
                "Cumulative cpu time consumed by the pod in core-seconds",
                "counter",
                {}};
  Family podMem{
      "pod_memory_working_set_bytes", "Current working set of the pod in bytes", "gauge", {}};
  Family ctrCpu{"container_cpu_usage_seconds_total",
                "Cumulative cpu time consumed by the container in core-seconds",
                "counter",
                {}};
  Family ctrMem{"container_memory_working_set_bytes",
                "Current working set of the container in bytes",
                "gauge",
                {}};
  Family ctrStart{"container_start_time_seconds",
                  "Start time of the container since unix epoch in seconds",
                  "gauge",
                  {}};

  if (const auto* node = kube::at(summary, {"node"})) {
    if (const auto* cpu = kube::at(*node, {"cpu"})) {
      if (auto v = number(kube::at(*cpu, {"usageCoreNanoSeconds"}))) {
        sample(nodeCpu, "", *v / 1e9, millis(*cpu));
      }
    }
    if (const auto* mem = kube::at(*node, {"memory"})) {
      if (auto v = number(kube::at(*mem, {"workingSetBytes"}))) {
        sample(nodeMem, "", *v, millis(*mem));
      }
    }
  }
  if (const auto* pods = kube::arrayAt(summary, {"pods"})) {
    for (const auto& pod : *pods) {
      const auto podLabels = fmt::format("namespace=\"{}\",pod=\"{}\"",
                                         escapeLabel(kube::stringAt(pod, {"podRef", "namespace"})),
                                         escapeLabel(kube::stringAt(pod, {"podRef", "name"})));
      if (const auto* cpu = kube::at(pod, {"cpu"})) {
        if (auto v = number(kube::at(*cpu, {"usageCoreNanoSeconds"}))) {
          sample(podCpu, podLabels, *v / 1e9, millis(*cpu));
        }
      }
      if (const auto* mem = kube::at(pod, {"memory"})) {
        if (auto v = number(kube::at(*mem, {"workingSetBytes"}))) {
          sample(podMem, podLabels, *v, millis(*mem));
        }
      }
      const auto* containers = kube::arrayAt(pod, {"containers"});
      if (containers == nullptr) {
        continue;
      }
      for (const auto& c : *containers) {
        const auto labels =
            fmt::format("container=\"{}\",{}", escapeLabel(kube::stringAt(c, {"name"})), podLabels);
        if (const auto* cpu = kube::at(c, {"cpu"})) {
          if (auto v = number(kube::at(*cpu, {"usageCoreNanoSeconds"}))) {
            sample(ctrCpu, labels, *v / 1e9, millis(*cpu));
          }
        }
        if (const auto* mem = kube::at(c, {"memory"})) {
          if (auto v = number(kube::at(*mem, {"workingSetBytes"}))) {
            sample(ctrMem, labels, *v, millis(*mem));
          }
        }
        if (auto start = parseRfc3339(kube::stringAt(c, {"startTime"}))) {
          const double seconds = std::chrono::duration<double>(start->time_since_epoch()).count();
          sample(ctrStart, labels, std::floor(seconds), std::nullopt);
        }
      }
    }
  }
  std::string out;
  for (const Family* f : {&ctrCpu, &ctrMem, &ctrStart, &nodeCpu, &nodeMem, &podCpu, &podMem}) {
    if (f->lines.empty()) {
      continue;
    }
    out += fmt::format("# HELP {} [STABLE] {}\n# TYPE {} {}\n", f->name, f->help, f->name, f->type);
    out += f->lines;
  }
  out +=
      "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container "
      "metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n";
  return out;
}

}  // namespace burstlet::kubelet
