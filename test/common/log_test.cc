#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <string>

namespace burstlet::log {
namespace {

TEST(RedactTest, BearerTokens) {
  EXPECT_EQ(redact("Authorization: Bearer abc.def-123"), "Authorization: <redacted>");
  EXPECT_EQ(redact("header bearer s3cr3tvalue, next"), "header bearer <redacted>, next");
}

TEST(RedactTest, Jwt) {
  const std::string jwt =
      "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXZhbHVl";
  const std::string out = redact("using " + jwt + " now");
  EXPECT_EQ(out, "using <redacted> now");
}

TEST(RedactTest, SecretFields) {
  EXPECT_EQ(redact("token=abcdef password: hunter22 user=bob"),
            "token=<redacted> password: <redacted> user=bob");
  EXPECT_EQ(redact(R"({"token":"abc","kind":"Pod"})"), R"({"token":"<redacted>","kind":"Pod"})");
  EXPECT_EQ(redact("client-key-data: LS0tLS1CRUdJTg=="), "client-key-data: <redacted>");
  EXPECT_EQ(redact("X-Auth-Token: MIIabc"), "X-Auth-Token: <redacted>");
}

TEST(RedactTest, KeysThatOnlyLookSecretAreKept) {
  EXPECT_EQ(redact("tokenFile=/var/run/token"), "tokenFile=/var/run/token");
  EXPECT_EQ(redact("reason=SecretNotFound secrets=3"), "reason=SecretNotFound secrets=3");
  EXPECT_EQ(redact("no secrets here"), "no secrets here");
}

TEST(RedactTest, PrivateKeyBlock) {
  const std::string pem =
      "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----";
  EXPECT_EQ(redact("key " + pem + " done"), "key <redacted private key> done");
  const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
  EXPECT_EQ(redact(cert), cert);
}

TEST(RedactTest, RegisteredSecretsAreMaskedAnywhere) {
  registerSecret("short");  // too short to register
  registerSecret("AKIDEXAMPLE-0123456789");
  EXPECT_EQ(redact("ak=AKIDEXAMPLE-0123456789;"), "ak=<redacted>;");
  EXPECT_EQ(redact("prefixAKIDEXAMPLE-0123456789suffix"), "prefix<redacted>suffix");
  EXPECT_EQ(redact("short words stay"), "short words stay");
}

TEST(LogTest, SinkReceivesRedactedStructuredLines) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  ASSERT_TRUE(init(Options{"debug", sink}).ok());
  spdlog::info("msg=\"loaded kubeconfig\" user=admin token={}", "supersecretvalue");
  spdlog::default_logger()->flush();
  const std::string line = out.str();
  EXPECT_NE(line.find("level=info"), std::string::npos) << line;
  EXPECT_NE(line.find("component=burstlet"), std::string::npos) << line;
  EXPECT_NE(line.find("token=<redacted>"), std::string::npos) << line;
  EXPECT_EQ(line.find("supersecretvalue"), std::string::npos) << line;
}

TEST(LogTest, RejectsUnknownLevel) {
  auto s = init(Options{"loud", nullptr});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_NE(s.error().message.find("loud"), std::string::npos);
}

}  // namespace
}  // namespace burstlet::log
