// What a certificate says about itself: validity, CA flag, names, issuer, key.
#include "server/certificate_check.h"

#include <gtest/gtest.h>

#include "mocks/fake_clock.h"

namespace burstlet::server {
namespace {

using std::chrono::hours;

PemPair make(const Clock& clock, const CertificateSpec& spec, const PemPair* issuer = nullptr) {
  auto pair = generateCertificate(spec, clock, issuer);
  EXPECT_TRUE(pair.ok()) << pair.error().toString();
  return pair.ok() ? *pair : PemPair{};
}

TEST(CertificateCheckTest, FactsNamesIssuerAndKey) {
  burstlet::testing::FakeClock clock;
  CertificateSpec caSpec;
  caSpec.commonName = "test CA";
  caSpec.isCa = true;
  caSpec.validity = hours(48);
  const PemPair ca = make(clock, caSpec);
  const PemPair otherCa = make(clock, caSpec);
  CertificateSpec spec;
  spec.hosts = {"10.0.0.5", "burstlet.example", "::1"};
  spec.validity = std::chrono::seconds(90);
  const PemPair leaf = make(clock, spec, &ca);

  auto facts = inspectCertificate(leaf.certificate);
  ASSERT_TRUE(facts.ok()) << facts.error().toString();
  EXPECT_FALSE(facts->isCa);
  EXPECT_EQ(facts->notAfter, clock.now() + std::chrono::seconds(90));
  EXPECT_EQ(facts->notBefore, clock.now() - hours(1));
  EXPECT_TRUE(inspectCertificate(ca.certificate)->isCa);
  EXPECT_EQ(inspectCertificate("junk").error().reason, "InvalidCertificate");

  EXPECT_TRUE(coversHosts(leaf.certificate, {"10.0.0.5", "burstlet.example", "::1"}));
  EXPECT_TRUE(coversHosts(leaf.certificate, {"BURSTLET.example"}));
  EXPECT_FALSE(coversHosts(leaf.certificate, {"10.0.0.6"}));
  EXPECT_FALSE(coversHosts(leaf.certificate, {"other.example"}));
  EXPECT_FALSE(coversHosts(ca.certificate, {"test CA"}));  // the CN does not count
  EXPECT_FALSE(coversHosts("junk", {}));

  EXPECT_TRUE(issuedBy(leaf.certificate, ca.certificate));
  EXPECT_FALSE(issuedBy(leaf.certificate, otherCa.certificate));  // same name, other key
  EXPECT_FALSE(issuedBy(leaf.certificate, "junk"));

  EXPECT_TRUE(keyMatches(leaf));
  EXPECT_FALSE(keyMatches({leaf.certificate, ca.key}));
  EXPECT_FALSE(keyMatches({leaf.certificate, "junk"}));

  auto bundle = splitCertificates(ca.certificate + otherCa.certificate);
  ASSERT_TRUE(bundle.ok());
  ASSERT_EQ(bundle->size(), 2U);
  EXPECT_EQ((*bundle)[0], ca.certificate);
  EXPECT_EQ((*bundle)[1], otherCa.certificate);
  EXPECT_FALSE(splitCertificates("").ok());
}

}  // namespace
}  // namespace burstlet::server
