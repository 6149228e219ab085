#include "kubelet/spdy/header_block.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <unordered_set>

namespace burstlet::spdy {

namespace {

// SPDY/3's dictionary is these words, each behind its length as a 4-byte big-endian number,
// followed by one run of common values (status lines, dates, content types).
constexpr std::array<std::string_view, 65> kDictionaryWords = {
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
};

constexpr std::string_view kDictionaryTail =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, "
    "Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

// zlib's window for our compressor: 2 KiB holds the dictionary (1423 bytes) and any header block
// we send, and keeps a session's compressor near 10 KiB instead of ~260 KiB at the defaults.
// Peers decode any window size.
constexpr int kDeflateWindowBits = 11;
constexpr int kDeflateMemLevel = 1;
constexpr size_t kOutputStep = 4096;
constexpr size_t kMaxHeaderBlockBytes = (size_t{1} << 24) - 1;

void putU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t getU32(std::string_view in) {
  return static_cast<uint32_t>(static_cast<uint8_t>(in[0])) << 24 |
         static_cast<uint32_t>(static_cast<uint8_t>(in[1])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(in[2])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(in[3]));
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

Error invalidBlock(std::string message) {
  return Error::make(ErrorCode::kInvalid, "InvalidHeaderBlock", std::move(message));
}

Error zlibFailed(std::string message) {
  return Error::make(ErrorCode::kInternal, "ZlibFailed", std::move(message));
}

const Bytef* dictionaryBytes() { return reinterpret_cast<const Bytef*>(headerDictionary().data()); }

}  // namespace

std::optional<std::string_view> findHeader(const Headers& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (equalsIgnoreCase(n, name)) {
      return std::string_view(v);
    }
  }
  return std::nullopt;
}

std::string_view headerDictionary() {
  static const std::string dictionary = [] {
    std::string d;
    for (const auto word : kDictionaryWords) {
      putU32(d, static_cast<uint32_t>(word.size()));
      d.append(word);
    }
    d.append(kDictionaryTail);
    return d;
  }();
  return dictionary;
}

Result<std::string> encodeHeaderBlock(const Headers& headers) {
  // Merge repeated names (compared after lower-casing) in order of first appearance.
  std::vector<std::pair<std::string, std::string>> merged;
  merged.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    if (name.empty() || name.find('\0') != std::string::npos) {
      return Error::make(ErrorCode::kInvalid, "InvalidHeader",
                         "a header name must be non-empty and contain no NUL");
    }
    std::string lowered(name.size(), '\0');
    std::transform(name.begin(), name.end(), lowered.begin(), lower);
    auto it = std::find_if(merged.begin(), merged.end(),
                           [&lowered](const auto& m) { return m.first == lowered; });
    if (it == merged.end()) {
      merged.emplace_back(std::move(lowered), value);
    } else {
      it->second.push_back('\0');
      it->second.append(value);
    }
  }
  std::string block;
  putU32(block, static_cast<uint32_t>(merged.size()));
  for (const auto& [name, value] : merged) {
    if (name.size() > UINT32_MAX || value.size() > UINT32_MAX) {
      return Error::make(ErrorCode::kInvalid, "InvalidHeader", "header too long");
    }
    putU32(block, static_cast<uint32_t>(name.size()));
    block.append(name);
    putU32(block, static_cast<uint32_t>(value.size()));
    block.append(value);
  }
  return block;
}

Result<Headers> parseHeaderBlock(std::string_view block) {
  if (block.size() < 4) {
    return invalidBlock("header block shorter than its count");
  }
  const uint32_t count = getU32(block);
  block.remove_prefix(4);
  // Each pair takes at least 8 bytes: a count the block cannot hold is rejected before anything
  // is reserved for it.
  if (count > block.size() / 8) {
    return invalidBlock("header count " + std::to_string(count) + " exceeds the block");
  }
  Headers headers;
  headers.reserve(count);
  std::unordered_set<std::string_view> seen;
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view fields[2];
    for (auto& field : fields) {
      if (block.size() < 4) {
        return invalidBlock("header block truncated");
      }
      const uint32_t length = getU32(block);
      block.remove_prefix(4);
      if (length > block.size()) {
        return invalidBlock("header field runs past the block");
      }
      field = block.substr(0, length);
      block.remove_prefix(length);
    }
    const std::string_view name = fields[0];
    if (name.empty() || name.find('\0') != std::string_view::npos) {
      return invalidBlock("empty header name or NUL in it");
    }
    if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return invalidBlock("header name is not lower case");
    }
    if (!seen.insert(name).second) {
      return invalidBlock("header name appears twice");
    }
    // One entry per NUL-separated value.
    std::string_view values = fields[1];
    while (true) {
      const size_t nul = values.find('\0');
      headers.emplace_back(std::string(name), std::string(values.substr(0, nul)));
      if (nul == std::string_view::npos) {
        break;
      }
      values.remove_prefix(nul + 1);
    }
  }
  if (!block.empty()) {
    return invalidBlock(std::to_string(block.size()) + " bytes after the header block");
  }
  return headers;
}

// --- compression ------------------------------------------------------------------------------

struct HeaderCompressor::State {
  z_stream zs{};
  bool ready = false;
  bool failed = false;
  ~State() {
    if (ready) {
      deflateEnd(&zs);
    }
  }
};

HeaderCompressor::HeaderCompressor(std::unique_ptr<State> state) : state_(std::move(state)) {}
HeaderCompressor::HeaderCompressor(HeaderCompressor&&) noexcept = default;
HeaderCompressor& HeaderCompressor::operator=(HeaderCompressor&&) noexcept = default;
HeaderCompressor::~HeaderCompressor() = default;

Result<HeaderCompressor> HeaderCompressor::create() {
  auto state = std::make_unique<State>();
  if (deflateInit2(&state->zs, Z_BEST_COMPRESSION, Z_DEFLATED, kDeflateWindowBits, kDeflateMemLevel,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return zlibFailed("deflateInit2 failed");
  }
  state->ready = true;
  const auto dict = headerDictionary();
  if (deflateSetDictionary(&state->zs, dictionaryBytes(), static_cast<uInt>(dict.size())) != Z_OK) {
    return zlibFailed("deflateSetDictionary failed");
  }
  return HeaderCompressor(std::move(state));
}

Status HeaderCompressor::compress(const Headers& headers, std::string& out) {
  if (state_->failed) {
    return zlibFailed("the header compressor failed earlier");
  }
  auto block = encodeHeaderBlock(headers);
  if (!block.ok()) {
    return std::move(block).error();
  }
  // No peer takes more (spdystream: 1 MiB per name or value), and zlib counts in 32 bits.
  if (block->size() > kMaxHeaderBlockBytes) {
    return Error::make(ErrorCode::kInvalid, "InvalidHeader",
                       "header block of " + std::to_string(block->size()) + " bytes");
  }
  z_stream& zs = state_->zs;
  zs.next_in = reinterpret_cast<Bytef*>(block->data());
  zs.avail_in = static_cast<uInt>(block->size());
  // Z_SYNC_FLUSH ends the output on a byte boundary with everything decodable; deflate has
  // flushed all once it leaves room in the output.
  while (true) {
    const size_t used = out.size();
    const size_t room = std::max<size_t>(kOutputStep, deflateBound(&zs, zs.avail_in) + 16);
    out.resize(used + room);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    zs.avail_out = static_cast<uInt>(room);
    const int rc = deflate(&zs, Z_SYNC_FLUSH);
    out.resize(used + room - zs.avail_out);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      state_->failed = true;
      return zlibFailed("deflate failed");
    }
    if (zs.avail_out != 0 && zs.avail_in == 0) {
      return okStatus();
    }
  }
}

// --- decompression ----------------------------------------------------------------------------

struct HeaderDecompressor::State {
  z_stream zs{};
  bool ready = false;
  bool failed = false;
  size_t maxBlockBytes = 0;
  std::string scratch;  // the decompressed block, reused between frames
  ~State() {
    if (ready) {
      inflateEnd(&zs);
    }
  }
};

HeaderDecompressor::HeaderDecompressor(std::unique_ptr<State> state) : state_(std::move(state)) {}
HeaderDecompressor::HeaderDecompressor(HeaderDecompressor&&) noexcept = default;
HeaderDecompressor& HeaderDecompressor::operator=(HeaderDecompressor&&) noexcept = default;
HeaderDecompressor::~HeaderDecompressor() = default;

Result<HeaderDecompressor> HeaderDecompressor::create(size_t maxBlockBytes) {
  auto state = std::make_unique<State>();
  if (inflateInit(&state->zs) != Z_OK) {
    return zlibFailed("inflateInit failed");
  }
  state->ready = true;
  state->maxBlockBytes = maxBlockBytes;
  return HeaderDecompressor(std::move(state));
}

Result<Headers> HeaderDecompressor::decompress(std::string_view compressed) {
  State& s = *state_;
  if (s.failed) {
    return invalidBlock("the header decompressor failed earlier");
  }
  // Marks the decompressor unusable on every early return.
  struct FailGuard {
    State& s;
    bool ok = false;
    ~FailGuard() { s.failed = !ok; }
  } guard{s};
  z_stream& zs = s.zs;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): zlib's API predates const.
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(std::min<size_t>(compressed.size(), UINT_MAX));
  if (compressed.size() > UINT_MAX) {
    return invalidBlock("compressed header block too large");
  }
  s.scratch.clear();
  while (true) {
    const size_t used = s.scratch.size();
    if (used > s.maxBlockBytes) {
      return Error::make(
          ErrorCode::kInvalid, "HeaderBlockTooLarge",
          "decompressed header block exceeds " + std::to_string(s.maxBlockBytes) + " bytes");
    }
    // Never room for more than one byte past the bound, so a bomb stops at the bound.
    const size_t room = std::min(kOutputStep, s.maxBlockBytes - used + 1);
    s.scratch.resize(used + room);
    zs.next_out = reinterpret_cast<Bytef*>(s.scratch.data() + used);
    zs.avail_out = static_cast<uInt>(room);
    int rc = inflate(&zs, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      const auto dict = headerDictionary();
      if (inflateSetDictionary(&zs, dictionaryBytes(), static_cast<uInt>(dict.size())) != Z_OK) {
        return invalidBlock("header block wants a dictionary other than SPDY/3's");
      }
      rc = Z_OK;
    }
    s.scratch.resize(used + room - zs.avail_out);
    if (rc == Z_STREAM_END) {
      return invalidBlock("the peer ended its header compression stream");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return invalidBlock("corrupt compressed header block");
    }
    // Done once all input is consumed and inflate stopped short of filling its room: nothing it
    // could still produce is held back.
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      break;
    }
  }
  if (s.scratch.size() > s.maxBlockBytes) {
    return Error::make(
        ErrorCode::kInvalid, "HeaderBlockTooLarge",
        "decompressed header block exceeds " + std::to_string(s.maxBlockBytes) + " bytes");
  }
  auto headers = parseHeaderBlock(s.scratch);
  if (!headers.ok()) {
    return headers;
  }
  guard.ok = true;
  return headers;
}

}  // namespace burstlet::spdy
