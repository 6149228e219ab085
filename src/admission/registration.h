// The MutatingWebhookConfiguration through which the API server calls burstlet's webhook: pods
// on create, and DaemonSets on create and update (placement.h daemonSetPatch); failurePolicy
// Ignore (while burstlet is down new pods are admitted unchanged
// and stay local), a timeout well under the API server's, and namespaces skipped (kube-system,
// burstlet's own).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "kube/resource.h"
#include "kube/rest.h"

namespace burstlet::admission {

extern const kube::ResourceRef kMutatingWebhookConfigurations;

// The webhook's path on burstlet's listener.
inline constexpr std::string_view kWebhookPath = "/mutate-pods";

struct Registration {
  std::string name;  // of the configuration: one per virtual node
  // Where the API server sends reviews: https://host:port/mutate-pods.
  std::string url;
  std::string caBundlePem;  // what the API server trusts for that URL
  std::vector<std::string> skipNamespaces;
  int timeoutSeconds = 5;
};

// The configuration object for `r`.
boost::json::value webhookConfiguration(const Registration& r);

// Creates the configuration, or replaces one of that name whose webhooks differ (a new CA or
// URL after a restart).
boost::asio::awaitable<Status> ensureRegistration(kube::RestClient& cluster, Registration r);

}  // namespace burstlet::admission
