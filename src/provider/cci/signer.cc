#include "provider/cci/signer.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <optional>
#include <utility>

#include "common/log.h"
#include "common/strings.h"

namespace burstlet::provider::cci {

namespace {

constexpr std::string_view kHexLower = "0123456789abcdef";
constexpr std::string_view kHexUpper = "0123456789ABCDEF";
// The only headers that take part in the signature (lowercase, sorted).
constexpr std::array<std::string_view, 4> kSignable = {"content-type", "host", "x-project-id",
                                                       "x-sdk-date"};

std::string hex(const unsigned char* data, size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kHexLower[data[i] >> 4]);
    out.push_back(kHexLower[data[i] & 0xf]);
  }
  return out;
}

std::optional<int> hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return std::nullopt;
}

// Undoes percent-encoding; a '%' not followed by two hex digits stays as it is, the way a
// lenient server reads it. With `plusIsSpace` (query strings), '+' is a space.
std::string percentDecode(std::string_view text, bool plusIsSpace) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const auto hi = hexValue(text[i + 1]);
      const auto lo = hexValue(text[i + 2]);
      if (hi && lo) {
        out.push_back(static_cast<char>(*hi * 16 + *lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plusIsSpace && c == '+' ? ' ' : c);
  }
  return out;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string_view pathOf(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view queryOf(std::string_view target) {
  const auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

std::function<Result<AkSk>()> fixedKeys(AkSk keys) {
  log::registerSecret(keys.secretKey);
  return [k = std::move(keys)]() -> Result<AkSk> { return k; };
}

}  // namespace

std::string sdkDate(Clock::WallTime t) {
  const std::time_t secs =
      std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 32> buf{};
  const size_t n = std::strftime(buf.data(), buf.size(), "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf.data(), n);
}

std::string sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &size, EVP_sha256(), nullptr) != 1) {
    return {};  // only when OpenSSL cannot run at all; the signature then fails to verify
  }
  return hex(md.data(), size);
}

std::string uriEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHexUpper[c >> 4]);
      out.push_back(kHexUpper[c & 0xf]);
    }
  }
  return out;
}

std::string canonicalUri(std::string_view target) {
  const std::string_view path = pathOf(target);
  std::string out;
  out.reserve(path.size() + 1);
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    out += uriEscape(percentDecode(path.substr(start, slash - start), false));
    if (slash == std::string_view::npos) {
      break;
    }
    out.push_back('/');
    start = slash + 1;
  }
  if (out.empty() || out.back() != '/') {
    out.push_back('/');
  }
  return out;
}

std::string canonicalQueryString(std::string_view target) {
  const std::string_view query = queryOf(target);
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) {
      amp = query.size();
    }
    const std::string_view part = query.substr(start, amp - start);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      pairs.emplace_back(
          percentDecode(part.substr(0, eq), true),
          eq == std::string_view::npos ? std::string() : percentDecode(part.substr(eq + 1), true));
    }
    start = amp + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [key, value] : pairs) {
    if (!out.empty()) {
      out.push_back('&');
    }
    out += uriEscape(key);
    out.push_back('=');
    out += uriEscape(value);
  }
  return out;
}

std::vector<std::string> signedHeaderNames(const kube::SignableRequest& request) {
  std::vector<std::string> names;
  for (const std::string_view name : kSignable) {
    if (request.header(name)) {
      names.emplace_back(name);
    }
  }
  return names;  // kSignable is sorted, so are they
}

std::string canonicalRequest(const kube::SignableRequest& request,
                             const std::vector<std::string>& signedHeaders) {
  std::string out;
  out.reserve(256 + request.target.size());
  out.append(request.method).push_back('\n');
  out.append(canonicalUri(request.target)).push_back('\n');
  out.append(canonicalQueryString(request.target)).push_back('\n');
  for (const auto& name : signedHeaders) {
    std::vector<std::string> values;
    for (const auto& [k, v] : request.headers) {
      if (lowercase(k) == name) {
        values.push_back(trimWhitespace(v));
      }
    }
    std::sort(values.begin(), values.end());
    for (const auto& v : values) {
      out.append(name).append(":").append(v).push_back('\n');
    }
  }
  out.push_back('\n');
  for (size_t i = 0; i < signedHeaders.size(); ++i) {
    if (i > 0) {
      out.push_back(';');
    }
    out.append(signedHeaders[i]);
  }
  out.push_back('\n');
  out.append(sha256Hex(request.body));
  return out;
}

std::string stringToSign(std::string_view sdkDate, std::string_view canonicalRequest) {
  return fmt::format("{}\n{}\n{}", kSigningAlgorithm, sdkDate, sha256Hex(canonicalRequest));
}

std::string signature(std::string_view secretKey, std::string_view stringToSign) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), secretKey.data(), static_cast<int>(secretKey.size()),
           reinterpret_cast<const unsigned char*>(stringToSign.data()), stringToSign.size(),
           mac.data(), &size) == nullptr) {
    return {};
  }
  return hex(mac.data(), size);
}

AkSkSigner::AkSkSigner(KeyProvider keys, const Clock& clock)
    : keys_(std::move(keys)), clock_(clock) {}

AkSkSigner::AkSkSigner(AkSk keys, const Clock& clock)
    : AkSkSigner(fixedKeys(std::move(keys)), clock) {}

Status AkSkSigner::sign(kube::SignableRequest& request) const {
  auto keys = keys_();
  if (!keys.ok()) {
    return std::move(keys).error();
  }
  if (keys->accessKey.empty() || keys->secretKey.empty()) {
    return Error::make(ErrorCode::kUnauthorized, "AkSkMissing",
                       "AK/SK signing: the access key or the secret key is empty");
  }
  if (!request.header("host")) {
    // The gateway signs with the Host it received; without one there is nothing to match.
    return Error::make(ErrorCode::kInternal, "SigningFailed",
                       "AK/SK signing: the request has no Host header");
  }
  const std::string date = sdkDate(clock_.now());
  request.setHeader("X-Sdk-Date", date);
  const std::vector<std::string> names = signedHeaderNames(request);
  const std::string sig =
      signature(keys->secretKey, stringToSign(date, canonicalRequest(request, names)));
  if (sig.empty()) {
    return Error::make(ErrorCode::kInternal, "SigningFailed", "AK/SK signing: HMAC-SHA256 failed");
  }
  std::string joined;
  for (const auto& n : names) {
    joined += joined.empty() ? n : ";" + n;
  }
  request.setHeader("Authorization", fmt::format("{} Access={}, SignedHeaders={}, Signature={}",
                                                 kSigningAlgorithm, keys->accessKey, joined, sig));
  return okStatus();
}

}  // namespace burstlet::provider::cci
