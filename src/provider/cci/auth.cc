#include "provider/cci/auth.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "common/base64.h"
#include "common/log.h"
#include "common/strings.h"
#include "kube/config.h"

namespace burstlet::provider::cci {

namespace {

using namespace std::chrono_literals;

// A credential file is stat()ed at most this often: requests are frequent, rotations rare.
constexpr auto kStatInterval = 1s;

// Both spellings of each key, the documented one first.
constexpr std::string_view kAccessKey = "accessKey";
constexpr std::string_view kAccessKeyShort = "ak";
constexpr std::string_view kSecretKey = "secretKey";
constexpr std::string_view kSecretKeyShort = "sk";

using Headers = std::vector<std::pair<std::string, std::string>>;

// A value with a line break or another control character would split the header it goes in.
bool fitsInHeader(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

// A credential file and the value parsed from it, re-read when the file changes. Thread-safe.
template <typename T>
class WatchedFile {
 public:
  // Turns the file's text into a value; errors name the file but never quote it.
  using Parser = std::function<Result<T>(const std::string& text)>;

  // `what` names the file in messages ("CCI token file"); `reason` prefixes error reasons
  // ("TokenFile" -> "TokenFileUnreadable").
  WatchedFile(std::string path, std::string what, std::string reason, Parser parse,
              const Clock& clock)
      : path_(std::move(path)),
        what_(std::move(what)),
        reason_(std::move(reason)),
        parse_(std::move(parse)),
        clock_(clock) {}

  Result<T> current() {
    std::lock_guard lock(mu_);
    const auto now = clock_.steadyNow();
    if (!value_) {
      return reload(now);
    }
    if (now - lastCheck_ >= kStatInterval) {
      lastCheck_ = now;
      struct stat st {};
      if (::stat(path_.c_str(), &st) != 0 || !(kube::FileStamp::of(st) == stamp_)) {
        return reload(now);
      }
    }
    return *value_;
  }

  void invalidate() {
    std::lock_guard lock(mu_);
    value_.reset();
  }

 private:
  Result<T> reload(Clock::SteadyTime now) {
    lastCheck_ = now;
    value_.reset();
    // Stat before reading: if the file changes in between, the next check sees a newer stamp
    // and reads again, rather than missing the change.
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      return Error::make(ErrorCode::kUnauthorized, reason_ + "Unreadable",
                         fmt::format("{}: cannot read {}: {}", what_, path_,
                                     std::generic_category().message(errno)));
    }
    auto text = kube::readFileNamed(path_, what_);
    if (!text.ok()) {
      Error e = std::move(text).error();
      return Error::make(ErrorCode::kUnauthorized, reason_ + "Unreadable", std::move(e.message));
    }
    auto parsed = parse_(*text);
    if (!parsed.ok()) {
      return parsed;
    }
    if (everLoaded_ && !(kube::FileStamp::of(st) == stamp_)) {
      spdlog::info("msg=\"credential file changed\" file=\"{}\" path={}", what_, path_);
    }
    stamp_ = kube::FileStamp::of(st);
    value_ = *parsed;
    everLoaded_ = true;
    return parsed;
  }

  const std::string path_;
  const std::string what_;
  const std::string reason_;
  const Parser parse_;
  const Clock& clock_;
  std::mutex mu_;  // guards value_, stamp_, lastCheck_ and everLoaded_
  std::optional<T> value_;
  kube::FileStamp stamp_;
  Clock::SteadyTime lastCheck_{};
  bool everLoaded_ = false;
};

Result<std::string> parseToken(const std::string& text, const std::string& path) {
  std::string token = trimWhitespace(text);
  if (token.empty()) {
    return Error::make(ErrorCode::kUnauthorized, "TokenFileEmpty",
                       fmt::format("CCI token file {} is empty", path));
  }
  log::registerSecret(token);
  if (!fitsInHeader(token)) {
    return Error::make(ErrorCode::kUnauthorized, "TokenFileInvalid",
                       fmt::format("CCI token file {}: the token spans several lines or has "
                                   "control characters",
                                   path));
  }
  return token;
}

// The value under `key`, else under `shortKey`, trimmed; "" when neither is there.
Result<std::string> yamlKey(const YAML::Node& doc, std::string_view key, std::string_view shortKey,
                            const std::string& path) {
  for (const std::string_view k : {key, shortKey}) {
    const YAML::Node node = doc[std::string(k)];
    if (!node.IsDefined() || node.IsNull()) {
      continue;
    }
    if (!node.IsScalar()) {
      return Error::make(ErrorCode::kUnauthorized, "AkSkFileInvalid",
                         fmt::format("AK/SK file {}: {} is not a string", path, k));
    }
    return trimWhitespace(node.Scalar());
  }
  return std::string();
}

Result<AkSk> parseAkSkFile(const std::string& text, const std::string& path) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // e.what() may quote the text, which holds the secret: only the position goes out.
    return Error::make(ErrorCode::kUnauthorized, "AkSkFileInvalid",
                       fmt::format("AK/SK file {}: not YAML (line {})", path, e.mark.line + 1));
  }
  if (!doc.IsMap()) {
    return Error::make(ErrorCode::kUnauthorized, "AkSkFileInvalid",
                       fmt::format("AK/SK file {}: expected lines \"{}: ...\" and \"{}: ...\"",
                                   path, kAccessKey, kSecretKey));
  }
  AkSk keys;
  // Read the secret first so that it is registered before anything can fail and be logged.
  auto sk = yamlKey(doc, kSecretKey, kSecretKeyShort, path);
  if (!sk.ok()) {
    return std::move(sk).error();
  }
  keys.secretKey = std::move(*sk);
  log::registerSecret(keys.secretKey);
  auto ak = yamlKey(doc, kAccessKey, kAccessKeyShort, path);
  if (!ak.ok()) {
    return std::move(ak).error();
  }
  keys.accessKey = std::move(*ak);
  for (const auto& [value, key, shortKey] :
       {std::tuple{&keys.accessKey, kAccessKey, kAccessKeyShort},
        std::tuple{&keys.secretKey, kSecretKey, kSecretKeyShort}}) {
    if (value->empty()) {
      return Error::make(
          ErrorCode::kUnauthorized, "AkSkFileInvalid",
          fmt::format("AK/SK file {}: {} (or {}) is missing or empty", path, key, shortKey));
    }
    if (!fitsInHeader(*value)) {
      return Error::make(ErrorCode::kUnauthorized, "AkSkFileInvalid",
                         fmt::format("AK/SK file {}: {} has control characters", path, key));
    }
  }
  return keys;
}

Headers projectHeaders(const std::string& projectID) {
  Headers h;
  if (!projectID.empty()) {
    h.emplace_back("X-Project-Id", projectID);
  }
  return h;
}

class TokenFileSource final : public kube::CredentialSource {
 public:
  TokenFileSource(const std::string& path, Headers headers, const Clock& clock)
      : headers_(std::move(headers)),
        file_(
            path, "CCI token file", "TokenFile",
            [path](const std::string& text) { return parseToken(text, path); }, clock) {}

  Result<kube::Credential> current() override {
    auto token = file_.current();
    if (!token.ok()) {
      return std::move(token).error();
    }
    kube::Credential c;
    c.headers = headers_;
    c.headers.emplace_back("X-Auth-Token", std::move(*token));
    return c;
  }

  void invalidate() override { file_.invalidate(); }

 private:
  const Headers headers_;
  WatchedFile<std::string> file_;
};

// AK/SK keys from a file. The signer asks the file for the keys at each request, so a rotation
// takes effect without a new credential; current() asks too, so that a broken file fails as a
// credential error before anything is signed.
class AkSkFileSource final : public kube::CredentialSource {
 public:
  AkSkFileSource(const std::string& path, Headers headers, const Clock& clock)
      : file_(std::make_shared<WatchedFile<AkSk>>(
            path, "AK/SK file", "AkSkFile",
            [path](const std::string& text) { return parseAkSkFile(text, path); }, clock)) {
    credential_.headers = std::move(headers);
    credential_.signer =
        std::make_shared<AkSkSigner>([file = file_]() { return file->current(); }, clock);
  }

  Result<kube::Credential> current() override {
    auto keys = file_->current();
    if (!keys.ok()) {
      return std::move(keys).error();
    }
    return credential_;
  }

  void invalidate() override { file_->invalidate(); }

 private:
  // Shared with the signer, which may outlive this source inside a credential in flight.
  const std::shared_ptr<WatchedFile<AkSk>> file_;
  kube::Credential credential_;  // set in the constructor, then only read
};

class StaticSource final : public kube::CredentialSource {
 public:
  explicit StaticSource(kube::Credential credential) : credential_(std::move(credential)) {}
  Result<kube::Credential> current() override { return credential_; }
  void invalidate() override {}

 private:
  const kube::Credential credential_;  // immutable, so no lock
};

Error invalidOptions(std::string message) {
  return Error::make(ErrorCode::kInvalid, "InvalidCciAuth",
                     "CCI authentication: " + std::move(message));
}

}  // namespace

Result<std::unique_ptr<kube::CredentialSource>> makeCciCredentialSource(CciAuthOptions options,
                                                                        const Clock& clock) {
  std::string set;
  int count = 0;
  for (const auto& [given, name] : {std::pair{!options.tokenFile.empty(), "tokenFile"},
                                    std::pair{!options.akskFile.empty(), "akskFile"},
                                    std::pair{options.aksk.has_value(), "aksk"}}) {
    if (given) {
      set += (count++ == 0 ? "" : ", ") + std::string(name);
    }
  }
  if (count != 1) {
    return invalidOptions(fmt::format("set exactly one of tokenFile, akskFile and aksk (got {})",
                                      count == 0 ? "none" : set));
  }
  if (!fitsInHeader(options.projectID)) {
    return invalidOptions("projectID has control characters");
  }
  Headers headers = projectHeaders(options.projectID);
  if (!options.tokenFile.empty()) {
    return std::unique_ptr<kube::CredentialSource>(
        std::make_unique<TokenFileSource>(options.tokenFile, std::move(headers), clock));
  }
  if (!options.akskFile.empty()) {
    return std::unique_ptr<kube::CredentialSource>(
        std::make_unique<AkSkFileSource>(options.akskFile, std::move(headers), clock));
  }
  AkSk keys = std::move(*options.aksk);
  log::registerSecret(keys.secretKey);
  if (keys.accessKey.empty() || keys.secretKey.empty()) {
    return invalidOptions(
        fmt::format("aksk.{} is empty", keys.accessKey.empty() ? kAccessKey : kSecretKey));
  }
  if (!fitsInHeader(keys.accessKey)) {
    return invalidOptions("aksk.accessKey has control characters");
  }
  kube::Credential c;
  c.headers = std::move(headers);
  c.signer = std::make_shared<AkSkSigner>(std::move(keys), clock);
  return std::unique_ptr<kube::CredentialSource>(std::make_unique<StaticSource>(std::move(c)));
}

Result<AkSk> akskFromSecretData(const boost::json::object& secretData) {
  const auto decoded = [&](std::string_view key, std::string_view shortKey) -> Result<std::string> {
    for (const std::string_view k : {key, shortKey}) {
      const auto* v = secretData.if_contains(k);
      if (v == nullptr) {
        continue;
      }
      const auto* text = v->if_string();
      if (text == nullptr) {
        return Error::make(ErrorCode::kInvalid, "InvalidAkSkSecret",
                           fmt::format("AK/SK secret: data.{} is not a string", k));
      }
      auto bytes = base64Decode(std::string_view(*text));
      if (!bytes) {
        return Error::make(ErrorCode::kInvalid, "InvalidAkSkSecret",
                           fmt::format("AK/SK secret: data.{} is not base64", k));
      }
      std::string value = trimWhitespace(*bytes);
      if (key == kSecretKey) {
        log::registerSecret(value);  // before any check can fail and its caller log
      }
      if (value.empty()) {
        return Error::make(ErrorCode::kInvalid, "InvalidAkSkSecret",
                           fmt::format("AK/SK secret: data.{} is empty", k));
      }
      if (!fitsInHeader(value)) {
        return Error::make(ErrorCode::kInvalid, "InvalidAkSkSecret",
                           fmt::format("AK/SK secret: data.{} has control characters", k));
      }
      return value;
    }
    return Error::make(ErrorCode::kInvalid, "InvalidAkSkSecret",
                       fmt::format("AK/SK secret: data has no {} (or {})", key, shortKey));
  };
  auto sk = decoded(kSecretKey, kSecretKeyShort);
  if (!sk.ok()) {
    return std::move(sk).error();
  }
  auto ak = decoded(kAccessKey, kAccessKeyShort);
  if (!ak.ok()) {
    return std::move(ak).error();
  }
  return AkSk{std::move(*ak), std::move(*sk)};
}

}  // namespace burstlet::provider::cci
