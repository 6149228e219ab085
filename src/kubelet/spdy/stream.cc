// Stream: the per-stream half of session.h. Its state changes on the session's strand only, by
// the session's read loop and by the stream's own calls.
#include <algorithm>
#include <utility>

#include "kubelet/spdy/session.h"

namespace burstlet::spdy {

namespace asio = boost::asio;

Stream::Stream(Key /*key*/, const asio::any_io_executor& executor, uint32_t id, bool local,
               std::weak_ptr<Session> session)
    : id_(id),
      local_(local),
      session_(std::move(session)),
      readable_(executor),
      drained_(executor) {}

void Stream::wakeAll() {
  readable_.notifyAll();
  drained_.notifyAll();
  settled_.set();
}

Error Stream::resetError() const {
  const std::string status(rstStatusName(resetStatus_.value_or(0)));
  return Error::make(ErrorCode::kUnavailable, "StreamReset",
                     std::string(resetByPeer_ ? "the peer reset" : "this end reset") + " stream " +
                         std::to_string(id_) + ": " + status);
}

Status Stream::writable() const {
  if (resetStatus_) {
    return resetError();
  }
  if (failure_) {
    return *failure_;
  }
  if (localClosed_) {
    return Error::make(ErrorCode::kInvalid, "WriteClosed",
                       "stream " + std::to_string(id_) + " is closed for writing");
  }
  if (!replied_ && !local_) {
    return Error::make(ErrorCode::kInvalid, "NotReplied",
                       "stream " + std::to_string(id_) + " was not answered yet");
  }
  return okStatus();
}

asio::awaitable<Result<std::optional<std::string>>> Stream::read() {
  while (true) {
    if (resetStatus_) {
      co_return resetError();
    }
    if (!inbox_.empty()) {
      std::optional<std::string> data(std::move(inbox_.front()));
      inbox_.pop_front();
      inboxBytes_ -= data->size();
      drained_.notifyAll();
      co_return data;
    }
    if (remoteClosed_) {
      const std::optional<std::string> end;
      co_return end;
    }
    if (failure_) {
      co_return *failure_;
    }
    co_await readable_.wait();
  }
}

asio::awaitable<Status> Stream::write(std::string_view data) {
  Status status = writable();
  if (!status.ok()) {
    co_return status;
  }
  const auto session = session_.lock();
  if (!session || session->closed()) {
    co_return session
        ? *session->failure_
        : Error::make(ErrorCode::kUnavailable, "SessionClosed", "the SPDY session is gone");
  }
  if (data.empty()) {
    co_return okStatus();
  }
  const size_t step = std::max<size_t>(1, session->options_.maxWriteFrameBytes);
  uint64_t last = 0;
  for (size_t at = 0; at < data.size(); at += step) {
    std::string frame;
    status = encodeDataFrame(id_, 0, data.substr(at, step), frame);
    if (!status.ok()) {
      co_return status;
    }
    last = session->enqueue(std::move(frame));
  }
  Status written = co_await session->waitWritten(last, this);
  co_return written;
}

asio::awaitable<Status> Stream::closeWrite() {
  if (localClosed_ && !resetStatus_ && !failure_) {
    co_return okStatus();
  }
  Status status = writable();
  if (!status.ok()) {
    co_return status;
  }
  const auto session = session_.lock();
  if (!session || session->closed()) {
    co_return session
        ? *session->failure_
        : Error::make(ErrorCode::kUnavailable, "SessionClosed", "the SPDY session is gone");
  }
  std::string frame;
  status = encodeDataFrame(id_, kFlagFin, {}, frame);
  if (!status.ok()) {
    co_return status;
  }
  localClosed_ = true;
  const uint64_t seq = session->enqueue(std::move(frame));
  session->retireIfEnded(*this);
  Status written = co_await session->waitWritten(seq, this);
  co_return written;
}

Status Stream::reply(const Headers& headers, bool fin) {
  if (local_ || replied_) {
    return Error::make(ErrorCode::kInvalid, "AlreadyReplied",
                       "stream " + std::to_string(id_) + " needs no reply");
  }
  if (resetStatus_) {
    return resetError();
  }
  if (failure_) {
    return *failure_;
  }
  const auto session = session_.lock();
  if (!session || session->closed()) {
    return session
               ? *session->failure_
               : Error::make(ErrorCode::kUnavailable, "SessionClosed", "the SPDY session is gone");
  }
  Result<uint64_t> sent = session->send(SynReplyFrame{id_, fin ? kFlagFin : uint8_t{0}, headers});
  if (!sent.ok()) {
    return std::move(sent).error();
  }
  replied_ = true;
  if (fin) {
    localClosed_ = true;
    session->retireIfEnded(*this);
  }
  return okStatus();
}

void Stream::reset(RstStatus status) {
  if (const auto session = session_.lock()) {
    session->resetStream(*this, static_cast<uint32_t>(status), false, true);
    return;
  }
  if (!ended()) {
    resetStatus_ = static_cast<uint32_t>(status);
    inbox_.clear();
    inboxBytes_ = 0;
    wakeAll();
  }
}

}  // namespace burstlet::spdy
