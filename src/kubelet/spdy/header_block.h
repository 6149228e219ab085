// SPDY/3 name/value header blocks: the uncompressed layout, and the zlib compression with the
// SPDY/3 dictionary that both ends keep for the whole session (every block continues the zlib
// stream of the previous one, so one compressor and one decompressor per session, used in frame
// order).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace burstlet::spdy {

// Header lines in order. On the wire names are lower case and unique: the values of a name that
// appears more than once travel together, separated by NUL, and decode back into one entry per
// value (Go's http.Header does the same), so "a: 1" + "a: 2" round-trips.
using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;

// The first value of `name`, compared ASCII case-insensitively; nullopt when absent.
std::optional<std::string_view> findHeader(const Headers& headers, std::string_view name);

// The zlib dictionary of SPDY/3 (draft 3, section 2.6.10.1), 1423 bytes.
std::string_view headerDictionary();

// The uncompressed block of `headers` (names lower-cased, repeated names merged). Errors: kInvalid
// "InvalidHeader" for an empty name or one containing NUL.
Result<std::string> encodeHeaderBlock(const Headers& headers);

// Parses an uncompressed block, which must be exactly one block. Errors: kInvalid
// "InvalidHeaderBlock" (truncated, trailing bytes, empty or upper-case name, a name twice).
Result<Headers> parseHeaderBlock(std::string_view block);

// The sending half of a session's header compression.
class HeaderCompressor {
 public:
  static Result<HeaderCompressor> create();
  HeaderCompressor(HeaderCompressor&&) noexcept;
  HeaderCompressor& operator=(HeaderCompressor&&) noexcept;
  ~HeaderCompressor();

  // Appends the compressed block of `headers` to `out`, ending with a zlib sync flush so the peer
  // can decode it at once. Errors: those of encodeHeaderBlock and kInvalid "InvalidHeader" for a
  // block over 16 MiB (nothing is compressed then), and kInternal "ZlibFailed", after which the
  // compressor is unusable.
  Status compress(const Headers& headers, std::string& out);

 private:
  struct State;
  explicit HeaderCompressor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The receiving half. A failure leaves the zlib stream out of step with the peer's: the session
// must end.
class HeaderDecompressor {
 public:
  // `maxBlockBytes` bounds one decompressed block, so that a small frame cannot expand into
  // gigabytes.
  static Result<HeaderDecompressor> create(size_t maxBlockBytes);
  HeaderDecompressor(HeaderDecompressor&&) noexcept;
  HeaderDecompressor& operator=(HeaderDecompressor&&) noexcept;
  ~HeaderDecompressor();

  // Decompresses one block (all of `compressed` must belong to it) and parses it. Errors:
  // kInvalid "HeaderBlockTooLarge", kInvalid "InvalidHeaderBlock" (corrupt zlib data, a finished
  // zlib stream, or a malformed block).
  Result<Headers> decompress(std::string_view compressed);

 private:
  struct State;
  explicit HeaderDecompressor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace burstlet::spdy
