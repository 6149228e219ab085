// The pod status a v1.36 kubelet writes, built whole from the provider's pod and what burstlet
// knows itself (the cluster pod's spec and its status so far). Pure functions, so that unit tests
// cover every rule.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace burstlet::pod {

// The status to show for `clusterPod` given its provider pod (metadata and status):
// - phase: the provider's, but never back from Running to Pending (a provider pod created again
//   starts Pending) and never out of Succeeded/Failed (statusPatch keeps those);
// - startTime: the cluster's once it has one;
// - observedGeneration: the pod's metadata.generation, on the status and on each condition;
// - container statuses: one per container of the spec, in the kubelet's order (init containers
//   in spec order, the others by name); a container the provider does not report waits with the
//   kubelet's reason (PodInitializing when the pod has init containers, else ContainerCreating,
//   or `waitingReason`/`waitingMessage` when given); restartCount never goes back and adds the
//   restart base recorded on the provider pod; the cluster's lastState is kept while the
//   provider has none; volumeMounts from the spec; for containers the provider reports,
//   allocatedResources = the spec's requests and resources = those requests with the limits the
//   provider reports (else the spec's);
// - conditions: only the kubelet's own (PodReadyToStartContainers, Initialized,
//   ContainersReady, Ready), computed from the phase and container statuses as the kubelet
//   words them, Ready with the pod's readiness gates; each written whole; a condition whose
//   status did not change keeps the cluster's lastTransitionTime.
// Pod-level reason and message are the provider's; podIP(s) and hostIP(s) as provided.
boost::json::value kubeletStatus(const boost::json::value& clusterPod,
                                 const boost::json::value& providerPod, Clock::WallTime now,
                                 std::string_view waitingReason = {},
                                 std::string_view waitingMessage = {});

// The status a deleted pod ends with once its provider pod is gone, as the kubelet's
// TerminatePod leaves it: every container not terminated shows terminated with
// ContainerStatusUnknown / 137 ("could not be located when the pod was terminated"); the phase
// Succeeded when every container ended with 0, else Failed (a terminal phase stays); Ready and
// ContainersReady False with PodCompleted / PodFailed.
boost::json::value terminalStatus(const boost::json::value& clusterPod, Clock::WallTime now);

// The kubelet's words.
inline constexpr const char* kContainerCreating = "ContainerCreating";
inline constexpr const char* kPodInitializing = "PodInitializing";
inline constexpr const char* kTerminatedUnknownMessage =
    "The container could not be located when the pod was terminated";

}  // namespace burstlet::pod
