// Quantity: a Kubernetes resource quantity ("250m", "512Mi", "1.5", "1e3") parsed as the API
// server parses it, held exactly, and printed back in the API server's canonical form.
//
// Representation: a signed count of nano-units (10^-9) in 128 bits. Nano is the API's own
// precision (finer digits round up to 1n, as ParseQuantity does), and 128 bits hold every
// value the API accepts (|v| <= 2^63-1 units, i.e. about 9.2e27 nano-units) with room to add
// thousands of them, so CPU millicores, memory bytes and their sums need no floating point.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace burstlet {

class Quantity {
 public:
  // The spelling family of a quantity. Parsing keeps it so that toString() answers the way
  // the API server would: "1.5Gi" prints as "1536Mi", "1.5G" as "1500M", "15e2" as "1500".
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  // Zero, decimal SI ("0").
  Quantity() = default;

  // Parses <sign>?<digits>[.<digits>]<suffix>, suffix one of n u m "" k M G T P E, Ki Mi Gi Ti
  // Pi Ei, or e/E followed by a signed integer exponent. Stricter than the API server in two
  // corners: a number must have a digit ("-", "." and "" are errors, where ParseQuantity reads
  // the first two as zero), and a value beyond 2^63-1 units is an error rather than capped.
  // Errors are kInvalid, reason "InvalidQuantity", the message quoting the text.
  static Result<Quantity> parse(std::string_view text);

  // Exact construction from integers.
  static Quantity fromMilli(int64_t milli, Format format = Format::kDecimalSI);
  static Quantity fromValue(int64_t value, Format format = Format::kDecimalSI);

  // Milli-units, rounded away from zero like the API's MilliValue() ("1n" -> 1, "250m" -> 250,
  // "1" -> 1000). Saturates at the int64 range.
  int64_t milliValue() const;
  // Whole units, rounded away from zero like Value() ("512Mi" -> 536870912, "1.5" -> 2,
  // "100m" -> 1). Saturates at the int64 range.
  int64_t value() const;

  bool isZero() const { return nanos_ == 0; }
  // -1, 0 or 1.
  int sign() const;
  Format format() const { return format_; }
  Quantity withFormat(Format format) const;
  // Whether the API can carry the value (|value| <= 2^63-1 units). Always true after parse();
  // arithmetic can leave the range.
  bool inApiRange() const;

  // Canonical text as the API server writes it: "0", "250m", "2", "512Mi", "1Gi", "1500M",
  // "1e3". Binary quantities below 1Ki or not a whole number of units print as decimal.
  std::string toString() const;

  // Arithmetic is exact. A result keeps the left operand's format (the right one's when the
  // left is zero), as the API's Add does. Results beyond about +-1.7e29 units saturate there
  // instead of wrapping; such values are far outside the API range (see inApiRange()).
  Quantity operator+(const Quantity& other) const;
  Quantity operator-(const Quantity& other) const;
  Quantity operator-() const;
  Quantity operator*(int64_t factor) const;
  Quantity& operator+=(const Quantity& other);
  Quantity& operator-=(const Quantity& other);

  // The smallest multiple of `step` that is >= this value (CCI rounds CPU up to 250m and
  // memory up to 1Gi). A step <= 0 returns the value unchanged.
  Quantity roundUpTo(const Quantity& step) const;

  // Compare values only: "1Gi" == "1073741824" and "1000m" == "1" whatever their formats.
  bool operator==(const Quantity& other) const { return nanos_ == other.nanos_; }
  std::strong_ordering operator<=>(const Quantity& other) const;

 private:
  __extension__ using Int128 = __int128;

  Quantity(Int128 nanos, Format format) : nanos_(nanos), format_(format) {}

  Int128 nanos_ = 0;
  Format format_ = Format::kDecimalSI;
};

}  // namespace burstlet
