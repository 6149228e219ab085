#include "common/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

namespace burstlet {
namespace {

Result<int> parsePositive(int v) {
  if (v <= 0) {
    return Error::make(ErrorCode::kInvalid, "NotPositive", "value must be > 0");
  }
  return v;
}

Result<int> doubled(int v) {
  auto r = parsePositive(v);
  BURSTLET_RETURN_IF_ERROR(r);
  return *r * 2;
}

TEST(ResultTest, HoldsValue) {
  Result<std::string> r = std::string("pod");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "pod");
  EXPECT_EQ(r->size(), 3U);
}

TEST(ResultTest, HoldsError) {
  Result<int> r = parsePositive(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(r.error().reason, "NotPositive");
  EXPECT_EQ(r.valueOr(7), 7);
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

TEST(ResultTest, ReturnIfErrorPropagates) {
  EXPECT_EQ(*doubled(4), 8);
  auto r = doubled(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "NotPositive");
}

TEST(ResultTest, StatusDefaultsToOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  Status bad = Error::make(ErrorCode::kNotFound, "NotFound", "pods \"x\" not found");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().toString(), "not_found: NotFound: pods \"x\" not found");
}

TEST(ResultTest, RetryableClasses) {
  EXPECT_TRUE(isRetryable(ErrorCode::kTooManyRequests));
  EXPECT_TRUE(isRetryable(ErrorCode::kUnavailable));
  EXPECT_TRUE(isRetryable(ErrorCode::kTimeout));
  EXPECT_FALSE(isRetryable(ErrorCode::kInvalid));
  EXPECT_FALSE(isRetryable(ErrorCode::kForbidden));
  EXPECT_FALSE(isRetryable(ErrorCode::kNotFound));
  EXPECT_FALSE(isRetryable(ErrorCode::kGone));
}

TEST(ResultTest, CodeNamesAreDistinct) {
  const ErrorCode all[] = {
      ErrorCode::kNotFound,     ErrorCode::kAlreadyExists, ErrorCode::kConflict,
      ErrorCode::kGone,         ErrorCode::kInvalid,       ErrorCode::kBadRequest,
      ErrorCode::kUnauthorized, ErrorCode::kForbidden,     ErrorCode::kTooManyRequests,
      ErrorCode::kTimeout,      ErrorCode::kUnavailable,   ErrorCode::kCancelled,
      ErrorCode::kInternal,     ErrorCode::kNotSupported};
  std::set<std::string_view> names;
  for (auto c : all) {
    names.insert(errorCodeName(c));
  }
  EXPECT_EQ(names.size(), std::size(all));
  EXPECT_EQ(errorCodeName(ErrorCode::kNotSupported), "not_supported");
  EXPECT_FALSE(isRetryable(ErrorCode::kNotSupported));  // asking again cannot help
}

}  // namespace
}  // namespace burstlet
