#include "kube/watch.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

namespace burstlet::kube {
namespace {

const std::string kStream =
    R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"10"}}})"
    "\n"
    R"({"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"11"},"note":"line\nbreak é"}})"
    "\n"
    R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}})"
    "\n"
    R"({"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"13"}}})"
    "\n"
    R"j({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (5)"}})j"
    "\n";

struct Seen {
  std::string type;
  std::string rv;
};

std::vector<Seen> drain(WatchDecoder& d) {
  std::vector<Seen> out;
  while (auto ev = d.next()) {
    std::string rv;
    if (auto* md = ev->object.as_object().if_contains("metadata")) {
      rv = std::string(md->as_object().at("resourceVersion").as_string());
    }
    out.push_back({std::string(watchEventTypeName(ev->type)), rv});
  }
  return out;
}

void expectAllEvents(const std::vector<Seen>& seen) {
  ASSERT_EQ(seen.size(), 5U);
  EXPECT_EQ(seen[0].type, "ADDED");
  EXPECT_EQ(seen[0].rv, "10");
  EXPECT_EQ(seen[1].type, "MODIFIED");
  EXPECT_EQ(seen[1].rv, "11");
  EXPECT_EQ(seen[2].type, "BOOKMARK");
  EXPECT_EQ(seen[2].rv, "12");
  EXPECT_EQ(seen[3].type, "DELETED");
  EXPECT_EQ(seen[4].type, "ERROR");
}

TEST(WatchDecoderTest, WholeStreamAtOnce) {
  WatchDecoder d;
  ASSERT_TRUE(d.feed(kStream).ok());
  expectAllEvents(drain(d));
  EXPECT_EQ(d.pending(), 0U);
}

// Chunk boundaries never align with events: split the stream in two at every byte offset.
TEST(WatchDecoderTest, SplitAtEveryByteOffset) {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    WatchDecoder d;
    ASSERT_TRUE(d.feed(std::string_view(kStream).substr(0, cut)).ok()) << cut;
    ASSERT_TRUE(d.feed(std::string_view(kStream).substr(cut)).ok()) << cut;
    SCOPED_TRACE(cut);
    expectAllEvents(drain(d));
  }
}

TEST(WatchDecoderTest, OneByteAtATime) {
  WatchDecoder d;
  std::vector<Seen> seen;
  for (char c : kStream) {
    ASSERT_TRUE(d.feed(std::string_view(&c, 1)).ok());
    for (auto& s : drain(d)) {
      seen.push_back(s);
    }
  }
  expectAllEvents(seen);
}

TEST(WatchDecoderTest, PartialLineWaits) {
  WatchDecoder d;
  ASSERT_TRUE(d.feed(R"({"type":"ADDED","object":{"metadata":{"resourceVersion":"1"}}})").ok());
  EXPECT_FALSE(d.next().has_value());
  EXPECT_GT(d.pending(), 0U);
  ASSERT_TRUE(d.feed("\r\n").ok());
  EXPECT_TRUE(d.next().has_value());
}

TEST(WatchDecoderTest, MalformedLineIsAnErrorAndLaterLinesStillDecode) {
  WatchDecoder d;
  auto s = d.feed("{not json}\n" + kStream);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "InvalidWatchEvent");
  expectAllEvents(drain(d));
}

TEST(WatchDecoderTest, UnknownTypeAndMissingObjectAreErrors) {
  WatchDecoder d;
  EXPECT_FALSE(d.feed("{\"type\":\"RENAMED\",\"object\":{}}\n").ok());
  EXPECT_FALSE(d.feed("{\"type\":\"ADDED\"}\n").ok());
  EXPECT_FALSE(d.feed("[1,2]\n").ok());
  EXPECT_FALSE(d.next().has_value());
}

TEST(WatchDecoderTest, ErrorEventBecomesGone) {
  WatchDecoder d;
  ASSERT_TRUE(d.feed(kStream).ok());
  std::optional<WatchEvent> last;
  while (auto ev = d.next()) {
    last = std::move(ev);
  }
  ASSERT_TRUE(last.has_value());
  ASSERT_EQ(last->type, WatchEventType::kError);
  Error e = watchError(last->object);
  EXPECT_EQ(e.code, ErrorCode::kGone);
  EXPECT_EQ(e.reason, "Expired");
  EXPECT_NE(e.message.find("too old resource version"), std::string::npos);
}

}  // namespace
}  // namespace burstlet::kube
