// The webhook's own CA and serving certificate kept in a Secret: reused, created, renewed near
// expiry (the CA kept), CA rotation trusted before it signs, a conflicting writer, a damaged
// Secret replaced without key material in the log, and the loop that serves and registers.
#include "daemon/webhook_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <sstream>

#include "common/base64.h"
#include "common/log.h"
#include "kube/json_path.h"
#include "kube/resource.h"
#include "mocks/fake_clock.h"
#include "mocks/memory_api.h"
#include "mocks/run_sync.h"
#include "server/certificate_check.h"

namespace burstlet::daemon {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::hours;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kDay = hours(24);
const std::string kNs = "burstlet-system";
const std::string kSecret = "burstlet-webhook-vk";

// Forwards to another transport, after letting the test act on each request first (as another
// client writing between our read and our write).
class InterceptTransport final : public kube::Transport {
 public:
  InterceptTransport(std::unique_ptr<kube::Transport> inner,
                     std::function<void(const kube::HttpRequest&)> before)
      : inner_(std::move(inner)), before_(std::move(before)) {}
  asio::awaitable<Result<kube::HttpResponse>> send(kube::HttpRequest request) override {
    before_(request);
    co_return co_await inner_->send(std::move(request));
  }
  asio::awaitable<Result<std::unique_ptr<kube::ResponseStream>>> stream(
      kube::HttpRequest request) override {
    co_return co_await inner_->stream(std::move(request));
  }

 private:
  std::unique_ptr<kube::Transport> inner_;
  std::function<void(const kube::HttpRequest&)> before_;
};

struct Fixture {
  asio::io_context io;
  testing::FakeClock clock;
  testing::MemoryApi api;
  std::function<void(const kube::HttpRequest&)> before = [](const kube::HttpRequest&) {};
  std::unique_ptr<kube::RestClient> client = std::make_unique<kube::RestClient>(
      io.get_executor(),
      std::make_unique<InterceptTransport>(api.transport(),
                                           [this](const kube::HttpRequest& r) { before(r); }),
      kube::ClientConfig{}, kube::RestOptions{});
  const std::string secrets = kube::resources::kSecrets.path(kNs);

  Fixture() { api.put("/api/v1/namespaces", json::object{{"metadata", {{"name", kNs}}}}); }

  static WebhookCertOptions options() {
    WebhookCertOptions o;
    o.ns = kNs;
    o.secretName = kSecret;
    o.hosts = {"127.0.0.1", "burstlet.example"};
    o.certValidity = 30 * kDay;
    o.caValidity = 300 * kDay;
    o.checkInterval = hours(1);
    o.caOverlap = hours(1);
    return o;
  }

  Result<WebhookCertSet> ensure() {
    WebhookCertificates certs(options(), clock);
    return testing::runSync(io, certs.ensure(*client));
  }
  json::value stored() const {
    auto s = api.get(secrets, kSecret);
    return s ? *s : json::value();
  }
  std::string data(std::string_view key) const {
    return base64Decode(kube::stringAt(stored(), {"data", key})).value_or("");
  }
  void store(const std::map<std::string, std::string>& data) {
    json::object d;
    for (const auto& [k, v] : data) {
      d[k] = base64Encode(v);
    }
    api.put(secrets, json::object{{"metadata", {{"name", kSecret}, {"namespace", kNs}}},
                                  {"type", "kubernetes.io/tls"},
                                  {"data", std::move(d)}});
  }
};

std::vector<std::string> split(const std::string& bundle) {
  auto s = server::splitCertificates(bundle);
  return s.ok() ? *s : std::vector<std::string>{};
}

server::PemPair make(const Clock& clock, std::chrono::seconds validity, const server::PemPair* ca,
                     std::vector<std::string> hosts = {"127.0.0.1", "burstlet.example"}) {
  server::CertificateSpec spec;
  if (ca == nullptr) {
    spec.commonName = "test CA";
    spec.isCa = true;
  } else {
    spec.hosts = std::move(hosts);
  }
  spec.validity = validity;
  auto pair = server::generateCertificate(spec, clock, ca);
  EXPECT_TRUE(pair.ok()) << pair.error().toString();
  return pair.ok() ? *pair : server::PemPair{};
}

TEST(WebhookCertificatesTest, OptionsFromTheConfiguration) {
  Config c;
  c.nodeName = "vk-1";
  c.admission.certValidity = std::chrono::minutes(1);
  unsetenv("POD_NAMESPACE");  // NOLINT(concurrency-mt-unsafe)
  EXPECT_EQ(ownNamespace(c.admission), "kube-system");
  setenv("POD_NAMESPACE", "burstlet-system", 1);  // NOLINT(concurrency-mt-unsafe)
  EXPECT_EQ(ownNamespace(c.admission), "burstlet-system");
  c.admission.ns = "mine";
  EXPECT_EQ(ownNamespace(c.admission), "mine");
  unsetenv("POD_NAMESPACE");  // NOLINT(concurrency-mt-unsafe)
  const WebhookCertOptions o = webhookCertOptions(c, {"10.0.0.5"});
  EXPECT_EQ(o.ns, "mine");
  EXPECT_EQ(o.secretName, "burstlet-webhook-vk-1");
  EXPECT_EQ(o.hosts, std::vector<std::string>{"10.0.0.5"});
  EXPECT_EQ(o.certValidity, std::chrono::minutes(1));
  testing::FakeClock clock;
  // Checked every sixth of the validity (renewed with a third left), between 1 s and 1 h.
  EXPECT_EQ(WebhookCertificates(o, clock).checkInterval(), std::chrono::seconds(10));
  EXPECT_EQ(WebhookCertificates(Fixture::options(), clock).checkInterval(), hours(1));
  WebhookCertOptions year;
  EXPECT_EQ(WebhookCertificates(year, clock).checkInterval(), hours(1));
}

TEST(WebhookCertificatesTest, CreatedWhenAbsentThenReusedAcrossRestarts) {
  Fixture f;
  auto first = f.ensure();
  ASSERT_TRUE(first.ok()) << first.error().toString();
  EXPECT_EQ(f.api.count(kube::Verb::post, f.secrets), 1);
  const json::value s = f.stored();
  EXPECT_EQ(kube::stringAt(s, {"type"}), "kubernetes.io/tls");
  EXPECT_EQ(kube::stringAt(s, {"metadata", "labels", "burstlet.io/managed-by"}), "burstlet");
  EXPECT_EQ(f.data("tls.crt"), first->serving.certificate);
  EXPECT_EQ(f.data("tls.key"), first->serving.key);
  EXPECT_EQ(f.data("ca.crt"), first->caBundle);
  ASSERT_EQ(split(first->caBundle).size(), 1U);
  EXPECT_TRUE(server::keyMatches({first->caBundle, f.data("ca.key")}));
  EXPECT_TRUE(server::issuedBy(first->serving.certificate, first->caBundle));
  EXPECT_TRUE(server::coversHosts(first->serving.certificate, Fixture::options().hosts));
  auto facts = server::inspectCertificate(first->serving.certificate);
  ASSERT_TRUE(facts.ok());
  EXPECT_EQ(facts->notAfter - f.clock.now(), 30 * kDay);
  EXPECT_EQ(server::inspectCertificate(first->caBundle)->notAfter - f.clock.now(), 300 * kDay);

  // A restart a day later: the same certificates, nothing written.
  f.clock.advance(kDay);
  auto again = f.ensure();
  ASSERT_TRUE(again.ok()) << again.error().toString();
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(f.api.writes(), 1);
}

TEST(WebhookCertificatesTest, ServingRenewedWithAThirdLeftKeepingTheCa) {
  Fixture f;
  auto first = f.ensure();
  ASSERT_TRUE(first.ok());
  f.clock.advance(19 * kDay);  // 11 days left of 30: not yet
  EXPECT_EQ(*f.ensure(), *first);
  f.clock.advance(kDay + hours(1));  // under 10 days left
  auto renewed = f.ensure();
  ASSERT_TRUE(renewed.ok()) << renewed.error().toString();
  EXPECT_NE(renewed->serving.certificate, first->serving.certificate);
  EXPECT_NE(renewed->serving.key, first->serving.key);
  EXPECT_EQ(renewed->caBundle, first->caBundle);  // the registration stays as it is
  EXPECT_TRUE(server::issuedBy(renewed->serving.certificate, renewed->caBundle));
  EXPECT_EQ(f.api.count(kube::Verb::put, f.secrets + "/" + kSecret), 1);
  EXPECT_EQ(f.data("tls.crt"), renewed->serving.certificate);

  // Hosts changed in the configuration: a new serving certificate at once, the same CA.
  WebhookCertOptions o = Fixture::options();
  o.hosts = {"10.0.0.7"};
  WebhookCertificates other(o, f.clock);
  auto moved = testing::runSync(f.io, other.ensure(*f.client));
  ASSERT_TRUE(moved.ok());
  EXPECT_TRUE(server::coversHosts(moved->serving.certificate, {"10.0.0.7"}));
  EXPECT_EQ(moved->caBundle, first->caBundle);
}

TEST(WebhookCertificatesTest, NewCaIsTrustedBesideTheOldOneBeforeItSigns) {
  Fixture f;
  // A CA made 250 days ago for 300: 50 days left, under a third. Its serving certificate is
  // fresh.
  testing::FakeClock past(f.clock.now() - 250 * kDay);
  const server::PemPair oldCa = make(past, 300 * kDay, nullptr);
  const server::PemPair serving = make(f.clock, 30 * kDay, &oldCa);
  f.store({{"tls.crt", serving.certificate},
           {"tls.key", serving.key},
           {"ca.crt", oldCa.certificate},
           {"ca.key", oldCa.key}});

  auto rotated = f.ensure();
  ASSERT_TRUE(rotated.ok()) << rotated.error().toString();
  const auto cas = split(rotated->caBundle);
  ASSERT_EQ(cas.size(), 2U);
  EXPECT_EQ(cas[1], split(oldCa.certificate)[0]);               // the old CA is still trusted
  EXPECT_TRUE(server::keyMatches({cas[0], f.data("ca.key")}));  // the new one signs from now
  EXPECT_EQ(rotated->serving, serving);  // but not yet: the API server first takes the bundle
  EXPECT_FALSE(
      kube::stringAt(f.stored(), {"metadata", "annotations", "burstlet.io/ca-added-at"}).empty());

  f.clock.advance(std::chrono::minutes(30));
  EXPECT_EQ(*f.ensure(), *rotated);  // within the overlap nothing changes
  f.clock.advance(std::chrono::minutes(31));
  auto switched = f.ensure();
  ASSERT_TRUE(switched.ok());
  EXPECT_EQ(switched->caBundle, rotated->caBundle);  // both still trusted
  EXPECT_TRUE(server::issuedBy(switched->serving.certificate, cas[0]));
  EXPECT_NE(switched->serving, serving);

  // Once the old CA expired it leaves the bundle.
  f.clock.advance(51 * kDay);
  auto later = f.ensure();
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(split(later->caBundle), std::vector<std::string>{cas[0]});
  EXPECT_TRUE(
      kube::stringAt(f.stored(), {"metadata", "annotations", "burstlet.io/ca-added-at"}).empty());
}

TEST(WebhookCertificatesTest, ConflictUsesWhatTheOtherWriterStored) {
  Fixture f;
  auto first = f.ensure();
  ASSERT_TRUE(first.ok());
  f.clock.advance(25 * kDay);  // due
  // Another burstlet renews it between our read and our write.
  server::PemPair theirs;
  bool raced = false;
  f.before = [&](const kube::HttpRequest& r) {
    if (r.method != kube::Verb::put || raced) {
      return;
    }
    raced = true;
    const server::PemPair ca{f.data("ca.crt"), f.data("ca.key")};
    theirs = make(f.clock, 30 * kDay, &ca);
    json::value s = f.stored();
    auto& d = s.as_object()["data"].as_object();
    d["tls.crt"] = base64Encode(theirs.certificate);
    d["tls.key"] = base64Encode(theirs.key);
    f.api.put(f.secrets, std::move(s));  // a new resourceVersion
  };
  auto r = f.ensure();
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_TRUE(raced);
  EXPECT_EQ(r->serving, theirs);
  EXPECT_EQ(r->caBundle, first->caBundle);
  EXPECT_EQ(f.api.count(kube::Verb::put, f.secrets + "/" + kSecret), 1);  // the refused one
  EXPECT_EQ(f.data("tls.crt"), theirs.certificate);

  // A refusal that is not a conflict is reported.
  f.clock.advance(25 * kDay);
  f.api.failNext(kube::Verb::put, f.secrets, 1, 403, "Forbidden");
  auto refused = f.ensure();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kForbidden);
}

TEST(WebhookCertificatesTest, DamagedSecretReplacedWithoutKeyMaterialInTheLog) {
  std::ostringstream logs;
  ASSERT_TRUE(log::init({"debug", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs)}).ok());
  Fixture f;
  const server::PemPair ca = make(f.clock, 300 * kDay, nullptr);
  const server::PemPair other = make(f.clock, 300 * kDay, nullptr);
  const server::PemPair serving = make(f.clock, 30 * kDay, &ca);
  // The CA key belongs to another CA.
  f.store({{"tls.crt", serving.certificate},
           {"tls.key", serving.key},
           {"ca.crt", ca.certificate},
           {"ca.key", other.key}});
  auto replaced = f.ensure();
  ASSERT_TRUE(replaced.ok()) << replaced.error().toString();
  EXPECT_NE(replaced->caBundle, ca.certificate);
  EXPECT_NE(replaced->serving, serving);
  EXPECT_TRUE(server::issuedBy(replaced->serving.certificate, replaced->caBundle));

  // A good CA with a serving key that is not its certificate's: the CA is kept.
  const server::PemPair stray = make(f.clock, 30 * kDay, &ca);
  f.store({{"tls.crt", serving.certificate},
           {"tls.key", stray.key},
           {"ca.crt", ca.certificate},
           {"ca.key", ca.key}});
  auto kept = f.ensure();
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->caBundle, ca.certificate);
  EXPECT_NE(kept->serving, serving);
  EXPECT_TRUE(server::keyMatches(kept->serving));

  // Garbage everywhere.
  f.store({{"tls.crt", "not a certificate"}, {"tls.key", serving.key}, {"ca.crt", "???"}});
  ASSERT_TRUE(f.ensure().ok());

  spdlog::default_logger()->flush();
  const std::string text = logs.str();
  EXPECT_THAT(text, HasSubstr("webhook certificate secret unusable"));
  EXPECT_THAT(text, HasSubstr("the CA key does not match the CA"));
  EXPECT_THAT(text, HasSubstr("the serving key does not match its certificate"));
  EXPECT_THAT(text, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(text, Not(HasSubstr("BEGIN")));
  for (const auto* pem : {&ca.key, &other.key, &serving.key, &stray.key}) {
    // No line of any key's base64 body, nor the key base64-encoded as a whole.
    std::istringstream lines(*pem);
    for (std::string line; std::getline(lines, line);) {
      if (line.find("-----") == std::string::npos && line.size() > 16) {
        EXPECT_THAT(text, Not(HasSubstr(line)));
      }
    }
    EXPECT_THAT(text, Not(HasSubstr(base64Encode(*pem).substr(0, 40))));
  }
  ASSERT_TRUE(log::init({"info", nullptr}).ok());
}

// The loop: serves the Secret's pair and starts the listener, registers the bundle, and
// switches to a renewed pair (a new CA only after the registration holds it).
TEST(WebhookCertificatesTest, RunServesRegistersAndRotates) {
  Fixture f;
  testing::FakeClock past(f.clock.now() - 250 * kDay);
  const server::PemPair oldCa = make(past, 300 * kDay, nullptr);
  const server::PemPair serving = make(f.clock, 30 * kDay, &oldCa);
  f.store({{"tls.crt", serving.certificate},
           {"tls.key", serving.key},
           {"ca.crt", oldCa.certificate},
           {"ca.key", oldCa.key}});
  server::Options so;
  so.clock = &f.clock;
  so.tls = server::TlsOptions{};
  so.tls->selfSignedHosts = {"127.0.0.1"};
  auto srv = server::HttpServer::create(f.io.get_executor(), "127.0.0.1:0", so);
  ASSERT_TRUE(srv.ok()) << srv.error().toString();
  server::HttpServer& server = **srv;
  const std::string placeholder = server.tls()->certificatePem();

  admission::Registration reg{"burstlet-vk", "https://127.0.0.1:8443/mutate-pods", "", {}, 5};
  const std::string configs = admission::kMutatingWebhookConfigurations.path("");
  auto registeredBundle = [&]() -> std::string {
    auto c = f.api.get(configs, "burstlet-vk");
    if (!c) {
      return "";
    }
    return base64Decode(kube::stringAt(c->at("webhooks").at(0), {"clientConfig", "caBundle"}))
        .value_or("");
  };
  // What the registration held each time the served certificate changed.
  std::vector<std::string> bundleWhenServed;
  std::string lastServed = placeholder;
  auto watchServed = [&] {
    const std::string now = server.tls()->certificatePem();
    if (now != lastServed) {
      lastServed = now;
      bundleWhenServed.push_back(registeredBundle());
    }
  };

  WebhookCertificates certs(Fixture::options(), f.clock);
  Latch stop;
  bool done = false;
  asio::co_spawn(f.io, certs.run(*f.client, server, reg, stop),
                 [&done](const std::exception_ptr&) { done = true; });
  ASSERT_TRUE(testing::runUntil(f.io, [&] {
    watchServed();
    return split(registeredBundle()).size() == 2;
  }));
  // At start the stored pair is served; the new CA joined the bundle beside the old one.
  EXPECT_EQ(server.tls()->certificatePem(), serving.certificate);
  const auto cas = split(registeredBundle());
  EXPECT_EQ(cas[1], split(oldCa.certificate)[0]);

  // An hour later the new CA signs; the registration already trusts it.
  f.clock.advance(hours(1) + std::chrono::minutes(1));
  ASSERT_TRUE(testing::runUntil(f.io, [&] {
    watchServed();
    return server::issuedBy(server.tls()->certificatePem(), cas[0]);
  }));
  ASSERT_EQ(bundleWhenServed.size(), 2U);
  EXPECT_EQ(split(bundleWhenServed[1]).size(), 2U);
  EXPECT_EQ(f.api.count(kube::Verb::put, configs), 0);  // created once with both CAs

  // The serving certificate renewed near its expiry, the registration left as it is.
  for (int i = 0; i < 21 * 24 && bundleWhenServed.size() < 3; ++i) {
    f.clock.advance(hours(1));
    for (int k = 0; k < 3; ++k) {  // one round of the loop: every step is ready at once
      f.io.restart();
      f.io.poll();
    }
    watchServed();
  }
  ASSERT_EQ(bundleWhenServed.size(), 3U);
  EXPECT_TRUE(server::issuedBy(server.tls()->certificatePem(), cas[0]));
  EXPECT_EQ(f.api.count(kube::Verb::put, configs), 0);

  stop.set();
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return done; }));
  server.stop();
  f.io.restart();
  f.io.poll();
}

}  // namespace
}  // namespace burstlet::daemon
