// SPDY sessions talking to each other over an in-memory pipe: streams, data both ways, FIN, RST,
// PING, GOAWAY, timeouts, backpressure, and the ends of a session (close, a vanished peer).
#include "kubelet/spdy/session.h"

#include <gtest/gtest.h>

#include <string>

#include "kubelet/spdy/session_harness.h"

namespace burstlet::spdy::testing {
namespace {

using namespace std::chrono_literals;

class SessionTest : public SessionHarness {
 protected:
  // Opens a stream from the client and accepts it on the server.
  std::pair<std::shared_ptr<Stream>, std::shared_ptr<Stream>> openPair(Headers headers = {}) {
    auto accepted = spawn(server_->accept());
    auto opened = await(client_->open(std::move(headers)));
    EXPECT_TRUE(opened.ok()) << opened.error().toString();
    EXPECT_TRUE(runUntil(io_, [&] { return accepted->done(); }));
    EXPECT_TRUE(accepted->value && accepted->value->ok());
    if (!opened.ok() || !accepted->value || !accepted->value->ok()) {
      return {};
    }
    return {*opened, **accepted->value};
  }

  // Reads until FIN; the data.
  std::string readAll(Stream& stream) {
    std::string all;
    while (true) {
      auto chunk = await(stream.read());
      EXPECT_TRUE(chunk.ok()) << chunk.error().toString();
      if (!chunk.ok() || !chunk->has_value()) {
        return all;
      }
      all += **chunk;
    }
  }
};

TEST_F(SessionTest, StreamCarriesDataBothWaysUntilFin) {
  startPair();
  auto [client, server] =
      openPair({{"streamtype", "stdout"}, {"X-Stream-Protocol-Version", "v5.channel.k8s.io"}});
  ASSERT_TRUE(client && server);
  EXPECT_EQ(client->id(), 1u);
  EXPECT_EQ(server->id(), 1u);
  EXPECT_EQ(server->header("StreamType"), "stdout");
  EXPECT_EQ(server->header("x-stream-protocol-version"), "v5.channel.k8s.io");
  EXPECT_TRUE(client->headers().empty());  // the automatic SYN_REPLY has no headers

  const std::string hello = "hello";
  ASSERT_TRUE(await(client->write(hello)).ok());
  auto got = await(server->read());
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, "hello");

  const std::string world = "world";
  ASSERT_TRUE(await(server->write(world)).ok());
  ASSERT_TRUE(await(server->closeWrite()).ok());
  EXPECT_EQ(readAll(*client), "world");
  EXPECT_TRUE(client->remoteClosed());
  EXPECT_EQ(server_->streamCount(), 1u);  // the client side is still open

  ASSERT_TRUE(await(client->closeWrite()).ok());
  EXPECT_TRUE(await(client->closeWrite()).ok());  // idempotent
  EXPECT_EQ(readAll(*server), "");
  EXPECT_TRUE(runUntil(io_, [&] { return server_->streamCount() == 0; }));
  EXPECT_EQ(client_->streamCount(), 0u);

  const auto afterFin = await(client->write(hello));
  ASSERT_FALSE(afterFin.ok());
  EXPECT_EQ(afterFin.error().reason, "WriteClosed");
}

TEST_F(SessionTest, StreamIdsAndManyStreams) {
  startPair();
  for (uint32_t want = 1; want <= 9; want += 2) {
    auto [client, server] = openPair({{"n", std::to_string(want)}});
    ASSERT_TRUE(client && server);
    EXPECT_EQ(client->id(), want);
    EXPECT_EQ(server->header("n"), std::to_string(want));
  }
  EXPECT_EQ(server_->streamCount(), 5u);
  // The server opens even ids.
  auto accepted = spawn(client_->accept());
  auto opened = await(server_->open({{"from", "server"}}));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ((*opened)->id(), 2u);
  ASSERT_TRUE(runUntil(io_, [&] { return accepted->done(); }));
  EXPECT_EQ((**accepted->value)->header("from"), "server");
}

TEST_F(SessionTest, LargeWritesGoOutInFramesAndArriveWhole) {
  SessionOptions clientOptions;
  clientOptions.maxWriteFrameBytes = 1000;
  startPair({}, clientOptions);
  auto [client, server] = openPair();
  ASSERT_TRUE(client && server);
  std::string big(300'000, '\0');
  for (size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + i % 26);
  }
  auto written = spawn(client->write(big));
  auto fin = spawn(client->closeWrite());
  EXPECT_EQ(readAll(*server), big);
  ASSERT_TRUE(runUntil(io_, [&] { return written->done() && fin->done(); }));
  EXPECT_TRUE(written->value->ok());
  EXPECT_TRUE(fin->value->ok());
}

TEST_F(SessionTest, OpenWithFinAndMultiValueHeaders) {
  startPair();
  auto accepted = spawn(server_->accept());
  auto opened = await(client_->open({{"x", "1"}, {"x", "2"}}, /*fin=*/true));
  ASSERT_TRUE(opened.ok());
  ASSERT_TRUE(runUntil(io_, [&] { return accepted->done(); }));
  auto server = **accepted->value;
  EXPECT_EQ(server->headers(), (Headers{{"x", "1"}, {"x", "2"}}));
  EXPECT_TRUE(server->remoteClosed());
  EXPECT_EQ(readAll(*server), "");
  const std::string data = "only this way";
  ASSERT_TRUE(await(server->write(data)).ok());
  ASSERT_TRUE(await(server->closeWrite()).ok());
  EXPECT_EQ(readAll(**opened), data);
  EXPECT_EQ(await((*opened)->write(data)).error().reason, "WriteClosed");
}

TEST_F(SessionTest, ResetByThePeerEndsReadsAndWrites) {
  startPair();
  auto [client, server] = openPair();
  ASSERT_TRUE(client && server);
  auto pendingRead = spawn(client->read());
  settle();
  EXPECT_FALSE(pendingRead->done());
  server->reset();
  ASSERT_TRUE(runUntil(io_, [&] { return pendingRead->done(); }));
  ASSERT_FALSE(pendingRead->value->ok());
  EXPECT_EQ(pendingRead->value->error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(pendingRead->value->error().reason, "StreamReset");
  EXPECT_NE(pendingRead->value->error().message.find("CANCEL"), std::string::npos);
  EXPECT_EQ(client->resetStatus(), static_cast<uint32_t>(RstStatus::kCancel));
  const std::string data = "late";
  EXPECT_EQ(await(client->write(data)).error().reason, "StreamReset");
  EXPECT_EQ(await(server->read()).error().reason, "StreamReset");
  EXPECT_EQ(server_->streamCount(), 0u);
  EXPECT_EQ(client_->streamCount(), 0u);
  server->reset();  // idempotent
}

TEST_F(SessionTest, LocalResetEndsPendingReadAtOnce) {
  startPair();
  auto [client, server] = openPair();
  ASSERT_TRUE(client && server);
  auto pendingRead = spawn(client->read());
  settle();
  client->reset(RstStatus::kInternalError);
  ASSERT_TRUE(runUntil(io_, [&] { return pendingRead->done(); }));
  EXPECT_EQ(pendingRead->value->error().reason, "StreamReset");
  auto serverRead = await(server->read());
  ASSERT_FALSE(serverRead.ok());
  EXPECT_NE(serverRead.error().message.find("INTERNAL_ERROR"), std::string::npos);
}

TEST_F(SessionTest, ManualReplyCarriesHeadersAndRefusalFailsOpen) {
  SessionOptions serverOptions;
  serverOptions.autoReply = false;
  startPair(serverOptions);

  auto accepted = spawn(server_->accept());
  auto opening = spawn(client_->open({{"streamtype", "data"}}));
  ASSERT_TRUE(runUntil(io_, [&] { return accepted->done(); }));
  auto server = **accepted->value;
  const std::string early = "too early";
  EXPECT_EQ(await(server->write(early)).error().reason, "NotReplied");
  settle();
  EXPECT_FALSE(opening->done());  // no SYN_REPLY yet
  ASSERT_TRUE(server->reply({{"x-accepted", "yes"}}).ok());
  EXPECT_EQ(server->reply().error().reason, "AlreadyReplied");
  ASSERT_TRUE(runUntil(io_, [&] { return opening->done(); }));
  ASSERT_TRUE(opening->value->ok());
  EXPECT_EQ((**opening->value)->header("x-accepted"), "yes");
  EXPECT_EQ((**opening->value)->reply().error().reason, "AlreadyReplied");

  auto accepted2 = spawn(server_->accept());
  auto refused = spawn(client_->open({{"streamtype", "data"}}));
  ASSERT_TRUE(runUntil(io_, [&] { return accepted2->done(); }));
  (**accepted2->value)->reset(RstStatus::kRefusedStream);
  ASSERT_TRUE(runUntil(io_, [&] { return refused->done(); }));
  ASSERT_FALSE(refused->value->ok());
  EXPECT_EQ(refused->value->error().reason, "StreamRefused");
  EXPECT_EQ(client_->streamCount(), 1u);
}

TEST_F(SessionTest, PingsAreAnsweredBothWays) {
  startPair();
  auto fromClient = await(client_->ping());
  ASSERT_TRUE(fromClient.ok()) << fromClient.error().toString();
  auto fromServer = await(server_->ping());
  ASSERT_TRUE(fromServer.ok()) << fromServer.error().toString();
  // Several at once, each answered.
  auto a = spawn(client_->ping());
  auto b = spawn(client_->ping());
  ASSERT_TRUE(runUntil(io_, [&] { return a->done() && b->done(); }));
  EXPECT_TRUE(a->value->ok());
  EXPECT_TRUE(b->value->ok());
}

TEST_F(SessionTest, GoAwayLetsOpenStreamsFinishThenEnds) {
  startPair();
  auto [client, server] = openPair();
  ASSERT_TRUE(client && server);
  auto acceptAfter = spawn(server_->accept());
  server_->goAway();
  server_->goAway();  // idempotent
  ASSERT_TRUE(runUntil(io_, [&] { return acceptAfter->done(); }));
  EXPECT_EQ(acceptAfter->value->error().reason, "GoingAway");
  ASSERT_TRUE(runUntil(io_, [&] { return client_->goingAway(); }));
  auto refused = await(client_->open({}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().reason, "GoingAway");

  // The open stream still works both ways.
  const std::string data = "still here";
  ASSERT_TRUE(await(client->write(data)).ok());
  auto got = await(server->read());
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, data);
  ASSERT_TRUE(await(client->closeWrite()).ok());
  ASSERT_TRUE(await(server->closeWrite()).ok());
  EXPECT_EQ(readAll(*client), "");
  // With the last stream gone, both sessions end in order.
  ASSERT_TRUE(runUntil(io_, [&] { return sessions_[0].end->done() && sessions_[1].end->done(); }));
  EXPECT_TRUE(sessions_[0].end->value->ok());
  EXPECT_TRUE(sessions_[1].end->value->ok());
}

TEST_F(SessionTest, CloseEndsEveryPendingOperation) {
  SessionOptions serverOptions;
  serverOptions.autoReply = false;
  startPair(serverOptions);
  // A stream the server answers, one it leaves unanswered.
  auto accepted = spawn(server_->accept());
  auto opening = spawn(client_->open({}));
  ASSERT_TRUE(runUntil(io_, [&] { return accepted->done(); }));
  ASSERT_TRUE((**accepted->value)->reply().ok());
  ASSERT_TRUE(runUntil(io_, [&] { return opening->done(); }));
  auto client = **opening->value;
  auto server = **accepted->value;
  auto unanswered = spawn(client_->open({}));

  auto clientRead = spawn(client->read());
  auto serverRead = spawn(server->read());
  auto clientAccept = spawn(client_->accept());
  clientChannel_->holdWrites(true);
  const std::string data = "stuck";
  auto clientWrite = spawn(client->write(data));
  auto clientPing = spawn(client_->ping());
  settle();
  for (bool done : {unanswered->done(), clientRead->done(), serverRead->done(),
                    clientAccept->done(), clientWrite->done(), clientPing->done()}) {
    EXPECT_FALSE(done);
  }

  client_->close();
  ASSERT_TRUE(runUntil(io_, [&] {
    return unanswered->done() && clientRead->done() && clientAccept->done() &&
           clientWrite->done() && clientPing->done();
  }));
  EXPECT_EQ(unanswered->value->error().reason, "SessionClosed");
  EXPECT_EQ(clientRead->value->error().reason, "SessionClosed");
  EXPECT_EQ(clientAccept->value->error().reason, "SessionClosed");
  EXPECT_EQ(clientWrite->value->error().reason, "SessionClosed");
  EXPECT_EQ(clientPing->value->error().reason, "SessionClosed");
  EXPECT_TRUE(clientChannel_->closed());
  // Later calls fail at once too.
  EXPECT_EQ(await(client_->open({})).error().reason, "SessionClosed");
  EXPECT_EQ(await(client->closeWrite()).error().reason, "SessionClosed");

  // The server saw the connection end in the middle of a stream.
  ASSERT_TRUE(runUntil(io_, [&] { return serverRead->done(); }));
  EXPECT_EQ(serverRead->value->error().reason, "ConnectionLost");
  ASSERT_TRUE(runUntil(io_, [&] { return sessions_[0].end->done() && sessions_[1].end->done(); }));
  EXPECT_TRUE(sessions_[0].end->value->ok());  // the peer closed: an orderly end
  EXPECT_TRUE(sessions_[1].end->value->ok());  // close()
}

TEST_F(SessionTest, PeerVanishingMidStreamFailsTheStream) {
  startPair();
  auto [client, server] = openPair();
  ASSERT_TRUE(client && server);
  const std::string data = "partial";
  ASSERT_TRUE(await(client->write(data)).ok());
  settle();
  serverChannel_->cut();
  // What arrived before is still read, then the loss shows.
  auto got = await(server->read());
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, data);
  auto lost = await(server->read());
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(lost.error().reason, "ConnectionLost");
  ASSERT_TRUE(runUntil(io_, [&] { return sessions_[0].end->done() && sessions_[1].end->done(); }));
  EXPECT_EQ(sessions_[0].end->value->error().reason, "ConnectionLost");
  EXPECT_EQ(sessions_[1].end->value->error().reason, "ConnectionLost");
  EXPECT_EQ(await(client->write(data)).error().reason, "ConnectionLost");
}

TEST_F(SessionTest, IdleTimeoutEndsTheSession) {
  SessionOptions serverOptions;
  serverOptions.idleTimeout = 10s;
  startPair(serverOptions);
  auto [client, server] = openPair();
  ASSERT_TRUE(client && server);
  auto serverRead = spawn(server->read());
  // Activity keeps it alive.
  for (int i = 0; i < 3; ++i) {
    clock_.advance(6s);
    ASSERT_TRUE(await(client_->ping()).ok());
  }
  settle();
  EXPECT_FALSE(server_->closed());
  clock_.advance(11s);
  ASSERT_TRUE(runUntil(io_, [&] { return serverRead->done(); }));
  EXPECT_EQ(serverRead->value->error().code, ErrorCode::kTimeout);
  EXPECT_EQ(serverRead->value->error().reason, "IdleTimeout");
  ASSERT_TRUE(runUntil(io_, [&] { return sessions_[0].end->done(); }));
  EXPECT_EQ(sessions_[0].end->value->error().reason, "IdleTimeout");
  // The client sees the connection close.
  ASSERT_TRUE(runUntil(io_, [&] { return sessions_[1].end->done(); }));
}

TEST_F(SessionTest, OpenTimesOutWithoutReply) {
  SessionOptions serverOptions;
  serverOptions.autoReply = false;
  SessionOptions clientOptions;
  clientOptions.openTimeout = 30s;
  startPair(serverOptions, clientOptions);
  auto accepted = spawn(server_->accept());
  auto opening = spawn(client_->open({}));
  ASSERT_TRUE(runUntil(io_, [&] { return accepted->done(); }));
  clock_.advance(29s);
  settle();
  EXPECT_FALSE(opening->done());
  clock_.advance(2s);
  ASSERT_TRUE(runUntil(io_, [&] { return opening->done(); }));
  EXPECT_EQ(opening->value->error().code, ErrorCode::kTimeout);
  EXPECT_EQ(opening->value->error().reason, "OpenTimeout");
  // The stream was reset toward the server.
  auto server = **accepted->value;
  ASSERT_TRUE(runUntil(io_, [&] { return server->resetStatus().has_value(); }));
  EXPECT_EQ(client_->streamCount(), 0u);
}

TEST_F(SessionTest, UnreadDataStopsTheSessionReadingUntilTheReaderCatchesUp) {
  SessionOptions serverOptions;
  serverOptions.streamBufferBytes = 1000;
  startPair(serverOptions);
  auto [client, server] = openPair();
  ASSERT_TRUE(client && server);
  const std::string chunk(600, 'x');
  ASSERT_TRUE(await(client->write(chunk)).ok());
  ASSERT_TRUE(await(client->write(chunk)).ok());  // 1200 unread: over the bound
  auto ping = spawn(client_->ping());
  settle();
  EXPECT_FALSE(ping->done()) << "the server should not read while the stream is full";
  auto first = await(server->read());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(runUntil(io_, [&] { return ping->done(); }));
  EXPECT_TRUE(ping->value->ok());
}

TEST_F(SessionTest, StreamsBeyondTheAcceptQueueAreRefused) {
  SessionOptions serverOptions;
  serverOptions.maxPendingAccepts = 1;
  startPair(serverOptions);
  auto first = await(client_->open({}));
  ASSERT_TRUE(first.ok());
  auto second = await(client_->open({}));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().reason, "StreamRefused");
  auto accepted = await(server_->accept());
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ((*accepted)->id(), 1u);
  auto third = await(client_->open({}));
  EXPECT_TRUE(third.ok());
}

TEST_F(SessionTest, InvalidHeadersFailOpenButNotTheSession) {
  startPair();
  auto bad = await(client_->open({{"", "no name"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().reason, "InvalidHeader");
  auto [client, server] = openPair({{"ok", "yes"}});
  ASSERT_TRUE(client && server);
  EXPECT_EQ(client->id(), 1u);  // the failed open took no id
}

}  // namespace
}  // namespace burstlet::spdy::testing
