#include "daemon/stop_deployment.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>
#include <cstdio>

#include "common/wait.h"
#include "kube/json_path.h"
#include "kube/resource.h"

namespace burstlet::daemon {

namespace json = boost::json;

namespace {

// The Role a hook (or any identity running cleanup) needs; named in every refusal so the
// operator can grant it without reading the code.
constexpr const char* kNeeded =
    "grant it in a Role of that namespace: apps deployments get, apps deployments/scale patch, "
    "pods list";

Error refused(const DeploymentRef& ref, const Error& e, std::string_view verb,
              std::string_view resource) {
  if (e.code == ErrorCode::kForbidden) {
    return Error::make(
        ErrorCode::kForbidden, "StopDeploymentForbidden",
        fmt::format("--stop-deployment {}/{}: the cluster refuses to let this identity {} {} in "
                    "namespace {} ({}); nothing was cleaned up: {}",
                    ref.ns, ref.name, verb, resource, ref.ns, kNeeded, e.message));
  }
  Error out = e;
  out.message = fmt::format("--stop-deployment {}/{}: {} {}: {}", ref.ns, ref.name, verb, resource,
                            e.message);
  return out;
}

std::string joined(const json::array& values) {
  std::string out;
  for (const auto& v : values) {
    if (!out.empty()) {
      out += ',';
    }
    out += v.is_string() ? std::string(v.as_string()) : json::serialize(v);
  }
  return out;
}

// Names of the pods in `list` that may still run (not Succeeded or Failed).
std::vector<std::string> livePods(const json::value& list) {
  std::vector<std::string> out;
  if (const auto* items = kube::arrayAt(list, {"items"})) {
    for (const auto& pod : *items) {
      const std::string phase = kube::stringAt(pod, {"status", "phase"});
      if (phase != "Succeeded" && phase != "Failed") {
        out.push_back(kube::stringAt(pod, {"metadata", "name"}));
      }
    }
  }
  return out;
}

boost::asio::awaitable<void> stopInto(kube::RestClient* cluster, DeploymentRef ref,
                                      std::chrono::milliseconds timeout,
                                      Result<StopDeploymentReport>* out) {
  const auto poll = std::chrono::seconds(1);
  *out = co_await stopDeployment(*cluster, std::move(ref), timeout, realClock(), poll);
}

std::string names(const std::vector<std::string>& pods) {
  constexpr size_t kShown = 5;
  std::string out;
  for (size_t i = 0; i < pods.size() && i < kShown; ++i) {
    out += (i == 0 ? "" : ", ") + pods[i];
  }
  if (pods.size() > kShown) {
    out += fmt::format(" and {} more", pods.size() - kShown);
  }
  return out;
}

}  // namespace

Result<DeploymentRef> parseDeploymentRef(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() ||
      text.find('/', slash + 1) != std::string_view::npos) {
    return Error::make(ErrorCode::kInvalid, "InvalidDeployment",
                       fmt::format("--stop-deployment: \"{}\" is not <namespace>/<name>", text));
  }
  return DeploymentRef{std::string(text.substr(0, slash)), std::string(text.substr(slash + 1))};
}

Result<std::string> labelSelectorQuery(const json::value& selector) {
  auto invalid = [](std::string what) {
    return Error::make(ErrorCode::kInvalid, "InvalidSelector",
                       "the Deployment's spec.selector " + std::move(what));
  };
  if (!selector.is_object()) {
    return invalid("is not an object");
  }
  std::vector<std::string> terms;
  if (const auto* labels = selector.as_object().if_contains("matchLabels")) {
    if (!labels->is_object() && !labels->is_null()) {
      return invalid("matchLabels is not an object");
    }
    if (labels->is_object()) {
      for (const auto& [k, v] : labels->as_object()) {
        if (!v.is_string()) {
          return invalid(fmt::format("matchLabels.{} is not a string", std::string_view(k)));
        }
        terms.push_back(fmt::format("{}={}", std::string_view(k), std::string_view(v.as_string())));
      }
    }
  }
  if (const auto* exprs = kube::arrayAt(selector, {"matchExpressions"})) {
    for (const auto& e : *exprs) {
      const std::string key = kube::stringAt(e, {"key"});
      const std::string op = kube::stringAt(e, {"operator"});
      const auto* values = kube::arrayAt(e, {"values"});
      const bool hasValues = values != nullptr && !values->empty();
      if (key.empty()) {
        return invalid("has a matchExpressions entry without a key");
      }
      if ((op == "In" || op == "NotIn") && hasValues) {
        terms.push_back(
            fmt::format("{} {} ({})", key, op == "In" ? "in" : "notin", joined(*values)));
      } else if ((op == "Exists" || op == "DoesNotExist") && !hasValues) {
        terms.push_back(op == "Exists" ? key : "!" + key);
      } else {
        return invalid(fmt::format("has a matchExpressions entry {} {} it cannot be", key, op));
      }
    }
  }
  if (terms.empty()) {
    return invalid("is empty: it would select every pod of the namespace");
  }
  std::string out;
  for (const auto& t : terms) {
    out += (out.empty() ? "" : ",") + t;
  }
  return out;
}

boost::asio::awaitable<Result<StopDeploymentReport>> stopDeployment(
    kube::RestClient& cluster, DeploymentRef ref, std::chrono::nanoseconds timeout,
    const Clock& clock, std::chrono::nanoseconds poll) {
  const auto started = clock.steadyNow();
  const auto deadline = started + timeout;
  StopDeploymentReport report;
  auto deployment = co_await cluster.get(kube::resources::kDeployments, ref.ns, ref.name);
  if (!deployment.ok()) {
    if (deployment.error().code == ErrorCode::kNotFound) {
      co_return report;  // uninstalled already, or never there: nothing runs
    }
    co_return refused(ref, deployment.error(), "get", "deployments.apps");
  }
  report.found = true;
  const auto* selector = kube::at(*deployment, {"spec", "selector"});
  auto query = labelSelectorQuery(selector != nullptr ? *selector : json::value());
  if (!query.ok()) {
    co_return refused(ref, query.error(), "read", "deployments.apps");
  }
  report.selector = *query;
  // spec.replicas absent means 1 (the API server defaults it).
  const auto* replicas = kube::at(*deployment, {"spec", "replicas"});
  report.replicasBefore = replicas != nullptr ? kube::intAt(*deployment, {"spec", "replicas"}) : 1;
  if (report.replicasBefore != 0) {
    std::string body = R"({"spec":{"replicas":0}})";
    std::string subresource = "scale";
    auto scaled = co_await cluster.patch(kube::resources::kDeployments, ref.ns, ref.name,
                                         kube::PatchType::kJsonMerge, std::move(body),
                                         std::move(subresource));
    // Deleted meanwhile: its pods go with it (garbage collection); wait for them all the same.
    if (!scaled.ok() && scaled.error().code != ErrorCode::kNotFound) {
      co_return refused(ref, scaled.error(), "patch", "deployments.apps/scale");
    }
  }
  std::vector<std::string> left;
  bool first = true;
  while (true) {
    kube::ListOptions options;
    options.labelSelector = report.selector;
    auto pods = co_await cluster.list(kube::resources::kPods, ref.ns, options);
    if (pods.ok()) {
      left = livePods(*pods);
      if (first) {
        report.podsAtStart = static_cast<int>(left.size());
        first = false;
      }
      if (left.empty()) {
        break;
      }
    } else if (!isRetryable(pods.error().code)) {
      co_return refused(ref, pods.error(), "list", "pods");
    } else {
      spdlog::warn(
          "msg=\"listing the Deployment's pods failed; trying again\" deployment={}/{} "
          "error=\"{}\"",
          ref.ns, ref.name, pods.error().toString());
    }
    if (clock.steadyNow() >= deadline) {
      co_return Error::make(
          ErrorCode::kTimeout, "DeploymentStillRunning",
          fmt::format("--stop-deployment {}/{}: scaled to 0, but after {}s pods of it are still "
                      "there ({}); nothing was cleaned up (a pod whose node is gone stays until "
                      "it is deleted: kubectl -n {} delete pod --force)",
                      ref.ns, ref.name,
                      std::chrono::duration_cast<std::chrono::seconds>(timeout).count(),
                      left.empty() ? std::string("not listed") : names(left), ref.ns));
    }
    const auto wait = std::min<std::chrono::nanoseconds>(poll, deadline - clock.steadyNow());
    co_await sleepFor(clock, wait);
  }
  report.waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.steadyNow() - started);
  co_return report;
}

std::vector<std::string> describeStop(const StopDeploymentReport& report,
                                      const DeploymentRef& ref) {
  if (!report.found) {
    return {fmt::format("Deployment {}/{} not found: nothing of it runs", ref.ns, ref.name)};
  }
  std::vector<std::string> out;
  out.push_back(report.replicasBefore == 0
                    ? fmt::format("Deployment {}/{} has 0 replicas already", ref.ns, ref.name)
                    : fmt::format("Deployment {}/{} scaled to 0 (from {} replicas)", ref.ns,
                                  ref.name, report.replicasBefore));
  out.push_back(fmt::format("no pod of Deployment {}/{} is left ({} stopped in {:.1f}s)", ref.ns,
                            ref.name, report.podsAtStart,
                            static_cast<double>(report.waited.count()) / 1000.0));
  return out;
}

bool stopBeforeCleanup(boost::asio::io_context& io, kube::RestClient& cluster,
                       const DeploymentRef& ref, std::chrono::milliseconds& timeout) {
  Result<StopDeploymentReport> stopped = StopDeploymentReport{};
  boost::asio::co_spawn(io, stopInto(&cluster, ref, timeout, &stopped), boost::asio::detached);
  io.restart();
  io.run();
  if (!stopped.ok()) {
    std::fprintf(stderr, "burstlet cleanup: %s\n", stopped.error().toString().c_str());
    return false;
  }
  for (const auto& line : describeStop(*stopped, ref)) {
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  timeout = std::max(timeout - stopped->waited, std::chrono::milliseconds(1000));
  return true;
}

}  // namespace burstlet::daemon
