#include "network/proxy_credentials.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "mocks/fake_clock.h"
#include "mocks/fake_transport.h"
#include "mocks/run_sync.h"
#include "provider/fake/fake_provider.h"

namespace burstlet::network {
namespace {

namespace json = boost::json;
using testing::FakeTransport;
using testing::jsonResponse;

constexpr const char* kToken = "eyJhbGciOiJSUzI1NiJ9.secret-token-value";
constexpr const char* kCa = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

struct Harness {
  boost::asio::io_context io;
  testing::FakeClock clock{*parseRfc3339("2026-12-07T10:00:00Z")};
  unsigned tokenStatus = 201;
  FakeTransport* transport = nullptr;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<provider::FakeProvider> fake;

  Harness() {
    auto t = std::make_unique<FakeTransport>([this](const kube::HttpRequest& r) {
      if (r.target.find("/configmaps/kube-root-ca.crt") != std::string::npos) {
        return Result<kube::HttpResponse>(jsonResponse(
            200, json::serialize(json::object{{"data", json::object{{"ca.crt", kCa}}}})));
      }
      if (r.target.find("/serviceaccounts/burstlet-netproxy/token") != std::string::npos) {
        if (tokenStatus != 201) {
          return Result<kube::HttpResponse>(jsonResponse(
              tokenStatus,
              R"({"kind":"Status","status":"Failure","reason":"Forbidden","message":"no"})"));
        }
        return Result<kube::HttpResponse>(jsonResponse(
            201, json::serialize(json::object{
                     {"status", json::object{{"token", kToken},
                                             {"expirationTimestamp", "2026-12-07T11:00:00Z"}}}})));
      }
      return Result<kube::HttpResponse>(jsonResponse(404, R"({"kind":"Status","code":404})"));
    });
    transport = t.get();
    client = std::make_unique<kube::RestClient>(io.get_executor(), std::move(t),
                                                kube::ClientConfig{}, kube::RestOptions{});
    auto p =
        provider::FakeProvider::create(io.get_executor(), provider::FakeProviderOptions{}, clock);
    fake = std::move(*p);
  }

  ProxyCredentialsOptions options() const {
    ProxyCredentialsOptions o;
    o.serviceAccountNamespace = "burstlet";
    o.apiServer = {"192.168.0.10", 6443, "kubernetes.default.svc"};
    return o;
  }
};

TEST(ProxyCredentials, WritesTokenCaAndServerIntoTheNodeSecret) {
  Harness h;
  ProxyCredentials creds(*h.client, *h.fake, h.options(), h.clock);
  auto expires = testing::runSync(h.io, creds.refresh());
  ASSERT_TRUE(expires.ok()) << expires.error().toString();
  EXPECT_EQ(*expires, *parseRfc3339("2026-12-07T11:00:00Z"));
  auto secret = h.fake->nodeSecret("netproxy");
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret->at("token"), kToken);
  EXPECT_EQ(secret->at("ca.crt"), kCa);
  EXPECT_EQ(secret->at("server"), "https://192.168.0.10:6443");
  EXPECT_EQ(secret->at("tls-server-name"), "kubernetes.default.svc");
  // The request: the ServiceAccount in burstlet's namespace, an hour's token.
  bool asked = false;
  for (const auto& r : h.transport->requests()) {
    if (r.target.find("/namespaces/burstlet/serviceaccounts/burstlet-netproxy/token") !=
        std::string::npos) {
      asked = true;
      EXPECT_EQ(json::parse(r.body).at("spec").at("expirationSeconds").as_int64(), 3600);
    }
  }
  EXPECT_TRUE(asked);
}

TEST(ProxyCredentials, ARefusedTokenIsAnErrorNamingTheAccount) {
  Harness h;
  h.tokenStatus = 403;
  ProxyCredentials creds(*h.client, *h.fake, h.options(), h.clock);
  auto r = testing::runSync(h.io, creds.refresh());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kForbidden);
  EXPECT_NE(r.error().message.find("burstlet/burstlet-netproxy"), std::string::npos);
  EXPECT_FALSE(h.fake->nodeSecret("netproxy").has_value());
}

TEST(ProxyCredentials, RenewsBeforeTheTokenExpires) {
  Harness h;
  ProxyCredentials creds(*h.client, *h.fake, h.options(), h.clock);
  Latch stop;
  bool done = false;
  boost::asio::co_spawn(h.io, creds.run(stop), [&done](const std::exception_ptr&) { done = true; });
  h.io.run_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(creds.signals().ready.isSet());
  auto tokenRequests = [&h] {
    int n = 0;
    for (const auto& r : h.transport->requests()) {
      n += r.target.find("/token") != std::string::npos ? 1 : 0;
    }
    return n;
  };
  EXPECT_EQ(tokenRequests(), 1);
  // The token lasts an hour: renewed at 80% (48 min), not before.
  h.clock.advance(std::chrono::minutes(47));
  h.io.restart();
  h.io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(tokenRequests(), 1);
  h.clock.advance(std::chrono::minutes(2));
  h.io.restart();
  h.io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(tokenRequests(), 2);
  stop.set();
  h.io.restart();
  h.io.run_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace burstlet::network
