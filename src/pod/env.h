// The final environment of one container, resolved the way the kubelet resolves it before it
// starts the container: envFrom, env with $(VAR) expansion, downward-API fields and resources,
// ConfigMap and Secret keys, and service-link variables. burstlet resolves it in the cluster and
// hands the backend plain name/value pairs, so backend pods need none of the cluster's
// ConfigMaps, Secrets or Services.
//
// Differences from the kubelet, on purpose:
// * Order is deterministic (the kubelet's comes out of a Go map): each name sits where it was
//   first defined (envFrom sources in order, each source's keys sorted, then env in order) and
//   holds its last value; service variables not defined by the container follow, by service
//   name.
// * envFrom keys must be C-identifier-like ([-._a-zA-Z][-._a-zA-Z0-9]*) unless
//   EnvOptions::relaxedNames, so that a backend with the classic validation accepts them; other
//   keys are skipped with an InvalidEnvironmentVariableNames event as kubelets did before
//   RelaxedEnvironmentVariableValidation.
// * fileKeyRef (env files read from a volume) is refused: the files exist only on the backend.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/events.h"
#include "provider/provider.h"

namespace burstlet::pod {

// Reason of every error that stops the container from being configured, as the kubelet puts it
// in the container's waiting state. Codes: kNotFound for a missing ConfigMap, Secret or key (it
// may appear later: retry), kInvalid for what the pod spec itself gets wrong, kUnavailable when
// a fact about the node is not known yet.
inline constexpr std::string_view kCreateContainerConfigError =
    provider::kCreateContainerConfigError;
inline constexpr std::string_view kInvalidEnvironmentVariableNames =
    "InvalidEnvironmentVariableNames";

// The objects an environment may reference, looked up in the pod's namespace (usually
// informer caches). Called from the resolving thread only.
class EnvSources {
 public:
  virtual ~EnvSources() = default;
  // The object as the API returns it, or nullopt when it does not exist.
  virtual std::optional<boost::json::object> configMap(const std::string& ns,
                                                       const std::string& name) = 0;
  // Secret `data` values are base64, as on the wire.
  virtual std::optional<boost::json::object> secret(const std::string& ns,
                                                    const std::string& name) = 0;
  // Every Service in namespace `ns`. The resolver asks for "default" too: the master Service
  // ("kubernetes" in "default") gives every pod KUBERNETES_SERVICE_HOST and friends, even with
  // enableServiceLinks=false. An implementation that must point pods elsewhere (backend pods
  // reaching the API server another way) returns its own "kubernetes" Service there, or none.
  virtual std::vector<boost::json::value> services(const std::string& ns) = 0;
};

struct EnvOptions {
  // node.status.allocatable as the API returns it ({"cpu": "2k", "memory": "8Ti", ...}): a
  // resourceFieldRef to a limit the container does not set reads this instead (cpu, memory,
  // ephemeral-storage), or the pod-level limit when spec.resources.limits sets one.
  boost::json::object nodeAllocatable;
  // The node's addresses, primary first, for status.hostIP/hostIPs. Empty: the pod's
  // status.hostIPs, then status.hostIP.
  std::vector<std::string> hostIPs;
  // The pod's addresses for status.podIP/podIPs. Empty: the pod's status.podIPs, then
  // status.podIP. As the kubelet does, at most one address per family is used, the node's
  // primary family first.
  std::vector<std::string> podIPs;
  // Accept any envFrom key of printable ASCII without '=' (RelaxedEnvironmentVariableValidation)
  // when the backend accepts such names.
  bool relaxedNames = false;
};

struct EnvVar {
  std::string name;
  std::string value;

  bool operator==(const EnvVar&) const = default;
};

// An event to record on the pod.
struct EnvEvent {
  kube::EventType type = kube::EventType::kWarning;
  std::string reason;
  std::string message;

  bool operator==(const EnvEvent&) const = default;
};

struct EnvResult {
  std::vector<EnvVar> vars;
  std::vector<EnvEvent> events;
};

// Resolves the environment of container `container` (an app, init or ephemeral container) of
// `pod`. Errors have reason kCreateContainerConfigError and a message like the kubelet's
// (`configmap "app-config" not found`, `couldn't find key mode in ConfigMap ns/app-config`);
// neither errors nor events ever contain a value read from a Secret.
Result<EnvResult> resolveEnvironment(const boost::json::value& pod, std::string_view container,
                                     EnvSources& sources, const EnvOptions& options = {});

// The kubelet's $(VAR) expansion: $(NAME) becomes lookup(NAME) when that is non-null and stays
// as written otherwise, $$ becomes $, and any other $ is kept.
std::string expandVariables(std::string_view input,
                            const std::function<const std::string*(std::string_view)>& lookup);

// Service-link variables of `services` in order ({NAME}_SERVICE_HOST, {NAME}_SERVICE_PORT,
// {NAME}_SERVICE_PORT_{PORTNAME}, and the Docker-link {NAME}_PORT...). Services without a
// cluster IP (headless, ExternalName) or without ports give none.
std::vector<EnvVar> serviceLinkVariables(const std::vector<boost::json::value>& services);

}  // namespace burstlet::pod
