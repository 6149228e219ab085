#include "kube/server_version.h"

#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <utility>

namespace burstlet::kube {

namespace json = boost::json;

std::optional<std::string> kubernetesRelease(std::string_view gitVersion) {
  std::string_view rest = gitVersion;
  if (!rest.empty() && rest.front() == 'v') {
    rest.remove_prefix(1);
  }
  std::string release = "v";
  for (int part = 0; part < 3; ++part) {
    size_t digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits])) != 0) {
      ++digits;
    }
    // No leading zeros: semantic versions do not have them, and the API server never sends them.
    if (digits == 0 || (digits > 1 && rest.front() == '0')) {
      return std::nullopt;
    }
    release.append(rest.substr(0, digits));
    rest.remove_prefix(digits);
    if (part < 2) {
      if (rest.empty() || rest.front() != '.') {
        return std::nullopt;
      }
      release.push_back('.');
      rest.remove_prefix(1);
    }
  }
  // What follows the patch number may only be a prerelease or build suffix.
  if (!rest.empty() && rest.front() != '-' && rest.front() != '+') {
    return std::nullopt;
  }
  return release;
}

boost::asio::awaitable<Result<std::string>> serverRelease(RestClient& client) {
  HttpRequest request;
  request.target = "/version";
  std::string what = "GET /version";  // named: see kube/rest.h on co_await temporaries
  auto response = co_await client.call(std::move(request), true, std::move(what));
  if (!response.ok()) {
    co_return std::move(response).error();
  }
  boost::system::error_code ec;
  const json::value info = json::parse(response->body, ec);
  const json::string* gitVersion = nullptr;
  if (!ec && info.is_object()) {
    if (const auto* v = info.as_object().if_contains("gitVersion");
        v != nullptr && v->is_string()) {
      gitVersion = &v->as_string();
    }
  }
  if (gitVersion == nullptr) {
    co_return Error::make(ErrorCode::kInvalid, "BadVersion",
                          "GET /version: no gitVersion in the answer");
  }
  auto release = kubernetesRelease(std::string_view(*gitVersion));
  if (!release) {
    co_return Error::make(ErrorCode::kInvalid, "BadVersion",
                          "GET /version: gitVersion \"" + std::string(*gitVersion) +
                              "\" is not a major.minor.patch version");
  }
  co_return std::move(*release);
}

std::optional<int> minorOf(std::string_view release) {
  // "v1.NN.P": the part between the first two dots.
  const auto first = release.find('.');
  if (first == std::string_view::npos || release.substr(0, first) != "v1") {
    return std::nullopt;
  }
  const auto second = release.find('.', first + 1);
  const std::string_view digits = release.substr(first + 1, second - first - 1);
  int minor = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), minor);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return minor;
}

}  // namespace burstlet::kube
