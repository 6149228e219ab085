// The daemon's leader election (config leaderElection, kube/leader_election.h): the Lease's
// place and this replica's name resolved from the configuration and the pod's environment.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "common/result.h"
#include "daemon/config.h"
#include "kube/leader_election.h"
#include "kube/rest.h"

namespace burstlet::daemon {

// Namespace: leaderElection.namespace, else $POD_NAMESPACE, else kube-system. Lease:
// leaderElection.leaseName, else burstlet-<node name> (one Lease per virtual node: replicas of
// different nodes never wait for each other). Identity: leaderElection.identity, else $POD_NAME,
// else the host name, with a random suffix. The guard is the node's heartbeat Lease.
kube::LeaderElectionOptions leaderElectionOptions(const Config& config);

// The label the working replica puts on its own pod: the chart's Service selects it, so that
// webhook requests reach the replica that serves them, never a standby.
inline constexpr const char* kLeaderLabel = "burstlet.io/leader";

// Sets (leader) or removes (a replica starting, maybe restarted after it lost the Lease) the
// label on this replica's pod, $POD_NAMESPACE/$POD_NAME; nothing to do (ok) without $POD_NAME.
boost::asio::awaitable<Status> markOwnPod(kube::RestClient& cluster, bool leader);

}  // namespace burstlet::daemon
