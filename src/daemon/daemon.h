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

// `burstlet cleanup`: deletes the backend namespace of the cci provider (and the backend
// volumes made for it) and waits until it is gone. Idempotent. Returns the exit code.
int cleanup(const Config& config, std::chrono::milliseconds timeout, const std::string& version);

}  // namespace burstlet::daemon
