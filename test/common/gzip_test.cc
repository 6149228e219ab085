#include "common/gzip.h"

#include <gtest/gtest.h>

#include <random>

namespace burstlet {
namespace {

std::string sample(size_t n) {
  std::string s;
  std::mt19937 rng(7);
  while (s.size() < n) {
    s += R"({"metadata":{"name":"pod-)" + std::to_string(rng() % 100000) + R"("}},)";
  }
  s.resize(n);
  return s;
}

TEST(GzipTest, RoundTripsSmallEmptyAndLargeBodies) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{5} << 20}) {
    const std::string data = sample(n);
    auto decoded = gunzip(gzipCompress(data), size_t{64} << 20);
    ASSERT_TRUE(decoded.ok()) << n << ": " << decoded.error().toString();
    EXPECT_EQ(*decoded, data) << n;
  }
}

TEST(GzipTest, DecodedSizeIsBounded) {
  // 64 MiB of zeros compress to about 64 KiB: the bound stops it early.
  const std::string bomb = gzipCompress(std::string(size_t{64} << 20, '\0'));
  ASSERT_LT(bomb.size(), size_t{1} << 20);
  auto decoded = gunzip(bomb, size_t{1} << 20);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().reason, "ResponseTooLarge");
  // Exactly at the bound is fine.
  const std::string exact(size_t{1} << 20, 'x');
  auto ok = gunzip(gzipCompress(exact), exact.size());
  ASSERT_TRUE(ok.ok()) << ok.error().toString();
  EXPECT_EQ(ok->size(), exact.size());
}

TEST(GzipTest, CorruptTruncatedAndTrailingBytesAreErrors) {
  const std::string good = gzipCompress(sample(10000));
  auto truncated = gunzip(good.substr(0, good.size() / 2), size_t{1} << 20);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().reason, "MalformedGzip");
  EXPECT_NE(truncated.error().message.find("truncated"), std::string::npos);

  std::string corrupt = good;
  corrupt[corrupt.size() / 2] = static_cast<char>(corrupt[corrupt.size() / 2] ^ 0x5a);
  corrupt[corrupt.size() / 2 + 1] = static_cast<char>(corrupt[corrupt.size() / 2 + 1] ^ 0xa5);
  auto bad = gunzip(corrupt, size_t{1} << 20);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().reason, "MalformedGzip");

  auto trailing = gunzip(good + "junk", size_t{1} << 20);
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.error().reason, "MalformedGzip");

  auto notGzip = gunzip("{\"kind\":\"PodList\"}", size_t{1} << 20);
  ASSERT_FALSE(notGzip.ok());
  EXPECT_EQ(notGzip.error().reason, "MalformedGzip");
}

TEST(GzipTest, DecoderTakesAnyPieces) {
  const std::string small = sample(5000);
  const std::string large = sample(size_t{300} << 10);
  for (const auto& [data, pieceSize] : {std::pair{&small, size_t{1}}, std::pair{&large, size_t{7}},
                                        std::pair{&large, size_t{4096}}}) {
    const std::string gz = gzipCompress(*data);
    GzipDecoder d;
    std::string out;
    for (size_t i = 0; i < gz.size(); i += pieceSize) {
      ASSERT_TRUE(d.feed(std::string_view(gz).substr(i, pieceSize), &out).ok()) << i;
      EXPECT_EQ(d.finished(), i + pieceSize >= gz.size()) << i;
    }
    EXPECT_EQ(out, *data) << pieceSize;
    EXPECT_EQ(d.decodedBytes(), data->size());
  }
  GzipDecoder d;
  std::string out;
  auto s = d.feed(gzipCompress(small) + "x", &out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "MalformedGzip");
  EXPECT_NE(s.error().message.find("after the end"), std::string::npos);
}

}  // namespace
}  // namespace burstlet
