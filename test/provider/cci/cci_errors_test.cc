// CCI's error codes classed code by code (cci_errors.h), the answer forms they come in, and the
// backend client in CCI mode acting on them (retry or not).
#include "provider/cci/cci_errors.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "kube/errors.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

// CCI's answer: a Kubernetes Status with its errorCode.
kube::HttpResponse cciStatus(unsigned status, const std::string& reason, const std::string& code,
                             const std::string& message) {
  kube::HttpResponse r;
  r.status = status;
  r.contentType = "application/json";
  r.body = json::serialize(json::object{{"kind", "Status"},
                                        {"apiVersion", "v1"},
                                        {"metadata", json::object{}},
                                        {"status", "Failure"},
                                        {"message", message},
                                        {"reason", reason},
                                        {"code", status},
                                        {"errorCode", code}});
  return r;
}

Error classed(const kube::HttpResponse& r) {
  return cciError(kube::errorFromResponse(r, "create pods cce-burst-c1/"), r);
}

struct CodeCase {
  const char* code;
  unsigned status;
  ErrorCode want;
  const char* reason;  // "" : the Kubernetes reason is kept
};

// Every row of the table, with the HTTP status CCI's error-code page gives it.
const CodeCase kCodes[] = {
    {"CCI.01.400101", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400102", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400103", 400, ErrorCode::kUnauthorized, ""},
    {"CCI.01.400104", 400, ErrorCode::kForbidden, ""},
    {"CCI.01.400105", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400106", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400107", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400201", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400202", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400301", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400302", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400303", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400304", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400305", 400, ErrorCode::kUnavailable, ""},
    {"CCI.01.400306", 400, ErrorCode::kNotFound, "VolumeNotFound"},
    {"CCI.01.400307", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400308", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400309", 400, ErrorCode::kAlreadyExists, "VolumeAlreadyImported"},
    {"CCI.01.400401", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400402", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400403", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.400404", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.01.401102", 401, ErrorCode::kUnauthorized, ""},
    {"CCI.01.403009", 403, ErrorCode::kForbidden, ""},
    {"CCI.01.403010", 403, ErrorCode::kForbidden, ""},
    {"CCI.01.403101", 403, ErrorCode::kForbidden, ""},
    {"CCI.01.403102", 403, ErrorCode::kForbidden, ""},
    {"CCI.01.403103", 403, ErrorCode::kForbidden, ""},
    {"CCI.01.403104", 403, ErrorCode::kForbidden, ""},
    {"CCI.01.404101", 404, ErrorCode::kForbidden, ""},
    {"CCI.01.500101", 500, ErrorCode::kUnavailable, ""},
    {"CCI.02.400101", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400103", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400106", 400, ErrorCode::kForbidden, kNamespaceQuotaExceeded},
    {"CCI.02.400107", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400109", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400110", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400111", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400112", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400113", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400116", 400, ErrorCode::kUnavailable, ""},
    {"CCI.02.400118", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.400119", 400, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.404101", 404, ErrorCode::kInvalid, kBackendRefused},
    {"CCI.02.404102", 404, ErrorCode::kNotFound, ""},
    {"CCI.02.404103", 404, ErrorCode::kNotFound, ""},
    {"CCI.02.409101", 409, ErrorCode::kAlreadyExists, kNamespaceNameTaken},
    {"CCI.02.409102", 409, ErrorCode::kConflict, ""},
    {"APIG.0308", 429, ErrorCode::kTooManyRequests, ""},
};

class CciCodeTest : public ::testing::TestWithParam<CodeCase> {};

TEST_P(CciCodeTest, IsClassedAsTheTableSays) {
  const CodeCase& c = GetParam();
  const auto cls = classOfCciCode(c.code);
  ASSERT_TRUE(cls.has_value()) << c.code << " is not in the table";
  EXPECT_EQ(cls->code, c.want);
  EXPECT_STREQ(cls->reason, c.reason);

  const Error e = classed(cciStatus(c.status, "BadRequest", c.code, "what CCI says"));
  EXPECT_EQ(e.code, c.want) << e.toString();
  EXPECT_EQ(e.reason, *c.reason != '\0' ? std::string(c.reason) : std::string("BadRequest"));
  EXPECT_NE(e.message.find("what CCI says"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(std::string("(CCI error ") + c.code + ")"), std::string::npos)
      << e.message;
}

INSTANTIATE_TEST_SUITE_P(Cci, CciCodeTest, ::testing::ValuesIn(kCodes),
                         [](const ::testing::TestParamInfo<CodeCase>& info) {
                           std::string name = info.param.code;
                           for (char& ch : name) {
                             if (ch == '.') {
                               ch = '_';
                             }
                           }
                           return name;
                         });

TEST(CciErrorsTest, RefusalIsPermanentAndNamesCcisMessage) {
  const Error e = classed(cciStatus(400, "BadRequest", "CCI.01.400101", "request body error"));
  EXPECT_EQ(e.code, ErrorCode::kInvalid);
  EXPECT_FALSE(isRetryable(e.code));
  EXPECT_EQ(e.message, "create pods cce-burst-c1/: request body error (CCI error CCI.01.400101)");
}

TEST(CciErrorsTest, UnknownCodesAreClassedByTheirFamilyAndStatus) {
  EXPECT_FALSE(classOfCciCode("CCI.09.400999").has_value());
  EXPECT_EQ(classed(cciStatus(400, "BadRequest", "CCI.09.400999", "x")).code, ErrorCode::kInvalid);
  EXPECT_EQ(classed(cciStatus(422, "Invalid", "CCI.09.422001", "x")).reason, kBackendRefused);
  EXPECT_EQ(classed(cciStatus(403, "Forbidden", "CCI.09.403999", "x")).code, ErrorCode::kForbidden);
  EXPECT_EQ(classed(cciStatus(500, "InternalError", "CCI.09.500999", "x")).code,
            ErrorCode::kUnavailable);
  EXPECT_EQ(classed(cciStatus(409, "AlreadyExists", "CCI.09.409999", "x")).code,
            ErrorCode::kAlreadyExists);
}

TEST(CciErrorsTest, AnswersWithoutACciCodeKeepKubernetesClasses) {
  kube::HttpResponse plain = cciStatus(400, "BadRequest", "", "bad");
  EXPECT_EQ(classed(plain).code, ErrorCode::kBadRequest);
  EXPECT_EQ(classed(plain).message, "create pods cce-burst-c1/: bad");
  kube::HttpResponse invalid = cciStatus(422, "Invalid", "", "spec.x: Invalid value");
  EXPECT_EQ(classed(invalid).code, ErrorCode::kInvalid);
  EXPECT_EQ(classed(invalid).reason, "Invalid");
  kube::HttpResponse text{503, "upstream down", "text/plain", std::nullopt};
  EXPECT_EQ(classed(text).code, ErrorCode::kUnavailable);
}

TEST(CciErrorsTest, GatewayThrottlingIsRetriedAfterItsDelay) {
  kube::HttpResponse r{429,
                       R"({"error_code":"APIG.0308","error_msg":"The throttling threshold has )"
                       R"(been reached: policy user over ratelimit,limit:200,time:1 second"})",
                       "application/json", std::chrono::seconds(1)};
  const Error e = classed(r);
  EXPECT_EQ(e.code, ErrorCode::kTooManyRequests);
  EXPECT_EQ(e.retryAfter, std::chrono::seconds(1));
  EXPECT_EQ(e.message,
            "create pods cce-burst-c1/: The throttling threshold has been reached: policy user "
            "over ratelimit,limit:200,time:1 second (CCI error APIG.0308)");
  const CciAnswer a = cciAnswerOf(r);
  EXPECT_EQ(a.code, "APIG.0308");
  // Another gateway code with 429 is throttling too.
  r.body = R"({"error_code":"APIGW.0308","error_msg":"slow down"})";
  EXPECT_EQ(classed(r).code, ErrorCode::kTooManyRequests);
}

TEST(CciErrorsTest, MalformedBodiesCarryNoCode) {
  for (const char* body : {"", "not json", "[]", R"({"errorCode":7})", R"({"kind":"Status"})"}) {
    kube::HttpResponse r{400, body, "application/json", std::nullopt};
    EXPECT_TRUE(cciAnswerOf(r).code.empty()) << body;
    EXPECT_EQ(classed(r).code, ErrorCode::kBadRequest) << body;
  }
}

}  // namespace
}  // namespace burstlet::provider::cci
