#include "kube/watch.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "kube/errors.h"

namespace burstlet::kube {

std::string_view watchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "ERROR";
}

Status WatchDecoder::feed(std::string_view piece) {
  Status first;
  size_t start = 0;
  while (true) {
    const size_t nl = piece.find('\n', start);
    if (nl == std::string_view::npos) {
      partial_.append(piece.substr(start));
      return first;
    }
    Status s;
    if (partial_.empty()) {
      s = decodeLine(piece.substr(start, nl - start));
    } else {
      partial_.append(piece.substr(start, nl - start));
      std::string line = std::move(partial_);
      partial_.clear();
      s = decodeLine(line);
    }
    if (!s.ok() && first.ok()) {
      first = std::move(s);
    }
    start = nl + 1;
  }
}

Status WatchDecoder::decodeLine(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
    line.remove_suffix(1);
  }
  if (line.empty()) {
    return okStatus();
  }
  // Each event gets its own arena: the DOM is built with bump allocation and freed in one go
  // when the last holder of the object lets go (the store keeps compact text, not the DOM).
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(
      line, ec,
      boost::json::make_shared_resource<boost::json::monotonic_resource>(line.size() * 2));
  if (ec || !v.is_object()) {
    return Error::make(ErrorCode::kInternal, "InvalidWatchEvent",
                       fmt::format("watch event is not a JSON object ({} bytes)", line.size()));
  }
  auto& o = v.get_object();
  auto* type = o.if_contains("type");
  auto* object = o.if_contains("object");
  if (type == nullptr || !type->is_string() || object == nullptr) {
    return Error::make(ErrorCode::kInternal, "InvalidWatchEvent",
                       "watch event lacks type or object");
  }
  WatchEventType evType = WatchEventType::kAdded;
  const auto& t = type->get_string();
  if (t == "ADDED") {
    evType = WatchEventType::kAdded;
  } else if (t == "MODIFIED") {
    evType = WatchEventType::kModified;
  } else if (t == "DELETED") {
    evType = WatchEventType::kDeleted;
  } else if (t == "BOOKMARK") {
    evType = WatchEventType::kBookmark;
  } else if (t == "ERROR") {
    evType = WatchEventType::kError;
  } else {
    return Error::make(ErrorCode::kInternal, "InvalidWatchEvent",
                       fmt::format("unknown watch event type \"{}\"", std::string_view(t)));
  }
  // Move-construct: it keeps the event's arena. Move-assigning into a default value would
  // deep-copy the whole object into the default heap.
  ready_.push_back(WatchEvent{evType, boost::json::value(std::move(*object))});
  return okStatus();
}

std::optional<WatchEvent> WatchDecoder::next() {
  if (ready_.empty()) {
    return std::nullopt;
  }
  WatchEvent ev = std::move(ready_.front());
  ready_.pop_front();
  return ev;
}

Error watchError(const boost::json::value& status) {
  HttpResponse r;
  r.status = 500;
  if (status.is_object()) {
    if (auto* code = status.get_object().if_contains("code"); code && code->is_int64()) {
      r.status = static_cast<unsigned>(code->get_int64());
    }
  }
  r.body = boost::json::serialize(status);
  return errorFromResponse(r, "watch");
}

asio::awaitable<Result<std::optional<WatchEvent>>> WatchStream::next() {
  while (true) {
    if (auto ev = decoder_.next()) {
      co_return std::optional<WatchEvent>(std::move(ev));
    }
    auto piece = co_await stream_->read();
    if (!piece.ok()) {
      co_return std::move(piece).error();
    }
    if (!piece->has_value()) {
      co_return std::optional<WatchEvent>{};
    }
    auto s = decoder_.feed(**piece);
    if (!s.ok()) {
      co_return std::move(s).error();
    }
  }
}

}  // namespace burstlet::kube
