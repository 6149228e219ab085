// How the parts of the cci provider name the copies a pod needs: "<kind>/<name>" ids, the
// references of a pod, and the backend resource of a kind of copy.
#pragma once

#include <boost/json/value.hpp>
#include <set>
#include <string>
#include <string_view>

#include "kube/resource.h"

namespace burstlet::provider::cci {

// "<kind>/<name>": how a copy (or a backend volume, kind "PersistentVolume") is named in
// reference sets and in the CopyLedger.
std::string copyId(std::string_view kind, std::string_view name);

// Copies a pod references by name ("ConfigMap/<name>", "Secret/<name>",
// "PersistentVolumeClaim/<name>"), names as written in the pod: the sweep runs it over backend
// pods (backend names), createPod over the source pod to know which references may be absent.
// `required` collects the ones a kubelet would wait for: volumes and projected sources not
// marked optional. Image pull secrets are never required (a kubelet pulls without them).
void referencesOf(const boost::json::value& pod, std::set<std::string>* all,
                  std::set<std::string>* required);

// The backend resource of copies of `kind` ("ConfigMap", "Secret", else claims).
const kube::ResourceRef& copyResource(std::string_view kind);

}  // namespace burstlet::provider::cci
