#include "common/quantity.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace burstlet {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

Quantity q(std::string_view text) {
  auto r = Quantity::parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().toString());
  return r.ok() ? *r : Quantity();
}

struct ParseCase {
  std::string text;
  int64_t milli;
  int64_t value;
  std::string canonical;
};

TEST(QuantityTest, ParsesAndCanonicalizesLikeTheApiServer) {
  const std::vector<ParseCase> cases = {
      // CPU-style decimal quantities.
      {"0", 0, 0, "0"},
      {"250m", 250, 1, "250m"},
      {"1", 1000, 1, "1"},
      {"2", 2000, 2, "2"},
      {"1.5", 1500, 2, "1500m"},
      {"0.25", 250, 1, "250m"},
      {".5", 500, 1, "500m"},
      {"5.", 5000, 5, "5"},
      {"1.G", 1'000'000'000'000, 1'000'000'000, "1G"},
      {"+1", 1000, 1, "1"},
      {"-1.5", -1500, -2, "-1500m"},
      {"-0", 0, 0, "0"},
      {"00012", 12000, 12, "12"},
      {"1000m", 1000, 1, "1"},
      {"1n", 1, 1, "1n"},
      {"1u", 1, 1, "1u"},
      {"1500u", 2, 1, "1500u"},
      {"0.1m", 1, 1, "100u"},
      {"1k", 1'000'000, 1000, "1k"},
      {"1000", 1'000'000, 1000, "1k"},
      {"1.5k", 1'500'000, 1500, "1500"},
      {"100M", 100'000'000'000, 100'000'000, "100M"},
      {"1T", 1'000'000'000'000'000, 1'000'000'000'000, "1T"},
      {"1P", 1'000'000'000'000'000'000, 1'000'000'000'000'000, "1P"},
      {"1E", kMax, 1'000'000'000'000'000'000, "1E"},
      // Memory-style binary quantities.
      {"1Ki", 1'024'000, 1024, "1Ki"},
      {"0.5Ki", 512'000, 512, "512"},
      {"100Ki", 102'400'000, 102'400, "100Ki"},
      {"512Mi", 536'870'912'000, 536'870'912, "512Mi"},
      {"1024Mi", 1'073'741'824'000, 1'073'741'824, "1Gi"},
      {"1Gi", 1'073'741'824'000, 1'073'741'824, "1Gi"},
      {"0.5Gi", 536'870'912'000, 536'870'912, "512Mi"},
      {"1.5Gi", 1'610'612'736'000, 1'610'612'736, "1536Mi"},
      {"0.1Ki", 102'400, 103, "102400m"},
      {"1Ei", kMax, 1'152'921'504'606'846'976, "1Ei"},
      {"7Ei", kMax, 8'070'450'532'247'928'832, "7Ei"},
      {"-2Ki", -2'048'000, -2048, "-2Ki"},
      // Decimal exponents.
      {"1e3", 1'000'000, 1000, "1e3"},
      {"1E3", 1'000'000, 1000, "1e3"},
      {"1e+3", 1'000'000, 1000, "1e3"},
      {"15e2", 1'500'000, 1500, "1500"},
      {"1.5e3", 1'500'000, 1500, "1500"},
      {"1e-3", 1, 1, "1e-3"},
      {"12e-1", 1200, 2, "1200e-3"},
      {"0e99999999999999999999", 0, 0, "0"},
      // Finer than nano rounds up (away from zero) to the next nano-unit.
      {"0.0000000001", 1, 1, "1n"},
      {"-0.0000000001", -1, -1, "-1n"},
      {"1.0000000001", 1001, 2, "1000000001n"},
      {"1e-99999999999999999999", 1, 1, "1e-9"},
      {"0." + std::string(300, '0') + "1", 1, 1, "1n"},
      {std::string(200, '0') + "7", 7000, 7, "7"},
      // The API's maximum.
      {"9223372036854775807", kMax, kMax, "9223372036854775807"},
      {"-9223372036854775807", kMin, -kMax, "-9223372036854775807"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = Quantity::parse(c.text);
    ASSERT_TRUE(r.ok()) << r.error().toString();
    EXPECT_EQ(r->milliValue(), c.milli);
    EXPECT_EQ(r->value(), c.value);
    EXPECT_EQ(r->toString(), c.canonical);
    EXPECT_TRUE(r->inApiRange());
    // The canonical text means the same amount.
    auto again = Quantity::parse(r->toString());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *r);
    EXPECT_EQ(again->toString(), c.canonical);
  }
}

TEST(QuantityTest, KeepsTheFormatOfItsSuffix) {
  EXPECT_EQ(q("1Gi").format(), Quantity::Format::kBinarySI);
  EXPECT_EQ(q("1G").format(), Quantity::Format::kDecimalSI);
  EXPECT_EQ(q("250m").format(), Quantity::Format::kDecimalSI);
  EXPECT_EQ(q("12").format(), Quantity::Format::kDecimalSI);
  EXPECT_EQ(q("1e9").format(), Quantity::Format::kDecimalExponent);
  EXPECT_EQ(q("1E").format(), Quantity::Format::kDecimalSI);  // exa, not an exponent
}

TEST(QuantityTest, RejectsInvalidText) {
  const std::vector<std::string> cases = {
      "",      "-",   "+",    ".",     "-.",    "abc", "Mi",   "1 Gi",  " 1",
      "1 ",    "1gi", "1K",   "1mi",   "1Ki5",  "1k3", "1e",   "1e+",   "1e-",
      "1e1.5", "1ei", "1..5", "1.5.5", "--1",   "+-1", "0x10", "1,5",   "1_000",
      "1Gi ",  "1iB", "１",   "1\n",   "1e3Ki", "1mm", "1KiB", "1.5 m", "∞",
  };
  for (const auto& text : cases) {
    SCOPED_TRACE(text);
    auto r = Quantity::parse(text);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(r.error().reason, "InvalidQuantity");
    EXPECT_NE(r.error().message.find("\"" + text + "\""), std::string::npos) << r.error().message;
  }
}

TEST(QuantityTest, RejectsValuesBeyondTheApiMaximum) {
  const std::vector<std::string> cases = {
      "9223372036854775808",
      "-9223372036854775808",
      "9223372036854775807.5",
      "8Ei",
      "10E",
      "9300P",
      "1e19",
      "1e1000000000000",
      "99999999999999999999999999999999999999999999999999",
  };
  for (const auto& text : cases) {
    SCOPED_TRACE(text);
    auto r = Quantity::parse(text);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(r.error().reason, "InvalidQuantity");
    EXPECT_NE(r.error().message.find("maximum"), std::string::npos) << r.error().message;
  }
}

TEST(QuantityTest, QuotesLongInvalidTextShortened) {
  const std::string text = std::string(500, '1') + "x";
  auto r = Quantity::parse(text);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message.size(), 300U);
  EXPECT_NE(r.error().message.find("..."), std::string::npos);
}

TEST(QuantityTest, ConstructsFromIntegers) {
  EXPECT_EQ(Quantity::fromMilli(250).toString(), "250m");
  EXPECT_EQ(Quantity::fromMilli(2000).toString(), "2");
  EXPECT_EQ(Quantity::fromMilli(-1).milliValue(), -1);
  EXPECT_EQ(Quantity::fromValue(2).toString(), "2");
  EXPECT_EQ(Quantity::fromValue(1073741824, Quantity::Format::kBinarySI).toString(), "1Gi");
  EXPECT_EQ(Quantity::fromValue(1073741824).toString(), "1073741824");
  EXPECT_EQ(Quantity::fromValue(kMax).value(), kMax);
  EXPECT_EQ(Quantity::fromValue(kMax).milliValue(), kMax);  // saturated
  EXPECT_EQ(Quantity::fromValue(kMin).milliValue(), kMin);
  EXPECT_EQ(Quantity().toString(), "0");
  EXPECT_TRUE(Quantity().isZero());
  EXPECT_EQ(q("1536M").withFormat(Quantity::Format::kDecimalExponent).toString(), "1536e6");
  EXPECT_EQ(Quantity::fromValue(1610612736).withFormat(Quantity::Format::kBinarySI).toString(),
            "1536Mi");
}

TEST(QuantityTest, ComparesValuesNotSpelling) {
  EXPECT_EQ(q("1Gi"), q("1073741824"));
  EXPECT_EQ(q("1000m"), q("1"));
  EXPECT_EQ(q("1e3"), q("1k"));
  EXPECT_EQ(q("0"), q("0Gi"));
  EXPECT_LT(q("999m"), q("1"));
  EXPECT_GT(q("1Gi"), q("1G"));
  EXPECT_LT(q("-1"), q("0"));
  EXPECT_LE(q("250m"), q("0.25"));
  EXPECT_NE(q("1n"), q("0"));
  EXPECT_EQ(std::max(q("1Gi"), q("2G")), q("2G"));
  EXPECT_EQ(q("-3").sign(), -1);
  EXPECT_EQ(q("0").sign(), 0);
  EXPECT_EQ(q("1n").sign(), 1);
}

TEST(QuantityTest, AddsAndSubtractsExactly) {
  struct Case {
    std::string a;
    std::string b;
    std::string sum;
    std::string difference;
  };
  const std::vector<Case> cases = {
      {"250m", "250m", "500m", "0"},
      {"1", "250m", "1250m", "750m"},
      {"1Gi", "512Mi", "1536Mi", "512Mi"},
      {"0", "1Gi", "1Gi", "-1Gi"},  // a zero left operand takes the right one's format
      {"100m", "0.1", "200m", "0"},
      {"1n", "1n", "2n", "0"},
      {"1e3", "1", "1001", "999"},
      {"1Ki", "1", "1025", "1023"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.a + " and " + c.b);
    EXPECT_EQ((q(c.a) + q(c.b)).toString(), c.sum);
    EXPECT_EQ((q(c.a) - q(c.b)).toString(), c.difference);
    Quantity acc = q(c.a);
    acc += q(c.b);
    EXPECT_EQ(acc, q(c.sum));
    acc -= q(c.b);
    EXPECT_EQ(acc, q(c.a));
  }
  EXPECT_EQ((-q("250m")).toString(), "-250m");
  EXPECT_EQ((q("250m") * 4).toString(), "1");
  EXPECT_EQ((q("512Mi") * 3).toString(), "1536Mi");
  EXPECT_EQ((q("1") * -2).toString(), "-2");
}

TEST(QuantityTest, SumsBeyondTheApiRangeStayExactThenSaturate) {
  const Quantity max = q("9223372036854775807");
  const Quantity sum = max + max;
  EXPECT_FALSE(sum.inApiRange());
  EXPECT_EQ(sum - max, max);  // still exact
  EXPECT_EQ(sum.value(), kMax);
  EXPECT_EQ(sum.toString(), "18446744073709551614");

  const Quantity huge = max * 10'000'000'000;  // ~9.2e37 nano-units: still fits
  EXPECT_EQ(huge.sign(), 1);
  const Quantity saturated = huge * 4;
  EXPECT_EQ(saturated.sign(), 1);
  EXPECT_GT(saturated, huge);
  EXPECT_EQ(saturated + huge, saturated);  // pinned at the top, never wrapped
  const Quantity negative = huge * -4;
  EXPECT_EQ(negative.sign(), -1);
  EXPECT_EQ(negative - huge, negative);
  EXPECT_EQ(negative.value(), kMin);
  EXPECT_EQ((-negative).sign(), 1);
  EXPECT_EQ(saturated.toString(), "170141183460469231731687303715884105727n");
  // There is no SI suffix beyond exa.
  EXPECT_EQ((q("1E") * 1000).toString(), "1000E");
}

TEST(QuantityTest, RoundsUpToAMultipleOfAStep) {
  struct Case {
    std::string value;
    std::string step;
    std::string rounded;
  };
  const std::vector<Case> cases = {
      {"300m", "250m", "500m"},   {"250m", "250m", "250m"}, {"1", "250m", "1"},
      {"1.1", "250m", "1250m"},   {"1n", "250m", "250m"},   {"0", "250m", "0"},
      {"-300m", "250m", "-250m"}, {"1.2Gi", "1Gi", "2Gi"},  {"3Gi", "1Gi", "3Gi"},
      {"205Mi", "1Gi", "1Gi"},    {"1G", "1Gi", "1Gi"},     {"7", "0", "7"},
      {"7", "-1", "7"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value + " to " + c.step);
    const Quantity rounded = q(c.value).roundUpTo(q(c.step));
    EXPECT_EQ(rounded, q(c.rounded));
    EXPECT_EQ(rounded.format(), q(c.value).format());
  }
  EXPECT_EQ(q("1.2Gi").roundUpTo(q("1Gi")).toString(), "2Gi");
  EXPECT_EQ(q("0.3").roundUpTo(q("250m")).toString(), "500m");
}

}  // namespace
}  // namespace burstlet
