#include "kube/list_decoder.h"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace burstlet::kube {

namespace json = boost::json;

namespace {
bool isSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
constexpr size_t kMaxKeyBytes = 1024;
}  // namespace

Error ListDecoder::fail(std::string message) {
  failed_ = true;
  return Error::make(ErrorCode::kInternal, "InvalidResponse",
                     "list response: " + std::move(message));
}

bool ListDecoder::scanValue(const char* p, const char* stop, const char** end) {
  while (p < stop) {
    if (escape_) {
      escape_ = false;
      ++p;
      continue;
    }
    if (inString_) {
      while (p < stop && *p != '"' && *p != '\\') {
        ++p;
      }
      if (p == stop) {
        break;
      }
      if (*p == '\\') {
        escape_ = true;
        ++p;
        continue;
      }
      inString_ = false;
      ++p;
      if (nesting_ == 0) {
        *end = p;  // a top-level string value ended
        return true;
      }
      continue;
    }
    const char c = *p;
    if (scalar_) {
      if (c == ',' || c == '}' || c == ']' || isSpace(c)) {
        *end = p;
        return true;
      }
    } else if (c == '"') {
      inString_ = true;
    } else if (c == '{' || c == '[') {
      ++nesting_;
    } else if (c == '}' || c == ']') {
      if (--nesting_ == 0) {
        *end = p + 1;
        return true;
      }
    }
    ++p;
  }
  *end = stop;
  return false;
}

Status ListDecoder::finishItem(std::string_view text, std::vector<json::value>* items) {
  if (text.size() > maxValueBytes_) {
    failed_ = true;
    return Error::make(ErrorCode::kInternal, "ResponseTooLarge",
                       fmt::format("a list item exceeds {} bytes", maxValueBytes_));
  }
  boost::system::error_code ec;
  // Each item gets its own arena, sized for the DOM of its text.
  json::value v =
      json::parse(text, ec, json::make_shared_resource<json::monotonic_resource>(text.size() * 2));
  if (ec) {
    return fail("an item is not valid JSON: " + ec.message());
  }
  items->push_back(std::move(v));
  return okStatus();
}

Status ListDecoder::feed(std::string_view piece, std::vector<json::value>* items) {
  if (failed_) {
    return fail("decoder used after an error");
  }
  // An item cut by the previous piece continues in buf_; otherwise scan the piece in place.
  std::string_view data = piece;
  size_t pos = 0;
  size_t tokenStart = std::string_view::npos;
  if (!buf_.empty()) {
    pos = buf_.size();
    buf_.append(piece);
    data = buf_;
    tokenStart = 0;
  }
  const char* base = data.data();
  const char* stop = base + data.size();
  while (pos < data.size()) {
    const char c = data[pos];
    switch (state_) {
      case State::kStart:
        if (c == '{') {
          state_ = State::kKey;
        } else if (!isSpace(c)) {
          return fail("not a JSON object");
        }
        ++pos;
        break;
      case State::kKey:
        if (c == '"') {
          key_.clear();
          state_ = State::kKeyString;
        } else if (c == '}') {
          state_ = State::kDone;
        } else if (!isSpace(c)) {
          return fail(fmt::format("unexpected {:?} where a key belongs", c));
        }
        ++pos;
        break;
      case State::kKeyString:
        while (pos < data.size()) {
          const char k = data[pos++];
          if (escape_) {
            escape_ = false;
          } else if (k == '\\') {
            escape_ = true;
          } else if (k == '"') {
            state_ = State::kColon;
            break;
          }
          key_ += k;
        }
        if (key_.size() > kMaxKeyBytes) {
          return fail("a key is too long");
        }
        break;
      case State::kColon:
        if (c == ':') {
          state_ = State::kValue;
        } else if (!isSpace(c)) {
          return fail(fmt::format("unexpected {:?} after a key", c));
        }
        ++pos;
        break;
      case State::kValue:
        if (isSpace(c)) {
          ++pos;
          break;
        }
        nesting_ = 0;
        inString_ = false;
        escape_ = false;
        if (key_ == "items") {
          if (c != '[') {
            return fail("\"items\" is not an array");
          }
          sawItems_ = true;
          state_ = State::kItems;
          ++pos;
          break;
        }
        scalar_ = c != '{' && c != '[' && c != '"';
        envelope_ += envelopeHasMember_ ? ",\"" : "{\"";
        envelope_ += key_;
        envelope_ += "\":";
        envelopeHasMember_ = true;
        state_ = State::kRawValue;
        break;
      case State::kRawValue: {
        const char* end = nullptr;
        const bool done = scanValue(base + pos, stop, &end);
        envelope_.append(base + pos, end);
        pos = static_cast<size_t>(end - base);
        if (envelope_.size() > maxValueBytes_) {
          failed_ = true;
          return Error::make(ErrorCode::kInternal, "ResponseTooLarge",
                             fmt::format("list metadata exceeds {} bytes", maxValueBytes_));
        }
        if (done) {
          state_ = State::kAfterValue;
        }
      } break;
      case State::kAfterValue:
        if (c == ',') {
          state_ = State::kKey;
        } else if (c == '}') {
          state_ = State::kDone;
        } else if (!isSpace(c)) {
          return fail(fmt::format("unexpected {:?} after a value", c));
        }
        ++pos;
        break;
      case State::kItems:
        if (c == ']') {
          state_ = State::kAfterValue;
          ++pos;
        } else if (c == '{') {
          nesting_ = 0;
          inString_ = false;
          escape_ = false;
          scalar_ = false;
          tokenStart = pos;
          state_ = State::kItem;
        } else if (c == ',' || isSpace(c)) {
          ++pos;
        } else {
          return fail("an item is not an object");
        }
        break;
      case State::kItem: {
        const char* end = nullptr;
        const bool done = scanValue(base + pos, stop, &end);
        pos = static_cast<size_t>(end - base);
        if (done) {
          BURSTLET_RETURN_IF_ERROR(finishItem(data.substr(tokenStart, pos - tokenStart), items));
          tokenStart = std::string_view::npos;
          state_ = State::kItems;
        }
      } break;
      case State::kDone:
        if (!isSpace(c)) {
          return fail("data after the end of the list");
        }
        ++pos;
        break;
    }
  }
  if (state_ != State::kItem) {
    buf_.clear();
    return okStatus();
  }
  // Keep the unfinished item for the next piece.
  if (data.size() - tokenStart > maxValueBytes_) {
    failed_ = true;
    return Error::make(ErrorCode::kInternal, "ResponseTooLarge",
                       fmt::format("a list item exceeds {} bytes", maxValueBytes_));
  }
  if (buf_.empty()) {
    buf_.assign(data.substr(tokenStart));
  } else {
    buf_.erase(0, tokenStart);
  }
  return okStatus();
}

Result<json::value> ListDecoder::finish() {
  if (failed_) {
    return fail("decoder used after an error");
  }
  if (state_ != State::kDone) {
    return fail(state_ == State::kStart ? "empty body" : "the body ended inside the list");
  }
  envelope_ += envelopeHasMember_ ? "}" : "{}";
  boost::system::error_code ec;
  json::value v = json::parse(envelope_, ec);
  if (ec) {
    return fail("metadata is not valid JSON: " + ec.message());
  }
  return v;
}

asio::awaitable<Result<std::optional<json::value>>> ListStream::next() {
  while (readyPos_ >= ready_.size()) {
    ready_.clear();
    readyPos_ = 0;
    if (ended_) {
      co_return std::optional<json::value>{};
    }
    auto piece = co_await stream_->read();
    if (!piece.ok()) {
      co_return std::move(piece).error();
    }
    if (!piece->has_value()) {
      auto envelope = decoder_.finish();
      if (!envelope.ok()) {
        co_return std::move(envelope).error();
      }
      envelope_ = std::move(*envelope);
      ended_ = true;
      co_return std::optional<json::value>{};
    }
    auto fed = decoder_.feed(**piece, &ready_);
    if (!fed.ok()) {
      co_return std::move(fed).error();
    }
  }
  co_return std::optional<json::value>(std::move(ready_[readyPos_++]));
}

}  // namespace burstlet::kube
