#include "common/base64.h"

#include <array>
#include <cstdint>

namespace burstlet {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr uint8_t kInvalid = 0xff;
constexpr uint8_t kPad = 0xfe;
constexpr uint8_t kSpace = 0xfd;

constexpr std::array<uint8_t, 256> makeDecodeTable() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) {
    v = kInvalid;
  }
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<uint8_t>(i);
  }
  table['='] = kPad;
  for (const char c : {' ', '\t', '\r', '\n', '\f', '\v'}) {
    table[static_cast<unsigned char>(c)] = kSpace;
  }
  return table;
}

constexpr std::array<uint8_t, 256> kDecode = makeDecodeTable();

}  // namespace

std::optional<std::string> base64Decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::array<uint8_t, 4> quad{};
  size_t filled = 0;
  size_t pads = 0;
  // Once a quad ended in padding the data is over; anything but whitespace after it is invalid.
  bool finished = false;
  for (const char c : text) {
    const uint8_t v = kDecode[static_cast<unsigned char>(c)];
    if (v == kSpace) {
      continue;
    }
    if (v == kInvalid || finished) {
      return std::nullopt;
    }
    if (v == kPad) {
      // "x===" and "====" carry less than one byte.
      if (filled < 2) {
        return std::nullopt;
      }
      ++pads;
      quad[filled++] = 0;
    } else {
      if (pads > 0) {
        return std::nullopt;  // data after '=' inside a quad, as in "ab=c"
      }
      quad[filled++] = v;
    }
    if (filled == 4) {
      const uint32_t bits = (uint32_t{quad[0]} << 18) | (uint32_t{quad[1]} << 12) |
                            (uint32_t{quad[2]} << 6) | uint32_t{quad[3]};
      out.push_back(static_cast<char>((bits >> 16) & 0xff));
      if (pads < 2) {
        out.push_back(static_cast<char>((bits >> 8) & 0xff));
      }
      if (pads < 1) {
        out.push_back(static_cast<char>(bits & 0xff));
      }
      finished = pads > 0;
      filled = 0;
      pads = 0;
    }
  }
  if (filled != 0) {
    return std::nullopt;
  }
  return out;
}

std::string base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t bits = (uint32_t{static_cast<unsigned char>(data[i])} << 16) |
                          (uint32_t{static_cast<unsigned char>(data[i + 1])} << 8) |
                          uint32_t{static_cast<unsigned char>(data[i + 2])};
    out.push_back(kAlphabet[(bits >> 18) & 0x3f]);
    out.push_back(kAlphabet[(bits >> 12) & 0x3f]);
    out.push_back(kAlphabet[(bits >> 6) & 0x3f]);
    out.push_back(kAlphabet[bits & 0x3f]);
  }
  const size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t bits = uint32_t{static_cast<unsigned char>(data[i])} << 16;
    if (rest == 2) {
      bits |= uint32_t{static_cast<unsigned char>(data[i + 1])} << 8;
    }
    out.push_back(kAlphabet[(bits >> 18) & 0x3f]);
    out.push_back(kAlphabet[(bits >> 12) & 0x3f]);
    out.push_back(rest == 2 ? kAlphabet[(bits >> 6) & 0x3f] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace burstlet
