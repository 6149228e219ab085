// Pure decisions about a pod's life that a kubelet makes from its own knowledge, kept apart from
// I/O so that unit tests cover them: which conditions are the kubelet's to write, restart counts
// across backend pods that were lost and created again, the status of a pod whose backend pod
// disappeared, and the end of a terminating pod. The status itself: kubelet_status.h.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace burstlet::pod {

// On a provider pod: restarts counted before it existed, per container name, as JSON
// {"<container>":<count>}. Written when a lost backend pod is created again, read back so that a
// container's restartCount never goes back.
inline constexpr const char* kRestartBaseAnnotation = "burstlet.io/restart-base";

// The kubelet's own pod conditions; every other condition on the pod (PodScheduled,
// DisruptionTarget, readiness gates, ...) belongs to someone else and is never written.
bool kubeletOwnedCondition(std::string_view type);

// The condition of `type` in a pod status, or nullptr.
const boost::json::object* findCondition(const boost::json::value& status, std::string_view type);

// The restart base recorded on a provider pod (empty when none).
std::map<std::string, int64_t> restartBaseOf(const boost::json::value& providerPod);
// Removes the restart base annotation (and the annotations object when it is left empty), so
// that comparing a provider pod with its cluster pod does not see it as a difference.
void dropRestartBase(boost::json::value& providerPod);
// Records `base` on a pod about to go to the provider; nothing when empty.
void setRestartBase(boost::json::value& pod, const std::map<std::string, int64_t>& base);

// Whether the cluster pod's status shows that it ran on the provider: a container (or init
// container) running or terminated now or before, or phase Running.
bool ranOnProvider(const boost::json::value& clusterPod);

// What a kubelet does when a pod's containers vanished: restartPolicy Never means they are not
// run again (the pod fails); Always and OnFailure run them again (a lost container counts as
// failed).
bool restartsLostContainers(const boost::json::value& clusterPod);

// Kubelet's words for a container it can no longer find.
inline constexpr const char* kLostContainerReason = "ContainerStatusUnknown";
inline constexpr int64_t kLostContainerExitCode = 137;
// The pod-level reason when its backend pod disappeared.
inline constexpr const char* kBackendPodLostReason = "BackendPodLost";

// The status patch for a pod whose backend pod disappeared and that is not run again: phase
// Failed with reason BackendPodLost and `message`; every container not already terminated shows
// terminated with ContainerStatusUnknown / 137; Ready and ContainersReady False.
boost::json::value lostPodFailedPatch(const boost::json::value& clusterPod,
                                      const std::string& message, Clock::WallTime now);

// For a pod whose backend pod disappeared and that runs again: the restart base of the new
// backend pod (each container's restartCount + 1) ...
std::map<std::string, int64_t> nextRestartBase(const boost::json::value& clusterPod);
// ... and the status patch written once that backend pod is created (a restart is counted only
// then): each container waiting to start again, with restartCount from `base` and the lost run,
// ended at `lostAt`, as lastState; Ready and ContainersReady False since `now`.
boost::json::value lostPodRestartPatch(const boost::json::value& clusterPod,
                                       const std::map<std::string, int64_t>& base,
                                       Clock::WallTime lostAt, Clock::WallTime now);

// The kubelet's CrashLoopBackOff (v1.36: flowcontrol.Backoff starting at 10 s, doubled per
// restart up to 5 minutes, started over when the container failed more than 10 minutes after
// its last restart), kept per pod: a lost backend pod takes all its containers at once. As on a
// kubelet, the first restart goes at once and sets the back-off; each later loss waits it out.
struct RestartBackOffOptions {
  std::chrono::nanoseconds initial = std::chrono::seconds(10);
  std::chrono::nanoseconds max = std::chrono::minutes(5);
  std::chrono::nanoseconds reset = std::chrono::minutes(10);
};

// One pod's back-off (the controller keeps one per pod, for its UID).
struct RestartBackOff {
  std::string uid;
  // The wait of the next loss (0 until the first re-create) and when the last re-create went.
  std::chrono::nanoseconds delay{0};
  Clock::SteadyTime lastRestart{};
  // The loss no re-create has answered yet: when it was seen (steady for the wait, wall time
  // for the status), and whether its BackOff event was written (once per back-off step).
  std::optional<Clock::SteadyTime> lostAt;
  Clock::WallTime lostAtWall{};
  bool warned = false;
};

// How much longer the re-create of the current loss waits at `now`; zero when it may go (no
// loss, no restart yet, the wait is over, or the last restart was longer than `reset` before the
// loss). The kubelet's IsInBackOffSince with the loss as the container's finish time.
std::chrono::nanoseconds restartWait(const RestartBackOff& backOff, Clock::SteadyTime now,
                                     const RestartBackOffOptions& options);
// A re-create of the current loss went out at `now`: the back-off starts at `initial` (first
// restart, or a reset) or doubles up to `max`, and the loss is answered. The kubelet's Next.
void noteRestart(RestartBackOff& backOff, Clock::SteadyTime now,
                 const RestartBackOffOptions& options);

// A duration as Go prints it (the kubelet's messages): "10s", "1m20s", "5m0s", "250ms".
std::string goDuration(std::chrono::nanoseconds d);
// The kubelet's words for a container that waits out its back-off: the waiting message
// ("back-off 20s restarting failed container=c pod=web_ns(uid)") and the BackOff event's.
inline constexpr const char* kCrashLoopBackOffReason = "CrashLoopBackOff";
inline constexpr const char* kBackOffEventReason = "BackOff";
std::string crashLoopMessage(const boost::json::value& clusterPod, std::string_view container,
                             std::chrono::nanoseconds backOff);
std::string backOffEventMessage(const boost::json::value& clusterPod, std::string_view container);

// What a lost pod that runs again shows until its backend pod is created, as a provider pod for
// kubeletStatus(): each container (init and regular) waiting, with reason CrashLoopBackOff and
// crashLoopMessage while `backOff` is given, else ContainerCreating; the lost run, ended at
// `lostAt`, as lastState; restartCount unchanged (nothing ran again yet); the pod's reason and
// message as they are (a provider failure shown stays).
boost::json::value lostPodWaiting(const boost::json::value& clusterPod,
                                  std::optional<std::chrono::nanoseconds> backOff,
                                  Clock::WallTime lostAt);

// Whether an API error answers a write whose UID precondition failed: the object of that name
// is another one now.
bool isUidMismatch(const Error& error);

// metadata.deletionGracePeriodSeconds, or -1 when absent.
int64_t deletionGracePeriodOf(const boost::json::value& pod);
// When a terminating pod's grace period is over, plus `slack`: its deletionTimestamp (which the
// API server sets to the time of the delete plus the grace period) + slack; `now` + slack when
// the pod carries none (or an unreadable one).
Clock::WallTime terminationDeadline(const boost::json::value& pod, std::chrono::seconds slack,
                                    Clock::WallTime now);

// Names of the pod's ephemeral containers (spec.ephemeralContainers).
std::vector<std::string> ephemeralContainerNames(const boost::json::value& pod);

// The ephemeral container status shown for a container the provider cannot add: terminated, so
// that nothing (kubectl debug) waits for it forever, with the reason and message.
boost::json::value unsupportedEphemeralStatus(const boost::json::value& container,
                                              const std::string& reason,
                                              const std::string& message);

}  // namespace burstlet::pod
