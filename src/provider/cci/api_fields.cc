#include "provider/cci/api_fields.h"

#include <fmt/format.h>

#include <array>
#include <boost/json.hpp>
#include <charconv>

#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace json = boost::json;

namespace {

// Every Pod field added after 1.19, by the release that first knew it (k8s.io/api core/v1
// types.go, v0.19.0 to v0.36.0, compared tag by tag; docs/cci.md "A Kubernetes 1.19 API").
// Sub-fields of a field added in the same release go with it and are not listed.
constexpr std::array kFields{
    // 1.21: PodAffinityTerm.NamespaceSelector
    NewerField{"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[]."
               "namespaceSelector",
               21},
    NewerField{"spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[]."
               "podAffinityTerm.namespaceSelector",
               21},
    NewerField{"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[]."
               "namespaceSelector",
               21},
    NewerField{"spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[]."
               "podAffinityTerm.namespaceSelector",
               21},
    // 1.21: Probe.TerminationGracePeriodSeconds
    NewerField{"spec.containers[].livenessProbe.terminationGracePeriodSeconds", 21},
    NewerField{"spec.containers[].readinessProbe.terminationGracePeriodSeconds", 21},
    NewerField{"spec.containers[].startupProbe.terminationGracePeriodSeconds", 21},
    NewerField{"spec.initContainers[].livenessProbe.terminationGracePeriodSeconds", 21},
    NewerField{"spec.initContainers[].readinessProbe.terminationGracePeriodSeconds", 21},
    NewerField{"spec.initContainers[].startupProbe.terminationGracePeriodSeconds", 21},
    NewerField{"spec.ephemeralContainers[].livenessProbe.terminationGracePeriodSeconds", 21},
    NewerField{"spec.ephemeralContainers[].readinessProbe.terminationGracePeriodSeconds", 21},
    NewerField{"spec.ephemeralContainers[].startupProbe.terminationGracePeriodSeconds", 21},
    // 1.22: WindowsSecurityContextOptions.HostProcess
    NewerField{"spec.securityContext.windowsOptions.hostProcess", 22},
    NewerField{"spec.containers[].securityContext.windowsOptions.hostProcess", 22},
    NewerField{"spec.initContainers[].securityContext.windowsOptions.hostProcess", 22},
    NewerField{"spec.ephemeralContainers[].securityContext.windowsOptions.hostProcess", 22},
    // 1.22: PersistentVolumeClaimSpec.DataSourceRef
    NewerField{"spec.volumes[].ephemeral.volumeClaimTemplate.spec.dataSourceRef", 22},
    // 1.23: ProbeHandler.GRPC
    NewerField{"spec.containers[].livenessProbe.grpc", 23},
    NewerField{"spec.containers[].readinessProbe.grpc", 23},
    NewerField{"spec.containers[].startupProbe.grpc", 23},
    NewerField{"spec.initContainers[].livenessProbe.grpc", 23},
    NewerField{"spec.initContainers[].readinessProbe.grpc", 23},
    NewerField{"spec.initContainers[].startupProbe.grpc", 23},
    NewerField{"spec.ephemeralContainers[].livenessProbe.grpc", 23},
    NewerField{"spec.ephemeralContainers[].readinessProbe.grpc", 23},
    NewerField{"spec.ephemeralContainers[].startupProbe.grpc", 23},
    // 1.23: PodSpec.OS
    NewerField{"spec.os", 23},
    // 1.24: TopologySpreadConstraint.MinDomains
    NewerField{"spec.topologySpreadConstraints[].minDomains", 24},
    // 1.25: PodSpec.HostUsers
    NewerField{"spec.hostUsers", 25},
    // 1.25: TopologySpreadConstraint.MatchLabelKeys, NodeAffinityPolicy, NodeTaintsPolicy
    NewerField{"spec.topologySpreadConstraints[].matchLabelKeys", 25},
    NewerField{"spec.topologySpreadConstraints[].nodeAffinityPolicy", 25},
    NewerField{"spec.topologySpreadConstraints[].nodeTaintsPolicy", 25},
    // 1.26: PodSpec.SchedulingGates
    NewerField{"spec.schedulingGates", 26},
    // 1.26: PodSpec.ResourceClaims
    NewerField{"spec.resourceClaims", 26},
    // 1.26: ResourceRequirements.Claims (PVC templates: 1.26 to 1.28)
    NewerField{"spec.containers[].resources.claims", 26},
    NewerField{"spec.initContainers[].resources.claims", 26},
    NewerField{"spec.ephemeralContainers[].resources.claims", 26},
    NewerField{"spec.volumes[].ephemeral.volumeClaimTemplate.spec.resources.claims", 26},
    // 1.27: Container.ResizePolicy
    NewerField{"spec.containers[].resizePolicy", 27},
    NewerField{"spec.initContainers[].resizePolicy", 27},
    NewerField{"spec.ephemeralContainers[].resizePolicy", 27},
    // 1.28: Container.RestartPolicy (native sidecars)
    NewerField{"spec.containers[].restartPolicy", 28},
    NewerField{"spec.initContainers[].restartPolicy", 28},
    NewerField{"spec.ephemeralContainers[].restartPolicy", 28},
    // 1.29: LifecycleHandler.Sleep
    NewerField{"spec.containers[].lifecycle.postStart.sleep", 29},
    NewerField{"spec.containers[].lifecycle.preStop.sleep", 29},
    NewerField{"spec.initContainers[].lifecycle.postStart.sleep", 29},
    NewerField{"spec.initContainers[].lifecycle.preStop.sleep", 29},
    NewerField{"spec.ephemeralContainers[].lifecycle.postStart.sleep", 29},
    NewerField{"spec.ephemeralContainers[].lifecycle.preStop.sleep", 29},
    // 1.29: PodAffinityTerm.MatchLabelKeys, MismatchLabelKeys
    NewerField{
        "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[].matchLabelKeys",
        29},
    NewerField{"spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[]."
               "podAffinityTerm.matchLabelKeys",
               29},
    NewerField{"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[]."
               "matchLabelKeys",
               29},
    NewerField{"spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[]."
               "podAffinityTerm.matchLabelKeys",
               29},
    NewerField{"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[]."
               "mismatchLabelKeys",
               29},
    NewerField{"spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[]."
               "podAffinityTerm.mismatchLabelKeys",
               29},
    NewerField{"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[]."
               "mismatchLabelKeys",
               29},
    NewerField{"spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[]."
               "podAffinityTerm.mismatchLabelKeys",
               29},
    // 1.29: PersistentVolumeClaimSpec.VolumeAttributesClassName
    NewerField{"spec.volumes[].ephemeral.volumeClaimTemplate.spec.volumeAttributesClassName", 29},
    // 1.29: VolumeProjection.ClusterTrustBundle
    NewerField{"spec.volumes[].projected.sources[].clusterTrustBundle", 29},
    // 1.30: PodSecurityContext and SecurityContext.AppArmorProfile
    NewerField{"spec.securityContext.appArmorProfile", 30},
    NewerField{"spec.containers[].securityContext.appArmorProfile", 30},
    NewerField{"spec.initContainers[].securityContext.appArmorProfile", 30},
    NewerField{"spec.ephemeralContainers[].securityContext.appArmorProfile", 30},
    // 1.30: VolumeMount.RecursiveReadOnly
    NewerField{"spec.containers[].volumeMounts[].recursiveReadOnly", 30},
    NewerField{"spec.initContainers[].volumeMounts[].recursiveReadOnly", 30},
    NewerField{"spec.ephemeralContainers[].volumeMounts[].recursiveReadOnly", 30},
    // 1.31: PodSecurityContext.SupplementalGroupsPolicy
    NewerField{"spec.securityContext.supplementalGroupsPolicy", 31},
    // 1.31: VolumeSource.Image
    NewerField{"spec.volumes[].image", 31},
    // 1.32: PodSpec.Resources (pod-level resources)
    NewerField{"spec.resources", 32},
    // 1.32: PodSecurityContext.SELinuxChangePolicy
    NewerField{"spec.securityContext.seLinuxChangePolicy", 32},
    // 1.33: Lifecycle.StopSignal
    NewerField{"spec.containers[].lifecycle.stopSignal", 33},
    NewerField{"spec.initContainers[].lifecycle.stopSignal", 33},
    NewerField{"spec.ephemeralContainers[].lifecycle.stopSignal", 33},
    // 1.34: Container.RestartPolicyRules
    NewerField{"spec.containers[].restartPolicyRules", 34},
    NewerField{"spec.initContainers[].restartPolicyRules", 34},
    NewerField{"spec.ephemeralContainers[].restartPolicyRules", 34},
    // 1.34: EnvVarSource.FileKeyRef
    NewerField{"spec.containers[].env[].valueFrom.fileKeyRef", 34},
    NewerField{"spec.initContainers[].env[].valueFrom.fileKeyRef", 34},
    NewerField{"spec.ephemeralContainers[].env[].valueFrom.fileKeyRef", 34},
    // 1.34: PodSpec.HostnameOverride
    NewerField{"spec.hostnameOverride", 34},
    // 1.34: VolumeProjection.PodCertificate
    NewerField{"spec.volumes[].projected.sources[].podCertificate", 34},
    // 1.35: PodSpec.WorkloadRef (1.35 only)
    NewerField{"spec.workloadRef", 35},
    // 1.36: PodSpec.SchedulingGroup
    NewerField{"spec.schedulingGroup", 36},
};

// Walks `path` (segments split on '.', a trailing "[]" descends into every element) from `v`,
// appending the concrete paths of the values found.
void find(const json::value& v, std::string_view path, const std::string& at,
          std::vector<std::string>& out) {
  if (path.empty()) {
    if (!v.is_null()) {
      out.push_back(at);
    }
    return;
  }
  const auto dot = path.find('.');
  std::string_view segment = path.substr(0, dot);
  const std::string_view rest = dot == std::string_view::npos ? "" : path.substr(dot + 1);
  const bool list = segment.size() > 2 && segment.substr(segment.size() - 2) == "[]";
  if (list) {
    segment.remove_suffix(2);
  }
  const auto* o = v.if_object();
  if (o == nullptr) {
    return;
  }
  const auto* child = o->if_contains(segment);
  if (child == nullptr) {
    return;
  }
  const std::string here = at.empty() ? std::string(segment) : at + "." + std::string(segment);
  if (!list) {
    find(*child, rest, here, out);
    return;
  }
  if (const auto* a = child->if_array()) {
    for (size_t i = 0; i < a->size(); ++i) {
      find((*a)[i], rest, fmt::format("{}[{}]", here, i), out);
    }
  }
}

std::optional<int> parseMinor(std::string_view s) {
  if (!s.empty() && s.front() == 'v') {
    s.remove_prefix(1);
  }
  if (s.substr(0, 2) != "1.") {
    return std::nullopt;
  }
  s.remove_prefix(2);
  int minor = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), minor);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || minor < 0 || minor > 999) {
    return std::nullopt;
  }
  return minor;
}

}  // namespace

bool reachesBackend(std::string_view path) {
  // "spec.<key>...": the top-level spec key, without a list marker.
  std::string_view key = path.substr(path.find('.') + 1);
  key = key.substr(0, key.find_first_of(".["));
  return keptSpecField(key);
}

std::span<const NewerField> newerPodFields() { return kFields; }

std::vector<UnknownField> fieldsUnknownTo(const json::value& pod, int minor) {
  std::vector<UnknownField> out;
  for (const auto& f : kFields) {
    if (f.minor <= minor || !reachesBackend(f.path)) {
      continue;
    }
    std::vector<std::string> found;
    find(pod, f.path, "", found);
    for (auto& p : found) {
      out.push_back(UnknownField{std::move(p), f.minor});
    }
  }
  return out;
}

Status checkBackendFields(const json::value& pod, std::optional<int> minor) {
  if (!minor) {
    return okStatus();
  }
  const auto unknown = fieldsUnknownTo(pod, *minor);
  if (unknown.empty()) {
    return okStatus();
  }
  std::string fields;
  for (const auto& f : unknown) {
    fields += fmt::format("{}{} (Kubernetes 1.{})", fields.empty() ? "" : ", ", f.path, f.minor);
  }
  return Error::make(
      ErrorCode::kInvalid, "FieldNotSupportedByBackend",
      fmt::format("the backend's API is Kubernetes 1.{}, which would drop {} "
                  "without a word and run the pod otherwise than written: {}",
                  *minor, unknown.size() == 1 ? "this field" : "these fields", fields));
}

Result<std::optional<int>> backendMinor(std::string_view setting, std::optional<int> read,
                                        bool cci) {
  if (setting == "off") {
    return std::optional<int>();
  }
  if (!setting.empty()) {
    auto minor = parseMinor(setting);
    if (!minor) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         fmt::format("provider.cci.backendVersion: {:?} is not a Kubernetes "
                                     "release such as 1.19 (or \"off\", or empty to read it)",
                                     setting));
    }
    return std::optional<int>(*minor);
  }
  if (read) {
    return read;
  }
  return cci ? std::optional<int>(19) : std::optional<int>();
}

}  // namespace burstlet::provider::cci
