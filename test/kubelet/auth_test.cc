// Kubelet API authentication and authorization: client certificates, bearer tokens through a
// TokenReview, SubjectAccessReview attributes, caching (allow longer than deny), and failures.
#include "kubelet/auth.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "mocks/fake_clock.h"
#include "mocks/run_sync.h"

namespace burstlet::kubelet {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::runSync;

class FakeReviews final : public ReviewApi {
 public:
  asio::awaitable<Result<std::optional<UserInfo>>> reviewToken(std::string token) override {
    ++tokenCalls;
    if (tokenError) {
      co_return *tokenError;
    }
    if (token == "good") {
      co_return std::optional<UserInfo>(UserInfo{"alice", "u1", {"devs"}, {}});
    }
    if (token == "metrics") {
      co_return std::optional<UserInfo>(UserInfo{"system:metrics-server", "", {}, {}});
    }
    co_return std::optional<UserInfo>();
  }
  asio::awaitable<Result<AccessDecision>> reviewAccess(UserInfo user, std::string node,
                                                       RequestAttributes attributes) override {
    ++accessCalls;
    lastNode = node;
    lastAttributes = attributes;
    lastUser = user;
    if (accessError) {
      co_return *accessError;
    }
    const bool allowed =
        (user.name == "alice" && attributes.subresource == "proxy") ||
        (user.name == "system:metrics-server" &&
         (attributes.subresource == "metrics" || attributes.subresource == "stats")) ||
        user.name == "kube-apiserver-kubelet-client";
    co_return AccessDecision{allowed, allowed ? "" : "no RBAC rule"};
  }
  int tokenCalls = 0;
  int accessCalls = 0;
  std::optional<Error> tokenError;
  std::optional<Error> accessError;
  std::string lastNode;
  RequestAttributes lastAttributes;
  UserInfo lastUser;
};

server::Request request(std::string method, std::string path, const std::string& token = "") {
  server::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  if (!token.empty()) {
    r.headers.emplace_back("Authorization", "Bearer " + token);
  }
  return r;
}

class AuthTest : public ::testing::Test {
 protected:
  AuthOutcome check(const server::Request& r) { return runSync(io_, auth_.check(r)); }

  boost::asio::io_context io_;
  FakeClock clock_;
  FakeReviews reviews_;
  RequestAuth auth_{reviews_, AuthOptions{.nodeName = "vk-1"}, clock_};
};

TEST(AttributesOf, MapsPathsAndMethodsLikeTheKubelet) {
  EXPECT_EQ(attributesOf("GET", "/stats/summary"), (RequestAttributes{"get", "stats"}));
  EXPECT_EQ(attributesOf("POST", "/stats/summary"), (RequestAttributes{"create", "stats"}));
  EXPECT_EQ(attributesOf("GET", "/metrics/resource"), (RequestAttributes{"get", "metrics"}));
  EXPECT_EQ(attributesOf("GET", "/logs/"), (RequestAttributes{"get", "log"}));
  EXPECT_EQ(attributesOf("GET", "/containerLogs/ns/p/c"), (RequestAttributes{"get", "proxy"}));
  EXPECT_EQ(attributesOf("POST", "/exec/ns/p/c"), (RequestAttributes{"create", "proxy"}));
  EXPECT_EQ(attributesOf("HEAD", "/pods"), (RequestAttributes{"get", "proxy"}));
  EXPECT_EQ(attributesOf("DELETE", "/pods"), (RequestAttributes{"delete", "proxy"}));
  // A path that only starts with the same letters is not under /stats.
  EXPECT_EQ(attributesOf("GET", "/statsx"), (RequestAttributes{"get", "proxy"}));
}

TEST_F(AuthTest, NoCredentialsIsUnauthorized) {
  auto out = check(request("GET", "/pods"));
  EXPECT_EQ(out.status, 401u);
  EXPECT_EQ(reviews_.tokenCalls, 0);
  auto malformed = request("GET", "/pods");
  malformed.headers.emplace_back("Authorization", "Basic YWxpY2U6cHc=");
  EXPECT_EQ(check(malformed).status, 401u);
}

TEST_F(AuthTest, UnknownTokenIsUnauthorizedAndTheTokenIsNotInTheMessage) {
  auto out = check(request("GET", "/pods", "s3cr3t-token"));
  EXPECT_EQ(out.status, 401u);
  EXPECT_EQ(out.message.find("s3cr3t-token"), std::string::npos);
  EXPECT_EQ(reviews_.accessCalls, 0);
}

TEST_F(AuthTest, AllowedTokenUserPassesWithTheRequestsAttributes) {
  auto out = check(request("POST", "/exec/ns/p/c", "good"));
  EXPECT_EQ(out.status, 0u) << out.message;
  EXPECT_EQ(out.user.name, "alice");
  EXPECT_EQ(reviews_.lastNode, "vk-1");
  EXPECT_EQ(reviews_.lastAttributes, (RequestAttributes{"create", "proxy"}));
  EXPECT_EQ(reviews_.lastUser.groups, std::vector<std::string>{"devs"});
}

TEST_F(AuthTest, DeniedUserIsForbiddenWithAMessageNamingTheAccess) {
  auto out = check(request("GET", "/stats/summary", "good"));
  EXPECT_EQ(out.status, 403u);
  EXPECT_NE(out.message.find("user=alice"), std::string::npos) << out.message;
  EXPECT_NE(out.message.find("subresource=stats"), std::string::npos) << out.message;
  EXPECT_NE(out.message.find("no RBAC rule"), std::string::npos) << out.message;
}

TEST_F(AuthTest, ClientCertificateNeedsNoTokenReview) {
  auto r = request("GET", "/containerLogs/ns/p/c");
  r.clientCertificate =
      server::ClientCertificate{"kube-apiserver-kubelet-client", {"system:masters"}};
  auto out = check(r);
  EXPECT_EQ(out.status, 0u) << out.message;
  EXPECT_EQ(reviews_.tokenCalls, 0);
  EXPECT_EQ(reviews_.lastUser.groups,
            (std::vector<std::string>{"system:masters", "system:authenticated"}));
}

TEST_F(AuthTest, DecisionsAreCachedAllowLongerThanDeny) {
  ASSERT_EQ(check(request("GET", "/pods", "good")).status, 0u);
  ASSERT_EQ(check(request("GET", "/stats/summary", "good")).status, 403u);
  EXPECT_EQ(reviews_.tokenCalls, 1);
  EXPECT_EQ(reviews_.accessCalls, 2);
  // Within 30 s both are answered from the cache.
  clock_.advance(20s);
  EXPECT_EQ(check(request("GET", "/pods", "good")).status, 0u);
  EXPECT_EQ(check(request("GET", "/stats/summary", "good")).status, 403u);
  EXPECT_EQ(reviews_.accessCalls, 2);
  // After 40 s the denial is asked again, the allowance is not.
  clock_.advance(20s);
  EXPECT_EQ(check(request("GET", "/pods", "good")).status, 0u);
  EXPECT_EQ(check(request("GET", "/stats/summary", "good")).status, 403u);
  EXPECT_EQ(reviews_.accessCalls, 3);
  EXPECT_EQ(reviews_.tokenCalls, 1);
  // After 2 min the token is reviewed again; after 5 min the allowance too.
  clock_.advance(2min);
  EXPECT_EQ(check(request("GET", "/pods", "good")).status, 0u);
  EXPECT_EQ(reviews_.tokenCalls, 2);
  EXPECT_EQ(reviews_.accessCalls, 3);
  clock_.advance(4min);
  EXPECT_EQ(check(request("GET", "/pods", "good")).status, 0u);
  EXPECT_EQ(reviews_.accessCalls, 4);
}

TEST_F(AuthTest, ReviewFailuresAreNotCachedAndAnswer503) {
  reviews_.tokenError = Error::make(ErrorCode::kUnavailable, "Down", "API server down");
  auto out = check(request("GET", "/pods", "good"));
  EXPECT_EQ(out.status, 503u);
  EXPECT_NE(out.message.find("API server down"), std::string::npos);
  reviews_.tokenError.reset();
  reviews_.accessError = Error::make(ErrorCode::kTimeout, "Timeout", "review timed out");
  EXPECT_EQ(check(request("GET", "/pods", "good")).status, 503u);
  reviews_.accessError.reset();
  EXPECT_EQ(check(request("GET", "/pods", "good")).status, 0u);
  EXPECT_EQ(reviews_.tokenCalls, 2);  // the failed review was not remembered
}

TEST_F(AuthTest, DisabledLetsEverythingThrough) {
  RequestAuth open(reviews_, AuthOptions{.enabled = false, .nodeName = "vk-1"}, clock_);
  auto out = runSync(io_, open.check(request("GET", "/exec/ns/p/c")));
  EXPECT_EQ(out.status, 0u);
  EXPECT_EQ(reviews_.accessCalls, 0);
}

TEST_F(AuthTest, CacheStaysBounded) {
  RequestAuth small(reviews_, AuthOptions{.nodeName = "vk-1", .maxCacheEntries = 3}, clock_);
  for (int i = 0; i < 10; ++i) {
    auto out = runSync(io_, small.check(request("GET", "/pods", "bad-" + std::to_string(i))));
    EXPECT_EQ(out.status, 401u);
  }
  EXPECT_EQ(reviews_.tokenCalls, 10);
  // The last one is still cached.
  (void)runSync(io_, small.check(request("GET", "/pods", "bad-9")));
  EXPECT_EQ(reviews_.tokenCalls, 10);
}

}  // namespace
}  // namespace burstlet::kubelet
