// What updatePod writes to a backend pod, decided without I/O: the labels, annotations and images
// patch only when it changes something, and the ephemeral containers (kubectl debug) the backend
// pod lacks. Ephemeral containers can only be added, never changed or removed (the API's rule),
// so a name the backend pod has already is never sent again.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace burstlet::provider::cci {

// The strategic merge patch that makes `backendPod` carry the labels, annotations and container
// images of `translated` (toBackendPod of the cluster pod): new keys set, keys that came from the
// source and went away removed (null), the backend's own keys left alone; images by container
// name (strategic merge keys containers by name).
boost::json::value labelsAndImagesPatch(const boost::json::value& backendPod,
                                        const boost::json::value& translated);

// Whether the strategic merge `patch` ({"metadata":{"labels":..,"annotations":..},
// "spec":{"containers":[{name,image}],..}}, null removing a key) would change `backendPod`.
bool patchChanges(const boost::json::value& backendPod, const boost::json::value& patch);

// The containers of `wanted` (backend form, toBackendEphemeralContainers) whose names
// `backendPod` does not have among its ephemeral containers, in wanted's order.
boost::json::array missingEphemeralContainers(const boost::json::value& backendPod,
                                              const boost::json::array& wanted);

// Whether `answer` (the pod the ephemeralcontainers subresource returned) has every container of
// `added`: an old API (CCI's Kubernetes 1.19, where the subresource took another kind) may accept
// the request and add nothing.
bool hasEphemeralContainers(const boost::json::value& answer, const boost::json::array& added);

// kInvalid "EphemeralContainersNotSupported": `backend` (its address and namespace) cannot add
// the ephemeral containers `added` to pod `podKey`; `why` says what it answered.
Error ephemeralContainersNotSupported(std::string_view backend, std::string_view podKey,
                                      const boost::json::array& added, std::string_view why);

// Whether `backendPod` runs containers burstlet injected (the network proxy) that must now be told
// to stop (kInjectedStopAnnotation): its restartPolicy is Never or OnFailure, every one of the
// source's own app containers has terminated (successfully, under OnFailure), it is not being
// deleted, and it has not been told yet.
bool injectedShouldStop(const boost::json::value& backendPod);

}  // namespace burstlet::provider::cci
