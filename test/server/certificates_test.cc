#include "server/certificates.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include "mocks/fake_clock.h"
#include "server/openssl_util.h"

namespace burstlet::server {
namespace {

using detail::EvpPkeyPtr;
using detail::X509Ptr;

X509Ptr parse(const std::string& pem) {
  auto certs = detail::parseCertificates(pem, "test");
  EXPECT_TRUE(certs.ok()) << (certs.ok() ? "" : certs.error().toString());
  return certs.ok() ? std::move(certs->front()) : nullptr;
}

EvpPkeyPtr key(const std::string& pem) {
  auto k = detail::parsePrivateKey(pem, "test");
  EXPECT_TRUE(k.ok()) << (k.ok() ? "" : k.error().toString());
  return k.ok() ? std::move(*k) : nullptr;
}

// Verifies `leaf` against `ca` as a TLS server (or client) certificate at time `at`.
bool verifies(X509* leaf, X509* ca, time_t at, int purpose = X509_PURPOSE_SSL_SERVER) {
  std::unique_ptr<X509_STORE, detail::OpenSslFree<X509_STORE_free>> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, detail::OpenSslFree<X509_STORE_CTX_free>> ctx(
      X509_STORE_CTX_new());
  X509_STORE_add_cert(store.get(), ca);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  X509_STORE_CTX_set_time(ctx.get(), 0, at);
  return X509_verify_cert(ctx.get()) == 1;
}

class CertificatesTest : public ::testing::Test {
 protected:
  burstlet::testing::FakeClock clock_{
      Clock::WallTime(std::chrono::seconds(1'900'000'000))};  // 2030
  const time_t now_ = 1'900'000'000;
};

TEST_F(CertificatesTest, SelfSignedServingCertificate) {
  CertificateSpec spec;
  spec.hosts = {"burstlet.kube-system.svc", "127.0.0.1", "::1"};
  auto pair = generateCertificate(spec, clock_);
  ASSERT_TRUE(pair.ok()) << pair.error().toString();
  auto cert = parse(pair->certificate);
  auto k = key(pair->key);
  ASSERT_TRUE(cert && k);
  EXPECT_EQ(X509_check_private_key(cert.get(), k.get()), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(k.get()), EVP_PKEY_EC);
  EXPECT_EQ(detail::subjectCommonName(cert.get()), "burstlet.kube-system.svc");
  EXPECT_EQ(X509_check_host(cert.get(), "burstlet.kube-system.svc", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "other.kube-system.svc", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.2", 0), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  // Trusting the certificate itself is how a client trusts a generated one.
  EXPECT_TRUE(verifies(cert.get(), cert.get(), now_));
  EXPECT_TRUE(verifies(cert.get(), cert.get(), now_ - 3000));  // an hour of clock skew
  EXPECT_FALSE(verifies(cert.get(), cert.get(), now_ - 4000));
  EXPECT_TRUE(verifies(cert.get(), cert.get(), now_ + time_t{364} * 86400));
  EXPECT_FALSE(verifies(cert.get(), cert.get(), now_ + time_t{366} * 86400));
}

TEST_F(CertificatesTest, IssuedByACa) {
  CertificateSpec caSpec;
  caSpec.commonName = "test CA";
  caSpec.isCa = true;
  auto ca = generateCertificate(caSpec, clock_);
  ASSERT_TRUE(ca.ok()) << ca.error().toString();
  CertificateSpec clientSpec;
  clientSpec.commonName = "system:node:burstlet";
  clientSpec.organizations = {"system:nodes", "burstlet"};
  auto client = generateCertificate(clientSpec, clock_, &*ca);
  ASSERT_TRUE(client.ok()) << client.error().toString();

  auto caCert = parse(ca->certificate);
  auto clientCert = parse(client->certificate);
  ASSERT_TRUE(caCert && clientCert);
  EXPECT_EQ(X509_check_ca(caCert.get()), 1);
  EXPECT_EQ(X509_check_issued(caCert.get(), clientCert.get()), X509_V_OK);
  EXPECT_TRUE(verifies(clientCert.get(), caCert.get(), now_, X509_PURPOSE_SSL_CLIENT));
  EXPECT_EQ(detail::subjectCommonName(clientCert.get()), "system:node:burstlet");
  EXPECT_EQ(detail::subjectOrganizations(clientCert.get()),
            (std::vector<std::string>{"system:nodes", "burstlet"}));

  // Another CA's certificate does not verify against this one.
  auto other = generateCertificate(caSpec, clock_);
  ASSERT_TRUE(other.ok());
  auto otherCert = parse(other->certificate);
  EXPECT_FALSE(verifies(clientCert.get(), otherCert.get(), now_, X509_PURPOSE_SSL_CLIENT));
}

TEST_F(CertificatesTest, RsaKeys) {
  CertificateSpec spec;
  spec.hosts = {"localhost"};
  spec.keyType = KeyType::kRsa2048;
  auto pair = generateCertificate(spec, clock_);
  ASSERT_TRUE(pair.ok()) << pair.error().toString();
  auto k = key(pair->key);
  ASSERT_TRUE(k);
  EXPECT_EQ(EVP_PKEY_get_base_id(k.get()), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_get_bits(k.get()), 2048);
  EXPECT_NE(pair->key.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
}

TEST_F(CertificatesTest, InvalidSpecsAndIssuers) {
  CertificateSpec none;
  auto noName = generateCertificate(none, clock_);
  ASSERT_FALSE(noName.ok());
  EXPECT_EQ(noName.error().reason, "InvalidCertificateSpec");

  CertificateSpec emptyHost;
  emptyHost.hosts = {"a", ""};
  auto empty = generateCertificate(emptyHost, clock_);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().reason, "InvalidCertificateSpec");

  CertificateSpec spec;
  spec.hosts = {"a"};
  PemPair garbage{"not a certificate", "not a key"};
  auto badIssuer = generateCertificate(spec, clock_, &garbage);
  ASSERT_FALSE(badIssuer.ok());
  EXPECT_EQ(badIssuer.error().reason, "InvalidIssuer");

  auto one = generateCertificate(spec, clock_);
  auto two = generateCertificate(spec, clock_);
  ASSERT_TRUE(one.ok() && two.ok());
  PemPair mismatched{one->certificate, two->key};
  auto mismatch = generateCertificate(spec, clock_, &mismatched);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().reason, "InvalidIssuer");
  // Two generated keys differ.
  EXPECT_NE(one->key, two->key);
}

}  // namespace
}  // namespace burstlet::server
