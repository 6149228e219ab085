// A SPDY/3.1 session over a byte stream, behaving as Go's github.com/moby/spdystream does toward
// its peer (that is what Kubernetes' exec, attach and port-forward speak): streams opened by
// SYN_STREAM and answered by SYN_REPLY, data until FIN, RST_STREAM, PINGs echoed, GOAWAY, and no
// flow-control windows (spdystream ignores WINDOW_UPDATE and SETTINGS and never sends them;
// reading stops instead while a stream holds too much unread data).
//
// Everything runs on the channel's executor, which must be a strand (or an io_context run by one
// thread): call every function, and await every coroutine, from there. A session and its streams
// are shared_ptrs (their lifetime is the connection's); keep the session alive while awaiting its
// coroutines (run() keeps it alive while it runs).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "kubelet/spdy/event.h"
#include "kubelet/spdy/frame.h"
#include "kubelet/spdy/header_block.h"

namespace burstlet::spdy {

// The byte stream under a session (the server's RawStream after a 101, a TCP socket, a test
// pipe). One reader and one writer at a time, on executor() only.
class ByteChannel {
 public:
  virtual ~ByteChannel() = default;
  virtual boost::asio::any_io_executor executor() const = 0;
  // Some bytes into `buffer` (at least one), or 0 when the peer closed its side.
  virtual boost::asio::awaitable<Result<size_t>> readSome(boost::asio::mutable_buffer buffer) = 0;
  // All of `data`, which stays valid until this completes.
  virtual boost::asio::awaitable<Status> write(boost::asio::const_buffer data) = 0;
  // Closes at once; pending operations complete with errors.
  virtual void close() = 0;
};

struct SessionOptions {
  // Stream and ping ids: a client's are odd, a server's even.
  bool server = true;
  // Answer each stream the peer opens with an empty SYN_REPLY as it arrives, as Kubernetes'
  // server side (k8s.io/streaming httpstream/spdy) does. Without it the acceptor calls
  // Stream::reply() or Stream::reset().
  bool autoReply = true;
  // End the session when no frame was read or written for this long; zero: never.
  std::chrono::nanoseconds idleTimeout{0};
  // How long open() waits for the SYN_REPLY (apimachinery waits 30 s); zero: no limit.
  std::chrono::nanoseconds openTimeout = std::chrono::seconds(30);
  // Time for both timeouts; null: the process clock.
  const Clock* clock = nullptr;
  FrameLimits limits;
  // Unread bytes one stream may hold before the session stops reading the channel until the
  // stream's reader catches up. A stream nobody reads thus stalls the session, as in spdystream.
  size_t streamBufferBytes = size_t{1} << 20;
  // write() sends DATA frames of at most this many bytes.
  size_t maxWriteFrameBytes = size_t{64} << 10;
  // Streams the peer opened that accept() has not taken yet; beyond it they are refused
  // (RST_STREAM REFUSED_STREAM).
  size_t maxPendingAccepts = 64;
  // Streams open at once, either side's; the peer's beyond it are refused.
  size_t maxStreams = 1024;
};

class Session;

class Stream {
 public:
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  uint32_t id() const { return id_; }
  // What the peer sent: its SYN_STREAM's headers for a stream it opened, its SYN_REPLY's for one
  // this end opened, followed by those of any HEADERS frames.
  const Headers& headers() const { return headers_; }
  std::optional<std::string_view> header(std::string_view name) const {
    return findHeader(headers_, name);
  }

  // The next data the peer sent (the payload of one DATA frame or a part of it), or nullopt once
  // the peer finished (FIN) and everything before was read. Errors: kUnavailable "StreamReset"
  // (either side reset the stream; the status is in the message), and when the session ended,
  // after the data received before: kUnavailable "SessionClosed" / "ConnectionLost", kTimeout
  // "IdleTimeout", kInvalid (the peer broke the protocol). One reader at a time.
  boost::asio::awaitable<Result<std::optional<std::string>>> read();
  // Sends `data` (which must stay valid until this completes) and returns once it was handed to
  // the channel. Errors: kInvalid "WriteClosed" (after closeWrite(), or on a stream opened
  // unidirectional), kInvalid "NotReplied" (an accepted stream not answered yet, without
  // autoReply), "StreamReset", and the session's.
  boost::asio::awaitable<Status> write(std::string_view data);
  // Sends FIN: this side sends no more. Idempotent; errors as write().
  boost::asio::awaitable<Status> closeWrite();
  // Answers a stream the peer opened (without autoReply; autoReply has answered already). `fin`
  // closes this side at once. Errors: kInvalid "AlreadyReplied" (also for a stream this end
  // opened), "StreamReset", and the session's.
  Status reply(const Headers& headers = {}, bool fin = false);
  // Ends the stream both ways at once: RST_STREAM with `status` (unless both sides had finished
  // already); pending and later read()/write() fail with "StreamReset". Idempotent.
  void reset(RstStatus status = RstStatus::kCancel);

  bool localClosed() const { return localClosed_; }
  bool remoteClosed() const { return remoteClosed_; }
  // The RST_STREAM status once either side reset the stream.
  std::optional<uint32_t> resetStatus() const { return resetStatus_; }

  // Only the session makes the key (std::make_shared needs a public constructor).
  class Key {
    friend class Session;
    Key() = default;
  };
  Stream(Key, const boost::asio::any_io_executor& executor, uint32_t id, bool local,
         std::weak_ptr<Session> session);

 private:
  friend class Session;

  bool ended() const { return resetStatus_ || failure_ || (localClosed_ && remoteClosed_); }
  Status writable() const;
  Error resetError() const;
  // Wakes everything that waits on the stream, for good: it was reset or the session ended.
  void wakeAll();

  const uint32_t id_;
  const bool local_;  // this end opened it
  const std::weak_ptr<Session> session_;
  Headers headers_;
  std::deque<std::string> inbox_;  // received data not yet read
  size_t inboxBytes_ = 0;
  bool localClosed_ = false;   // FIN sent (or queued)
  bool remoteClosed_ = false;  // FIN received
  bool replied_ = false;       // SYN_REPLY sent (accepted stream) or received (opened stream)
  std::optional<uint32_t> resetStatus_;
  bool resetByPeer_ = false;
  std::optional<Error> failure_;  // the session's end
  detail::Event readable_;        // data, FIN, reset or the session's end
  detail::Event drained_;         // the reader took data (the session's read loop waits on it)
  Latch settled_;                 // open(): replied, reset or the session ended
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `channel` must not be used by anyone else from now on. Errors: kInternal "ZlibFailed".
  static Result<std::shared_ptr<Session>> create(std::unique_ptr<ByteChannel> channel,
                                                 SessionOptions options);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  boost::asio::any_io_executor executor() const { return channel_->executor(); }

  // Reads and dispatches frames, and writes queued ones, until the session ends: the peer closed
  // the channel, the channel failed, close(), the end of a GOAWAY, a protocol error or the idle
  // timeout. Returns once nothing of the session runs any more: ok for an orderly end (the peer
  // closed, close(), after GOAWAY), else why it ended. Await it once.
  boost::asio::awaitable<Status> run();

  // The next stream the peer opened. Errors: kUnavailable "GoingAway" once either side sent
  // GOAWAY and no accepted stream waits, and the session's end.
  boost::asio::awaitable<Result<std::shared_ptr<Stream>>> accept();
  // Opens a stream (SYN_STREAM with `headers`; `fin`: this side sends nothing) and waits for the
  // peer's SYN_REPLY. Errors: kUnavailable "GoingAway", "TooManyStreams", "StreamIdsExhausted",
  // "StreamRefused" / "StreamReset" (the peer's RST_STREAM), kTimeout "OpenTimeout" (the stream
  // is reset then), kInvalid "InvalidHeader", and the session's end.
  boost::asio::awaitable<Result<std::shared_ptr<Stream>>> open(Headers headers, bool fin = false);
  // Sends a PING and returns the time to its echo. Errors: the session's end.
  boost::asio::awaitable<Result<std::chrono::nanoseconds>> ping();

  // An orderly end: sends GOAWAY (naming the last stream the peer opened), refuses streams the
  // peer opens from now on, and closes the channel once every stream has ended and the queued
  // frames are written. Idempotent.
  void goAway();
  // Ends the session at once: queued frames are dropped, the channel is closed, and every
  // pending and later operation of the session and its streams fails with kUnavailable
  // "SessionClosed". Idempotent.
  void close();

  bool closed() const { return closed_; }
  // True once either side sent GOAWAY.
  bool goingAway() const { return goAwaySent_ || goAwayReceived_; }
  // Streams neither ended nor reset.
  size_t streamCount() const { return streams_.size(); }

  // Only create() makes the key (std::make_shared needs a public constructor).
  class Key {
    friend class Session;
    Key() = default;
  };
  Session(Key, std::unique_ptr<ByteChannel> channel, SessionOptions options, FrameEncoder encoder,
          FrameDecoder decoder);

 private:
  friend class Stream;

  boost::asio::awaitable<void> readLoop();
  boost::asio::awaitable<void> writeLoop();
  boost::asio::awaitable<void> idleLoop();
  // Acts on a frame; a stream that now holds more unread data than allowed, if any.
  std::shared_ptr<Stream> dispatch(Frame frame);
  std::shared_ptr<Stream> onData(DataFrame frame);
  bool overfull(const Stream& stream) const;
  void onSynStream(SynStreamFrame frame);
  void onSynReply(SynReplyFrame frame);
  void onRstStream(const RstStreamFrame& frame);
  void onHeaders(HeadersFrame frame);
  void onPing(const PingFrame& frame);
  void onGoAway(const GoAwayFrame& frame);

  // Encodes and queues a frame; the sequence number it gets (see waitWritten()). Errors: the
  // session's end, and the encoder's. A failed encoding of a header block ends the session (the
  // compression contexts are out of step) unless the headers were merely invalid.
  Result<uint64_t> send(const Frame& frame);
  // send() for frames whose failure needs no answer (it ends the session if it matters).
  void sendControl(const Frame& frame);
  uint64_t enqueue(std::string bytes);
  // Waits until the frames queued up to `seq` were written. Errors: the session's end, and
  // "StreamReset" when `stream` (if any) is reset meanwhile.
  boost::asio::awaitable<Status> waitWritten(uint64_t seq, const Stream* stream);
  // Forgets an ended stream.
  void retireIfEnded(const Stream& stream);
  void resetStream(Stream& stream, uint32_t status, bool byPeer, bool sendFrame);
  // Ends the session: `why` for everything pending; `clean`: run() reports ok.
  void fail(const Error& why, bool clean);
  bool drained() const;
  void touch();
  std::shared_ptr<Stream> find(uint32_t id) const;

  const std::unique_ptr<ByteChannel> channel_;
  const SessionOptions options_;
  const Clock& clock_;
  FrameEncoder encoder_;
  FrameDecoder decoder_;

  std::unordered_map<uint32_t, std::shared_ptr<Stream>> streams_;  // not ended
  std::deque<std::shared_ptr<Stream>> acceptQueue_;
  uint32_t nextStreamId_;      // ours
  uint32_t nextPeerStreamId_;  // the lowest id the peer may open next
  uint32_t lastPeerStreamId_ = 0;
  uint32_t nextPingId_;
  std::map<uint32_t, bool> pings_;  // ours in flight: answered yet?

  std::deque<std::string> queue_;  // encoded frames not yet written
  uint64_t queued_ = 0;            // frames ever queued
  uint64_t written_ = 0;           // frames ever written
  std::string writeBuffer_;        // the batch being written
  std::string readBuffer_;

  bool running_ = false;
  bool closed_ = false;
  bool goAwaySent_ = false;
  bool goAwayReceived_ = false;
  Status endStatus_;
  std::optional<Error> failure_;
  Clock::SteadyTime lastActivity_{};
  size_t helpers_ = 0;  // coroutines run() spawned and still running

  detail::Event queueEvent_;    // frames queued, or the session is ending
  detail::Event writtenEvent_;  // frames written, a stream reset, or the session ended
  detail::Event acceptEvent_;   // a stream to accept, GOAWAY, or the session ended
  detail::Event pingEvent_;     // a PING echoed, or the session ended
  detail::Event helpersEvent_;  // a helper coroutine ended
  Latch closedLatch_;           // the session ended (the idle timer waits on it)
};

}  // namespace burstlet::spdy
