#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace burstlet::log {

namespace {

constexpr std::string_view kMask = "<redacted>";
constexpr size_t kMinSecretLength = 8;

// Registered secret values. Read on every log line, written rarely (token rotation).
struct SecretRegistry {
  std::shared_mutex mu;  // guards values
  std::vector<std::string> values;
};

SecretRegistry& registry() {
  static SecretRegistry r;
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool isIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

bool isBase64UrlChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

void replaceAll(std::string& text, std::string_view needle, std::string_view with) {
  if (needle.empty()) {
    return;
  }
  size_t pos = 0;
  while ((pos = text.find(needle, pos)) != std::string::npos) {
    text.replace(pos, needle.size(), with);
    pos += with.size();
  }
}

// "-----BEGIN ... PRIVATE KEY-----" through the matching END line.
void maskPrivateKeys(std::string& text) {
  size_t pos = 0;
  while ((pos = text.find("-----BEGIN ", pos)) != std::string::npos) {
    const size_t header_end = text.find("-----", pos + 11);
    if (header_end == std::string::npos) {
      return;
    }
    std::string_view header(text.data() + pos, header_end - pos);
    if (header.find("PRIVATE KEY") == std::string_view::npos) {
      pos = header_end + 5;
      continue;
    }
    const size_t end = text.find("-----END ", header_end);
    size_t stop = text.size();
    if (end != std::string::npos) {
      const size_t end_close = text.find("-----", end + 9);
      stop = end_close == std::string::npos ? text.size() : end_close + 5;
    }
    text.replace(pos, stop - pos, "<redacted private key>");
    pos += 22;
  }
}

// Three base64url segments starting with "eyJ" (a JSON header): a JWT such as a
// ServiceAccount token.
void maskJwts(std::string& text) {
  size_t pos = 0;
  while ((pos = text.find("eyJ", pos)) != std::string::npos) {
    if (pos > 0 && isBase64UrlChar(text[pos - 1])) {
      pos += 3;
      continue;
    }
    size_t i = pos;
    int dots = 0;
    while (i < text.size() && (isBase64UrlChar(text[i]) || (text[i] == '.' && dots < 2))) {
      if (text[i] == '.') {
        ++dots;
      }
      ++i;
    }
    if (dots == 2 && i - pos > 20) {
      text.replace(pos, i - pos, kMask);
      pos += kMask.size();
    } else {
      pos += 3;
    }
  }
}

// "Bearer <credential>" / "Basic <credential>" in any case.
void maskAuthSchemes(std::string& text) {
  for (std::string_view scheme : {std::string_view("bearer "), std::string_view("basic ")}) {
    size_t pos = 0;
    while (pos + scheme.size() <= text.size()) {
      if (!iequals(std::string_view(text).substr(pos, scheme.size()), scheme) ||
          (pos > 0 && isIdentChar(text[pos - 1]))) {
        ++pos;
        continue;
      }
      size_t start = pos + scheme.size();
      while (start < text.size() && text[start] == ' ') {
        ++start;
      }
      size_t end = start;
      while (end < text.size() && std::isspace(static_cast<unsigned char>(text[end])) == 0 &&
             text[end] != '"' && text[end] != '\'' && text[end] != ',') {
        ++end;
      }
      if (end > start && std::string_view(text).substr(start, end - start) != kMask) {
        text.replace(start, end - start, kMask);
      }
      pos = start + kMask.size();
    }
  }
}

// Field names whose values are secret, matched case-insensitively as whole keys.
constexpr std::array<std::string_view, 16> kSecretKeys = {
    "token",        "password",      "passwd",       "secret",       "client-key-data",
    "client_key",   "authorization", "x-auth-token", "access_token", "refresh_token",
    "id_token",     "secret_key",    "secretkey",    "sk",           "private_key",
    "bearer_token",
};

// `key=value`, `key: value`, `"key": "value"`: the value is masked.
void maskSecretFields(std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    if (!isIdentChar(text[i]) || (i > 0 && isIdentChar(text[i - 1]))) {
      ++i;
      continue;
    }
    size_t key_end = i;
    while (key_end < text.size() && isIdentChar(text[key_end])) {
      ++key_end;
    }
    const std::string_view key(text.data() + i, key_end - i);
    const bool secret = std::any_of(kSecretKeys.begin(), kSecretKeys.end(),
                                    [&](std::string_view k) { return iequals(k, key); });
    if (!secret) {
      i = key_end;
      continue;
    }
    size_t j = key_end;
    if (j < text.size() && (text[j] == '"' || text[j] == '\'')) {
      ++j;
    }
    while (j < text.size() && text[j] == ' ') {
      ++j;
    }
    if (j >= text.size() || (text[j] != '=' && text[j] != ':')) {
      i = key_end;
      continue;
    }
    ++j;
    while (j < text.size() && text[j] == ' ') {
      ++j;
    }
    size_t start = j;
    size_t end = j;
    if (j < text.size() && (text[j] == '"' || text[j] == '\'')) {
      const char quote = text[j];
      start = j + 1;
      end = text.find(quote, start);
      if (end == std::string::npos) {
        end = text.size();
      }
    } else {
      const bool to_eol = iequals(key, "authorization");
      while (end < text.size() && text[end] != '\n' &&
             (to_eol ||
              (std::isspace(static_cast<unsigned char>(text[end])) == 0 && text[end] != ',' &&
               text[end] != ';' && text[end] != '&' && text[end] != '}'))) {
        ++end;
      }
    }
    if (end > start && std::string_view(text).substr(start, end - start) != kMask) {
      text.replace(start, end - start, kMask);
      end = start + kMask.size();
    }
    i = end;
  }
}

template <typename Mutex>
class RedactingSink final : public spdlog::sinks::base_sink<Mutex> {
 public:
  explicit RedactingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string clean = redact(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg copy = msg;
    copy.payload = clean;
    inner_->log(copy);
  }
  void flush_() override { inner_->flush(); }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

std::string redact(std::string_view text) {
  std::string out(text);
  {
    auto& reg = registry();
    std::shared_lock lock(reg.mu);
    for (const auto& v : reg.values) {
      replaceAll(out, v, kMask);
    }
  }
  maskPrivateKeys(out);
  maskJwts(out);
  maskAuthSchemes(out);
  maskSecretFields(out);
  return out;
}

void registerSecret(std::string_view value) {
  if (value.size() < kMinSecretLength) {
    return;
  }
  auto& reg = registry();
  std::unique_lock lock(reg.mu);
  if (std::find(reg.values.begin(), reg.values.end(), value) == reg.values.end()) {
    reg.values.emplace_back(value);
    // Longest first so a secret containing another is masked whole.
    std::sort(reg.values.begin(), reg.values.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  }
}

std::shared_ptr<spdlog::sinks::sink> makeRedactingSink(std::shared_ptr<spdlog::sinks::sink> inner) {
  return std::make_shared<RedactingSink<std::mutex>>(std::move(inner));
}

Status init(const Options& options) {
  const auto level = spdlog::level::from_str(options.level);
  if (level == spdlog::level::off && options.level != "off") {
    return Error::make(ErrorCode::kInvalid, "InvalidLogLevel",
                       "unknown log level \"" + options.level +
                           "\" (want trace, debug, info, warn, error, critical or off)");
  }
  std::shared_ptr<spdlog::sinks::sink> inner =
      options.sink ? options.sink : std::make_shared<spdlog::sinks::stderr_sink_mt>();
  // key=value lines: ts, level, component, then the message's own fields.
  inner->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "ts=%Y-%m-%dT%H:%M:%S.%fZ level=%l component=%n %v", spdlog::pattern_time_type::utc));
  auto logger = std::make_shared<spdlog::logger>("burstlet", makeRedactingSink(inner));
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  return okStatus();
}

}  // namespace burstlet::log
