// Helpers CciProvider's files share (cci_provider.cc, cci_pods.cc, cci_copies.cc); not part of
// the provider's interface.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <set>
#include <string>
#include <string_view>

#include "provider/cci/cci_provider.h"

namespace burstlet::provider::cci::internal {

// Waits `d` on the current executor.
boost::asio::awaitable<void> sleepFor(std::chrono::milliseconds d);

// "<kind>/<name>": how a copy is named in reference sets.
std::string copyId(std::string_view kind, std::string_view name);

// Copies a pod references by name ("ConfigMap/<name>", "Secret/<name>",
// "PersistentVolumeClaim/<name>"), names as written in the pod: the sweep runs it over backend
// pods (backend names), createPod over the source pod to know which references may be absent.
// `required` collects the ones a kubelet would wait for: volumes and projected sources not
// marked optional. Image pull secrets are never required (a kubelet pulls without them).
void referencesOf(const boost::json::value& pod, std::set<std::string>* all,
                  std::set<std::string>* required);

// The label selector of the backend objects this node owns.
std::string ourSelector(const CciOptions& o);

}  // namespace burstlet::provider::cci::internal
