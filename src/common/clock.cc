#include "common/clock.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>
#include <ctime>
#include <string>

namespace burstlet {

const Clock& realClock() {
  static const RealClock clock;
  return clock;
}

namespace {

std::tm toUtc(Clock::WallTime t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}

// Reads exactly `width` decimal digits at `pos`, advancing it.
std::optional<int> readDigits(std::string_view text, size_t& pos, size_t width) {
  if (pos + width > text.size()) {
    return std::nullopt;
  }
  int value = 0;
  for (size_t i = 0; i < width; ++i) {
    const char c = text[pos + i];
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  pos += width;
  return value;
}

bool expect(std::string_view text, size_t& pos, char c) {
  if (pos < text.size() && text[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

}  // namespace

std::string formatRfc3339(Clock::WallTime t) {
  const std::tm tm = toUtc(std::chrono::floor<std::chrono::seconds>(t));
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string formatRfc3339Micro(Clock::WallTime t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
  const std::tm tm = toUtc(secs);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

std::optional<Clock::WallTime> parseRfc3339(std::string_view text) {
  using namespace std::chrono;
  size_t pos = 0;
  const auto year = readDigits(text, pos, 4);
  if (!year || !expect(text, pos, '-')) {
    return std::nullopt;
  }
  const auto mon = readDigits(text, pos, 2);
  if (!mon || !expect(text, pos, '-')) {
    return std::nullopt;
  }
  const auto mday = readDigits(text, pos, 2);
  if (!mday || !(expect(text, pos, 'T') || expect(text, pos, 't'))) {
    return std::nullopt;
  }
  const auto hour = readDigits(text, pos, 2);
  if (!hour || !expect(text, pos, ':')) {
    return std::nullopt;
  }
  const auto min = readDigits(text, pos, 2);
  if (!min || !expect(text, pos, ':')) {
    return std::nullopt;
  }
  const auto sec = readDigits(text, pos, 2);
  if (!sec) {
    return std::nullopt;
  }
  nanoseconds frac{0};
  if (expect(text, pos, '.')) {
    const size_t start = pos;
    int64_t ns = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0) {
      if (pos - start < 9) {
        ns = ns * 10 + (text[pos] - '0');
      }
      ++pos;
    }
    if (pos == start) {
      return std::nullopt;
    }
    for (size_t digits = pos - start; digits < 9; ++digits) {
      ns *= 10;
    }
    frac = nanoseconds(ns);
  }
  seconds offset{0};
  if (expect(text, pos, 'Z') || expect(text, pos, 'z')) {
    // UTC
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '+' ? 1 : -1;
    ++pos;
    const auto off_hour = readDigits(text, pos, 2);
    if (!off_hour || !expect(text, pos, ':')) {
      return std::nullopt;
    }
    const auto off_min = readDigits(text, pos, 2);
    if (!off_min || *off_hour > 23 || *off_min > 59) {
      return std::nullopt;
    }
    offset = sign * (hours(*off_hour) + minutes(*off_min));
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) {
    return std::nullopt;
  }
  const year_month_day ymd{std::chrono::year{*year}, month{static_cast<unsigned>(*mon)},
                           day{static_cast<unsigned>(*mday)}};
  if (!ymd.ok() || *hour > 23 || *min > 59 || *sec > 59) {
    return std::nullopt;
  }
  // The local time minus its offset is UTC.
  const auto utc = sys_days(ymd) + hours(*hour) + minutes(*min) + seconds(*sec) - offset;
  return time_point_cast<Clock::WallTime::duration>(utc + frac);
}

}  // namespace burstlet
