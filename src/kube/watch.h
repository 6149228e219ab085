// Watch: the API server streams newline-delimited JSON events on a chunked body, and chunk
// boundaries do not align with events. WatchDecoder turns arbitrary pieces of that body into
// events; WatchStream reads them from a transport stream.
#pragma once

#include <boost/json/value.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kube/http.h"

namespace burstlet::kube {

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

std::string_view watchEventTypeName(WatchEventType t);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  boost::json::value object;  // the object; for kError a Status
};

class WatchDecoder {
 public:
  // Appends a piece of the body. A complete line that is not a valid event is an error
  // (kInternal, reason "InvalidWatchEvent"); the decoder stays usable for later lines.
  Status feed(std::string_view piece);
  // Takes the next complete event, if any.
  std::optional<WatchEvent> next();
  // Bytes received but not yet forming a complete line.
  size_t pending() const { return partial_.size(); }

 private:
  Status decodeLine(std::string_view line);

  std::string partial_;
  std::deque<WatchEvent> ready_;
};

// Converts a watch ERROR event's Status into an Error (410 -> kGone, ...).
Error watchError(const boost::json::value& status);

// Events from one watch request. Not thread-safe: one reader; cancel() from anywhere.
class WatchStream {
 public:
  explicit WatchStream(std::unique_ptr<ResponseStream> stream) : stream_(std::move(stream)) {}
  // The next event; std::nullopt when the server ended the watch (timeout): reconnect from the
  // last resourceVersion. An ERROR event is returned as an event, not an error.
  asio::awaitable<Result<std::optional<WatchEvent>>> next();
  void cancel() { stream_->cancel(); }

 private:
  std::unique_ptr<ResponseStream> stream_;
  WatchDecoder decoder_;
};

}  // namespace burstlet::kube
