// gzip decoding for HTTP response bodies (Content-Encoding: gzip): whole bodies with a bound on
// the decoded size, so a small hostile body cannot expand into gigabytes, and bodies that arrive
// piece by piece.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace burstlet {

// Incremental decoder of one gzip member (RFC 1952). Errors are kInternal "MalformedGzip"
// (corrupt data, or bytes after the end of the member) and kInternal "ResponseTooLarge".
class GzipDecoder {
 public:
  GzipDecoder();
  ~GzipDecoder();
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  // Decodes `in`, appending to *out; fails when *out would grow beyond maxOut bytes.
  Status feed(std::string_view in, std::string* out, size_t maxOut = SIZE_MAX);
  // True once the member's trailer (checksum and length) has been read and verified.
  bool finished() const { return finished_; }
  // Total decoded bytes so far.
  size_t decodedBytes() const { return decoded_; }

 private:
  z_stream zs_{};
  bool ready_ = false;
  bool finished_ = false;
  size_t decoded_ = 0;
};

// Decodes a complete gzip member; like GzipDecoder, plus "gzip body is truncated".
Result<std::string> gunzip(std::string_view compressed, size_t maxBytes);

// Encodes as one gzip member (used by tests and local servers).
std::string gzipCompress(std::string_view data);

}  // namespace burstlet
