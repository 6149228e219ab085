// SPDY/3 header blocks: layout, the dictionary, compression contexts that span blocks, bounds.
#include "kubelet/spdy/header_block.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace burstlet::spdy {
namespace {

using namespace std::string_literals;

TEST(HeaderDictionaryTest, IsSpdy3sDictionary) {
  const auto dict = headerDictionary();
  EXPECT_EQ(dict.size(), 1423u);
  // The dictionary id in every SPDY/3 zlib header (Go's blocks start 78 f9 e3 c6 a7 c2).
  const auto id = adler32(adler32(0, nullptr, 0), reinterpret_cast<const Bytef*>(dict.data()),
                          static_cast<uInt>(dict.size()));
  EXPECT_EQ(id, 0xe3c6a7c2u);
  EXPECT_EQ(dict.substr(0, 11), "\0\0\0\7options"s);
  EXPECT_EQ(dict.substr(dict.size() - 5), "nq=0.");
}

TEST(HeaderBlockTest, EncodesLowerCaseNamesAndJoinsRepeatedOnes) {
  const Headers headers = {{"StreamType", "error"}, {"x-a", "1"}, {"X-A", "2"}};
  auto block = encodeHeaderBlock(headers);
  ASSERT_TRUE(block.ok());
  const std::string expected =
      "\0\0\0\2"s                           // two names
      "\0\0\0\x0astreamtype\0\0\0\5error"s  // name length, name, value length, value
      "\0\0\0\3x-a\0\0\0\x03"s
      "1\0002"s;  // values of one name separated by NUL
  EXPECT_EQ(*block, expected);

  auto parsed = parseHeaderBlock(*block);
  ASSERT_TRUE(parsed.ok()) << parsed.error().toString();
  const Headers want = {{"streamtype", "error"}, {"x-a", "1"}, {"x-a", "2"}};
  EXPECT_EQ(*parsed, want);
  EXPECT_EQ(findHeader(*parsed, "StreamType"), "error");
  EXPECT_EQ(findHeader(*parsed, "x-a"), "1");
  EXPECT_FALSE(findHeader(*parsed, "port").has_value());
}

TEST(HeaderBlockTest, EmptyBlockAndEmptyValue) {
  auto empty = encodeHeaderBlock({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "\0\0\0\0"s);
  auto parsed = parseHeaderBlock("\0\0\0\1\0\0\0\1a\0\0\0\0"s);
  ASSERT_TRUE(parsed.ok());
  const Headers want = {{"a", ""}};
  EXPECT_EQ(*parsed, want);
}

TEST(HeaderBlockTest, RefusesBadNamesWhenEncoding) {
  EXPECT_EQ(encodeHeaderBlock({{"", "x"}}).error().reason, "InvalidHeader");
  EXPECT_EQ(encodeHeaderBlock({{"a\0b"s, "x"}}).error().reason, "InvalidHeader");
}

TEST(HeaderBlockTest, RefusesMalformedBlocks) {
  const std::string cases[] = {
      ""s,                                            // no count
      "\0\0\0\1"s,                                    // count without pairs
      "\0\0\0\1\0\0\0\5ab\0\0\0\0"s,                  // name runs past the end
      "\0\0\0\1\0\0\0\1a\0\0\0\0x"s,                  // trailing byte
      "\0\0\0\1\0\0\0\1A\0\0\0\0"s,                   // upper-case name
      "\0\0\0\1\0\0\0\0\0\0\0\0"s,                    // empty name
      "\0\0\0\2\0\0\0\1a\0\0\0\0\0\0\0\1a\0\0\0\0"s,  // a name twice
      "\xff\xff\xff\xff\0\0\0\0\0\0\0\0"s,            // a count the block cannot hold
  };
  for (const auto& block : cases) {
    auto parsed = parseHeaderBlock(block);
    ASSERT_FALSE(parsed.ok()) << testing::PrintToString(block);
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(parsed.error().reason, "InvalidHeaderBlock");
  }
}

TEST(HeaderCompressionTest, ContextContinuesAcrossBlocks) {
  auto compressor = HeaderCompressor::create();
  auto decompressor = HeaderDecompressor::create(1 << 20);
  ASSERT_TRUE(compressor.ok());
  ASSERT_TRUE(decompressor.ok());
  const Headers headers = {{"streamtype", "stdout"},
                           {"x-stream-protocol-version", "v5.channel.k8s.io"}};
  std::string first;
  std::string second;
  ASSERT_TRUE(compressor->compress(headers, first).ok());
  ASSERT_TRUE(compressor->compress(headers, second).ok());
  // The second block refers back into the first: shorter, and not decodable on its own.
  EXPECT_LT(second.size(), first.size());
  // A zlib header naming the SPDY/3 dictionary (FDICT and its Adler-32).
  EXPECT_EQ(first.substr(2, 4), "\xe3\xc6\xa7\xc2"s);
  auto a = decompressor->decompress(first);
  ASSERT_TRUE(a.ok()) << a.error().toString();
  EXPECT_EQ(*a, headers);
  auto b = decompressor->decompress(second);
  ASSERT_TRUE(b.ok()) << b.error().toString();
  EXPECT_EQ(*b, headers);

  auto fresh = HeaderDecompressor::create(1 << 20);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->decompress(second).ok());
}

TEST(HeaderCompressionTest, InvalidHeadersLeaveTheContextUsable) {
  auto compressor = HeaderCompressor::create();
  auto decompressor = HeaderDecompressor::create(1 << 20);
  ASSERT_TRUE(compressor.ok());
  ASSERT_TRUE(decompressor.ok());
  std::string out;
  EXPECT_FALSE(compressor->compress({{"", "x"}}, out).ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(compressor->compress({{"port", "8080"}}, out).ok());
  auto h = decompressor->decompress(out);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(findHeader(*h, "port"), "8080");
}

TEST(HeaderCompressionTest, ZipBombStopsAtTheBound) {
  auto compressor = HeaderCompressor::create();
  ASSERT_TRUE(compressor.ok());
  std::string bomb;
  ASSERT_TRUE(compressor->compress({{"x", std::string(8 << 20, 'a')}}, bomb).ok());
  EXPECT_LT(bomb.size(), 64u << 10);  // 8 MiB of header in a few KiB

  auto decompressor = HeaderDecompressor::create(64 << 10);
  ASSERT_TRUE(decompressor.ok());
  auto h = decompressor->decompress(bomb);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(h.error().reason, "HeaderBlockTooLarge");
  // The zlib stream is out of step with the peer's now: nothing more decodes.
  std::string small;
  auto other = HeaderCompressor::create();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->compress({{"a", "b"}}, small).ok());
  EXPECT_FALSE(decompressor->decompress(small).ok());
}

TEST(HeaderCompressionTest, RefusesBlocksNoPeerTakes) {
  auto compressor = HeaderCompressor::create();
  ASSERT_TRUE(compressor.ok());
  std::string out;
  const Status status = compressor->compress({{"x", std::string(16 << 20, 'a')}}, out);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().reason, "InvalidHeader");
  EXPECT_TRUE(out.empty());
}

TEST(HeaderCompressionTest, BlockAtExactlyTheBoundDecodes) {
  auto compressor = HeaderCompressor::create();
  ASSERT_TRUE(compressor.ok());
  const Headers headers = {{"x", std::string(1000, 'v')}};
  auto raw = encodeHeaderBlock(headers);
  ASSERT_TRUE(raw.ok());
  std::string compressed;
  ASSERT_TRUE(compressor->compress(headers, compressed).ok());
  auto exact = HeaderDecompressor::create(raw->size());
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(exact->decompress(compressed).ok());

  auto compressor2 = HeaderCompressor::create();
  ASSERT_TRUE(compressor2.ok());
  std::string compressed2;
  ASSERT_TRUE(compressor2->compress(headers, compressed2).ok());
  auto tooSmall = HeaderDecompressor::create(raw->size() - 1);
  ASSERT_TRUE(tooSmall.ok());
  EXPECT_EQ(tooSmall->decompress(compressed2).error().reason, "HeaderBlockTooLarge");
}

TEST(HeaderCompressionTest, CorruptDataFails) {
  auto decompressor = HeaderDecompressor::create(1 << 20);
  ASSERT_TRUE(decompressor.ok());
  auto h = decompressor->decompress("\x78\xf9\xe3\xc6\xa7\xc2\xff\xff\xff\xff"s);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().reason, "InvalidHeaderBlock");
}

TEST(HeaderCompressionTest, WrongDictionaryFails) {
  auto decompressor = HeaderDecompressor::create(1 << 20);
  ASSERT_TRUE(decompressor.ok());
  // A zlib header asking for dictionary 0x00000001.
  auto h = decompressor->decompress("\x78\xbb\x00\x00\x00\x01\x03\x00"s);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().reason, "InvalidHeaderBlock");
}

TEST(HeaderCompressionTest, EndedZlibStreamFails) {
  // A complete zlib stream (Z_FINISH) without the dictionary: the peer may not end its stream.
  std::string raw = "\0\0\0\0"s;
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string out(size, '\0');
  ASSERT_EQ(::compress(reinterpret_cast<Bytef*>(out.data()), &size,
                       reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size())),
            Z_OK);
  out.resize(size);
  auto decompressor = HeaderDecompressor::create(1 << 20);
  ASSERT_TRUE(decompressor.ok());
  EXPECT_FALSE(decompressor->decompress(out).ok());
}

}  // namespace
}  // namespace burstlet::spdy
