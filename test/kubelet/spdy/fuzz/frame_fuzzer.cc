// libFuzzer target for what a SPDY peer controls: the frame decoder (with the session's header
// decompressor) and header blocks. Beyond the sanitizers it checks three properties:
//  - decoding the input in small pieces gives what decoding it whole gives (the same frames, the
//    same error), since a peer chooses where reads split;
//  - every frame decoded re-encodes, and decodes again to itself;
//  - a header block that parses re-encodes to a block that parses to the same headers.
// Built only with clang and -DBURSTLET_FUZZ=ON; `make fuzz-spdy` runs it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kubelet/spdy/frame.h"
#include "kubelet/spdy/header_block.h"

namespace burstlet::spdy {
namespace {

// Small bounds keep each run fast; the code paths are those of the defaults.
FrameLimits fuzzLimits() {
  FrameLimits limits;
  limits.maxControlPayload = 64 << 10;
  limits.maxDataPayload = 1 << 20;
  limits.maxHeaderBlock = 64 << 10;
  return limits;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

struct Decoded {
  std::vector<Frame> frames;  // DATA pieces of one stream in a row joined into one
  std::string error;          // the reason, empty when none
};

void append(Decoded& out, Frame frame) {
  if (auto* piece = std::get_if<DataFrame>(&frame); piece != nullptr && !out.frames.empty()) {
    if (auto* last = std::get_if<DataFrame>(&out.frames.back());
        last != nullptr && last->streamId == piece->streamId && last->flags == 0) {
      last->data += piece->data;
      last->flags = piece->flags;
      return;
    }
  }
  out.frames.push_back(std::move(frame));
}

// Feeds `input` in pieces of the sizes `steps` cycles through (0: all at once).
Decoded decode(std::string_view input, const std::vector<size_t>& steps) {
  Decoded out;
  auto decoder = FrameDecoder::create(fuzzLimits());
  check(decoder.ok(), "decoder created");
  size_t at = 0;
  size_t turn = 0;
  while (true) {
    const size_t step = steps[turn++ % steps.size()];
    const size_t n = step == 0 ? input.size() - at : std::min(step, input.size() - at);
    decoder->feed(input.substr(at, n));
    at += n;
    while (true) {
      auto next = decoder->next();
      if (!next.ok()) {
        out.error = next.error().reason;
        check(!decoder->next().ok(), "errors are final");
        return out;
      }
      if (!next->has_value()) {
        break;
      }
      append(out, std::move(**next));
    }
    if (at == input.size()) {
      return out;
    }
  }
}

void checkRoundTrip(const std::vector<Frame>& frames) {
  // Default bounds: our compression of a block may come out larger than the peer's did.
  auto encoder = FrameEncoder::create();
  auto decoder = FrameDecoder::create();
  check(encoder.ok() && decoder.ok(), "codec created");
  std::vector<Frame> sent;
  std::string wire;
  for (const auto& frame : frames) {
    // A zero window delta decodes (nothing acts on it) but is not ours to send.
    if (const auto* w = std::get_if<WindowUpdateFrame>(&frame); w != nullptr && w->delta == 0) {
      continue;
    }
    const Status encoded = encoder->encode(frame, wire);
    if (!encoded.ok()) {
      // Only a header block that grew past the 24-bit length on re-compression may fail.
      check(encoded.error().reason == "InvalidFrame", "decoded frame re-encodes");
      return;
    }
    sent.push_back(frame);
  }
  decoder->feed(wire);
  Decoded again;
  while (true) {
    auto next = decoder->next();
    check(next.ok(), "re-encoded frames decode");
    if (!next->has_value()) {
      break;
    }
    append(again, std::move(**next));
  }
  Decoded expected;
  for (auto& frame : sent) {
    append(expected, std::move(frame));
  }
  check(again.frames == expected.frames, "frames survive a round trip");
}

void checkHeaderBlock(std::string_view input) {
  auto headers = parseHeaderBlock(input);
  if (headers.ok()) {
    auto block = encodeHeaderBlock(*headers);
    check(block.ok(), "parsed headers encode");
    auto again = parseHeaderBlock(*block);
    check(again.ok() && *again == *headers, "header block round trip");
  }
  auto decompressor = HeaderDecompressor::create(64 << 10);
  check(decompressor.ok(), "decompressor created");
  auto decompressed = decompressor->decompress(input);
  if (decompressed.ok()) {
    auto compressor = HeaderCompressor::create();
    auto fresh = HeaderDecompressor::create(1 << 20);
    check(compressor.ok() && fresh.ok(), "codec created");
    std::string compressed;
    check(compressor->compress(*decompressed, compressed).ok(), "decompressed headers compress");
    auto again = fresh->decompress(compressed);
    check(again.ok() && *again == *decompressed, "compressed header round trip");
  }
}

}  // namespace
}  // namespace burstlet::spdy

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace burstlet::spdy;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Decoded whole = decode(input, {0});
  // Pieces of 1 to 7 bytes, in a pattern taken from the input so runs differ.
  std::vector<size_t> steps;
  for (size_t i = 0; i < 5; ++i) {
    steps.push_back(1 + (i < size ? data[i] % 7 : i));
  }
  const Decoded split = decode(input, steps);
  check(split.error == whole.error, "same error whole or in pieces");
  check(split.frames == whole.frames, "same frames whole or in pieces");
  checkRoundTrip(whole.frames);
  checkHeaderBlock(input);
  return 0;
}
