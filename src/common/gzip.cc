#include "common/gzip.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>

namespace burstlet {

namespace {
constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip header and trailer
constexpr size_t kStep = size_t{64} * 1024;

// zlib counts input and output in uInt; feed it slices no larger than that.
uInt clampToUInt(size_t n) { return static_cast<uInt>(std::min<size_t>(n, UINT_MAX)); }

Error malformed(std::string message) {
  return Error::make(ErrorCode::kInternal, "MalformedGzip", std::move(message));
}
}  // namespace

GzipDecoder::GzipDecoder() { ready_ = inflateInit2(&zs_, kGzipWindowBits) == Z_OK; }

GzipDecoder::~GzipDecoder() {
  if (ready_) {
    inflateEnd(&zs_);
  }
}

Status GzipDecoder::feed(std::string_view in, std::string* out, size_t maxOut) {
  if (!ready_) {
    return malformed("cannot start the gzip decoder");
  }
  size_t consumed = 0;
  bool outputFull = false;  // the last inflate() filled its room: it may hold more
  while (consumed < in.size() || outputFull) {
    if (finished_) {
      return malformed(
          fmt::format("{} bytes after the end of the gzip body", in.size() - consumed));
    }
    // Grow the output by a step (geometrically for large outputs), never beyond maxOut + 1 so
    // that exceeding the bound is noticed.
    const size_t used = out->size();
    if (used > maxOut || maxOut - used == 0) {
      return Error::make(ErrorCode::kInternal, "ResponseTooLarge",
                         fmt::format("decoded response body exceeds {} bytes", maxOut));
    }
    size_t room = std::max(kStep, used / 2);
    if (room > maxOut - used) {
      room = maxOut - used + 1;  // cannot overflow: maxOut - used < room
    }
    out->resize(used + room);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): zlib's API predates const.
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + consumed));
    zs_.avail_in = clampToUInt(in.size() - consumed);
    zs_.next_out = reinterpret_cast<Bytef*>(out->data() + used);
    zs_.avail_out = clampToUInt(room);
    const uInt inBefore = zs_.avail_in;
    const int rc = inflate(&zs_, Z_NO_FLUSH);
    const size_t produced = room - zs_.avail_out;
    out->resize(used + produced);
    consumed += inBefore - zs_.avail_in;
    decoded_ += produced;
    outputFull = zs_.avail_out == 0;
    if (rc == Z_STREAM_END) {
      finished_ = true;
      outputFull = false;
    } else if (rc == Z_BUF_ERROR && !outputFull) {
      break;  // needs more input than we have
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return malformed(fmt::format("gzip body is corrupt near byte {}", zs_.total_in));
    }
    if (out->size() > maxOut) {
      return Error::make(ErrorCode::kInternal, "ResponseTooLarge",
                         fmt::format("decoded response body exceeds {} bytes", maxOut));
    }
  }
  return okStatus();
}

Result<std::string> gunzip(std::string_view compressed, size_t maxBytes) {
  GzipDecoder decoder;
  std::string out;
  // Compressed API lists expand roughly 25 times.
  out.reserve(std::min(maxBytes, compressed.size() * 8));
  BURSTLET_RETURN_IF_ERROR(decoder.feed(compressed, &out, maxBytes));
  if (!decoder.finished()) {
    return malformed("gzip body is truncated");
  }
  return out;
}

std::string gzipCompress(std::string_view data) {
  z_stream zs{};
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY);
  std::string out;
  out.resize(deflateBound(&zs, data.size()) + 32);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): zlib's API predates const.
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = clampToUInt(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = clampToUInt(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace burstlet
