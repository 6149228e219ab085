// SPDY/3.1 frames: their in-memory form, the encoder and an incremental decoder. Header blocks
// are (de)compressed here with the session's zlib contexts (header_block.h), so a session has
// exactly one encoder and one decoder and runs every frame through them in wire order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "kubelet/spdy/header_block.h"

namespace burstlet::spdy {

inline constexpr uint16_t kVersion = 3;
inline constexpr uint32_t kMaxStreamId = 0x7fffffff;
// The 24-bit length field's largest value.
inline constexpr size_t kMaxFramePayload = (size_t{1} << 24) - 1;
// Control and data frames both start with 8 bytes.
inline constexpr size_t kFrameHeaderBytes = 8;

enum class FrameType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

// Flags of DATA, SYN_STREAM, SYN_REPLY and HEADERS frames.
inline constexpr uint8_t kFlagFin = 0x01;
// SYN_STREAM only: the receiver may not send on the stream.
inline constexpr uint8_t kFlagUnidirectional = 0x02;
// SETTINGS only.
inline constexpr uint8_t kFlagClearSettings = 0x01;

// RST_STREAM status codes.
enum class RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kInvalidCredentials = 10,
  kFrameTooLarge = 11,
};
// "CANCEL", "REFUSED_STREAM", ...; "UNKNOWN" for codes outside the list.
std::string_view rstStatusName(uint32_t status);

enum class GoAwayStatus : uint32_t {
  kOk = 0,
  kProtocolError = 1,
  kInternalError = 2,
};

struct DataFrame {
  uint32_t streamId = 0;
  uint8_t flags = 0;
  std::string data;

  bool operator==(const DataFrame&) const = default;
};

struct SynStreamFrame {
  uint32_t streamId = 0;
  uint32_t associatedStreamId = 0;
  uint8_t priority = 0;  // 0 (highest) .. 7
  uint8_t slot = 0;
  uint8_t flags = 0;
  Headers headers;

  bool operator==(const SynStreamFrame&) const = default;
};

struct SynReplyFrame {
  uint32_t streamId = 0;
  uint8_t flags = 0;
  Headers headers;

  bool operator==(const SynReplyFrame&) const = default;
};

struct RstStreamFrame {
  uint32_t streamId = 0;
  uint32_t status = 0;  // an RstStatus; kept raw so that unknown codes survive decoding

  bool operator==(const RstStreamFrame&) const = default;
};

struct Setting {
  uint8_t flags = 0;
  uint32_t id = 0;  // 24 bits
  uint32_t value = 0;

  bool operator==(const Setting&) const = default;
};

struct SettingsFrame {
  uint8_t flags = 0;
  std::vector<Setting> settings;

  bool operator==(const SettingsFrame&) const = default;
};

struct PingFrame {
  uint32_t id = 0;

  bool operator==(const PingFrame&) const = default;
};

struct GoAwayFrame {
  uint32_t lastGoodStreamId = 0;
  uint32_t status = 0;  // a GoAwayStatus

  bool operator==(const GoAwayFrame&) const = default;
};

struct HeadersFrame {
  uint32_t streamId = 0;
  uint8_t flags = 0;
  Headers headers;

  bool operator==(const HeadersFrame&) const = default;
};

// Stream 0 is the session's window (SPDY/3.1).
struct WindowUpdateFrame {
  uint32_t streamId = 0;
  uint32_t delta = 0;

  bool operator==(const WindowUpdateFrame&) const = default;
};

using Frame = std::variant<DataFrame, SynStreamFrame, SynReplyFrame, RstStreamFrame, SettingsFrame,
                           PingFrame, GoAwayFrame, HeadersFrame, WindowUpdateFrame>;

// Bounds on what a peer may send.
struct FrameLimits {
  // Control frame payload: a larger one is an error before any of it is buffered. Go's peers send
  // header blocks of a few hundred bytes.
  size_t maxControlPayload = size_t{1} << 20;
  // DATA frame payload. DATA frames are passed on in pieces as they arrive (FrameDecoder), so
  // this bounds no buffer; the default accepts every legal frame, as spdystream does.
  size_t maxDataPayload = kMaxFramePayload;
  // One decompressed header block.
  size_t maxHeaderBlock = size_t{1} << 20;
};

// Encodes frames for one session. Frames with a header block (SYN_STREAM, SYN_REPLY, HEADERS)
// advance the compression context: encode them in the order they go on the wire.
class FrameEncoder {
 public:
  static Result<FrameEncoder> create();

  // Appends the wire form of `frame` to `out`. Errors: kInvalid "InvalidFrame" (a stream id 0
  // where one is required or above kMaxStreamId, a payload over kMaxFramePayload, a setting id
  // over 24 bits) or the header compressor's errors; `out` is unchanged then.
  Status encode(const Frame& frame, std::string& out);

 private:
  explicit FrameEncoder(HeaderCompressor compressor) : compressor_(std::move(compressor)) {}
  HeaderCompressor compressor_;
};

// A DATA frame, which needs no compression context (so no encoder).
Status encodeDataFrame(uint32_t streamId, uint8_t flags, std::string_view data, std::string& out);

// Decodes the byte stream of one session, fed in pieces of any size.
class FrameDecoder {
 public:
  static Result<FrameDecoder> create(FrameLimits limits = {});

  // Adds received bytes.
  void feed(std::string_view bytes);

  // The next frame, or nullopt when more bytes are needed. A DATA frame comes out in pieces as
  // its payload arrives, each with the frame's stream id; only the last piece carries the
  // frame's flags (so FIN comes after all the data), and a non-empty frame never gives an empty
  // piece. Control frames of unknown types are skipped, as SPDY asks. Errors are final (the
  // stream is out of step): kInvalid "UnsupportedVersion", "FrameTooLarge", "InvalidFrame", and
  // the header decompressor's errors.
  Result<std::optional<Frame>> next();

  // Bytes fed but not yet decoded.
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  FrameDecoder(FrameLimits limits, HeaderDecompressor decompressor)
      : limits_(limits), decompressor_(std::move(decompressor)) {}
  Result<std::optional<Frame>> decodeControl(uint16_t type, uint8_t flags,
                                             std::string_view payload);
  Error fail(Error error);

  FrameLimits limits_;
  HeaderDecompressor decompressor_;
  std::string buffer_;
  size_t pos_ = 0;  // the first byte of buffer_ not yet decoded
  // A DATA frame whose payload is still arriving.
  uint32_t dataStream_ = 0;
  uint8_t dataFlags_ = 0;
  size_t dataLeft_ = 0;
  bool inData_ = false;
  size_t skipLeft_ = 0;  // payload of an unknown control frame still to skip
  std::optional<Error> error_;
};

}  // namespace burstlet::spdy
