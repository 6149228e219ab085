// Streaming decode of list responses. A List ({"kind":..,"metadata":{..},"items":[..]}) of
// 10,000 pods is about 50 MB of JSON; ListDecoder splits it into items as the bytes arrive, so
// the list is never held whole and each item is parsed on its own (in its own arena) while the
// server is still sending the rest. ListStream reads one list response this way.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/http.h"

namespace burstlet::kube {

class ListDecoder {
 public:
  // maxValueBytes bounds one item (and the rest of the document together): a larger one is an
  // error (kInternal "ResponseTooLarge") rather than unbounded buffering.
  explicit ListDecoder(size_t maxValueBytes = size_t{64} << 20) : maxValueBytes_(maxValueBytes) {}

  // Feeds the next piece of the body; complete items are appended to *items. A body that is
  // not a JSON object with an "items" array is an error (kInternal "InvalidResponse"), and the
  // decoder must not be fed again after an error.
  Status feed(std::string_view piece, std::vector<boost::json::value>* items);
  // At the end of the body: checks that the document was complete and returns everything but
  // the items (kind, apiVersion, metadata), parsed.
  Result<boost::json::value> finish();

 private:
  enum class State {
    kStart,       // before the opening '{'
    kKey,         // expecting a key or the closing '}'
    kKeyString,   // inside a key
    kColon,       // after a key
    kValue,       // expecting a top-level value
    kRawValue,    // inside a top-level value other than items (copied to the envelope)
    kAfterValue,  // expecting ',' or '}'
    kItems,       // inside the items array, between items
    kItem,        // inside one item
    kDone,        // after the closing '}'
  };
  Error fail(std::string message);
  // Scans a raw value (item or envelope value) from pos; true when it ended at *end (exclusive).
  bool scanValue(const char* begin, const char* stop, const char** end);
  Status finishItem(std::string_view text, std::vector<boost::json::value>* items);

  size_t maxValueBytes_;
  State state_ = State::kStart;
  std::string buf_;       // bytes from tokenStart_ on, when a token spans pieces
  std::string key_;       // current top-level key (raw)
  std::string envelope_;  // "{" + the top-level members other than items
  bool envelopeHasMember_ = false;
  bool sawItems_ = false;
  // Raw value scanner state.
  int nesting_ = 0;
  bool inString_ = false;
  bool escape_ = false;
  bool scalar_ = false;
  bool failed_ = false;
};

// One list response read as a stream of items.
class ListStream {
 public:
  explicit ListStream(std::unique_ptr<ResponseStream> stream) : stream_(std::move(stream)) {}
  // The next item; std::nullopt after the last one, when envelope() becomes available.
  asio::awaitable<Result<std::optional<boost::json::value>>> next();
  // The list without its items (metadata.resourceVersion, metadata.continue). Valid once next()
  // returned std::nullopt.
  const boost::json::value& envelope() const { return envelope_; }
  void cancel() { stream_->cancel(); }

 private:
  std::unique_ptr<ResponseStream> stream_;
  ListDecoder decoder_;
  std::vector<boost::json::value> ready_;
  size_t readyPos_ = 0;
  bool ended_ = false;
  boost::json::value envelope_;
};

}  // namespace burstlet::kube
