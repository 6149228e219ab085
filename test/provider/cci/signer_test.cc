#include "provider/cci/signer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "mocks/fake_clock.h"

namespace burstlet::provider::cci {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The expected values below were worked out by hand from the published algorithm; only the
// hashes come from an independent implementation, Python's hashlib and hmac:
//   python3 -c 'import hashlib,hmac; c="<canonical request>"; d="<X-Sdk-Date>";
//     s="SDK-HMAC-SHA256\n%s\n%s" % (d, hashlib.sha256(c.encode()).hexdigest()); print(s);
//     print(hmac.new(b"<SK>", s.encode(), hashlib.sha256).hexdigest())'

constexpr const char* kAk = "HPUAEXAMPLEAK0000001";
constexpr const char* kSk = "exampleSecretKey0123456789abcdefEXAMPLE1";
constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Clock::WallTime at(int64_t epochSeconds) {
  return Clock::WallTime(std::chrono::seconds(epochSeconds));
}

kube::SignableRequest request(std::string_view method, std::string_view target,
                              std::string_view body,
                              std::vector<std::pair<std::string, std::string>> headers) {
  kube::SignableRequest r;
  r.method = method;
  r.target = target;
  r.body = body;
  r.headers = std::move(headers);
  return r;
}

TEST(SdkDateTest, IsUtcBasicFormat) {
  EXPECT_EQ(sdkDate(at(1573789015)), "20191115T033655Z");
  EXPECT_EQ(sdkDate(at(1767323045) + std::chrono::milliseconds(999)), "20260102T030405Z");
  EXPECT_EQ(sdkDate(at(0)), "19700101T000000Z");
}

TEST(CanonicalTest, UriEscapeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(uriEscape("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(uriEscape("a b/c=d&e+f%g:h,i!(j)*"), "a%20b%2Fc%3Dd%26e%2Bf%25g%3Ah%2Ci%21%28j%29%2A");
  EXPECT_EQ(uriEscape("\xc3\xa9"), "%C3%A9");  // UTF-8 bytes one by one
}

TEST(CanonicalTest, UriDecodesThenEncodesEachSegmentAndEndsWithSlash) {
  EXPECT_EQ(canonicalUri(""), "/");
  EXPECT_EQ(canonicalUri("/"), "/");
  EXPECT_EQ(canonicalUri("/v1/vpcs"), "/v1/vpcs/");
  EXPECT_EQ(canonicalUri("/v1/vpcs/"), "/v1/vpcs/");
  EXPECT_EQ(canonicalUri("/v1/vpcs?limit=2"), "/v1/vpcs/");
  // %7e and %7E are "~", which stays bare; a raw ':' or space is encoded; an encoded '/' stays
  // inside its segment; a stray '%' is taken literally.
  EXPECT_EQ(canonicalUri("/a%7eb/c%7Ed/x:y/a%20b/p%2Fq/100%"),
            "/a~b/c~d/x%3Ay/a%20b/p%2Fq/100%25/");
}

TEST(CanonicalTest, QueryIsDecodedSortedByKeyThenValueAndEncoded) {
  EXPECT_EQ(canonicalQueryString("/x"), "");
  EXPECT_EQ(canonicalQueryString("/x?"), "");
  EXPECT_EQ(canonicalQueryString("/x?b=2&a=1"), "a=1&b=2");
  EXPECT_EQ(canonicalQueryString("/x?k=b&k=a&j"), "j=&k=a&k=b");
  EXPECT_EQ(canonicalQueryString("/x?q=a+b%2Bc&&r=%3d"), "q=a%20b%2Bc&r=%3D");
  // Sorted on decoded keys, byte order: upper case before lower case.
  EXPECT_EQ(canonicalQueryString("/x?b=1&B=2&a%20z=3"), "B=2&a%20z=3&b=1");
}

TEST(CanonicalTest, SignedHeadersAreTheKnownOnesPresent) {
  auto r = request("GET", "/", "",
                   {{"Host", "h"},
                    {"User-Agent", "burstlet"},
                    {"X-Sdk-Date", "d"},
                    {"Accept-Encoding", "gzip"},
                    {"X-Auth-Token", "not-signed"}});
  EXPECT_EQ(signedHeaderNames(r), (std::vector<std::string>{"host", "x-sdk-date"}));
  r.headers.emplace_back("content-type", "application/json");
  r.headers.emplace_back("X-PROJECT-ID", "p");
  EXPECT_EQ(signedHeaderNames(r),
            (std::vector<std::string>{"content-type", "host", "x-project-id", "x-sdk-date"}));
}

// Huawei's own documented example (API Request Signing Guide, "AK/SK Signing and
// Authentication Algorithm"): GET https://service.region.example.com/v1/77b6a44cba5143ab91d13ab
// 9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0 with its example keys.
TEST(AkSkSignerTest, ReproducesTheDocumentedExample) {
  const std::string canonical =
      "GET\n"
      "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n"
      "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n"
      "content-type:application/json\n"
      "host:service.region.example.com\n"
      "x-sdk-date:20191115T033655Z\n"
      "\n"
      "content-type;host;x-sdk-date\n" +
      std::string(kEmptySha256);
  const std::string toSign =
      "SDK-HMAC-SHA256\n"
      "20191115T033655Z\n"
      "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a";
  const std::string sig = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe";

  auto r = request("GET",
                   "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-"
                   "b956-536f674975c0",
                   "",
                   {{"Host", "service.region.example.com"},
                    {"Content-Type", "application/json"},
                    {"X-Sdk-Date", "20191115T033655Z"}});
  EXPECT_EQ(canonicalRequest(r, signedHeaderNames(r)), canonical);
  EXPECT_EQ(stringToSign("20191115T033655Z", canonical), toSign);
  EXPECT_EQ(signature("MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc", toSign), sig);

  testing::FakeClock clock(at(1573789015));
  AkSkSigner signer(AkSk{"QTWAOYTTINDUT2QVKYUC", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"},
                    clock);
  r.headers.pop_back();  // the signer dates the request itself
  ASSERT_TRUE(signer.sign(r).ok());
  EXPECT_EQ(r.header("X-Sdk-Date"), "20191115T033655Z");
  EXPECT_EQ(r.header("Authorization"),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, "
            "SignedHeaders=content-type;host;x-sdk-date, Signature=" +
                sig);
}

TEST(AkSkSignerTest, GetWithAQueryToSortAndEncode) {
  // limit twice, out of order; '+' and "%2C" and a bare "!" and "(" in values; a key without
  // '='. Accept, User-Agent and Accept-Encoding are not signed.
  const std::string target =
      "/api/v1/namespaces/cce-burst-abc/pods?limit=500&labelSelector=app%3Dweb%2Cenv+in+(prod)"
      "&fieldSelector=status.phase!%3DFailed&limit=100&watch";
  const std::string canonical =
      "GET\n"
      "/api/v1/namespaces/cce-burst-abc/pods/\n"
      "fieldSelector=status.phase%21%3DFailed&labelSelector=app%3Dweb%2Cenv%20in%20%28prod%29"
      "&limit=100&limit=500&watch=\n"
      "host:cci.cn-north-4.myhuaweicloud.com\n"
      "x-project-id:0123456789abcdef0123456789abcdef\n"
      "x-sdk-date:20191115T033655Z\n"
      "\n"
      "host;x-project-id;x-sdk-date\n" +
      std::string(kEmptySha256);
  const std::string toSign =
      "SDK-HMAC-SHA256\n"
      "20191115T033655Z\n"
      "eaa1eb28220be54f339e845d20f68fd8db5760d3553a95de5846caedb3060c36";
  const std::string sig = "24a82898dfa467c5dfeab5314268bfeb971808db8fcf7d60704cbb34697db61d";

  auto r = request("GET", target, "",
                   {{"Host", "cci.cn-north-4.myhuaweicloud.com"},
                    {"User-Agent", "burstlet/0.1.0"},
                    {"Accept", "application/json"},
                    {"Accept-Encoding", "gzip"},
                    {"X-Project-Id", "0123456789abcdef0123456789abcdef"}});
  testing::FakeClock clock(at(1573789015));
  AkSkSigner signer(AkSk{kAk, kSk}, clock);
  ASSERT_TRUE(signer.sign(r).ok());
  EXPECT_EQ(canonicalRequest(r, signedHeaderNames(r)), canonical);
  EXPECT_EQ(stringToSign("20191115T033655Z", canonical), toSign);
  EXPECT_EQ(signature(kSk, toSign), sig);
  EXPECT_EQ(r.header("x-sdk-date"), "20191115T033655Z");
  EXPECT_EQ(r.header("authorization"),
            std::string("SDK-HMAC-SHA256 Access=") + kAk +
                ", SignedHeaders=host;x-project-id;x-sdk-date, Signature=" + sig);
}

TEST(AkSkSignerTest, PostWithAJsonBodyAndNoTrailingSlash) {
  const std::string body = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-0"}})";
  // "%7e" is "~" (left bare), the raw ':' is encoded; the padded Content-Type value is trimmed.
  const std::string canonical =
      "POST\n"
      "/api/v1/namespaces/team~a/pods%3Abatch/\n"
      "\n"
      "content-type:application/json\n"
      "host:cci.example.com:8443\n"
      "x-sdk-date:20260102T030405Z\n"
      "\n"
      "content-type;host;x-sdk-date\n"
      "4cea7c6566651dc0a284410929b4606c4f52f3f9f5e40686aedac793304251f4";
  const std::string toSign =
      "SDK-HMAC-SHA256\n"
      "20260102T030405Z\n"
      "ce237ab95a68975062f2f9a33b39abefc12f3ae6d9216a6716f4d3dd26771e9a";
  const std::string sig = "bad1f589224b6b1964b767f2b442a5cda91540777b4113ce171e5cb116f7fd99";

  EXPECT_EQ(sha256Hex(body), "4cea7c6566651dc0a284410929b4606c4f52f3f9f5e40686aedac793304251f4");
  auto r = request("POST", "/api/v1/namespaces/team%7ea/pods:batch", body,
                   {{"Host", "cci.example.com:8443"},
                    {"Content-Type", "  application/json \t"},
                    {"Content-Length", std::to_string(body.size())},
                    // A stale date and signature (a retried request) are replaced.
                    {"X-Sdk-Date", "20000101T000000Z"},
                    {"Authorization", "SDK-HMAC-SHA256 Access=old"}});
  testing::FakeClock clock(at(1767323045));
  AkSkSigner signer(AkSk{kAk, kSk}, clock);
  ASSERT_TRUE(signer.sign(r).ok());
  EXPECT_EQ(canonicalRequest(r, signedHeaderNames(r)), canonical);
  EXPECT_EQ(stringToSign("20260102T030405Z", canonical), toSign);
  EXPECT_EQ(signature(kSk, toSign), sig);
  EXPECT_EQ(r.headers.size(), 5U);
  EXPECT_EQ(r.header("Authorization"),
            std::string("SDK-HMAC-SHA256 Access=") + kAk +
                ", SignedHeaders=content-type;host;x-sdk-date, Signature=" + sig);
}

TEST(AkSkSignerTest, EveryRequestIsDatedNowWithTheKeysOfTheMoment) {
  testing::FakeClock clock(at(1573789015));
  int calls = 0;
  AkSkSigner signer(
      [&calls]() -> Result<AkSk> {
        ++calls;
        return AkSk{calls == 1 ? "AK-ONE" : "AK-TWO", kSk};
      },
      clock);
  auto r = request("GET", "/", "", {{"Host", "h"}});
  ASSERT_TRUE(signer.sign(r).ok());
  EXPECT_THAT(std::string(*r.header("Authorization")), HasSubstr("Access=AK-ONE,"));
  clock.advance(std::chrono::seconds(61));
  ASSERT_TRUE(signer.sign(r).ok());
  EXPECT_EQ(r.header("X-Sdk-Date"), "20191115T033756Z");
  EXPECT_THAT(std::string(*r.header("Authorization")), HasSubstr("Access=AK-TWO,"));
}

TEST(AkSkSignerTest, FailuresNeverShowTheSecret) {
  testing::FakeClock clock;
  auto r = request("GET", "/", "", {{"Host", "h"}});

  AkSkSigner failing(
      []() -> Result<AkSk> {
        return Error::make(ErrorCode::kUnauthorized, "AkSkFileUnreadable", "cannot read /keys");
      },
      clock);
  auto s = failing.sign(r);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "AkSkFileUnreadable");
  EXPECT_FALSE(r.header("Authorization").has_value());

  AkSkSigner noAk(AkSk{"", kSk}, clock);
  s = noAk.sign(r);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(s.error().message, Not(HasSubstr(kSk)));

  AkSkSigner fine(AkSk{kAk, kSk}, clock);
  auto noHost = request("GET", "/", "", {});
  s = fine.sign(noHost);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("Host"));
  EXPECT_THAT(s.error().message, Not(HasSubstr(kSk)));
}

}  // namespace
}  // namespace burstlet::provider::cci
