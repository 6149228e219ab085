// A session against a peer the test scripts frame by frame, to pin down what goes on the wire:
// replies, RST_STREAM codes, PING echoes, GOAWAY both ways, frames spdystream would send that
// change nothing (SETTINGS, WINDOW_UPDATE), and protocol errors.
#include <gtest/gtest.h>

#include <string>

#include "kubelet/spdy/session.h"
#include "kubelet/spdy/session_harness.h"

namespace burstlet::spdy::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kProtocolError = static_cast<uint32_t>(RstStatus::kProtocolError);
constexpr auto kRefused = static_cast<uint32_t>(RstStatus::kRefusedStream);

class SessionProtocolTest : public SessionHarness {
 protected:
  // The peer opens stream `id` (as Go's client does: no flags, priority 0) and the test accepts
  // it.
  std::shared_ptr<Stream> peerOpens(uint32_t id, Headers headers = {}) {
    peerSend(SynStreamFrame{id, 0, 0, 0, 0, std::move(headers)});
    auto stream = await(session_->accept());
    EXPECT_TRUE(stream.ok()) << stream.error().toString();
    return stream.ok() ? *stream : nullptr;
  }
};

TEST_F(SessionProtocolTest, AnswersEachStreamThenCarriesDataAndFin) {
  startScripted();
  auto stream = peerOpens(1, {{"streamtype", "error"}});
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->header("streamtype"), "error");
  // The reply comes before anything else on the stream, with no headers.
  EXPECT_EQ(peerFrames(1)[0], Frame(SynReplyFrame{1, 0, {}}));

  peerSend(DataFrame{1, 0, "abc"});
  auto got = await(stream->read());
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, "abc");
  peerSend(DataFrame{1, kFlagFin, ""});
  auto end = await(stream->read());
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());

  const std::string data = "xyz";
  ASSERT_TRUE(await(stream->write(data)).ok());
  ASSERT_TRUE(await(stream->closeWrite()).ok());
  const auto& frames = peerFrames(3);
  EXPECT_EQ(frames[1], Frame(DataFrame{1, 0, "xyz"}));
  EXPECT_EQ(frames[2], Frame(DataFrame{1, kFlagFin, ""}));  // FIN as spdystream sends it
  EXPECT_EQ(session_->streamCount(), 0u);
}

TEST_F(SessionProtocolTest, EchoesThePeersPingsAndMatchesItsOwn) {
  startScripted();
  peerSend(PingFrame{1});
  EXPECT_EQ(peerFrames(1)[0], Frame(PingFrame{1}));
  // An even id is the server's own: not echoed (nothing of ours is waiting for it either).
  peerSend(PingFrame{2});
  peerSend(PingFrame{3});
  EXPECT_EQ(peerFrames(2)[1], Frame(PingFrame{3}));

  auto ping = spawn(session_->ping());
  EXPECT_EQ(peerFrames(3)[2], Frame(PingFrame{2}));  // the server's pings are even
  settle();
  EXPECT_FALSE(ping->done());
  peerSend(PingFrame{2});
  ASSERT_TRUE(runUntil(io_, [&] { return ping->done(); }));
  EXPECT_TRUE(ping->value->ok());
  auto next = spawn(session_->ping());
  EXPECT_EQ(peerFrames(4)[3], Frame(PingFrame{4}));
  peerSend(PingFrame{4});
  ASSERT_TRUE(runUntil(io_, [&] { return next->done(); }));
}

TEST_F(SessionProtocolTest, StreamIdsOutOfOrderGetProtocolError) {
  startScripted();
  peerSend(SynStreamFrame{2, 0, 0, 0, 0, {}});  // even: the server's ids
  EXPECT_EQ(peerFrames(1)[0], Frame(RstStreamFrame{2, kProtocolError}));
  ASSERT_TRUE(peerOpens(5));
  EXPECT_EQ(peerFrames(2)[1], Frame(SynReplyFrame{5, 0, {}}));
  peerSend(SynStreamFrame{3, 0, 0, 0, 0, {}});  // below the last
  peerSend(SynStreamFrame{5, 0, 0, 0, 0, {}});  // in use
  EXPECT_EQ(peerFrames(4)[2], Frame(RstStreamFrame{3, kProtocolError}));
  EXPECT_EQ(received_[3], Frame(RstStreamFrame{5, kProtocolError}));
  EXPECT_EQ(session_->streamCount(), 1u);
}

TEST_F(SessionProtocolTest, SettingsAndWindowUpdatesChangeNothing) {
  startScripted();
  // A window of one byte, were it honoured; spdystream honours none, and neither do we.
  peerSend(SettingsFrame{0, {{0, 7, 1}}});
  peerSend(WindowUpdateFrame{0, 1});
  auto stream = peerOpens(1);
  ASSERT_TRUE(stream);
  peerSend(WindowUpdateFrame{1, 1});
  const std::string big(200'000, 'w');
  ASSERT_TRUE(await(stream->write(big)).ok());
  ASSERT_TRUE(await(stream->closeWrite()).ok());
  size_t total = 0;
  runUntil(io_, [&] {
    pumpPeer();
    total = 0;
    bool fin = false;
    for (const auto& f : received_) {
      if (const auto* d = std::get_if<DataFrame>(&f)) {
        total += d->data.size();
        fin = fin || (d->flags & kFlagFin) != 0;
      }
    }
    return fin;
  });
  EXPECT_EQ(total, big.size());
  for (const auto& f : received_) {
    EXPECT_FALSE(std::holds_alternative<WindowUpdateFrame>(f));
    EXPECT_FALSE(std::holds_alternative<SettingsFrame>(f));
  }
}

TEST_F(SessionProtocolTest, FramesForUnknownStreamsAreDropped) {
  startScripted();
  peerSend(DataFrame{99, 0, "nobody"});
  peerSend(RstStreamFrame{97, 5});
  peerSend(HeadersFrame{95, 0, {{"a", "b"}}});
  peerSend(SynReplyFrame{93, 0, {}});
  peerSend(PingFrame{1});
  EXPECT_EQ(peerFrames(1)[0], Frame(PingFrame{1}));
  EXPECT_FALSE(session_->closed());
}

TEST_F(SessionProtocolTest, HeadersFrameAddsHeadersAndCanFinish) {
  startScripted();
  auto stream = peerOpens(1, {{"a", "1"}});
  ASSERT_TRUE(stream);
  peerSend(HeadersFrame{1, kFlagFin, {{"b", "2"}}});
  auto end = await(stream->read());
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
  EXPECT_EQ(stream->headers(), (Headers{{"a", "1"}, {"b", "2"}}));
}

TEST_F(SessionProtocolTest, UnidirectionalStreamGetsNoReply) {
  startScripted();
  peerSend(SynStreamFrame{1, 0, 0, 0, kFlagUnidirectional, {}});
  auto stream = await(session_->accept());
  ASSERT_TRUE(stream.ok());
  EXPECT_TRUE((*stream)->localClosed());
  const std::string data = "x";
  EXPECT_EQ(await((*stream)->write(data)).error().reason, "WriteClosed");
  peerSend(PingFrame{1});
  EXPECT_EQ(peerFrames(1)[0], Frame(PingFrame{1}));  // no SYN_REPLY went first
}

TEST_F(SessionProtocolTest, ClientIgnoresRepeatedReplies) {
  SessionOptions options;
  options.server = false;
  startScripted(options);
  auto opening = spawn(session_->open({{"streamtype", "data"}, {"port", "8080"}}));
  EXPECT_EQ(peerFrames(1)[0],
            Frame(SynStreamFrame{1, 0, 0, 0, 0, {{"streamtype", "data"}, {"port", "8080"}}}));
  peerSend(SynReplyFrame{1, 0, {{"first", "1"}}});
  peerSend(SynReplyFrame{1, kFlagFin, {{"second", "2"}}});
  ASSERT_TRUE(runUntil(io_, [&] { return opening->done(); }));
  ASSERT_TRUE(opening->value->ok());
  auto stream = **opening->value;
  settle();
  EXPECT_EQ(stream->headers(), (Headers{{"first", "1"}}));
  EXPECT_FALSE(stream->remoteClosed());
}

TEST_F(SessionProtocolTest, PeersGoAwayRefusesStreamsItNeverSaw) {
  startScripted();
  auto stream2 = spawn(session_->open({}));
  auto stream4 = spawn(session_->open({}));
  auto accept = spawn(session_->accept());
  EXPECT_EQ(peerFrames(2).size(), 2u);
  peerSend(GoAwayFrame{2, 0});
  ASSERT_TRUE(runUntil(io_, [&] { return stream4->done() && accept->done(); }));
  EXPECT_EQ(stream4->value->error().reason, "StreamRefused");
  EXPECT_EQ(accept->value->error().reason, "GoingAway");
  EXPECT_FALSE(stream2->done());
  EXPECT_EQ(await(session_->open({})).error().reason, "GoingAway");

  peerSend(SynReplyFrame{2, 0, {}});
  ASSERT_TRUE(runUntil(io_, [&] { return stream2->done(); }));
  auto stream = **stream2->value;
  peerSend(DataFrame{2, kFlagFin, "bye"});
  auto got = await(stream->read());
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, "bye");
  EXPECT_FALSE(session_->closed());
  ASSERT_TRUE(await(stream->closeWrite()).ok());
  // The last stream is done: the session ends in order and closes the connection.
  ASSERT_TRUE(runUntil(io_, [&] { return sessions_[0].end->done(); }));
  EXPECT_TRUE(sessions_[0].end->value->ok());
  EXPECT_TRUE(serverChannel_->closed());
  EXPECT_EQ(peerFrames(3)[2], Frame(DataFrame{2, kFlagFin, ""}));  // written before closing
}

TEST_F(SessionProtocolTest, OurGoAwayNamesTheLastStreamAndRefusesNewOnes) {
  startScripted();
  auto one = peerOpens(1);
  auto three = peerOpens(3);
  ASSERT_TRUE(one && three);
  session_->goAway();
  EXPECT_EQ(peerFrames(3)[2], Frame(GoAwayFrame{3, static_cast<uint32_t>(GoAwayStatus::kOk)}));
  peerSend(SynStreamFrame{5, 0, 0, 0, 0, {}});
  EXPECT_EQ(peerFrames(4)[3], Frame(RstStreamFrame{5, kRefused}));

  one->reset();
  peerSend(DataFrame{3, kFlagFin, ""});
  ASSERT_TRUE(await(three->closeWrite()).ok());
  ASSERT_TRUE(runUntil(io_, [&] { return sessions_[0].end->done(); }));
  EXPECT_TRUE(sessions_[0].end->value->ok());
  EXPECT_TRUE(serverChannel_->closed());
}

TEST_F(SessionProtocolTest, ProtocolErrorEndsTheSession) {
  startScripted();
  auto accept = spawn(session_->accept());
  settle();
  peer_->inject(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));  // SPDY/2
  ASSERT_TRUE(runUntil(io_, [&] { return accept->done() && sessions_[0].end->done(); }));
  EXPECT_EQ(accept->value->error().reason, "UnsupportedVersion");
  ASSERT_FALSE(sessions_[0].end->value->ok());
  EXPECT_EQ(sessions_[0].end->value->error().code, ErrorCode::kInvalid);
  EXPECT_TRUE(serverChannel_->closed());
}

TEST_F(SessionProtocolTest, PeerClosingMidStreamFailsReads) {
  startScripted();
  auto stream = peerOpens(1);
  ASSERT_TRUE(stream);
  peerSend(DataFrame{1, 0, "part"});
  peer_->close();
  auto got = await(stream->read());
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, "part");
  auto lost = await(stream->read());
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().reason, "ConnectionLost");
  ASSERT_TRUE(runUntil(io_, [&] { return sessions_[0].end->done(); }));
  EXPECT_TRUE(sessions_[0].end->value->ok());  // the peer closed: not an error of the session
}

TEST_F(SessionProtocolTest, DataFramesSplitAcrossReadsArrive) {
  startScripted();
  auto stream = peerOpens(1);
  ASSERT_TRUE(stream);
  serverChannel_->readLimit = 1;  // the session gets its bytes one by one
  peerSend(DataFrame{1, 0, "slowly"});
  peerSend(PingFrame{1});
  std::string all;
  while (all.size() < 6) {
    auto got = await(stream->read());
    ASSERT_TRUE(got.ok() && got->has_value());
    all += **got;
  }
  EXPECT_EQ(all, "slowly");
  EXPECT_EQ(peerFrames(2)[1], Frame(PingFrame{1}));
}

}  // namespace
}  // namespace burstlet::spdy::testing
