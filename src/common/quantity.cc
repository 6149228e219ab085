#include "common/quantity.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace burstlet {

namespace {

__extension__ using Int128 = __int128;
__extension__ using UInt128 = unsigned __int128;

constexpr Int128 kNanosPerUnit = 1'000'000'000;
constexpr Int128 kNanosPerMilli = 1'000'000;
constexpr Int128 kInt128Max = static_cast<Int128>((static_cast<UInt128>(1) << 127U) - 1);
constexpr Int128 kInt128Min = -kInt128Max - 1;
constexpr Int128 kMaxApiNanos =
    static_cast<Int128>(std::numeric_limits<int64_t>::max()) * 1'000'000'000;
// Exponents beyond this already overflow (or round to 1n) for any digit string; clamping keeps
// the scaling loops short and the arithmetic on exponents far from int64 overflow.
constexpr int64_t kMaxExponent = 1'000'000;
constexpr size_t kMaxQuotedChars = 100;

// Unsigned integer of any size, just enough to scale the digits of a quantity exactly before
// rounding to nano-units: inputs may carry more digits than 128 bits hold ("0.000…0001").
class BigUnsigned {
 public:
  // *this = *this * factor + addend.
  void mulAdd(uint32_t factor, uint32_t addend) {
    uint64_t carry = addend;
    for (auto& limb : limbs_) {
      const uint64_t v = static_cast<uint64_t>(limb) * factor + carry;
      limb = static_cast<uint32_t>(v);
      carry = v >> 32U;
    }
    if (carry != 0) {
      limbs_.push_back(static_cast<uint32_t>(carry));
    }
    trim();
  }
  // *this /= divisor; returns the remainder.
  uint32_t divide(uint32_t divisor) {
    uint64_t rem = 0;
    for (size_t i = limbs_.size(); i-- > 0;) {
      const uint64_t cur = (rem << 32U) | limbs_[i];
      limbs_[i] = static_cast<uint32_t>(cur / divisor);
      rem = cur % divisor;
    }
    trim();
    return static_cast<uint32_t>(rem);
  }
  bool isZero() const { return limbs_.empty(); }
  size_t limbCount() const { return limbs_.size(); }
  std::optional<UInt128> toUInt128IfAtMost(UInt128 limit) const {
    if (limbs_.size() > 4) {
      return std::nullopt;
    }
    UInt128 v = 0;
    for (size_t i = limbs_.size(); i-- > 0;) {
      v = (v << 32U) | limbs_[i];
    }
    if (v > limit) {
      return std::nullopt;
    }
    return v;
  }

 private:
  void trim() {
    while (!limbs_.empty() && limbs_.back() == 0) {
      limbs_.pop_back();
    }
  }
  std::vector<uint32_t> limbs_;  // little-endian, no zero limb on top
};

struct Suffix {
  std::string_view text;
  int exp10;
  int exp2;
  Quantity::Format format;
};

constexpr std::array<Suffix, 16> kSuffixes{{
    {"n", -9, 0, Quantity::Format::kDecimalSI},
    {"u", -6, 0, Quantity::Format::kDecimalSI},
    {"m", -3, 0, Quantity::Format::kDecimalSI},
    {"", 0, 0, Quantity::Format::kDecimalSI},
    {"k", 3, 0, Quantity::Format::kDecimalSI},
    {"M", 6, 0, Quantity::Format::kDecimalSI},
    {"G", 9, 0, Quantity::Format::kDecimalSI},
    {"T", 12, 0, Quantity::Format::kDecimalSI},
    {"P", 15, 0, Quantity::Format::kDecimalSI},
    {"E", 18, 0, Quantity::Format::kDecimalSI},
    {"Ki", 0, 10, Quantity::Format::kBinarySI},
    {"Mi", 0, 20, Quantity::Format::kBinarySI},
    {"Gi", 0, 30, Quantity::Format::kBinarySI},
    {"Ti", 0, 40, Quantity::Format::kBinarySI},
    {"Pi", 0, 50, Quantity::Format::kBinarySI},
    {"Ei", 0, 60, Quantity::Format::kBinarySI},
}};

constexpr std::array<std::string_view, 7> kBinarySuffixes{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Quotient rounded away from zero, as the API rounds MilliValue() and Value().
Int128 divideAwayFromZero(Int128 n, Int128 d) {
  Int128 q = n / d;
  if (n % d != 0) {
    q += n < 0 ? -1 : 1;
  }
  return q;
}

int64_t saturateToInt64(Int128 v) {
  constexpr auto kMax = std::numeric_limits<int64_t>::max();
  constexpr auto kMin = std::numeric_limits<int64_t>::min();
  if (v > kMax) {
    return kMax;
  }
  if (v < kMin) {
    return kMin;
  }
  return static_cast<int64_t>(v);
}

std::string int128ToString(Int128 v) {
  if (v == 0) {
    return "0";
  }
  const bool negative = v < 0;
  // Via unsigned so that the most negative value has a magnitude too.
  UInt128 magnitude =
      negative ? static_cast<UInt128>(0) - static_cast<UInt128>(v) : static_cast<UInt128>(v);
  std::string digits;
  while (magnitude != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  }
  if (negative) {
    digits.push_back('-');
  }
  return {digits.rbegin(), digits.rend()};
}

Int128 saturatingAdd(Int128 a, Int128 b) {
  Int128 r = 0;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? kInt128Max : kInt128Min;
  }
  return r;
}

Int128 saturatingSub(Int128 a, Int128 b) {
  Int128 r = 0;
  if (__builtin_sub_overflow(a, b, &r)) {
    return b < 0 ? kInt128Max : kInt128Min;
  }
  return r;
}

// Parses the integer after 'e'/'E': [+-]?[0-9]+, clamped to +-kMaxExponent.
std::optional<int64_t> parseExponent(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (const char c : s) {
    if (!isDigit(c)) {
      return std::nullopt;
    }
    if (v <= kMaxExponent) {
      v = v * 10 + (c - '0');
    }
  }
  v = std::min(v, kMaxExponent);
  return negative ? -v : v;
}

}  // namespace

Result<Quantity> Quantity::parse(std::string_view text) {
  const auto invalid = [text](std::string_view why) {
    std::string quoted(text.substr(0, kMaxQuotedChars));
    if (text.size() > kMaxQuotedChars) {
      quoted += "...";
    }
    return Error::make(ErrorCode::kInvalid, "InvalidQuantity",
                       fmt::format("quantity \"{}\" is invalid: {}", quoted, why));
  };

  size_t pos = 0;
  bool negative = false;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    negative = text[pos] == '-';
    ++pos;
  }
  const size_t intStart = pos;
  while (pos < text.size() && isDigit(text[pos])) {
    ++pos;
  }
  const std::string_view intDigits = text.substr(intStart, pos - intStart);
  std::string_view fracDigits;
  if (pos < text.size() && text[pos] == '.') {
    const size_t fracStart = ++pos;
    while (pos < text.size() && isDigit(text[pos])) {
      ++pos;
    }
    fracDigits = text.substr(fracStart, pos - fracStart);
  }
  if (intDigits.empty() && fracDigits.empty()) {
    return invalid("expected a number such as 100, 0.5 or 250m");
  }

  const std::string_view suffix = text.substr(pos);
  int64_t exp10 = 0;
  int exp2 = 0;
  Format format = Format::kDecimalExponent;
  bool known = false;
  for (const auto& s : kSuffixes) {
    if (s.text == suffix) {
      exp10 = s.exp10;
      exp2 = s.exp2;
      format = s.format;
      known = true;
      break;
    }
  }
  if (!known) {
    // "E" alone is exa (matched above); "e"/"E" followed by an integer is an exponent.
    std::optional<int64_t> exponent;
    if (suffix.size() > 1 && (suffix[0] == 'e' || suffix[0] == 'E')) {
      exponent = parseExponent(suffix.substr(1));
    }
    if (!exponent) {
      return invalid(fmt::format("unknown suffix \"{}\"", suffix.substr(0, kMaxQuotedChars)));
    }
    exp10 = *exponent;
  }

  BigUnsigned n;
  for (const char c : intDigits) {
    n.mulAdd(10, static_cast<uint32_t>(c - '0'));
  }
  for (const char c : fracDigits) {
    n.mulAdd(10, static_cast<uint32_t>(c - '0'));
  }
  if (n.isZero()) {
    return Quantity(0, format);
  }
  for (int i = 0; i < exp2; i += 10) {
    n.mulAdd(1024, 0);
  }
  const auto tooLarge = [&] { return invalid("exceeds the maximum of 2^63-1 units"); };
  // Power of ten that turns the digit string into nano-units.
  const int64_t scale = exp10 + 9 - static_cast<int64_t>(fracDigits.size());
  if (scale >= 0) {
    for (int64_t i = 0; i < scale; ++i) {
      n.mulAdd(10, 0);
      if (n.limbCount() > 4) {
        return tooLarge();
      }
    }
  } else {
    // Finer than a nano-unit: round up to the next nano-unit like ParseQuantity, so that a
    // tiny non-zero request never becomes zero.
    bool inexact = false;
    for (int64_t i = 0; i < -scale && !n.isZero(); ++i) {
      inexact = n.divide(10) != 0 || inexact;
    }
    if (inexact) {
      n.mulAdd(1, 1);
    }
  }
  const auto magnitude = n.toUInt128IfAtMost(static_cast<UInt128>(kMaxApiNanos));
  if (!magnitude) {
    return tooLarge();
  }
  const auto nanos = static_cast<Int128>(*magnitude);
  return Quantity(negative ? -nanos : nanos, format);
}

Quantity Quantity::fromMilli(int64_t milli, Format format) {
  return Quantity(static_cast<Int128>(milli) * kNanosPerMilli, format);
}

Quantity Quantity::fromValue(int64_t value, Format format) {
  return Quantity(static_cast<Int128>(value) * kNanosPerUnit, format);
}

int64_t Quantity::milliValue() const {
  return saturateToInt64(divideAwayFromZero(nanos_, kNanosPerMilli));
}

int64_t Quantity::value() const {
  return saturateToInt64(divideAwayFromZero(nanos_, kNanosPerUnit));
}

int Quantity::sign() const {
  if (nanos_ == 0) {
    return 0;
  }
  return nanos_ < 0 ? -1 : 1;
}

Quantity Quantity::withFormat(Format format) const { return Quantity(nanos_, format); }

bool Quantity::inApiRange() const { return nanos_ <= kMaxApiNanos && nanos_ >= -kMaxApiNanos; }

std::string Quantity::toString() const {
  if (nanos_ == 0) {
    return "0";
  }
  Format format = format_;
  if (format == Format::kBinarySI) {
    const Int128 kibi = 1024 * kNanosPerUnit;
    if ((nanos_ > -kibi && nanos_ < kibi) || nanos_ % kNanosPerUnit != 0) {
      // Small or fractional binary amounts read better, and stay exact, in decimal.
      format = Format::kDecimalSI;
    } else {
      Int128 units = nanos_ / kNanosPerUnit;
      size_t exponent = 0;
      while (exponent + 1 < kBinarySuffixes.size() && units % 1024 == 0) {
        units /= 1024;
        ++exponent;
      }
      return int128ToString(units) + std::string(kBinarySuffixes[exponent]);
    }
  }

  // Decimal: the shortest mantissa whose exponent is a multiple of three.
  Int128 mantissa = nanos_;
  int exponent = -9;
  while (mantissa % 10 == 0) {
    mantissa /= 10;
    ++exponent;
  }
  const int rem = ((exponent % 3) + 3) % 3;
  for (int i = 0; i < rem; ++i) {
    mantissa *= 10;  // cannot overflow: at least `rem` factors of ten were just removed
    --exponent;
  }
  if (format == Format::kDecimalExponent) {
    return exponent == 0 ? int128ToString(mantissa)
                         : fmt::format("{}e{}", int128ToString(mantissa), exponent);
  }
  // Beyond exa (reachable only by arithmetic) there is no SI suffix: stay at E.
  while (exponent > 18) {
    mantissa *= 10;
    --exponent;
  }
  std::string_view suffix;
  switch (exponent) {
    case -9:
      suffix = "n";
      break;
    case -6:
      suffix = "u";
      break;
    case -3:
      suffix = "m";
      break;
    case 3:
      suffix = "k";
      break;
    case 6:
      suffix = "M";
      break;
    case 9:
      suffix = "G";
      break;
    case 12:
      suffix = "T";
      break;
    case 15:
      suffix = "P";
      break;
    case 18:
      suffix = "E";
      break;
    default:
      break;
  }
  return int128ToString(mantissa) + std::string(suffix);
}

Quantity Quantity::operator+(const Quantity& other) const {
  return Quantity(saturatingAdd(nanos_, other.nanos_), nanos_ == 0 ? other.format_ : format_);
}

Quantity Quantity::operator-(const Quantity& other) const {
  return Quantity(saturatingSub(nanos_, other.nanos_), nanos_ == 0 ? other.format_ : format_);
}

Quantity Quantity::operator-() const { return Quantity(saturatingSub(0, nanos_), format_); }

Quantity Quantity::operator*(int64_t factor) const {
  Int128 r = 0;
  if (__builtin_mul_overflow(nanos_, static_cast<Int128>(factor), &r)) {
    r = (nanos_ < 0) == (factor < 0) ? kInt128Max : kInt128Min;
  }
  return Quantity(r, format_);
}

Quantity& Quantity::operator+=(const Quantity& other) { return *this = *this + other; }

Quantity& Quantity::operator-=(const Quantity& other) { return *this = *this - other; }

Quantity Quantity::roundUpTo(const Quantity& step) const {
  if (step.nanos_ <= 0) {
    return *this;
  }
  const Int128 rem = nanos_ % step.nanos_;
  if (rem == 0) {
    return *this;
  }
  // Toward +infinity: a positive remainder needs the rest of a step, a negative one (C++
  // remainders take the dividend's sign) is dropped.
  const Int128 up = rem > 0 ? saturatingAdd(nanos_, step.nanos_ - rem) : nanos_ - rem;
  return Quantity(up, format_);
}

std::strong_ordering Quantity::operator<=>(const Quantity& other) const {
  if (nanos_ < other.nanos_) {
    return std::strong_ordering::less;
  }
  if (nanos_ > other.nanos_) {
    return std::strong_ordering::greater;
  }
  return std::strong_ordering::equal;
}

}  // namespace burstlet
