#include "kube/list_decoder.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::kube {
namespace {

namespace json = boost::json;

// Items with what trips a naive splitter: braces and brackets inside strings, escaped quotes
// and backslashes, unicode escapes, nested arrays, and "items" as a key inside an item.
const std::string kItems[] = {
    R"({"metadata":{"name":"a","annotations":{"x":"}{][","y":"\"quoted\" \\"}},"items":[1,[2]]})",
    R"({"metadata":{"name":"b"},"data":{"k":"\u00e9\\\"}"},"list":[{"a":[]},{}]})",
    R"({"metadata":{"name":"c"},"n":-1.5e3,"t":true,"f":false,"z":null,"s":""})",
};

std::string listBody() {
  return std::string(R"( {"kind":"PodList", "apiVersion":"v1",)") +
         R"( "metadata":{"resourceVersion":"42","continue":"tok\"en"},)" + "\n  \"items\" : [ " +
         kItems[0] + ",\n" + kItems[1] + " , " + kItems[2] + R"( ], "trailer":7 } )";
}

struct Decoded {
  std::vector<json::value> items;
  json::value envelope;
};

Result<Decoded> decodeInPieces(const std::string& body, const std::vector<size_t>& cuts) {
  ListDecoder d;
  Decoded out;
  size_t from = 0;
  for (size_t cut : cuts) {
    BURSTLET_RETURN_IF_ERROR(d.feed(std::string_view(body).substr(from, cut - from), &out.items));
    from = cut;
  }
  BURSTLET_RETURN_IF_ERROR(d.feed(std::string_view(body).substr(from), &out.items));
  auto env = d.finish();
  if (!env.ok()) {
    return std::move(env).error();
  }
  out.envelope = std::move(*env);
  return out;
}

void expectDecoded(const Decoded& d, const std::string& where) {
  ASSERT_EQ(d.items.size(), 3U) << where;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(d.items[i], json::parse(kItems[i])) << where << " item " << i;
  }
  EXPECT_EQ(d.envelope, json::parse(R"({"kind":"PodList","apiVersion":"v1",
      "metadata":{"resourceVersion":"42","continue":"tok\"en"},"trailer":7})"))
      << where;
}

TEST(ListDecoderTest, OnePieceAndEveryTwoPieceSplit) {
  const std::string body = listBody();
  auto whole = decodeInPieces(body, {});
  ASSERT_TRUE(whole.ok()) << whole.error().toString();
  expectDecoded(*whole, "whole");
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    auto d = decodeInPieces(body, {cut});
    ASSERT_TRUE(d.ok()) << "cut " << cut << ": " << d.error().toString();
    expectDecoded(*d, "cut " + std::to_string(cut));
  }
}

TEST(ListDecoderTest, ByteByByte) {
  const std::string body = listBody();
  std::vector<size_t> cuts;
  for (size_t i = 1; i < body.size(); ++i) {
    cuts.push_back(i);
  }
  auto d = decodeInPieces(body, cuts);
  ASSERT_TRUE(d.ok()) << d.error().toString();
  expectDecoded(*d, "byte by byte");
}

TEST(ListDecoderTest, ItemsComeOutAsSoonAsTheyAreComplete) {
  const std::string body = listBody();
  ListDecoder d;
  std::vector<json::value> items;
  const size_t endOfFirst = body.find(kItems[0]) + kItems[0].size();
  ASSERT_TRUE(d.feed(std::string_view(body).substr(0, endOfFirst - 1), &items).ok());
  EXPECT_TRUE(items.empty());
  ASSERT_TRUE(d.feed(std::string_view(body).substr(endOfFirst - 1, 1), &items).ok());
  EXPECT_EQ(items.size(), 1U);
}

TEST(ListDecoderTest, EmptyListAndNoItemsKey) {
  auto empty =
      decodeInPieces(R"({"kind":"PodList","metadata":{"resourceVersion":"1"},"items":[]})", {5});
  ASSERT_TRUE(empty.ok()) << empty.error().toString();
  EXPECT_TRUE(empty->items.empty());
  EXPECT_EQ(empty->envelope.at("metadata").at("resourceVersion"), "1");
  auto bare = decodeInPieces("{}", {});
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->envelope, json::object{});
}

TEST(ListDecoderTest, MalformedBodiesAreClearErrors) {
  struct Case {
    std::string body;
    std::string message;
  };
  const Case cases[] = {
      {"", "empty body"},
      {"[1,2]", "not a JSON object"},
      {R"({"items":{}})", "\"items\" is not an array"},
      {R"({"items":[1]})", "an item is not an object"},
      {R"({"items":[{"a":1}])", "the body ended inside the list"},
      {R"({"items":[{"a":1})", "the body ended inside the list"},
      {R"({"items":[{"a":}]})", "an item is not valid JSON"},
      {R"({"items":[]} x)", "data after the end of the list"},
      {R"({"items" [])", "after a key"},
      {R"({"a":1 "b":2})", "after a value"},
      {R"({"metadata":{"resourceVersion":tru}, "items":[]})", "metadata is not valid JSON"},
      {R"({"metadata":{"resourceVersion":1]}, "items":[]})", "data after the end of the list"},
  };
  for (const auto& c : cases) {
    auto d = decodeInPieces(c.body, {});
    ASSERT_FALSE(d.ok()) << c.body;
    EXPECT_EQ(d.error().reason, "InvalidResponse") << c.body;
    EXPECT_NE(d.error().message.find(c.message), std::string::npos)
        << c.body << ": " << d.error().message;
  }
}

TEST(ListDecoderTest, SizesAreBounded) {
  ListDecoder small(100);
  std::vector<json::value> items;
  const std::string big = R"({"items":[{"a":")" + std::string(200, 'x') + R"("}]})";
  // Whole in one piece, and split so that the item is buffered across pieces.
  auto whole = ListDecoder(100).feed(big, &items);
  ASSERT_FALSE(whole.ok());
  EXPECT_EQ(whole.error().reason, "ResponseTooLarge");
  ASSERT_TRUE(small.feed(std::string_view(big).substr(0, 60), &items).ok());
  auto s = small.feed(std::string_view(big).substr(60, 100), &items);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "ResponseTooLarge");
  EXPECT_TRUE(items.empty());
  auto again = small.feed("]}", &items);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("after an error"), std::string::npos);

  ListDecoder meta(100);
  const std::string bigMeta = R"({"metadata":{"a":")" + std::string(200, 'x') + R"("},"items":[]})";
  auto m = meta.feed(bigMeta, &items);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().reason, "ResponseTooLarge");
}

}  // namespace
}  // namespace burstlet::kube
