// Authentication and authorization of kubelet API requests, as the kubelet does them: a client
// certificate the TLS listener verified, or a bearer token the cluster confirms with a
// TokenReview; then a SubjectAccessReview on resource `nodes`, name the node, subresource from
// the path and verb from the method. Both reviews are cached briefly (a denial shorter than an
// allowance) so a scrape or a log stream does not cost two API calls.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "server/exchange.h"

namespace burstlet::kube {
class RestClient;
}  // namespace burstlet::kube

namespace burstlet::kubelet {

namespace asio = boost::asio;

struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
};

// What a request asks of the node, as a SubjectAccessReview's resourceAttributes (resource
// "nodes", name the node).
struct RequestAttributes {
  std::string verb;         // get, create, update, patch, delete
  std::string subresource;  // stats, metrics, log or proxy
  bool operator==(const RequestAttributes&) const = default;
};

// The kubelet's mapping: /stats... → stats, /metrics... → metrics, /logs... → log, everything
// else (containerLogs, exec, attach, portForward, pods, runningpods, healthz) → proxy; GET and
// HEAD → get, POST → create, PUT → update, PATCH → patch, DELETE → delete.
RequestAttributes attributesOf(std::string_view method, std::string_view path);

struct AccessDecision {
  bool allowed = false;
  std::string reason;  // the authorizer's, when it gave one
};

// The cluster's review APIs: the I/O seam of RequestAuth.
class ReviewApi {
 public:
  virtual ~ReviewApi() = default;
  // The token's user; std::nullopt when the cluster does not authenticate it.
  virtual asio::awaitable<Result<std::optional<UserInfo>>> reviewToken(std::string token) = 0;
  virtual asio::awaitable<Result<AccessDecision>> reviewAccess(UserInfo user, std::string node,
                                                               RequestAttributes attributes) = 0;
};

// TokenReview and SubjectAccessReview through the cluster's API server (burstlet's identity
// needs `create` on both: the system:auth-delegator role).
class ApiReviews final : public ReviewApi {
 public:
  explicit ApiReviews(kube::RestClient& cluster) : cluster_(cluster) {}
  asio::awaitable<Result<std::optional<UserInfo>>> reviewToken(std::string token) override;
  asio::awaitable<Result<AccessDecision>> reviewAccess(UserInfo user, std::string node,
                                                       RequestAttributes attributes) override;

 private:
  kube::RestClient& cluster_;
};

struct AuthOptions {
  // Off: every request is served without checks (local debugging only; the daemon warns).
  bool enabled = true;
  std::string nodeName;
  // Upstream virtual-kubelet's and the kubelet's defaults.
  std::chrono::milliseconds authenticatedTtl{std::chrono::minutes(2)};
  std::chrono::milliseconds unauthenticatedTtl{std::chrono::seconds(30)};
  std::chrono::milliseconds allowedTtl{std::chrono::minutes(5)};
  std::chrono::milliseconds deniedTtl{std::chrono::seconds(30)};
  // Entries per cache; a full cache drops its expired entries, then everything.
  size_t maxCacheEntries = 4096;
};

// How a request fares: status 0 when it may go on, else the answer (401, 403, 503).
struct AuthOutcome {
  unsigned status = 0;
  std::string message;
  UserInfo user;
};

// Thread-safe: handlers of many connections call check() concurrently.
class RequestAuth {
 public:
  RequestAuth(ReviewApi& api, AuthOptions options, const Clock& clock = realClock());

  asio::awaitable<AuthOutcome> check(const server::Request& request);

  struct Counters {
    size_t tokenReviews = 0;
    size_t accessReviews = 0;
  };
  Counters counters() const;

 private:
  struct TokenEntry {
    std::optional<UserInfo> user;
    Clock::SteadyTime expires;
  };
  struct AccessEntry {
    AccessDecision decision;
    Clock::SteadyTime expires;
  };
  asio::awaitable<Result<std::optional<UserInfo>>> authenticate(std::string token);
  asio::awaitable<Result<AccessDecision>> authorize(const UserInfo& user,
                                                    const RequestAttributes& attributes);
  template <typename Entry>
  void store(std::unordered_map<std::string, Entry>& cache, const std::string& key, Entry entry);

  ReviewApi& api_;
  const AuthOptions options_;
  const Clock& clock_;
  mutable std::mutex mu_;  // guards the caches and counters
  // Keyed by the SHA-256 of the token: the cache holds no token.
  std::unordered_map<std::string, TokenEntry> tokens_;
  std::unordered_map<std::string, AccessEntry> access_;
  Counters counters_;
};

}  // namespace burstlet::kubelet
