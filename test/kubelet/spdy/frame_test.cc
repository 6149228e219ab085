// SPDY/3.1 frames: every type against bytes written out by hand, header blocks compressed by Go's
// spdystream, decoding from arbitrary pieces, and the bounds on what a peer may send.
#include "kubelet/spdy/frame.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace burstlet::spdy {
namespace {

using namespace std::string_literals;

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (const int b : list) {
    out.push_back(static_cast<char>(b));
  }
  return out;
}

// Decodes everything `decoder` holds. Fed whole, a DATA frame comes out in one piece.
std::vector<Frame> decodeAll(FrameDecoder& decoder) {
  std::vector<Frame> frames;
  while (true) {
    auto next = decoder.next();
    EXPECT_TRUE(next.ok()) << next.error().toString();
    if (!next.ok() || !next->has_value()) {
      return frames;
    }
    frames.push_back(std::move(**next));
  }
}

Frame decodeOne(const std::string& wire) {
  auto decoder = FrameDecoder::create();
  EXPECT_TRUE(decoder.ok());
  decoder->feed(wire);
  auto frame = decoder->next();
  EXPECT_TRUE(frame.ok()) << frame.error().toString();
  EXPECT_TRUE(frame.ok() && frame->has_value());
  EXPECT_EQ(decoder->buffered(), 0u);
  return frame.ok() && frame->has_value() ? std::move(**frame) : Frame{};
}

std::string encodeOne(const Frame& frame) {
  auto encoder = FrameEncoder::create();
  EXPECT_TRUE(encoder.ok());
  std::string out;
  const Status status = encoder->encode(frame, out);
  EXPECT_TRUE(status.ok()) << status.error().toString();
  return out;
}

Error decodeError(const std::string& wire, FrameLimits limits = {}) {
  auto decoder = FrameDecoder::create(limits);
  EXPECT_TRUE(decoder.ok());
  decoder->feed(wire);
  while (true) {
    auto frame = decoder->next();
    if (!frame.ok()) {
      return frame.error();
    }
    if (!frame->has_value()) {
      ADD_FAILURE() << "no error decoding " << testing::PrintToString(wire);
      return Error{};
    }
  }
}

// --- control frames without header blocks, both ways ------------------------------------------

const std::string kRstStream = bytes({
    0x80, 0x03,              // control bit, version 3
    0x00, 0x03,              // type 3: RST_STREAM
    0x00,                    // flags
    0x00, 0x00, 0x08,        // length 8
    0x00, 0x00, 0x00, 0x03,  // stream id 3
    0x00, 0x00, 0x00, 0x05,  // status 5: CANCEL
});

const std::string kSettings = bytes({
    0x80, 0x03, 0x00, 0x04,  // control, version 3, type 4: SETTINGS
    0x01,                    // flags: CLEAR_SETTINGS
    0x00, 0x00, 0x14,        // length 20
    0x00, 0x00, 0x00, 0x02,  // two entries
    0x01, 0x00, 0x00, 0x04,  // flags PERSIST_VALUE, id 4: MAX_CONCURRENT_STREAMS
    0x00, 0x00, 0x00, 0x64,  // value 100
    0x00, 0x00, 0x00, 0x07,  // no flags, id 7: INITIAL_WINDOW_SIZE
    0x00, 0x01, 0x00, 0x00,  // value 65536
});

const std::string kPing = bytes({
    0x80, 0x03, 0x00, 0x06,  // control, version 3, type 6: PING
    0x00,                    // flags
    0x00, 0x00, 0x04,        // length 4
    0x00, 0x00, 0x00, 0x01,  // id 1 (a client's)
});

const std::string kGoAway = bytes({
    0x80, 0x03, 0x00, 0x07,  // control, version 3, type 7: GOAWAY
    0x00,                    // flags
    0x00, 0x00, 0x08,        // length 8 (SPDY/3 added the status)
    0x00, 0x00, 0x00, 0x05,  // last good stream id 5
    0x00, 0x00, 0x00, 0x01,  // status 1: PROTOCOL_ERROR
});

const std::string kWindowUpdate = bytes({
    0x80, 0x03, 0x00, 0x09,  // control, version 3, type 9: WINDOW_UPDATE
    0x00,                    // flags
    0x00, 0x00, 0x08,        // length 8
    0x00, 0x00, 0x00, 0x00,  // stream 0: the session's window (SPDY/3.1)
    0x00, 0x01, 0x00, 0x00,  // delta 65536
});

const std::string kData = bytes({
    0x00, 0x00, 0x00, 0x01,  // control bit clear, stream id 1
    0x01,                    // flags: FIN
    0x00, 0x00, 0x02,        // length 2
    'h', 'i',                // payload
});

TEST(FrameTest, RstStream) {
  const RstStreamFrame frame{3, static_cast<uint32_t>(RstStatus::kCancel)};
  EXPECT_EQ(encodeOne(frame), kRstStream);
  EXPECT_EQ(decodeOne(kRstStream), Frame(frame));
  EXPECT_EQ(rstStatusName(frame.status), "CANCEL");
  EXPECT_EQ(rstStatusName(99), "UNKNOWN");
}

TEST(FrameTest, Settings) {
  const SettingsFrame frame{kFlagClearSettings, {{0x01, 4, 100}, {0x00, 7, 65536}}};
  EXPECT_EQ(encodeOne(frame), kSettings);
  EXPECT_EQ(decodeOne(kSettings), Frame(frame));
}

TEST(FrameTest, Ping) {
  EXPECT_EQ(encodeOne(PingFrame{1}), kPing);
  EXPECT_EQ(decodeOne(kPing), Frame(PingFrame{1}));
}

TEST(FrameTest, GoAway) {
  const GoAwayFrame frame{5, static_cast<uint32_t>(GoAwayStatus::kProtocolError)};
  EXPECT_EQ(encodeOne(frame), kGoAway);
  EXPECT_EQ(decodeOne(kGoAway), Frame(frame));
}

TEST(FrameTest, WindowUpdate) {
  EXPECT_EQ(encodeOne(WindowUpdateFrame{0, 65536}), kWindowUpdate);
  EXPECT_EQ(decodeOne(kWindowUpdate), Frame(WindowUpdateFrame{0, 65536}));
}

TEST(FrameTest, Data) {
  const DataFrame frame{1, kFlagFin, "hi"};
  EXPECT_EQ(encodeOne(frame), kData);
  std::string direct;
  ASSERT_TRUE(encodeDataFrame(1, kFlagFin, "hi", direct).ok());
  EXPECT_EQ(direct, kData);
  EXPECT_EQ(decodeOne(kData), Frame(frame));
  // An empty frame with FIN: how a side finishes (spdystream's Close()).
  const std::string fin = bytes({0x00, 0x00, 0x00, 0x07, 0x01, 0x00, 0x00, 0x00});
  EXPECT_EQ(encodeOne(DataFrame{7, kFlagFin, ""}), fin);
  EXPECT_EQ(decodeOne(fin), Frame(DataFrame{7, kFlagFin, ""}));
}

// --- header frames ----------------------------------------------------------------------------

// A SYN_STREAM whose zlib data is a stored (uncompressed) deflate block, so every byte can be
// written out; a SYN_REPLY behind it continues the same zlib stream.
const std::string kSynStreamStored = bytes({
    0x80, 0x03, 0x00, 0x01,  // control, version 3, type 1: SYN_STREAM
    0x01,                    // flags: FIN
    0x00, 0x00, 0x30,        // length 48
    0x00, 0x00, 0x00, 0x01,  // stream id 1
    0x00, 0x00, 0x00, 0x00,  // associated-to stream id 0
    0xa0,                    // priority 5 in the top 3 bits
    0x00,                    // slot
    0x78, 0xf9,              // zlib: deflate, 32 KiB window, FDICT set, check bits
    0xe3, 0xc6, 0xa7, 0xc2,  // dictionary id: Adler-32 of the SPDY/3 dictionary
    0x00,                    // deflate block header: not final, stored
    0x1b, 0x00, 0xe4, 0xff,  // LEN 27 and its complement (little-endian)
    0x00, 0x00, 0x00, 0x01,  // header block: one pair
    0x00, 0x00, 0x00, 0x0a,  // name length 10
    's',  't',  'r',  'e',  'a', 'm', 't', 'y', 'p', 'e', 0x00, 0x00, 0x00, 0x05,  // value length 5
    'e',  'r',  'r',  'o',  'r',
});

const std::string kSynReplyStored = bytes({
    0x80, 0x03, 0x00, 0x02,  // control, version 3, type 2: SYN_REPLY
    0x00,                    // flags
    0x00, 0x00, 0x0d,        // length 13
    0x00, 0x00, 0x00, 0x01,  // stream id 1
    0x00,                    // the zlib stream goes on: a stored block, no zlib header
    0x04, 0x00, 0xfb, 0xff,  // LEN 4
    0x00, 0x00, 0x00, 0x00,  // header block: no pairs
});

TEST(FrameTest, SynStreamAndReplyWrittenByHand) {
  auto decoder = FrameDecoder::create();
  ASSERT_TRUE(decoder.ok());
  decoder->feed(kSynStreamStored + kSynReplyStored);
  const auto frames = decodeAll(*decoder);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0], Frame(SynStreamFrame{1, 0, 5, 0, kFlagFin, {{"streamtype", "error"}}}));
  EXPECT_EQ(frames[1], Frame(SynReplyFrame{1, 0, {}}));
}

// Written by github.com/moby/spdystream/spdy v0.5.1's Framer (a few lines of Go: NewFramer, then
// WriteFrame of each frame in turn), so each block continues the zlib stream of the one before.
const std::string kGoSynStream1 = bytes({
    0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x29,  // SYN_STREAM, length 41
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,  // stream 1, associated 0
    0x00, 0x00,                                      // priority 0, slot 0
    0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2,              // zlib header with the dictionary id
    0x62, 0x60, 0x60, 0x60, 0x04, 0xa7, 0xb3, 0x92, 0xa2, 0xd4, 0xc4, 0x5c, 0x68,
    0x51, 0xc2, 0x9a, 0x0a, 0x0a, 0x68, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,  // sync flush
});
const std::string kGoSynStream3 = bytes({
    0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc2, 0x2a, 0xc5, 0x56,
    0x5c, 0x92, 0x92, 0x5f, 0x5a, 0x02, 0x00, 0x00, 0x00, 0xff, 0xff,
});
const std::string kGoSynReply3 = bytes({
    0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00,
    0x03, 0x62, 0x60, 0x60, 0x60, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
});
const std::string kGoHeaders3 = bytes({
    0x80, 0x03, 0x00, 0x08, 0x00, 0x00, 0x00, 0x25, 0x00, 0x00, 0x00, 0x03, 0x02, 0x65, 0x2c,
    0x48, 0xd1, 0x5d, 0x04, 0xce, 0x25, 0x16, 0x06, 0x16, 0x06, 0xa0, 0xa4, 0x5d, 0xa1, 0x9b,
    0x5b, 0x9a, 0x53, 0x92, 0x09, 0x2e, 0x60, 0x19, 0x92, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
});

TEST(FrameTest, DecodesHeaderBlocksCompressedByGo) {
  auto decoder = FrameDecoder::create();
  ASSERT_TRUE(decoder.ok());
  decoder->feed(kGoSynStream1 + kGoSynStream3 + kGoSynReply3 + kGoHeaders3);
  const auto frames = decodeAll(*decoder);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0], Frame(SynStreamFrame{1, 0, 0, 0, 0, {{"streamtype", "error"}}}));
  EXPECT_EQ(frames[1], Frame(SynStreamFrame{3, 0, 0, 0, 0, {{"streamtype", "stdout"}}}));
  EXPECT_EQ(frames[2], Frame(SynReplyFrame{3, 0, {}}));
  // Go writes a map, in no fixed order; "x-multi" has two values joined by NUL.
  const auto& headers = std::get<HeadersFrame>(frames[3]);
  EXPECT_EQ(headers.streamId, 3u);
  EXPECT_EQ(findHeader(headers.headers, "port"), "8080");
  EXPECT_EQ(headers.headers.size(), 3u);
  std::vector<std::string> multi;
  for (const auto& [name, value] : headers.headers) {
    if (name == "x-multi") {
      multi.push_back(value);
    }
  }
  EXPECT_EQ(multi, (std::vector<std::string>{"a", "b"}));
}

TEST(FrameTest, GoBlocksNeedTheSessionsContext) {
  // The second SYN_STREAM alone refers to zlib state its decoder never saw.
  auto decoder = FrameDecoder::create();
  ASSERT_TRUE(decoder.ok());
  decoder->feed(kGoSynStream3);
  EXPECT_FALSE(decoder->next().ok());
}

TEST(FrameTest, HeaderFramesRoundTripInOrder) {
  auto encoder = FrameEncoder::create();
  auto decoder = FrameDecoder::create();
  ASSERT_TRUE(encoder.ok());
  ASSERT_TRUE(decoder.ok());
  const std::vector<Frame> frames = {
      SynStreamFrame{1, 0, 7, 0, kFlagUnidirectional, {{"streamtype", "data"}, {"port", "80"}}},
      SynReplyFrame{1, kFlagFin, {{"status", "200"}}},
      HeadersFrame{1, 0, {{"x", "1"}, {"x", "2"}}},
      SynStreamFrame{3, 1, 0, 0, 0, {{"streamtype", "data"}, {"port", "80"}}},
  };
  std::string wire;
  for (const auto& f : frames) {
    ASSERT_TRUE(encoder->encode(f, wire).ok());
  }
  // Our SYN_STREAM's fixed part, as the spec lays it out.
  EXPECT_EQ(wire.substr(0, 5), bytes({0x80, 0x03, 0x00, 0x01, 0x02}));
  EXPECT_EQ(wire.substr(8, 10), bytes({0, 0, 0, 1, 0, 0, 0, 0, 0xe0, 0}));
  decoder->feed(wire);
  EXPECT_EQ(decodeAll(*decoder), frames);
}

// --- decoding in pieces -----------------------------------------------------------------------

TEST(FrameTest, DecodesAStreamFedByteByByte) {
  const std::string unknown = bytes({
      0x80,
      0x03,
      0x00,
      0x0a,  // type 10 (SPDY/3's CREDENTIAL): not ours, skipped
      0x00,
      0x00,
      0x00,
      0x03,  // length 3
      0x01,
      0x02,
      0x03,
  });
  const std::string wire = kSynStreamStored + kSynReplyStored + kData + unknown + kPing +
                           kSettings + kRstStream + kGoAway + kWindowUpdate;
  auto whole = FrameDecoder::create();
  ASSERT_TRUE(whole.ok());
  whole->feed(wire);
  const auto expected = decodeAll(*whole);
  ASSERT_EQ(expected.size(), 8u);
  EXPECT_EQ(expected[2], Frame(DataFrame{1, kFlagFin, "hi"}));
  EXPECT_EQ(expected[3], Frame(PingFrame{1}));

  auto split = FrameDecoder::create();
  ASSERT_TRUE(split.ok());
  std::vector<Frame> got;
  std::string data;  // DATA pieces, joined
  for (const char c : wire) {
    split->feed(std::string_view(&c, 1));
    while (true) {
      auto next = split->next();
      ASSERT_TRUE(next.ok()) << next.error().toString();
      if (!next->has_value()) {
        break;
      }
      if (auto* piece = std::get_if<DataFrame>(&**next)) {
        EXPECT_FALSE(piece->data.empty() && piece->flags == 0);  // no empty pieces
        data += piece->data;
        if (piece->flags != 0) {
          got.push_back(DataFrame{piece->streamId, piece->flags, data});
          data.clear();
        }
        continue;
      }
      got.push_back(std::move(**next));
    }
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(split->buffered(), 0u);
}

TEST(FrameTest, DataComesOutAsItArrives) {
  auto decoder = FrameDecoder::create();
  ASSERT_TRUE(decoder.ok());
  // The header of a 1 MiB frame and its first bytes: those come out before the rest exists.
  std::string head;
  ASSERT_TRUE(encodeDataFrame(5, kFlagFin, std::string(1 << 20, 'x'), head).ok());
  decoder->feed(head.substr(0, 8 + 100));
  auto first = decoder->next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ(std::get<DataFrame>(**first), (DataFrame{5, 0, std::string(100, 'x')}));
  auto none = decoder->next();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  decoder->feed(head.substr(8 + 100));
  auto rest = decoder->next();
  ASSERT_TRUE(rest.ok() && rest->has_value());
  const auto& last = std::get<DataFrame>(**rest);
  EXPECT_EQ(last.flags, kFlagFin);
  EXPECT_EQ(last.data.size(), (1u << 20) - 100);
}

// --- bounds and malformed input ---------------------------------------------------------------

TEST(FrameTest, OversizeControlFrameFailsBeforeItsPayload) {
  const std::string header = bytes({0x80, 0x03, 0x00, 0x01, 0x00, 0x10, 0x00, 0x01});  // 1 MiB+1
  const Error error = decodeError(header);
  EXPECT_EQ(error.code, ErrorCode::kInvalid);
  EXPECT_EQ(error.reason, "FrameTooLarge");
}

TEST(FrameTest, OversizeDataFrameFails) {
  FrameLimits limits;
  limits.maxDataPayload = 10;
  const std::string header = bytes({0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0b});  // 11 bytes
  EXPECT_EQ(decodeError(header, limits).reason, "FrameTooLarge");
}

TEST(FrameTest, ZipBombInASynStreamFails) {
  auto encoder = FrameEncoder::create();
  ASSERT_TRUE(encoder.ok());
  std::string wire;
  ASSERT_TRUE(
      encoder->encode(SynStreamFrame{1, 0, 0, 0, 0, {{"x", std::string(12 << 20, 'a')}}}, wire)
          .ok());
  EXPECT_LT(wire.size(), 64u << 10);
  const Error error = decodeError(wire);
  EXPECT_EQ(error.code, ErrorCode::kInvalid);
  EXPECT_EQ(error.reason, "HeaderBlockTooLarge");
}

TEST(FrameTest, OtherVersionsFail) {
  const std::string spdy2Ping = bytes({0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1});
  const Error error = decodeError(spdy2Ping);
  EXPECT_EQ(error.code, ErrorCode::kInvalid);
  EXPECT_EQ(error.reason, "UnsupportedVersion");
}

TEST(FrameTest, MalformedFramesFail) {
  const std::string cases[] = {
      bytes({0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}),                 // DATA on stream 0
      bytes({0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x05, 0, 0, 0, 1, 0}),  // PING of 5 bytes
      bytes({0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 1, 0, 0, 0, 0}),  // status 0
      bytes({0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 5}),  // stream 0
      bytes(
          {0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1}),  // SETTINGS count 1, none
      bytes({0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1}),  // SPDY/2 GOAWAY size
      bytes({0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0, 1}),        // SYN_STREAM too short
      bytes({0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0}),  // SYN_REPLY stream 0
      bytes({0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1}),  // short WINDOW_UPDATE
      kSynReplyStored,  // a stored block before any zlib header: not a zlib stream
  };
  for (const auto& wire : cases) {
    const Error error = decodeError(wire);
    EXPECT_EQ(error.code, ErrorCode::kInvalid) << testing::PrintToString(wire);
  }
}

TEST(FrameTest, ErrorsAreFinal) {
  auto decoder = FrameDecoder::create();
  ASSERT_TRUE(decoder.ok());
  decoder->feed(bytes({0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1}));
  EXPECT_FALSE(decoder->next().ok());
  decoder->feed(kPing);
  auto again = decoder->next();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().reason, "UnsupportedVersion");
}

TEST(FrameTest, EncoderRefusesInvalidFrames) {
  auto encoder = FrameEncoder::create();
  ASSERT_TRUE(encoder.ok());
  std::string out;
  const Frame invalid[] = {
      SynStreamFrame{0, 0, 0, 0, 0, {}},
      SynReplyFrame{0x80000000, 0, {}},
      DataFrame{0, 0, "x"},
      RstStreamFrame{0, 5},
      WindowUpdateFrame{1, 0},
      SettingsFrame{0, {{0, 0x1000000, 1}}},
      SynStreamFrame{1, 0, 0, 0, 0, {{"", "empty name"}}},
  };
  for (const auto& frame : invalid) {
    const Status status = encoder->encode(frame, out);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, ErrorCode::kInvalid);
  }
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace burstlet::spdy
