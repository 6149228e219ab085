// The Kubernetes release an API server reports (GET /version): what the virtual node reports as
// its kubelet version (node/node_version.h), and what the backend provider checks pods against.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/rest.h"

namespace burstlet::kube {

// "v1.36.3" from a gitVersion such as "v1.36.3", "v1.36.3-rc.1", "v1.36.3+k3s1" or
// "1.36.3-eks-4c5b": major.minor.patch with a leading "v", any prerelease or build suffix cut.
// std::nullopt when it does not start with three numbers.
std::optional<std::string> kubernetesRelease(std::string_view gitVersion);

// The API server's release: GET /version, its gitVersion cut by kubernetesRelease(). kInvalid
// "BadVersion" when the answer has none.
boost::asio::awaitable<Result<std::string>> serverRelease(RestClient& client);

// The minor of a "v1.NN.P" release (19 for "v1.19.16"); nullopt for anything else.
std::optional<int> minorOf(std::string_view release);

}  // namespace burstlet::kube
