// Runs SPDY sessions on an in-memory pipe in a one-thread io_context: a session pair (server and
// client), or one session against a peer the test scripts frame by frame. Operations are awaited
// by running the io_context until they complete; at the end every session must have ended and
// left nothing running (the io_context runs out of work).
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "kubelet/spdy/frame.h"
#include "kubelet/spdy/session.h"
#include "mocks/fake_clock.h"
#include "mocks/memory_byte_channel.h"
#include "mocks/run_sync.h"

namespace burstlet::spdy::testing {

namespace asio = boost::asio;
using burstlet::testing::FakeClock;
using burstlet::testing::MemoryByteChannel;
using burstlet::testing::runUntil;

// The outcome of an operation started with SessionHarness::spawn().
template <typename T>
struct Pending {
  std::optional<T> value;
  bool done() const { return value.has_value(); }
};

class SessionHarness : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& s : sessions_) {
      s.session->close();
    }
    for (auto& s : sessions_) {
      EXPECT_TRUE(runUntil(io_, [&] { return s.end->done(); })) << "a session's run() hangs";
    }
    sessions_.clear();
    // Nothing of the sessions may be left waiting: the io_context runs dry.
    io_.restart();
    io_.run_for(std::chrono::seconds(5));
    EXPECT_TRUE(io_.stopped()) << "work left behind on the io_context";
  }

  // A session on `channel`, its run() started.
  std::shared_ptr<Session> startSession(std::unique_ptr<MemoryByteChannel> channel,
                                        SessionOptions options) {
    if (options.clock == nullptr) {
      options.clock = &clock_;
    }
    auto session = Session::create(std::move(channel), options);
    EXPECT_TRUE(session.ok());
    auto end = spawn(session.value()->run());
    sessions_.push_back({session.value(), end});
    return session.value();
  }

  // A server and a client session connected to each other.
  void startPair(SessionOptions serverOptions = {}, SessionOptions clientOptions = {}) {
    auto [a, b] = MemoryByteChannel::pair(io_.get_executor());
    serverChannel_ = a.get();
    clientChannel_ = b.get();
    serverOptions.server = true;
    clientOptions.server = false;
    server_ = startSession(std::move(a), serverOptions);
    client_ = startSession(std::move(b), clientOptions);
  }

  // A session (server unless told) whose peer the test plays with peerSend() and peerFrames().
  void startScripted(SessionOptions options = {}) {
    auto [a, b] = MemoryByteChannel::pair(io_.get_executor());
    serverChannel_ = a.get();
    peer_ = std::move(b);
    session_ = startSession(std::move(a), options);
  }

  // Starts `op` on the io_context; its result shows in the returned Pending.
  template <typename T>
  std::shared_ptr<Pending<T>> spawn(asio::awaitable<T> op) {
    auto pending = std::make_shared<Pending<T>>();
    auto wrapper = [](asio::awaitable<T> op,
                      std::shared_ptr<Pending<T>> out) -> asio::awaitable<void> {
      out->value.emplace(co_await std::move(op));
    };
    asio::co_spawn(io_, wrapper(std::move(op), pending), asio::detached);
    return pending;
  }

  // Runs `op` to completion (at most 10 s).
  template <typename T>
  T await(asio::awaitable<T> op) {
    auto pending = spawn(std::move(op));
    if (!runUntil(io_, [&] { return pending->done(); })) {
      ADD_FAILURE() << "operation did not complete";
      return T(Error::make(ErrorCode::kTimeout, "TestTimeout", "operation did not complete"));
    }
    return std::move(*pending->value);
  }

  // Runs the io_context for a while (for things that must not happen).
  void settle() {
    runUntil(
        io_, [] { return false; }, std::chrono::milliseconds(50));
  }

  // --- the scripted peer --------------------------------------------------------------------

  void peerSend(const Frame& frame) {
    std::string wire;
    const Status status = peerEncoder_.encode(frame, wire);
    ASSERT_TRUE(status.ok()) << status.error().toString();
    peer_->inject(wire);
  }

  // Runs until the peer has received `n` frames in all; the frames so far.
  const std::vector<Frame>& peerFrames(size_t n) {
    const bool got = runUntil(io_, [&] {
      pumpPeer();
      return received_.size() >= n;
    });
    EXPECT_TRUE(got) << "peer received " << received_.size() << " frames, wanted " << n;
    return received_;
  }

  void pumpPeer() {
    peerDecoder_.feed(peer_->takeIncoming());
    while (true) {
      auto next = peerDecoder_.next();
      ASSERT_TRUE(next.ok()) << next.error().toString();
      if (!next->has_value()) {
        return;
      }
      received_.push_back(std::move(**next));
    }
  }

  asio::io_context io_;
  FakeClock clock_;
  std::shared_ptr<Session> server_;
  std::shared_ptr<Session> client_;
  std::shared_ptr<Session> session_;  // the scripted peer's counterpart
  MemoryByteChannel* serverChannel_ = nullptr;
  MemoryByteChannel* clientChannel_ = nullptr;
  std::unique_ptr<MemoryByteChannel> peer_;
  FrameEncoder peerEncoder_ = FrameEncoder::create().value();
  FrameDecoder peerDecoder_ = FrameDecoder::create().value();
  std::vector<Frame> received_;

  struct Running {
    std::shared_ptr<Session> session;
    std::shared_ptr<Pending<Status>> end;  // run()'s result
  };
  std::vector<Running> sessions_;
};

}  // namespace burstlet::spdy::testing
