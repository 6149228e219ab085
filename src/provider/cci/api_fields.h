// Pod fields the backend's Kubernetes API may not know. CCI's API is Kubernetes 1.19
// (docs/cci.md "A Kubernetes 1.19 API"); an API server drops fields it does not know without a
// word, so a native sidecar (an init container with restartPolicy: Always) would become an
// ordinary init container and the pod hang in Init, a gRPC probe or a sleep hook would lose its
// handler. burstlet refuses such a pod instead, naming the field.
//
// The table lists every field of the Pod's spec added to core/v1 after 1.19, with the minor
// release that first knew it (from k8s.io/api's core/v1/types.go, tag by tag). A path is JSON
// field names joined by '.', "[]" after a list (each element is looked at).
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace burstlet::provider::cci {

struct NewerField {
  std::string_view path;  // e.g. "spec.initContainers[].restartPolicy"
  int minor;              // the Kubernetes 1.<minor> release that first knew it
};

// The table, oldest first.
std::span<const NewerField> newerPodFields();

// Whether a field of the table reaches the backend at all: translation keeps only some spec
// fields (translate.h keptSpecField); affinity, topology spread, scheduling gates and the like
// stay in the cluster, so a field below them never matters to the backend.
bool reachesBackend(std::string_view path);

// The fields `pod` sets that Kubernetes 1.<minor> does not know and that reach the backend, as
// found (list indexes filled in: "spec.initContainers[0].restartPolicy"), each with the release
// that added it.
struct UnknownField {
  std::string path;
  int minor;
};
std::vector<UnknownField> fieldsUnknownTo(const boost::json::value& pod, int minor);

// kInvalid "FieldNotSupportedByBackend" naming every such field and the backend's release; OK
// when there is none (or `minor` is nullopt: no check).
Status checkBackendFields(const boost::json::value& pod, std::optional<int> minor);

// The backend release to check pods against, from provider.cci.backendVersion and what the
// backend's GET /version said: `setting` "off" → none; "1.NN" or "v1.NN" → that; "" → `read`
// when the backend answered, else 19 in CCI mode (its documented release), none otherwise.
// kInvalid naming the key for any other setting.
Result<std::optional<int>> backendMinor(std::string_view setting, std::optional<int> read,
                                        bool cci);

}  // namespace burstlet::provider::cci
