#include "kubelet/spdy/frame.h"

#include <algorithm>
#include <type_traits>

namespace burstlet::spdy {

namespace {

constexpr uint32_t kControlBit = 0x80000000;
constexpr uint32_t kStreamIdMask = 0x7fffffff;
// The buffer is compacted once this much of it has been decoded.
constexpr size_t kCompactAfter = size_t{64} * 1024;

void putU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void putU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t getU32(std::string_view in, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(in[at])) << 24 |
         static_cast<uint32_t>(static_cast<uint8_t>(in[at + 1])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(in[at + 2])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(in[at + 3]));
}

Error invalidFrame(std::string message) {
  return Error::make(ErrorCode::kInvalid, "InvalidFrame", std::move(message));
}

// The 8-byte header of a control frame.
void putControlHeader(std::string& out, FrameType type, uint8_t flags, size_t length) {
  putU16(out, static_cast<uint16_t>(0x8000 | kVersion));
  putU16(out, static_cast<uint16_t>(type));
  putU32(out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(length));
}

Status checkStreamId(uint32_t id, bool zeroAllowed) {
  if (id > kMaxStreamId || (id == 0 && !zeroAllowed)) {
    return invalidFrame("stream id " + std::to_string(id) + " out of range");
  }
  return okStatus();
}

// A control frame whose payload is `fixed` (stream ids and such) then a compressed header block.
Status putHeaderFrame(std::string& out, HeaderCompressor& compressor, FrameType type, uint8_t flags,
                      const std::string& fixed, const Headers& headers) {
  std::string block;
  BURSTLET_RETURN_IF_ERROR(compressor.compress(headers, block));
  const size_t length = fixed.size() + block.size();
  if (length > kMaxFramePayload) {
    // The compressor has advanced past a block the peer never sees: the session cannot go on,
    // which the caller learns from this error.
    return invalidFrame("header block too large");
  }
  putControlHeader(out, type, flags, length);
  out.append(fixed);
  out.append(block);
  return okStatus();
}

}  // namespace

std::string_view rstStatusName(uint32_t status) {
  switch (static_cast<RstStatus>(status)) {
    case RstStatus::kProtocolError:
      return "PROTOCOL_ERROR";
    case RstStatus::kInvalidStream:
      return "INVALID_STREAM";
    case RstStatus::kRefusedStream:
      return "REFUSED_STREAM";
    case RstStatus::kUnsupportedVersion:
      return "UNSUPPORTED_VERSION";
    case RstStatus::kCancel:
      return "CANCEL";
    case RstStatus::kInternalError:
      return "INTERNAL_ERROR";
    case RstStatus::kFlowControlError:
      return "FLOW_CONTROL_ERROR";
    case RstStatus::kStreamInUse:
      return "STREAM_IN_USE";
    case RstStatus::kStreamAlreadyClosed:
      return "STREAM_ALREADY_CLOSED";
    case RstStatus::kInvalidCredentials:
      return "INVALID_CREDENTIALS";
    case RstStatus::kFrameTooLarge:
      return "FRAME_TOO_LARGE";
  }
  return "UNKNOWN";
}

// --- encoding ---------------------------------------------------------------------------------

Result<FrameEncoder> FrameEncoder::create() {
  auto compressor = HeaderCompressor::create();
  if (!compressor.ok()) {
    return std::move(compressor).error();
  }
  return FrameEncoder(std::move(compressor).value());
}

Status encodeDataFrame(uint32_t streamId, uint8_t flags, std::string_view data, std::string& out) {
  BURSTLET_RETURN_IF_ERROR(checkStreamId(streamId, false));
  if (data.size() > kMaxFramePayload) {
    return invalidFrame("data frame payload too large");
  }
  putU32(out, streamId);
  putU32(out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(data.size()));
  out.append(data);
  return okStatus();
}

Status FrameEncoder::encode(const Frame& frame, std::string& out) {
  std::string encoded;
  Status status = std::visit(
      [&](const auto& f) -> Status {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, DataFrame>) {
          return encodeDataFrame(f.streamId, f.flags, f.data, encoded);
        } else if constexpr (std::is_same_v<T, SynStreamFrame>) {
          BURSTLET_RETURN_IF_ERROR(checkStreamId(f.streamId, false));
          BURSTLET_RETURN_IF_ERROR(checkStreamId(f.associatedStreamId, true));
          std::string fixed;
          putU32(fixed, f.streamId);
          putU32(fixed, f.associatedStreamId);
          fixed.push_back(static_cast<char>((f.priority & 0x7) << 5));
          fixed.push_back(static_cast<char>(f.slot));
          return putHeaderFrame(encoded, compressor_, FrameType::kSynStream, f.flags, fixed,
                                f.headers);
        } else if constexpr (std::is_same_v<T, SynReplyFrame> || std::is_same_v<T, HeadersFrame>) {
          BURSTLET_RETURN_IF_ERROR(checkStreamId(f.streamId, false));
          std::string fixed;
          putU32(fixed, f.streamId);
          const auto type =
              std::is_same_v<T, SynReplyFrame> ? FrameType::kSynReply : FrameType::kHeaders;
          return putHeaderFrame(encoded, compressor_, type, f.flags, fixed, f.headers);
        } else if constexpr (std::is_same_v<T, RstStreamFrame>) {
          BURSTLET_RETURN_IF_ERROR(checkStreamId(f.streamId, false));
          putControlHeader(encoded, FrameType::kRstStream, 0, 8);
          putU32(encoded, f.streamId);
          putU32(encoded, f.status);
          return okStatus();
        } else if constexpr (std::is_same_v<T, SettingsFrame>) {
          const size_t length = 4 + 8 * f.settings.size();
          if (length > kMaxFramePayload) {
            return invalidFrame("too many settings");
          }
          putControlHeader(encoded, FrameType::kSettings, f.flags, length);
          putU32(encoded, static_cast<uint32_t>(f.settings.size()));
          for (const auto& s : f.settings) {
            if (s.id > 0xffffff) {
              return invalidFrame("setting id over 24 bits");
            }
            putU32(encoded, static_cast<uint32_t>(s.flags) << 24 | s.id);
            putU32(encoded, s.value);
          }
          return okStatus();
        } else if constexpr (std::is_same_v<T, PingFrame>) {
          putControlHeader(encoded, FrameType::kPing, 0, 4);
          putU32(encoded, f.id);
          return okStatus();
        } else if constexpr (std::is_same_v<T, GoAwayFrame>) {
          BURSTLET_RETURN_IF_ERROR(checkStreamId(f.lastGoodStreamId, true));
          putControlHeader(encoded, FrameType::kGoAway, 0, 8);
          putU32(encoded, f.lastGoodStreamId);
          putU32(encoded, f.status);
          return okStatus();
        } else {
          static_assert(std::is_same_v<T, WindowUpdateFrame>);
          BURSTLET_RETURN_IF_ERROR(checkStreamId(f.streamId, true));
          if (f.delta == 0 || f.delta > 0x7fffffff) {
            return invalidFrame("window delta out of range");
          }
          putControlHeader(encoded, FrameType::kWindowUpdate, 0, 8);
          putU32(encoded, f.streamId);
          putU32(encoded, f.delta);
          return okStatus();
        }
      },
      frame);
  if (status.ok()) {
    out.append(encoded);
  }
  return status;
}

// --- decoding ---------------------------------------------------------------------------------

Result<FrameDecoder> FrameDecoder::create(FrameLimits limits) {
  auto decompressor = HeaderDecompressor::create(limits.maxHeaderBlock);
  if (!decompressor.ok()) {
    return std::move(decompressor).error();
  }
  return FrameDecoder(limits, std::move(decompressor).value());
}

void FrameDecoder::feed(std::string_view bytes) {
  if (error_) {
    return;
  }
  if (pos_ == buffer_.size()) {
    buffer_.clear();  // the usual case: everything before was decoded
    pos_ = 0;
  } else if (pos_ >= kCompactAfter && pos_ * 2 >= buffer_.size()) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes);
}

Error FrameDecoder::fail(Error error) {
  error_ = error;
  buffer_.clear();
  pos_ = 0;
  return error;
}

Result<std::optional<Frame>> FrameDecoder::next() {
  if (error_) {
    return *error_;
  }
  while (true) {
    const std::string_view avail = std::string_view(buffer_).substr(pos_);
    if (skipLeft_ > 0) {
      const size_t n = std::min(skipLeft_, avail.size());
      skipLeft_ -= n;
      pos_ += n;
      if (skipLeft_ > 0) {
        return std::optional<Frame>();
      }
      continue;
    }
    if (inData_) {
      const size_t n = std::min(dataLeft_, avail.size());
      if (n == 0 && dataLeft_ > 0) {
        return std::optional<Frame>();
      }
      DataFrame piece{dataStream_, 0, std::string(avail.substr(0, n))};
      pos_ += n;
      dataLeft_ -= n;
      if (dataLeft_ == 0) {
        piece.flags = dataFlags_;
        inData_ = false;
      }
      return std::optional<Frame>(std::move(piece));
    }
    if (avail.size() < kFrameHeaderBytes) {
      return std::optional<Frame>();
    }
    const uint32_t word = getU32(avail, 0);
    const uint8_t flags = static_cast<uint8_t>(avail[4]);
    const size_t length = getU32(avail, 4) & 0xffffff;
    if ((word & kControlBit) == 0) {
      const uint32_t streamId = word & kStreamIdMask;
      if (streamId == 0) {
        return fail(invalidFrame("data frame on stream 0"));
      }
      if (length > limits_.maxDataPayload) {
        return fail(Error::make(ErrorCode::kInvalid, "FrameTooLarge",
                                "data frame of " + std::to_string(length) + " bytes"));
      }
      pos_ += kFrameHeaderBytes;
      inData_ = true;
      dataStream_ = streamId;
      dataFlags_ = flags;
      dataLeft_ = length;
      continue;  // a zero-length frame comes out at once, FIN and all
    }
    const uint16_t version = static_cast<uint16_t>((word >> 16) & 0x7fff);
    const uint16_t type = static_cast<uint16_t>(word & 0xffff);
    if (version != kVersion) {
      return fail(Error::make(ErrorCode::kInvalid, "UnsupportedVersion",
                              "SPDY version " + std::to_string(version)));
    }
    const bool known = (type >= 1 && type <= 4) || (type >= 6 && type <= 9);
    if (!known) {
      pos_ += kFrameHeaderBytes;
      skipLeft_ = length;
      continue;
    }
    if (length > limits_.maxControlPayload) {
      return fail(Error::make(ErrorCode::kInvalid, "FrameTooLarge",
                              "control frame of " + std::to_string(length) + " bytes"));
    }
    if (avail.size() < kFrameHeaderBytes + length) {
      return std::optional<Frame>();
    }
    const std::string_view payload = avail.substr(kFrameHeaderBytes, length);
    auto frame = decodeControl(type, flags, payload);
    if (!frame.ok()) {
      return fail(std::move(frame).error());
    }
    pos_ += kFrameHeaderBytes + length;
    return frame;
  }
}

Result<std::optional<Frame>> FrameDecoder::decodeControl(uint16_t type, uint8_t flags,
                                                         std::string_view payload) {
  const auto needLength = [&](size_t want, bool exact) -> Status {
    if (payload.size() < want || (exact && payload.size() != want)) {
      return invalidFrame("control frame type " + std::to_string(type) + " with " +
                          std::to_string(payload.size()) + " payload bytes");
    }
    return okStatus();
  };
  const auto streamIdAt = [&](size_t at, bool zeroAllowed) -> Result<uint32_t> {
    const uint32_t id = getU32(payload, at) & kStreamIdMask;
    if (id == 0 && !zeroAllowed) {
      return invalidFrame("control frame type " + std::to_string(type) + " on stream 0");
    }
    return id;
  };
  switch (static_cast<FrameType>(type)) {
    case FrameType::kSynStream: {
      BURSTLET_RETURN_IF_ERROR(needLength(10, false));
      SynStreamFrame f;
      auto id = streamIdAt(0, false);
      if (!id.ok()) {
        return std::move(id).error();
      }
      f.streamId = *id;
      f.associatedStreamId = getU32(payload, 4) & kStreamIdMask;
      f.priority = static_cast<uint8_t>(static_cast<uint8_t>(payload[8]) >> 5);
      f.slot = static_cast<uint8_t>(payload[9]);
      f.flags = flags;
      auto headers = decompressor_.decompress(payload.substr(10));
      if (!headers.ok()) {
        return std::move(headers).error();
      }
      f.headers = std::move(headers).value();
      return std::optional<Frame>(std::move(f));
    }
    case FrameType::kSynReply:
    case FrameType::kHeaders: {
      BURSTLET_RETURN_IF_ERROR(needLength(4, false));
      auto id = streamIdAt(0, false);
      if (!id.ok()) {
        return std::move(id).error();
      }
      auto headers = decompressor_.decompress(payload.substr(4));
      if (!headers.ok()) {
        return std::move(headers).error();
      }
      if (static_cast<FrameType>(type) == FrameType::kSynReply) {
        return std::optional<Frame>(SynReplyFrame{*id, flags, std::move(headers).value()});
      }
      return std::optional<Frame>(HeadersFrame{*id, flags, std::move(headers).value()});
    }
    case FrameType::kRstStream: {
      BURSTLET_RETURN_IF_ERROR(needLength(8, true));
      auto id = streamIdAt(0, false);
      if (!id.ok()) {
        return std::move(id).error();
      }
      const uint32_t status = getU32(payload, 4);
      if (status == 0) {
        return invalidFrame("RST_STREAM with status 0");
      }
      return std::optional<Frame>(RstStreamFrame{*id, status});
    }
    case FrameType::kSettings: {
      BURSTLET_RETURN_IF_ERROR(needLength(4, false));
      const uint32_t count = getU32(payload, 0);
      if ((payload.size() - 4) % 8 != 0 || count != (payload.size() - 4) / 8) {
        return invalidFrame("SETTINGS count " + std::to_string(count) + " does not match " +
                            std::to_string(payload.size()) + " payload bytes");
      }
      SettingsFrame f;
      f.flags = flags;
      f.settings.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        const uint32_t flagsAndId = getU32(payload, 4 + 8 * size_t{i});
        f.settings.push_back(Setting{static_cast<uint8_t>(flagsAndId >> 24), flagsAndId & 0xffffff,
                                     getU32(payload, 8 + 8 * size_t{i})});
      }
      return std::optional<Frame>(std::move(f));
    }
    case FrameType::kPing:
      BURSTLET_RETURN_IF_ERROR(needLength(4, true));
      return std::optional<Frame>(PingFrame{getU32(payload, 0)});
    case FrameType::kGoAway: {
      BURSTLET_RETURN_IF_ERROR(needLength(8, true));
      auto id = streamIdAt(0, true);
      if (!id.ok()) {
        return std::move(id).error();
      }
      return std::optional<Frame>(GoAwayFrame{*id, getU32(payload, 4)});
    }
    case FrameType::kWindowUpdate: {
      BURSTLET_RETURN_IF_ERROR(needLength(8, true));
      auto id = streamIdAt(0, true);
      if (!id.ok()) {
        return std::move(id).error();
      }
      return std::optional<Frame>(WindowUpdateFrame{*id, getU32(payload, 4) & 0x7fffffff});
    }
  }
  return invalidFrame("control frame type " + std::to_string(type));
}

}  // namespace burstlet::spdy
