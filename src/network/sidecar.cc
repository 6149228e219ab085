#include "network/sidecar.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/provider.h"

namespace burstlet::network {

namespace json = boost::json;
using kube::child;
using kube::stringOf;

namespace {

bool hasNamed(const json::value* list, std::string_view name) {
  if (list == nullptr || !list->is_array()) {
    return false;
  }
  for (const auto& item : list->as_array()) {
    if (stringOf(child(&item, "name")) == name) {
      return true;
    }
  }
  return false;
}

json::array& arrayMember(json::object& o, std::string_view key) {
  auto& v = o[key];
  if (!v.is_array()) {
    v = json::array();
  }
  return v.as_array();
}

}  // namespace

Status injectProxySidecar(json::value& pod, const ProxySidecarOptions& options) {
  auto* spec = pod.is_object() ? pod.as_object().if_contains("spec") : nullptr;
  if (spec == nullptr || !spec->is_object()) {
    return Error::make(ErrorCode::kInvalid, "InvalidPod", "pod without a spec");
  }
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    if (hasNamed(child(spec, list), kProxyContainerName)) {
      return Error::make(ErrorCode::kInvalid, "ReservedName",
                         fmt::format("spec.{}: the container name {} is reserved for burstlet's "
                                     "network proxy",
                                     list, kProxyContainerName));
    }
  }
  for (const auto volume : {kProxyVolumeName, kProxyPodInfoVolumeName}) {
    if (hasNamed(child(spec, "volumes"), volume)) {
      return Error::make(ErrorCode::kInvalid, "ReservedName",
                         fmt::format("spec.volumes: the volume name {} is reserved for burstlet's "
                                     "network proxy",
                                     volume));
    }
  }
  const std::string_view policy = stringOf(child(spec, "restartPolicy"));
  const bool runsToCompletion = policy == "Never" || policy == "OnFailure";

  json::array command;
  json::array waitCommand;
  for (const auto& c : options.command) {
    command.emplace_back(c);
    waitCommand.emplace_back(c);
  }
  waitCommand.emplace_back("netproxy");
  waitCommand.emplace_back(fmt::format("--wait-for-rules={}s", kProxyStartSeconds));
  // --log-level is the program's option: before the subcommand.
  json::array args{fmt::format("--log-level={}", options.logLevel), "netproxy",
                   fmt::format("--credentials={}", kProxyCredentialsPath)};
  json::array mounts{json::object{
      {"name", kProxyVolumeName}, {"mountPath", kProxyCredentialsPath}, {"readOnly", true}}};
  if (runsToCompletion) {
    args.emplace_back(fmt::format("--stop-file={}/annotations", kProxyPodInfoPath));
    mounts.push_back(json::object{
        {"name", kProxyPodInfoVolumeName}, {"mountPath", kProxyPodInfoPath}, {"readOnly", true}});
  }
  const json::object size{{"cpu", options.cpu}, {"memory", options.memory}};
  json::object container{
      {"name", kProxyContainerName},
      {"image", options.image},
      {"command", std::move(command)},
      {"args", std::move(args)},
      {"resources", json::object{{"requests", size}, {"limits", size}}},
      // Root with NET_ADMIN alone: nftables needs the capability, and a non-root user would not
      // hold it without ambient capabilities.
      {"securityContext",
       json::object{{"runAsUser", 0},
                    {"runAsNonRoot", false},
                    {"allowPrivilegeEscalation", false},
                    {"readOnlyRootFilesystem", true},
                    {"capabilities", json::object{{"add", json::array{"NET_ADMIN"}},
                                                  {"drop", json::array{"ALL"}}}}}},
      {"volumeMounts", std::move(mounts)},
      // The kubelet starts the next container only once this hook returns: the pod's own
      // containers start with the rules in place (DNS and ClusterIPs work from their first
      // instruction).
      {"lifecycle",
       json::object{{"postStart",
                     json::object{{"exec", json::object{{"command", std::move(waitCommand)}}}}}}},
      {"terminationMessagePolicy", "FallbackToLogsOnError"},
  };
  auto& s = spec->as_object();
  // First, so that it starts (and its hook holds the others) before the pod's own containers.
  auto& containers = arrayMember(s, "containers");
  containers.insert(containers.begin(), std::move(container));
  auto& volumes = arrayMember(s, "volumes");
  volumes.push_back(json::object{
      {"name", kProxyVolumeName},
      {"secret", json::object{{"secretName", options.secretName}, {"defaultMode", 0400}}}});
  if (runsToCompletion) {
    const json::object annotations{
        {"path", "annotations"}, {"fieldRef", json::object{{"fieldPath", "metadata.annotations"}}}};
    volumes.push_back(
        json::object{{"name", kProxyPodInfoVolumeName},
                     {"downwardAPI", json::object{{"items", json::array{annotations}}}}});
  }
  auto& injected = pod.as_object()[provider::kInjectedKey];
  if (!injected.is_object()) {
    injected = json::object();
  }
  arrayMember(injected.as_object(), "containers").emplace_back(kProxyContainerName);
  arrayMember(injected.as_object(), "volumes").emplace_back(kProxyVolumeName);
  if (runsToCompletion) {
    arrayMember(injected.as_object(), "volumes").emplace_back(kProxyPodInfoVolumeName);
  }
  return okStatus();
}

}  // namespace burstlet::network
