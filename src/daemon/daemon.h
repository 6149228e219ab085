// The burstlet process: one io_context run by a few threads, each part on its own strand (node
// controller, pod controller, event recorder, health server), stopped in order on SIGTERM or
// SIGINT: the pod controller finishes the syncs it is in, then the node releases its lease.
#pragma once

#include <chrono>
#include <string>

#include "daemon/config.h"

namespace burstlet::daemon {

// Runs until a signal; returns the process exit code. Problems found before anything starts
// (configuration, kubeconfig, listen address, provider state) are printed as one clear line and
// give exit code 1.
int run(const Config& config, const std::string& version);

// `burstlet cleanup`: removes what virtual node config.nodeName made on the cci provider's
// backend and waits until its pods are gone; the backend namespace (with its Network and the
// backend volumes made for it) goes too once no other virtual node uses it, or at once with
// `allNodes` (provider/cci/cleanup.h). Prints what it removed and whether the namespace stayed
// (and for which nodes). Idempotent. Returns the exit code. With `stopDeployment`
// ("<namespace>/<name>", the Deployment burstlet runs as) that Deployment is scaled to 0 and its
// pods waited for first (stop_deployment.h); cleanup starts only once they are gone, within
// `timeout` for both.
int cleanup(const Config& config, std::chrono::milliseconds timeout, bool allNodes,
            const std::string& stopDeployment, const std::string& version);

}  // namespace burstlet::daemon
