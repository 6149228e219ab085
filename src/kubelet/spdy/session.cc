#include "kubelet/spdy/session.h"

#include <boost/asio/co_spawn.hpp>
#include <exception>
#include <type_traits>
#include <utility>
#include <vector>

namespace burstlet::spdy {

namespace asio = boost::asio;

namespace {

// A TLS record holds at most 16 KiB, so a larger buffer would rarely fill; sessions are many and
// mostly idle.
constexpr size_t kReadBufferBytes = size_t{16} * 1024;
// Small frames queued together go out in one channel write, up to this much.
constexpr size_t kWriteBatchBytes = size_t{256} * 1024;

Error sessionClosed(std::string message) {
  return Error::make(ErrorCode::kUnavailable, "SessionClosed", std::move(message));
}

Error connectionLost(std::string message) {
  return Error::make(ErrorCode::kUnavailable, "ConnectionLost", std::move(message));
}

}  // namespace

Result<std::shared_ptr<Session>> Session::create(std::unique_ptr<ByteChannel> channel,
                                                 SessionOptions options) {
  auto encoder = FrameEncoder::create();
  if (!encoder.ok()) {
    return std::move(encoder).error();
  }
  auto decoder = FrameDecoder::create(options.limits);
  if (!decoder.ok()) {
    return std::move(decoder).error();
  }
  return std::make_shared<Session>(Key{}, std::move(channel), options, std::move(encoder).value(),
                                   std::move(decoder).value());
}

Session::Session(Key /*key*/, std::unique_ptr<ByteChannel> channel, SessionOptions options,
                 FrameEncoder encoder, FrameDecoder decoder)
    : channel_(std::move(channel)),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : realClock()),
      encoder_(std::move(encoder)),
      decoder_(std::move(decoder)),
      nextStreamId_(options.server ? 2 : 1),
      nextPeerStreamId_(options.server ? 1 : 2),
      nextPingId_(options.server ? 2 : 1),
      readBuffer_(kReadBufferBytes, '\0'),
      queueEvent_(channel_->executor()),
      writtenEvent_(channel_->executor()),
      acceptEvent_(channel_->executor()),
      pingEvent_(channel_->executor()),
      helpersEvent_(channel_->executor()) {}

Session::~Session() {
  // Streams may outlive their session: leave none of them waiting.
  fail(sessionClosed("the SPDY session was destroyed"), true);
}

// --- running ----------------------------------------------------------------------------------

asio::awaitable<Status> Session::run() {
  if (running_) {
    co_return Error::make(ErrorCode::kInvalid, "AlreadyRunning", "run() was awaited twice");
  }
  running_ = true;
  auto self = shared_from_this();
  touch();
  const auto onHelperEnd = [self](const std::exception_ptr& e) {
    --self->helpers_;
    if (e) {
      self->fail(Error::make(ErrorCode::kInternal, "SessionFailed", "a SPDY session task threw"),
                 false);
    }
    self->helpersEvent_.notifyAll();
  };
  ++helpers_;
  asio::co_spawn(executor(), writeLoop(), onHelperEnd);
  if (options_.idleTimeout > std::chrono::nanoseconds::zero()) {
    ++helpers_;
    asio::co_spawn(executor(), idleLoop(), onHelperEnd);
  }
  co_await readLoop();
  // readLoop() returns only once the session has ended; the helpers follow promptly.
  while (helpers_ > 0) {
    co_await helpersEvent_.wait();
  }
  co_return endStatus_;
}

asio::awaitable<void> Session::readLoop() {
  while (!closed_) {
    const asio::mutable_buffer buffer = asio::buffer(readBuffer_);
    Result<size_t> n = co_await channel_->readSome(buffer);
    if (closed_) {
      break;
    }
    if (!n.ok()) {
      fail(connectionLost(n.error().message), false);
      break;
    }
    if (*n == 0) {
      fail(connectionLost("the peer closed the connection"), true);
      break;
    }
    touch();
    decoder_.feed(std::string_view(readBuffer_.data(), *n));
    while (!closed_) {
      Result<std::optional<Frame>> frame = decoder_.next();
      if (!frame.ok()) {
        fail(std::move(frame).error(), false);
        break;
      }
      if (!frame->has_value()) {
        break;
      }
      // The only brake the peer knows: while a stream holds too much unread data, read nothing
      // more until its reader catches up.
      const std::shared_ptr<Stream> full = dispatch(std::move(**frame));
      while (full && overfull(*full)) {
        co_await full->drained_.wait();
      }
    }
  }
}

asio::awaitable<void> Session::writeLoop() {
  while (true) {
    while (!closed_ && queue_.empty() && !drained()) {
      co_await queueEvent_.wait();
    }
    if (closed_) {
      break;
    }
    if (queue_.empty()) {
      fail(sessionClosed("the SPDY session ended after GOAWAY"), true);
      break;
    }
    writeBuffer_ = std::move(queue_.front());
    queue_.pop_front();
    uint64_t frames = 1;
    while (!queue_.empty() && writeBuffer_.size() + queue_.front().size() <= kWriteBatchBytes) {
      writeBuffer_.append(queue_.front());
      queue_.pop_front();
      ++frames;
    }
    const asio::const_buffer buffer = asio::buffer(writeBuffer_);
    Status status = co_await channel_->write(buffer);
    if (closed_) {
      break;
    }
    if (!status.ok()) {
      fail(connectionLost(status.error().message), false);
      break;
    }
    written_ += frames;
    if (writeBuffer_.capacity() > kReadBufferBytes) {
      writeBuffer_ = std::string();  // an idle session keeps no large buffer
    }
    touch();
    writtenEvent_.notifyAll();
  }
}

asio::awaitable<void> Session::idleLoop() {
  const auto idle = std::chrono::duration_cast<Clock::SteadyTime::duration>(options_.idleTimeout);
  while (!closed_) {
    const Clock::SteadyTime deadline = lastActivity_ + idle;
    const bool timeUp = co_await sleepUntil(clock_, deadline, &closedLatch_);
    if (!timeUp || closed_) {
      break;
    }
    if (clock_.steadyNow() >= lastActivity_ + idle) {
      fail(Error::make(ErrorCode::kTimeout, "IdleTimeout", "no SPDY frame for the idle timeout"),
           false);
      break;
    }
  }
}

void Session::touch() { lastActivity_ = clock_.steadyNow(); }

bool Session::drained() const { return goingAway() && streams_.empty() && queue_.empty(); }

void Session::fail(const Error& why, bool clean) {
  if (closed_) {
    return;
  }
  closed_ = true;
  failure_ = why;
  endStatus_ = clean ? okStatus() : Status(why);
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : streams) {
    stream->failure_ = why;
    stream->wakeAll();
  }
  acceptQueue_.clear();
  queue_.clear();
  queueEvent_.notifyAll();
  writtenEvent_.notifyAll();
  acceptEvent_.notifyAll();
  pingEvent_.notifyAll();
  closedLatch_.set();
  channel_->close();
}

void Session::close() { fail(sessionClosed("the SPDY session was closed"), true); }

void Session::goAway() {
  if (closed_ || goAwaySent_) {
    return;
  }
  goAwaySent_ = true;
  sendControl(GoAwayFrame{lastPeerStreamId_, static_cast<uint32_t>(GoAwayStatus::kOk)});
  acceptEvent_.notifyAll();
  queueEvent_.notifyAll();
}

// --- sending ----------------------------------------------------------------------------------

Result<uint64_t> Session::send(const Frame& frame) {
  if (closed_) {
    return *failure_;
  }
  std::string bytes;
  Status encoded = encoder_.encode(frame, bytes);
  if (!encoded.ok()) {
    // Invalid headers are refused before compression starts; anything else may have moved the
    // compressor past a block the peer will never see.
    if (encoded.error().reason != "InvalidHeader") {
      fail(encoded.error(), false);
    }
    return std::move(encoded).error();
  }
  return enqueue(std::move(bytes));
}

void Session::sendControl(const Frame& frame) {
  if (!send(frame).ok()) {
    return;  // the session has ended, or the frame was invalid: nobody to tell
  }
}

uint64_t Session::enqueue(std::string bytes) {
  queue_.push_back(std::move(bytes));
  queueEvent_.notifyAll();
  return ++queued_;
}

asio::awaitable<Status> Session::waitWritten(uint64_t seq, const Stream* stream) {
  while (written_ < seq) {
    if (closed_) {
      co_return *failure_;
    }
    if (stream != nullptr && stream->resetStatus_) {
      co_return stream->resetError();
    }
    co_await writtenEvent_.wait();
  }
  co_return okStatus();
}

// --- streams ----------------------------------------------------------------------------------

std::shared_ptr<Stream> Session::find(uint32_t id) const {
  const auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

void Session::retireIfEnded(const Stream& stream) {
  if (!stream.ended()) {
    return;
  }
  const auto it = streams_.find(stream.id());
  if (it != streams_.end() && it->second.get() == &stream) {
    streams_.erase(it);
  }
  if (goingAway()) {
    queueEvent_.notifyAll();  // the writer ends the session once the last stream is gone
  }
}

void Session::resetStream(Stream& stream, uint32_t status, bool byPeer, bool sendFrame) {
  if (stream.resetStatus_ || stream.failure_ || (stream.localClosed_ && stream.remoteClosed_)) {
    return;
  }
  stream.resetStatus_ = status;
  stream.resetByPeer_ = byPeer;
  stream.inbox_.clear();
  stream.inboxBytes_ = 0;
  stream.wakeAll();
  if (sendFrame) {
    sendControl(RstStreamFrame{stream.id(), status});
  }
  writtenEvent_.notifyAll();  // its writers stop waiting
  retireIfEnded(stream);
}

asio::awaitable<Result<std::shared_ptr<Stream>>> Session::accept() {
  while (true) {
    if (!acceptQueue_.empty()) {
      std::shared_ptr<Stream> stream = std::move(acceptQueue_.front());
      acceptQueue_.pop_front();
      co_return stream;
    }
    if (closed_) {
      co_return *failure_;
    }
    if (goingAway()) {
      co_return Error::make(ErrorCode::kUnavailable, "GoingAway",
                            "the SPDY session accepts no more streams (GOAWAY)");
    }
    co_await acceptEvent_.wait();
  }
}

asio::awaitable<Result<std::shared_ptr<Stream>>> Session::open(Headers headers, bool fin) {
  if (closed_) {
    co_return *failure_;
  }
  if (goingAway()) {
    co_return Error::make(ErrorCode::kUnavailable, "GoingAway",
                          "the SPDY session opens no more streams (GOAWAY)");
  }
  if (streams_.size() >= options_.maxStreams) {
    co_return Error::make(ErrorCode::kUnavailable, "TooManyStreams",
                          "the SPDY session has " + std::to_string(streams_.size()) + " streams");
  }
  if (nextStreamId_ > kMaxStreamId) {
    co_return Error::make(ErrorCode::kUnavailable, "StreamIdsExhausted",
                          "the SPDY session has used all stream ids");
  }
  auto self = shared_from_this();
  const uint32_t id = nextStreamId_;
  auto stream = std::make_shared<Stream>(Stream::Key{}, executor(), id, true, weak_from_this());
  stream->localClosed_ = fin;
  const Frame frame = SynStreamFrame{id, 0, 0, 0, fin ? kFlagFin : uint8_t{0}, std::move(headers)};
  Result<uint64_t> sent = send(frame);
  if (!sent.ok()) {
    co_return std::move(sent).error();
  }
  nextStreamId_ += 2;
  streams_.emplace(id, stream);
  bool settled = true;
  if (options_.openTimeout > std::chrono::nanoseconds::zero()) {
    settled = co_await waitFor(stream->settled_, clock_, options_.openTimeout);
  } else {
    co_await stream->settled_.wait();
  }
  if (stream->replied_) {
    co_return stream;
  }
  if (stream->resetStatus_) {
    if (*stream->resetStatus_ == static_cast<uint32_t>(RstStatus::kRefusedStream)) {
      co_return Error::make(ErrorCode::kUnavailable, "StreamRefused",
                            "the peer refused stream " + std::to_string(id));
    }
    co_return stream->resetError();
  }
  if (stream->failure_) {
    co_return *stream->failure_;
  }
  if (!settled) {
    resetStream(*stream, static_cast<uint32_t>(RstStatus::kCancel), false, true);
    co_return Error::make(ErrorCode::kTimeout, "OpenTimeout",
                          "no SYN_REPLY for stream " + std::to_string(id));
  }
  co_return Error::make(ErrorCode::kInternal, "OpenFailed",
                        "stream " + std::to_string(id) + " settled without an outcome");
}

asio::awaitable<Result<std::chrono::nanoseconds>> Session::ping() {
  if (closed_) {
    co_return *failure_;
  }
  auto self = shared_from_this();
  const uint32_t id = nextPingId_;
  nextPingId_ = nextPingId_ > kMaxStreamId - 2 ? (options_.server ? 2 : 1) : nextPingId_ + 2;
  pings_[id] = false;
  const auto start = clock_.steadyNow();
  Result<uint64_t> sent = send(PingFrame{id});
  if (!sent.ok()) {
    pings_.erase(id);
    co_return std::move(sent).error();
  }
  while (!closed_ && !pings_[id]) {
    co_await pingEvent_.wait();
  }
  const bool answered = pings_[id];
  pings_.erase(id);
  if (!answered) {
    co_return *failure_;
  }
  co_return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.steadyNow() - start);
}

// --- receiving --------------------------------------------------------------------------------

std::shared_ptr<Stream> Session::dispatch(Frame frame) {
  if (auto* data = std::get_if<DataFrame>(&frame)) {
    return onData(std::move(*data));
  }
  if (auto* synStream = std::get_if<SynStreamFrame>(&frame)) {
    onSynStream(std::move(*synStream));
  } else if (auto* synReply = std::get_if<SynReplyFrame>(&frame)) {
    onSynReply(std::move(*synReply));
  } else if (const auto* rst = std::get_if<RstStreamFrame>(&frame)) {
    onRstStream(*rst);
  } else if (auto* headers = std::get_if<HeadersFrame>(&frame)) {
    onHeaders(std::move(*headers));
  } else if (const auto* ping = std::get_if<PingFrame>(&frame)) {
    onPing(*ping);
  } else if (const auto* goAway = std::get_if<GoAwayFrame>(&frame)) {
    onGoAway(*goAway);
  }
  // SETTINGS and WINDOW_UPDATE change nothing: spdystream neither sends nor honours them.
  return nullptr;
}

std::shared_ptr<Stream> Session::onData(DataFrame frame) {
  // Data for streams that ended or never were is dropped, as spdystream drops it.
  auto stream = find(frame.streamId);
  if (!stream || stream->remoteClosed_) {
    return nullptr;
  }
  if (!frame.data.empty()) {
    stream->inboxBytes_ += frame.data.size();
    stream->inbox_.push_back(std::move(frame.data));
  }
  if ((frame.flags & kFlagFin) != 0) {
    stream->remoteClosed_ = true;
  }
  stream->readable_.notifyAll();
  retireIfEnded(*stream);
  return overfull(*stream) ? stream : nullptr;
}

bool Session::overfull(const Stream& stream) const {
  // A stream that has finished or was reset grows no more.
  return !closed_ && !stream.remoteClosed_ && !stream.resetStatus_ &&
         stream.inboxBytes_ > options_.streamBufferBytes;
}

void Session::onSynStream(SynStreamFrame frame) {
  const uint32_t id = frame.streamId;
  const bool peerParity = (id % 2 == 1) == options_.server;
  if (!peerParity || id < nextPeerStreamId_) {
    sendControl(RstStreamFrame{id, static_cast<uint32_t>(RstStatus::kProtocolError)});
    return;
  }
  nextPeerStreamId_ = id + 2;
  if (goingAway() || streams_.size() >= options_.maxStreams ||
      acceptQueue_.size() >= options_.maxPendingAccepts) {
    sendControl(RstStreamFrame{id, static_cast<uint32_t>(RstStatus::kRefusedStream)});
    return;
  }
  lastPeerStreamId_ = id;
  auto stream = std::make_shared<Stream>(Stream::Key{}, executor(), id, false, weak_from_this());
  stream->headers_ = std::move(frame.headers);
  stream->remoteClosed_ = (frame.flags & kFlagFin) != 0;
  stream->localClosed_ = (frame.flags & kFlagUnidirectional) != 0;
  stream->replied_ = stream->localClosed_;  // a unidirectional stream gets no reply
  if (options_.autoReply && !stream->replied_) {
    sendControl(SynReplyFrame{id, 0, {}});
    stream->replied_ = true;
  }
  if (!stream->ended()) {
    streams_.emplace(id, stream);
  }
  acceptQueue_.push_back(std::move(stream));
  acceptEvent_.notifyAll();
}

void Session::onSynReply(SynReplyFrame frame) {
  // A second SYN_REPLY, or one for a stream the peer opened, is ignored as spdystream does.
  auto stream = find(frame.streamId);
  if (!stream || !stream->local_ || stream->replied_) {
    return;
  }
  stream->replied_ = true;
  stream->headers_ = std::move(frame.headers);
  if ((frame.flags & kFlagFin) != 0) {
    stream->remoteClosed_ = true;
  }
  stream->settled_.set();
  stream->readable_.notifyAll();
  retireIfEnded(*stream);
}

void Session::onRstStream(const RstStreamFrame& frame) {
  if (auto stream = find(frame.streamId)) {
    resetStream(*stream, frame.status, true, false);
  }
}

void Session::onHeaders(HeadersFrame frame) {
  auto stream = find(frame.streamId);
  if (!stream) {
    return;
  }
  for (auto& header : frame.headers) {
    stream->headers_.push_back(std::move(header));
  }
  if ((frame.flags & kFlagFin) != 0) {
    stream->remoteClosed_ = true;
    stream->readable_.notifyAll();
    retireIfEnded(*stream);
  }
}

void Session::onPing(const PingFrame& frame) {
  const bool ours = (frame.id % 2 == 0) == options_.server;
  if (!ours) {
    sendControl(frame);  // the peer's: echo it
    return;
  }
  const auto it = pings_.find(frame.id);
  if (it != pings_.end()) {
    it->second = true;
    pingEvent_.notifyAll();
  }
}

void Session::onGoAway(const GoAwayFrame& frame) {
  if (goAwayReceived_) {
    return;
  }
  goAwayReceived_ = true;
  // Streams this end opened after the last one the peer took were never seen by it.
  std::vector<std::shared_ptr<Stream>> unseen;
  for (const auto& [id, stream] : streams_) {
    if (stream->local_ && id > frame.lastGoodStreamId) {
      unseen.push_back(stream);
    }
  }
  for (const auto& stream : unseen) {
    resetStream(*stream, static_cast<uint32_t>(RstStatus::kRefusedStream), true, false);
  }
  acceptEvent_.notifyAll();
  queueEvent_.notifyAll();
}

}  // namespace burstlet::spdy
