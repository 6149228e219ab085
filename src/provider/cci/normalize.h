// Resource normalization: CCI runs a pod only in the sizes it sells, so before a pod goes to the
// backend its CPU and memory are raised to the nearest size CCI accepts, following the product's
// "资源自动规整" rules (DESIGN.md section 7, rules 1-5):
//
//   1. Every container (app and init) that is not BestEffort: CPU rounded up to a multiple of
//      250m, memory raised to at least 0.2Gi. The limit is the value when set, else the request;
//      afterwards requests = limits = that value.
//   2. Pod memory rounded up to a multiple of 1Gi.
//   3. Pod memory (Gi) / CPU (cores) below 2: memory raised to >= 2 x CPU (a multiple of 1Gi);
//      above 8: CPU raised to >= memory / 8 (a multiple of 250m).
//   4. More than 32 cores or 256Gi after that: rejected (kInvalid, reason "PodTooLarge").
//   5. What rules 2-3 added at pod level goes to the first non-BestEffort app container.
//
// The pod-level value is max(sum over app containers, max over init containers), per resource,
// as the scheduler counts it. The result is recorded in the pod's annotations
// (kBurstPodCpuAnnotation, kBurstPodMemoryAnnotation) and returned.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>

#include "common/quantity.h"
#include "common/result.h"

namespace burstlet::provider::cci {

inline constexpr const char* kBurstPodCpuAnnotation = "virtual-kubelet.cci.io/burst-pod-cpu";
inline constexpr const char* kBurstPodMemoryAnnotation = "virtual-kubelet.cci.io/burst-pod-memory";

struct NormalizeResult {
  Quantity cpu;     // pod-level CPU after normalization, a multiple of 250m
  Quantity memory;  // pod-level memory after normalization, a multiple of 1Gi
};

// Normalizes `pod` (a v1 Pod as the API returns it) in place: container requests and limits,
// and the two annotations. Errors, with the pod left unchanged:
//   kInvalid "InvalidQuantity": a cpu or memory quantity is malformed or negative; the message
//     names the field (e.g. "spec.containers[1].resources.limits.cpu").
//   kInvalid "NoCPURequest": every app container is BestEffort, so nothing sizes the pod (CCI
//     needs at least one container with CPU > 0; see validate.h).
//   kInvalid "PodTooLarge": rule 4.
Result<NormalizeResult> normalizePod(boost::json::value& pod);

// A resource quantity field of a pod: nullopt when absent or null. Errors are kInvalid
// "InvalidQuantity" with the message starting with `path`: malformed, negative, or neither a
// string nor an integer (the API's JSON decoding accepts a bare integer too).
Result<std::optional<Quantity>> resourceQuantity(const boost::json::value* field,
                                                 const std::string& path);

}  // namespace burstlet::provider::cci
