#include "provider/provider.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "kube/json_path.h"

namespace burstlet::provider {

asio::awaitable<Status> Provider::run() {
  signals_.started.set();
  signals_.ready.set();
  co_await stop_.wait();
  signals_.stopped.set();
  co_return okStatus();
}

void Provider::stop() { stop_.set(); }

const Signals& Provider::signals() const { return signals_; }

std::set<std::string> injectedNames(const Json& pod, std::string_view list) {
  std::set<std::string> out;
  const auto* names = kube::arrayAt(pod, {kInjectedKey, list});
  if (names == nullptr) {
    return out;
  }
  for (const auto& n : *names) {
    if (n.is_string()) {
      out.emplace(n.as_string());
    }
  }
  return out;
}

asio::awaitable<Status> Provider::putNodeSecret(std::string purpose,
                                                std::map<std::string, std::string> /*data*/) {
  co_return Error::make(
      ErrorCode::kNotSupported, kNotSupported,
      fmt::format("provider {} keeps no node secrets (asked for {:?})", name(), purpose));
}

PodRef podRefOf(const Json& pod) {
  return PodRef{kube::stringAt(pod, {"metadata", "namespace"}),
                kube::stringAt(pod, {"metadata", "name"}),
                kube::stringAt(pod, {"metadata", "uid"})};
}

using kube::valueAt;

namespace {

bool emptyMap(const Json& v) { return v.is_null() || (v.is_object() && v.as_object().empty()); }

}  // namespace

bool needsUpdate(const Json& clusterPod, const Json& providerPod) {
  for (const char* key : {"labels", "annotations"}) {
    const Json& a = valueAt(clusterPod, {"metadata", key});
    const Json& b = valueAt(providerPod, {"metadata", key});
    if (!(emptyMap(a) && emptyMap(b)) && a != b) {
      return true;
    }
  }
  for (const char* list : {"containers", "initContainers"}) {
    const Json& a = valueAt(clusterPod, {"spec", list});
    const Json& b = valueAt(providerPod, {"spec", list});
    if (a.is_array() != b.is_array()) {
      return true;
    }
    if (!a.is_array()) {
      continue;
    }
    if (a.as_array().size() != b.as_array().size()) {
      return true;
    }
    for (size_t i = 0; i < a.as_array().size(); ++i) {
      if (valueAt(a.as_array()[i], {"image"}) != valueAt(b.as_array()[i], {"image"})) {
        return true;
      }
    }
  }
  // Ephemeral containers can only be added: one the provider lacks needs an update.
  if (const auto* want = kube::arrayAt(clusterPod, {"spec", "ephemeralContainers"})) {
    const auto* have = kube::arrayAt(providerPod, {"spec", "ephemeralContainers"});
    for (const auto& c : *want) {
      bool found = false;
      if (have != nullptr) {
        for (const auto& h : *have) {
          found = found || valueAt(h, {"name"}) == valueAt(c, {"name"});
        }
      }
      if (!found) {
        return true;
      }
    }
  }
  return false;
}

asio::awaitable<Result<std::unique_ptr<ByteStream>>> Provider::logs(PodRef pod,
                                                                    LogOptions /*options*/) {
  co_return Error::make(
      ErrorCode::kNotSupported, kNotSupported,
      "provider " + std::string(name()) + " does not serve logs (pod " + pod.key() + ")");
}

namespace {
Error notSupported(std::string_view provider, std::string_view what, const PodRef& pod) {
  return Error::make(
      ErrorCode::kNotSupported, kNotSupported,
      fmt::format("provider {} does not support {} (pod {})", provider, what, pod.key()));
}
}  // namespace

asio::awaitable<Result<std::unique_ptr<ExecSession>>> Provider::exec(PodRef pod,
                                                                     ExecOptions /*options*/) {
  co_return notSupported(name(), "exec", pod);
}

asio::awaitable<Result<std::unique_ptr<ExecSession>>> Provider::attach(PodRef pod,
                                                                       ExecOptions /*options*/) {
  co_return notSupported(name(), "attach", pod);
}

asio::awaitable<Result<std::unique_ptr<PortStream>>> Provider::portForward(PodRef pod,
                                                                           uint16_t /*port*/) {
  co_return notSupported(name(), "port-forward", pod);
}

asio::awaitable<Result<Json>> Provider::statsSummary() {
  co_return Error::make(ErrorCode::kNotSupported, kNotSupported,
                        fmt::format("provider {} does not report stats", name()));
}

}  // namespace burstlet::provider
