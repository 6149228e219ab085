#include "provider/provider.h"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace burstlet::provider {

namespace {
std::string metadataField(const Json& pod, std::string_view field) {
  const auto* obj = pod.if_object();
  const auto* md = obj != nullptr ? obj->if_contains("metadata") : nullptr;
  const auto* mdObj = md != nullptr ? md->if_object() : nullptr;
  const auto* v = mdObj != nullptr ? mdObj->if_contains(field) : nullptr;
  const auto* s = v != nullptr ? v->if_string() : nullptr;
  return s != nullptr ? std::string(*s) : std::string();
}
}  // namespace

PodRef podRefOf(const Json& pod) {
  return PodRef{metadataField(pod, "namespace"), metadataField(pod, "name"),
                metadataField(pod, "uid")};
}

asio::awaitable<Result<std::unique_ptr<ByteStream>>> Provider::logs(PodRef pod,
                                                                    LogOptions /*options*/) {
  co_return Error::make(
      ErrorCode::kNotFound, "NotSupported",
      "provider " + std::string(name()) + " does not serve logs (pod " + pod.key() + ")");
}

namespace {
Error notSupported(std::string_view provider, std::string_view what, const PodRef& pod) {
  return Error::make(
      ErrorCode::kNotFound, "NotSupported",
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
  co_return Error::make(ErrorCode::kNotFound, "NotSupported",
                        fmt::format("provider {} does not report stats", name()));
}

}  // namespace burstlet::provider
