// Backend events as the cluster pod shows them. EventMirror (event_mirror.h) mirrors the events
// of the backend pods onto their source pods; this file decides what each one becomes.
//
// The backend is not the cluster: its scheduler placed the pod on one of its own nodes, and its
// controllers and kubelets name that node and the backend's copy of the pod. None of that may
// read as if it were the cluster's (the cluster's scheduler already said the pod went to the
// virtual node). So:
// - The backend scheduler's events are not shown as such. A FailedScheduling becomes one
//   Warning kBackendPendingReason in burstlet's words, shown when the backend event appears and
//   not again for each of the scheduler's retries (the event's count); a Preempted becomes a
//   Warning kBackendPreemptedReason. Scheduled and the rest are the backend's business.
// - The node controllers' events (node-controller, taint-eviction-controller) and the cluster
//   autoscaler's speak of the backend's nodes only: not shown.
// - Everything else (the kubelet's Pulling, Pulled, Created, Started, Killing, BackOff,
//   Unhealthy, FailedMount, ..., and whatever the backend's own components say) is shown, with
//   the backend's node named as the virtual node and the backend pod (name, namespace, uid) as
//   the source pod. An event about a container the backend injected is not shown.
// Mirrored events are recorded by burstlet's EventRecorder: their source is the virtual node.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "kube/events.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

inline constexpr const char* kBackendPendingReason = "BackendPending";
inline constexpr const char* kBackendPreemptedReason = "BackendPreempted";

// Reduces a backend event to what mirroring reads (the event informer's transform, so that
// thousands of them stay small): metadata name, namespace, uid and resourceVersion;
// involvedObject kind, name, uid and fieldPath; type, reason, message, count (series.count for
// events written through events.k8s.io, which have none); source component and host;
// reportingComponent and reportingInstance.
void trimBackendEvent(boost::json::value& event);

// How often the backend saw the event: its count, at least 1.
int64_t backendEventCount(const boost::json::value& event);

struct MirroredEvent {
  kube::EventType type = kube::EventType::kNormal;
  std::string reason;
  std::string message;
  std::string fieldPath;  // the container it is about, e.g. "spec.containers{app}"; may be empty
  // Shown when the backend event first appears, not again when its count grows.
  bool once = false;
};

struct MirrorOptions {
  std::string provider;  // named in burstlet's words: "the <provider> backend ..."
  std::string nodeName;  // the virtual node
};

// What the source pod `source` shows of `event` (trimmed or whole), an event of its backend pod
// `backendPod`; nullopt for nothing (see the top of this file).
std::optional<MirroredEvent> mirroredEvent(const boost::json::value& event,
                                           const boost::json::value& backendPod,
                                           const PodRef& source, const MirrorOptions& options);

}  // namespace burstlet::provider::cci
