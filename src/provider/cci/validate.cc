#include "provider/cci/validate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <iterator>
#include <string_view>

#include "kube/json_path.h"
#include "provider/cci/normalize.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::child;
using kube::stringOf;

namespace {

constexpr std::array<std::string_view, 6> kAllowedVolumes = {
    "configMap", "secret", "emptyDir", "downwardAPI", "projected", "persistentVolumeClaim"};

bool trueAt(const json::value* v) { return v != nullptr && v->is_bool() && v->get_bool(); }

// The elements of an array field; an absent or mistyped field has none.
const json::array& arrayAt(const json::value* v) {
  static const json::array kEmpty;
  const auto* a = v != nullptr ? v->if_array() : nullptr;
  return a != nullptr ? *a : kEmpty;
}

Error invalid(std::string_view reason, std::string message) {
  return Error::make(ErrorCode::kInvalid, std::string(reason), std::move(message));
}

// A volume's source: its one key besides "name". The API server defaults a volume without a
// source to emptyDir, so that is what an empty one is.
std::string_view volumeType(const json::value& volume) {
  if (const auto* o = volume.if_object()) {
    for (const auto& kv : *o) {
      if (kv.key() != "name") {
        return kv.key();
      }
    }
  }
  return "emptyDir";
}

bool contains(const std::vector<std::string>& list, std::string_view s) {
  return !s.empty() && std::find(list.begin(), list.end(), s) != list.end();
}

std::string quotedOrNone(std::string_view s, std::string_view none) {
  return s.empty() ? std::string(none) : fmt::format("\"{}\"", s);
}

void checkOwners(const json::value& pod, std::vector<Error>& out) {
  const auto& owners = arrayAt(child(child(&pod, "metadata"), "ownerReferences"));
  for (size_t i = 0; i < owners.size(); ++i) {
    if (stringOf(child(&owners[i], "kind")) == "DaemonSet") {
      out.push_back(invalid("DaemonSetPod", fmt::format("metadata.ownerReferences[{}]: the pod "
                                                        "belongs to DaemonSet \"{}\"; DaemonSet "
                                                        "pods do not run on CCI",
                                                        i, stringOf(child(&owners[i], "name")))));
    }
  }
}

void checkHostNamespaces(const json::value* spec, std::vector<Error>& out) {
  if (trueAt(child(spec, "hostNetwork"))) {
    out.push_back(invalid("HostNetwork",
                          "spec.hostNetwork: CCI pods cannot use the host network; CCI runs each "
                          "pod in its own sandbox"));
  }
  if (trueAt(child(spec, "hostPID"))) {
    out.push_back(invalid("HostPID",
                          "spec.hostPID: CCI pods cannot share the host's process namespace; CCI "
                          "runs each pod in its own sandbox"));
  }
  if (trueAt(child(spec, "hostIPC"))) {
    out.push_back(invalid("HostIPC",
                          "spec.hostIPC: CCI pods cannot share the host's IPC namespace; CCI runs "
                          "each pod in its own sandbox"));
  }
}

// Checked on the pod as written, before normalization (which would give any pod CPU): the doc
// lists it among the requirements on the user's spec.
void checkCpu(const json::value* spec, std::vector<Error>& out) {
  const auto& containers = arrayAt(child(spec, "containers"));
  bool anyCpu = false;
  bool malformed = false;
  for (size_t i = 0; i < containers.size(); ++i) {
    const json::value* resources = child(&containers[i], "resources");
    for (const char* kind : {"requests", "limits"}) {
      auto q = resourceQuantity(child(child(resources, kind), "cpu"),
                                fmt::format("spec.containers[{}].resources.{}.cpu", i, kind));
      if (!q.ok()) {
        out.push_back(std::move(q).error());
        malformed = true;
      } else if (*q && (*q)->sign() > 0) {
        anyCpu = true;
      }
    }
  }
  if (!anyCpu && !malformed) {
    out.push_back(invalid("NoCPURequest",
                          "spec.containers: no container sets resources.requests.cpu or "
                          "resources.limits.cpu above 0; CCI needs at least one container with "
                          "CPU > 0"));
  }
}

void checkVolumeTypes(const json::value* spec, std::vector<Error>& out) {
  const auto& volumes = arrayAt(child(spec, "volumes"));
  for (size_t i = 0; i < volumes.size(); ++i) {
    const std::string_view type = volumeType(volumes[i]);
    if (std::find(kAllowedVolumes.begin(), kAllowedVolumes.end(), type) == kAllowedVolumes.end()) {
      out.push_back(invalid(
          "UnsupportedVolume",
          fmt::format("spec.volumes[{}] \"{}\": {} volumes are not supported on CCI; allowed: "
                      "configMap, secret, emptyDir, downwardAPI, projected, "
                      "persistentVolumeClaim of SFS/SFS Turbo",
                      i, stringOf(child(&volumes[i], "name")), type)));
    }
  }
}

void checkEmptyDirSubPaths(const json::value* spec, std::vector<Error>& out) {
  std::vector<std::string_view> emptyDirs;
  for (const auto& v : arrayAt(child(spec, "volumes"))) {
    if (volumeType(v) == "emptyDir") {
      emptyDirs.push_back(stringOf(child(&v, "name")));
    }
  }
  for (const char* list : {"initContainers", "containers"}) {
    const auto& containers = arrayAt(child(spec, list));
    for (size_t c = 0; c < containers.size(); ++c) {
      const auto& mounts = arrayAt(child(&containers[c], "volumeMounts"));
      for (size_t m = 0; m < mounts.size(); ++m) {
        const std::string_view volume = stringOf(child(&mounts[m], "name"));
        if (std::find(emptyDirs.begin(), emptyDirs.end(), volume) == emptyDirs.end()) {
          continue;
        }
        // An empty subPath is no subPath, for the kubelet as well.
        for (const char* key : {"subPath", "subPathExpr"}) {
          if (!stringOf(child(&mounts[m], key)).empty()) {
            out.push_back(invalid(
                "EmptyDirSubPath",
                fmt::format("spec.{}[{}] \"{}\" volumeMounts[{}] \"{}\": {} is not supported on "
                            "emptyDir volumes on CCI",
                            list, c, stringOf(child(&containers[c], "name")), m, volume, key)));
          }
        }
      }
    }
  }
}

std::string allowedStorage(const ValidateOptions& options) {
  std::string allowed = fmt::format("CSI drivers {}", fmt::join(options.storageDrivers, ", "));
  if (!options.storageClasses.empty()) {
    allowed += fmt::format(" or StorageClasses {}", fmt::join(options.storageClasses, ", "));
  }
  return allowed;
}

void checkClaims(const json::value* spec, const ValidateOptions& options, const ClaimLookup& lookup,
                 std::vector<Error>& out, std::vector<Error>& missing) {
  const auto& volumes = arrayAt(child(spec, "volumes"));
  for (size_t i = 0; i < volumes.size(); ++i) {
    const json::value* source = child(&volumes[i], "persistentVolumeClaim");
    if (source == nullptr) {
      continue;
    }
    const std::string_view name = stringOf(child(&volumes[i], "name"));
    const std::string claim(stringOf(child(source, "claimName")));
    if (claim.empty()) {
      out.push_back(invalid("UnsupportedVolume",
                            fmt::format("spec.volumes[{}] \"{}\": persistentVolumeClaim without "
                                        "claimName",
                                        i, name)));
      continue;
    }
    std::optional<ClaimInfo> info = lookup ? lookup(claim) : std::nullopt;
    if (!info || !info->found) {
      missing.push_back(Error::make(
          ErrorCode::kNotFound, "ClaimNotFound",
          fmt::format("spec.volumes[{}] \"{}\": PersistentVolumeClaim \"{}\" does not exist (yet)",
                      i, name, claim)));
      continue;
    }
    if (contains(options.storageDrivers, info->driver) ||
        contains(options.storageClasses, info->storageClass)) {
      if (!info->notImportable.empty()) {
        out.push_back(
            invalid("VolumeNotImportable", fmt::format("spec.volumes[{}] \"{}\": claim \"{}\": {}",
                                                       i, name, claim, info->notImportable)));
      }
      continue;
    }
    out.push_back(invalid(
        "UnsupportedStorageClass",
        fmt::format("spec.volumes[{}] \"{}\": claim \"{}\" uses StorageClass {} (driver {}); "
                    "CCI mounts only SFS/SFS Turbo volumes: {}",
                    i, name, claim, quotedOrNone(info->storageClass, "none"),
                    quotedOrNone(info->driver, "none: not a CSI volume"),
                    allowedStorage(options))));
  }
}

}  // namespace

std::vector<Error> allViolations(const json::value& pod, const ValidateOptions& options,
                                 const ClaimLookup& lookup) {
  std::vector<Error> out;
  std::vector<Error> missing;
  const json::value* spec = child(&pod, "spec");
  checkOwners(pod, out);
  checkHostNamespaces(spec, out);
  checkCpu(spec, out);
  checkVolumeTypes(spec, out);
  checkEmptyDirSubPaths(spec, out);
  checkClaims(spec, options, lookup, out, missing);
  checkLimits(spec, options.limits, out);
  // Retryable last, so the first error is a permanent one whenever there is one.
  std::move(missing.begin(), missing.end(), std::back_inserter(out));
  return out;
}

Status validatePod(const json::value& pod, const ValidateOptions& options,
                   const ClaimLookup& lookup) {
  auto violations = allViolations(pod, options, lookup);
  if (violations.empty()) {
    return okStatus();
  }
  return std::move(violations.front());
}

Status admit(json::value& pod, const ValidateOptions& options, const ClaimLookup& lookup) {
  BURSTLET_RETURN_IF_ERROR(validatePod(pod, options, lookup));
  BURSTLET_RETURN_IF_ERROR(normalizePod(pod));
  return okStatus();
}

}  // namespace burstlet::provider::cci
