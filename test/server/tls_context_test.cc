// TLS listeners: generated and file certificates, reload, client certificates, handshake limits.
#include "server/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include "mocks/fake_clock.h"
#include "mocks/temp_dir.h"
#include "server/openssl_util.h"
#include "server/server_harness.h"
#include "server/websocket.h"

namespace burstlet::server {
namespace {

namespace asio = boost::asio;
using testing::Client;
using testing::clientTlsContext;
using testing::TlsClient;
using namespace std::chrono_literals;

// Who the handler saw: the client certificate's CN and O, or "anonymous".
Response whoAmI(const Request& r) {
  std::string who = "anonymous";
  if (r.clientCertificate) {
    who = r.clientCertificate->commonName + "|";
    for (const auto& org : r.clientCertificate->organizations) {
      who += org + ",";
    }
  }
  return Response{200, "text/plain", std::string(r.tls ? "tls " : "plain ") + who, {}};
}

// The CN of the certificate the server presented to `client`.
std::string servedName(TlsClient& client) {
  X509* cert = SSL_get0_peer_certificate(client.stream().native_handle());
  return cert != nullptr ? detail::subjectCommonName(cert) : std::string();
}

class TlsTest : public testing::ServerHarness {
 protected:
  void SetUp() override {
    CertificateSpec caSpec;
    caSpec.commonName = "burstlet test CA";
    caSpec.isCa = true;
    ca_ = issue(caSpec, nullptr);
  }

  PemPair issue(const CertificateSpec& spec, const PemPair* issuer) {
    auto pair = generateCertificate(spec, clock_, issuer);
    EXPECT_TRUE(pair.ok()) << pair.error().toString();
    return pair.ok() ? *pair : PemPair{};
  }

  PemPair serving(const std::string& name) {
    CertificateSpec spec;
    spec.commonName = name;
    spec.hosts = {"127.0.0.1"};
    return issue(spec, &ca_);
  }

  void writePair(const PemPair& pair) {
    dir_.write("tls.crt", pair.certificate);
    dir_.write("tls.key", pair.key);
  }

  TlsOptions fileOptions() {
    TlsOptions tls;
    tls.certFile = dir_.file("tls.crt");
    tls.keyFile = dir_.file("tls.key");
    return tls;
  }

  void start(TlsOptions tls, Options options = {}) {
    options.tls = std::move(tls);
    options.clock = &clock_;
    startServer(std::move(options), "127.0.0.1:0", 2,
                [](HttpServer& s) { s.route("/who", SyncHandler(whoAmI)); });
  }

  burstlet::testing::FakeClock clock_{realClock().now()};
  burstlet::testing::TempDir dir_;
  PemPair ca_;
};

TEST_F(TlsTest, GeneratedCertificateVerifiesForItsHosts) {
  TlsOptions tls;
  tls.selfSignedHosts = {"localhost", "127.0.0.1"};
  start(tls);
  const std::string pem = server_->tls()->certificatePem();
  ASSERT_NE(pem.find("BEGIN CERTIFICATE"), std::string::npos);
  auto ctx = clientTlsContext(pem, "127.0.0.1");
  TlsClient c(server_->port(), *ctx);
  ASSERT_FALSE(c.connectError) << c.connectError.message();
  EXPECT_EQ(servedName(c), "localhost");
  auto r = c.request("GET", "/who");
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.res.body(), "tls anonymous");
  EXPECT_EQ(c.request("GET", "/who").res.result_int(), 200u);  // keep-alive over TLS

  // A client that expects another name refuses it.
  auto wrongName = clientTlsContext(pem, "burstlet.example");
  TlsClient refused(server_->port(), *wrongName);
  EXPECT_TRUE(refused.connectError);
  // A client that does not trust it refuses it too.
  auto otherCa = clientTlsContext(ca_.certificate);
  TlsClient distrusting(server_->port(), *otherCa);
  EXPECT_TRUE(distrusting.connectError);
}

TEST_F(TlsTest, OnlyTls12AndLater) {
  TlsOptions tls;
  tls.selfSignedHosts = {"127.0.0.1"};
  start(tls);
  auto tls12 = clientTlsContext(server_->tls()->certificatePem());
  SSL_CTX_set_max_proto_version(tls12->native_handle(), TLS1_2_VERSION);
  TlsClient modern(server_->port(), *tls12);
  ASSERT_FALSE(modern.connectError) << modern.connectError.message();
  EXPECT_STREQ(SSL_get_version(modern.stream().native_handle()), "TLSv1.2");

  auto tls11 = clientTlsContext(server_->tls()->certificatePem());
  // The client would speak TLS 1.1 (at the lowest security level); the server must not.
  SSL_CTX_set_security_level(tls11->native_handle(), 0);
  SSL_CTX_set_min_proto_version(tls11->native_handle(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(tls11->native_handle(), TLS1_1_VERSION);
  TlsClient old(server_->port(), *tls11);
  EXPECT_TRUE(old.connectError);
}

TEST_F(TlsTest, FilesAreReloadedWhenTheyChange) {
  writePair(serving("server-a"));
  TlsOptions tls = fileOptions();
  tls.reloadInterval = std::chrono::minutes(1);
  start(tls);
  auto ctx = clientTlsContext(ca_.certificate);
  auto connect = [&] {
    TlsClient c(server_->port(), *ctx);
    EXPECT_FALSE(c.connectError) << c.connectError.message();
    EXPECT_EQ(c.request("GET", "/who").res.result_int(), 200u);
    return servedName(c);
  };
  EXPECT_EQ(connect(), "server-a");
  TlsClient open(server_->port(), *ctx);
  ASSERT_FALSE(open.connectError);

  writePair(serving("server-b"));
  EXPECT_EQ(connect(), "server-a") << "checked before the interval passed";
  clock_.advance(std::chrono::minutes(1));
  EXPECT_EQ(connect(), "server-b");
  // A connection keeps the certificate it started with.
  EXPECT_EQ(open.request("GET", "/who").res.result_int(), 200u);
  EXPECT_EQ(servedName(open), "server-a");

  // Half a rotation: a new certificate with the old key. Kept: the last good pair.
  dir_.write("tls.crt", serving("server-c").certificate);
  clock_.advance(std::chrono::minutes(1));
  EXPECT_EQ(connect(), "server-b");
  auto reloaded = server_->tls()->reload();
  ASSERT_FALSE(reloaded.ok());
  EXPECT_EQ(reloaded.error().reason, "KeyMismatch");
  dir_.write("tls.key", "garbage");
  clock_.advance(std::chrono::minutes(1));
  EXPECT_EQ(connect(), "server-b");
  std::filesystem::remove(dir_.file("tls.key"));
  clock_.advance(std::chrono::minutes(1));
  EXPECT_EQ(connect(), "server-b");

  // The rotation completes.
  writePair(serving("server-d"));
  clock_.advance(std::chrono::minutes(1));
  EXPECT_EQ(connect(), "server-d");
  auto unchanged = server_->tls()->reload();
  ASSERT_TRUE(unchanged.ok());
  EXPECT_FALSE(*unchanged);
}

TEST_F(TlsTest, InMemoryPairReplacedForNewConnections) {
  TlsOptions tls;
  tls.selfSignedHosts = {"127.0.0.1"};
  start(tls);
  auto ctx = clientTlsContext(ca_.certificate);
  TlsClient before(server_->port(), *ctx);
  EXPECT_TRUE(before.connectError) << "the generated certificate is not from ca_";

  ASSERT_TRUE(server_->tls()->useCertificate(serving("server-a")).ok());
  TlsClient open(server_->port(), *ctx);
  ASSERT_FALSE(open.connectError) << open.connectError.message();
  EXPECT_EQ(servedName(open), "server-a");
  const PemPair b = serving("server-b");
  ASSERT_TRUE(server_->tls()->useCertificate(b).ok());
  EXPECT_EQ(server_->tls()->certificatePem(), b.certificate);
  TlsClient next(server_->port(), *ctx);
  ASSERT_FALSE(next.connectError) << next.connectError.message();
  EXPECT_EQ(servedName(next), "server-b");
  EXPECT_EQ(open.request("GET", "/who").res.result_int(), 200u);
  EXPECT_EQ(servedName(open), "server-a");  // a connection keeps what it started with

  // A pair that does not load leaves the previous one; files cannot be replaced this way.
  const Status mismatch = server_->tls()->useCertificate({serving("server-c").certificate, b.key});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().reason, "KeyMismatch");
  EXPECT_EQ(mismatch.error().message.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(server_->tls()->certificatePem(), b.certificate);
  clock_.advance(std::chrono::minutes(2));  // a periodic check keeps the pair too
  TlsClient after(server_->port(), *ctx);
  EXPECT_EQ(servedName(after), "server-b");

  writePair(serving("server-f"));
  auto files = TlsContext::create(fileOptions(), clock_);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ((*files)->useCertificate(b).error().reason, "InvalidTlsOptions");
}

TEST_F(TlsTest, ClientCertificatesAreVerifiedAgainstTheCaBundle) {
  TlsOptions tls;
  tls.selfSignedHosts = {"127.0.0.1"};
  // A bundle: the client CA after an unrelated one.
  CertificateSpec otherSpec;
  otherSpec.commonName = "unrelated CA";
  otherSpec.isCa = true;
  const PemPair unrelated = issue(otherSpec, nullptr);
  tls.clientCaFile = dir_.write("client-ca.crt", unrelated.certificate + ca_.certificate);
  start(tls);
  const std::string serverPem = server_->tls()->certificatePem();

  CertificateSpec nodeSpec;
  nodeSpec.commonName = "system:node:burstlet";
  nodeSpec.organizations = {"system:nodes", "team-a"};
  const PemPair node = issue(nodeSpec, &ca_);
  {
    auto ctx = clientTlsContext(serverPem, "127.0.0.1", node.certificate, node.key);
    TlsClient c(server_->port(), *ctx);
    ASSERT_FALSE(c.connectError) << c.connectError.message();
    EXPECT_EQ(c.request("GET", "/who").res.body(), "tls system:node:burstlet|system:nodes,team-a,");
  }
  {
    // No certificate: allowed, anonymous.
    auto ctx = clientTlsContext(serverPem);
    TlsClient c(server_->port(), *ctx);
    ASSERT_FALSE(c.connectError) << c.connectError.message();
    EXPECT_EQ(c.request("GET", "/who").res.body(), "tls anonymous");
  }
  {
    // Signed by a CA the server does not know: refused (with TLS 1.3 the client learns it
    // at its first read).
    CertificateSpec strangerCaSpec;
    strangerCaSpec.commonName = "stranger CA";
    strangerCaSpec.isCa = true;
    const PemPair strangerCa = issue(strangerCaSpec, nullptr);
    const PemPair stranger = issue(nodeSpec, &strangerCa);
    auto ctx = clientTlsContext(serverPem, "127.0.0.1", stranger.certificate, stranger.key);
    TlsClient c(server_->port(), *ctx);
    EXPECT_TRUE(c.connectError || c.request("GET", "/who").ec);
  }
}

TEST_F(TlsTest, RequiredClientCertificate) {
  TlsOptions tls;
  tls.selfSignedHosts = {"127.0.0.1"};
  tls.clientCaFile = dir_.write("client-ca.crt", ca_.certificate);
  tls.requireClientCertificate = true;
  start(tls);
  const std::string serverPem = server_->tls()->certificatePem();
  {
    auto ctx = clientTlsContext(serverPem);
    TlsClient c(server_->port(), *ctx);
    EXPECT_TRUE(c.connectError || c.request("GET", "/who").ec);
  }
  CertificateSpec spec;
  spec.commonName = "admin";
  const PemPair admin = issue(spec, &ca_);
  auto ctx = clientTlsContext(serverPem, "127.0.0.1", admin.certificate, admin.key);
  TlsClient c(server_->port(), *ctx);
  ASSERT_FALSE(c.connectError) << c.connectError.message();
  EXPECT_EQ(c.request("GET", "/who").res.body(), "tls admin|");
}

TEST_F(TlsTest, HandshakeTimeoutAndPlainHttpOnATlsPort) {
  TlsOptions tls;
  tls.selfSignedHosts = {"127.0.0.1"};
  Options o;
  o.tlsHandshakeTimeout = 200ms;
  start(tls, o);
  {
    Client silent(server_->port());
    EXPECT_TRUE(silent.closedByServer(3s)) << "no handshake, still open";
  }
  Client plain(server_->port());
  auto r = plain.request("GET", "/who");
  EXPECT_TRUE(r.ec) << "served plain HTTP on a TLS port";
}

TEST_F(TlsTest, RawUpgradeOverTls) {
  TlsOptions tls;
  tls.selfSignedHosts = {"127.0.0.1"};
  Options options;
  options.tls = tls;
  startServer(options, "127.0.0.1:0", 1, [](HttpServer& s) {
    s.route("/portForward/ns/pod", [](Exchange& ex) -> asio::awaitable<Response> {
      const Headers none;
      auto raw = co_await ex.upgrade("SPDY/3.1", none);
      if (!raw.ok()) {
        co_return Response{};
      }
      std::array<char, 64> buffer{};
      auto n = co_await (*raw)->readSome(asio::buffer(buffer));
      if (n.ok() && *n > 0) {
        const std::string echo = "<" + std::string(buffer.data(), *n) + ">";
        (void)co_await (*raw)->write(asio::buffer(echo));
      }
      co_return Response{};
    });
  });
  auto ctx = clientTlsContext(server_->tls()->certificatePem());
  TlsClient c(server_->port(), *ctx);
  ASSERT_FALSE(c.connectError) << c.connectError.message();
  ASSERT_FALSE(
      c.write("GET /portForward/ns/pod HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
              "Upgrade: SPDY/3.1\r\n\r\n"));
  EXPECT_NE(c.readUntil("\r\n\r\n").find("HTTP/1.1 101 Switching Protocols"), std::string::npos);
  ASSERT_FALSE(c.write("frames"));
  EXPECT_EQ(c.readUntil(">"), "<frames>");
  EXPECT_TRUE(c.closedByServer());
}

TEST(TlsContextTest, InvalidOptions) {
  burstlet::testing::TempDir dir;
  auto create = [](TlsOptions o) { return TlsContext::create(std::move(o)); };
  TlsOptions none;
  EXPECT_EQ(create(none).error().reason, "InvalidTlsOptions");
  TlsOptions certOnly;
  certOnly.certFile = dir.file("tls.crt");
  EXPECT_EQ(create(certOnly).error().reason, "InvalidTlsOptions");
  TlsOptions both;
  both.certFile = dir.file("tls.crt");
  both.keyFile = dir.file("tls.key");
  both.selfSignedHosts = {"a"};
  EXPECT_EQ(create(both).error().reason, "InvalidTlsOptions");
  TlsOptions requireWithoutCa;
  requireWithoutCa.selfSignedHosts = {"a"};
  requireWithoutCa.requireClientCertificate = true;
  EXPECT_EQ(create(requireWithoutCa).error().reason, "InvalidTlsOptions");

  TlsOptions missing;
  missing.certFile = dir.file("tls.crt");
  missing.keyFile = dir.file("tls.key");
  auto unreadable = create(missing);
  ASSERT_FALSE(unreadable.ok());
  EXPECT_EQ(unreadable.error().reason, "UnreadableFile");
  EXPECT_NE(unreadable.error().message.find(dir.file("tls.crt")), std::string::npos);

  dir.write("tls.crt", "not PEM");
  dir.write("tls.key", "not PEM");
  EXPECT_EQ(create(missing).error().reason, "InvalidCertificate");

  CertificateSpec spec;
  spec.hosts = {"a"};
  auto one = generateCertificate(spec, realClock());
  auto two = generateCertificate(spec, realClock());
  ASSERT_TRUE(one.ok() && two.ok());
  dir.write("tls.crt", one->certificate);
  EXPECT_EQ(create(missing).error().reason, "InvalidKey");
  dir.write("tls.key", two->key);
  EXPECT_EQ(create(missing).error().reason, "KeyMismatch");
  dir.write("tls.key", one->key);
  EXPECT_TRUE(create(missing).ok());

  TlsOptions badCa;
  badCa.selfSignedHosts = {"a"};
  badCa.clientCaFile = dir.write("ca.crt", "nothing here");
  EXPECT_EQ(create(badCa).error().reason, "InvalidCertificate");
}

TEST(TlsContextTest, ServerCreationReportsTlsErrors) {
  asio::io_context io;
  Options o;
  o.tls = TlsOptions{};
  auto server = HttpServer::create(io.get_executor(), "127.0.0.1:0", o);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.error().reason, "InvalidTlsOptions");
  auto plain = HttpServer::create(io.get_executor(), "127.0.0.1:0");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ((*plain)->tls(), nullptr);
}

}  // namespace
}  // namespace burstlet::server
