#include "kubelet/auth.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "kube/resource.h"
#include "kube/rest.h"

namespace burstlet::kubelet {

namespace json = boost::json;

RequestAttributes attributesOf(std::string_view method, std::string_view path) {
  RequestAttributes out;
  if (method == "POST") {
    out.verb = "create";
  } else if (method == "PUT") {
    out.verb = "update";
  } else if (method == "PATCH") {
    out.verb = "patch";
  } else if (method == "DELETE") {
    out.verb = "delete";
  } else {
    out.verb = "get";  // GET, HEAD and anything else the routes let through
  }
  const auto under = [path](std::string_view prefix) {
    return path == prefix ||
           (path.starts_with(prefix) && path.size() > prefix.size() && path[prefix.size()] == '/');
  };
  if (under("/stats")) {
    out.subresource = "stats";
  } else if (under("/metrics")) {
    out.subresource = "metrics";
  } else if (under("/logs")) {
    out.subresource = "log";
  } else {
    out.subresource = "proxy";
  }
  return out;
}

namespace {

std::string sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &size, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  std::string out;
  out.reserve(size_t{size} * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += fmt::format("{:02x}", md[i]);
  }
  return out;
}

std::vector<std::string> stringsOf(const json::value* v) {
  std::vector<std::string> out;
  if (const auto* a = kube::arrayOf(v)) {
    for (const auto& s : *a) {
      if (s.is_string()) {
        out.emplace_back(s.as_string());
      }
    }
  }
  return out;
}

json::array toArray(const std::vector<std::string>& values) {
  json::array out;
  for (const auto& v : values) {
    out.emplace_back(v);
  }
  return out;
}

// The user as a cache key: every field a review depends on.
std::string userKey(const UserInfo& user) {
  std::string key = user.name;
  key += '\x1f';
  key += user.uid;
  for (const auto& g : user.groups) {
    key += '\x1e';
    key += g;
  }
  for (const auto& [k, values] : user.extra) {
    key += '\x1d';
    key += k;
    for (const auto& v : values) {
      key += '\x1c';
      key += v;
    }
  }
  return key;
}

// The bearer token of an "Authorization: Bearer <token>" header; empty otherwise.
std::string_view bearerToken(std::string_view header) {
  constexpr std::string_view kBearer = "bearer ";
  if (header.size() <= kBearer.size()) {
    return {};
  }
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kBearer[i]) {
      return {};
    }
  }
  auto token = header.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && token.back() == ' ') {
    token.remove_suffix(1);
  }
  return token;
}

}  // namespace

asio::awaitable<Result<std::optional<UserInfo>>> ApiReviews::reviewToken(std::string token) {
  json::value review = json::object{
      {"apiVersion", "authentication.k8s.io/v1"},
      {"kind", "TokenReview"},
      {"spec", json::object{{"token", std::move(token)}}},
  };
  const auto& resource = kube::resources::kTokenReviews;
  const std::string noNamespace;
  auto answer = co_await cluster_.create(resource, noNamespace, std::move(review));
  if (!answer.ok()) {
    co_return answer.error();
  }
  const auto* status = kube::at(*answer, {"status"});
  if (status == nullptr || !kube::boolAt(*status, {"authenticated"})) {
    co_return std::optional<UserInfo>();
  }
  UserInfo user;
  user.name = kube::stringAt(*status, {"user", "username"});
  user.uid = kube::stringAt(*status, {"user", "uid"});
  user.groups = stringsOf(kube::at(*status, {"user", "groups"}));
  if (const auto* extra = kube::objectOf(kube::at(*status, {"user", "extra"}))) {
    for (const auto& [key, values] : *extra) {
      user.extra[std::string(key)] = stringsOf(&values);
    }
  }
  co_return std::optional<UserInfo>(std::move(user));
}

asio::awaitable<Result<AccessDecision>> ApiReviews::reviewAccess(UserInfo user, std::string node,
                                                                 RequestAttributes attributes) {
  json::object extra;
  for (const auto& [key, values] : user.extra) {
    extra[key] = toArray(values);
  }
  json::object spec{
      {"user", user.name},
      {"groups", toArray(user.groups)},
      {"resourceAttributes", json::object{{"verb", attributes.verb},
                                          {"group", ""},
                                          {"version", "v1"},
                                          {"resource", "nodes"},
                                          {"subresource", attributes.subresource},
                                          {"name", node}}},
  };
  if (!user.uid.empty()) {
    spec["uid"] = user.uid;
  }
  if (!extra.empty()) {
    spec["extra"] = std::move(extra);
  }
  json::value review = json::object{
      {"apiVersion", "authorization.k8s.io/v1"},
      {"kind", "SubjectAccessReview"},
      {"spec", std::move(spec)},
  };
  const auto& resource = kube::resources::kSubjectAccessReviews;
  const std::string noNamespace;
  auto answer = co_await cluster_.create(resource, noNamespace, std::move(review));
  if (!answer.ok()) {
    co_return answer.error();
  }
  AccessDecision decision;
  decision.allowed =
      kube::boolAt(*answer, {"status", "allowed"}) && !kube::boolAt(*answer, {"status", "denied"});
  decision.reason = kube::stringAt(*answer, {"status", "reason"});
  co_return decision;
}

RequestAuth::RequestAuth(ReviewApi& api, AuthOptions options, const Clock& clock)
    : api_(api), options_(std::move(options)), clock_(clock) {}

RequestAuth::Counters RequestAuth::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

template <typename Entry>
void RequestAuth::store(std::unordered_map<std::string, Entry>& cache, const std::string& key,
                        Entry entry) {
  if (cache.size() >= options_.maxCacheEntries && !cache.contains(key)) {
    const auto now = clock_.steadyNow();
    std::erase_if(cache, [now](const auto& e) { return e.second.expires <= now; });
    if (cache.size() >= options_.maxCacheEntries) {
      cache.clear();  // a flood of distinct identities: start over rather than grow
    }
  }
  cache[key] = std::move(entry);
}

asio::awaitable<Result<std::optional<UserInfo>>> RequestAuth::authenticate(std::string token) {
  const std::string key = sha256Hex(token);
  {
    std::lock_guard lock(mu_);
    if (auto it = tokens_.find(key); it != tokens_.end()) {
      if (it->second.expires > clock_.steadyNow()) {
        co_return it->second.user;
      }
      tokens_.erase(it);
    }
    ++counters_.tokenReviews;
  }
  auto reviewed = co_await api_.reviewToken(std::move(token));
  if (!reviewed.ok()) {
    co_return reviewed.error();  // not cached: the next request asks again
  }
  const auto ttl = reviewed->has_value() ? options_.authenticatedTtl : options_.unauthenticatedTtl;
  std::lock_guard lock(mu_);
  store(tokens_, key, TokenEntry{*reviewed, clock_.steadyNow() + ttl});
  co_return *reviewed;
}

asio::awaitable<Result<AccessDecision>> RequestAuth::authorize(
    const UserInfo& user, const RequestAttributes& attributes) {
  const std::string key =
      userKey(user) + '\x1a' + attributes.verb + '\x1a' + attributes.subresource;
  {
    std::lock_guard lock(mu_);
    if (auto it = access_.find(key); it != access_.end()) {
      if (it->second.expires > clock_.steadyNow()) {
        co_return it->second.decision;
      }
      access_.erase(it);
    }
    ++counters_.accessReviews;
  }
  UserInfo subject = user;
  std::string node = options_.nodeName;
  RequestAttributes asked = attributes;
  auto reviewed = co_await api_.reviewAccess(std::move(subject), std::move(node), std::move(asked));
  if (!reviewed.ok()) {
    co_return reviewed.error();
  }
  const auto ttl = reviewed->allowed ? options_.allowedTtl : options_.deniedTtl;
  std::lock_guard lock(mu_);
  store(access_, key, AccessEntry{*reviewed, clock_.steadyNow() + ttl});
  co_return *reviewed;
}

asio::awaitable<AuthOutcome> RequestAuth::check(const server::Request& request) {
  AuthOutcome out;
  if (!options_.enabled) {
    out.user.name = "system:anonymous";
    co_return out;
  }
  if (request.clientCertificate) {
    // The listener verified it against the client CA during the handshake.
    out.user.name = request.clientCertificate->commonName;
    out.user.groups = request.clientCertificate->organizations;
    out.user.groups.emplace_back("system:authenticated");
  } else {
    const std::string token(bearerToken(request.header("Authorization")));
    if (token.empty()) {
      out.status = 401;
      out.message = "Unauthorized: a client certificate or a bearer token is required";
      co_return out;
    }
    auto user = co_await authenticate(token);
    if (!user.ok()) {
      spdlog::warn("msg=\"kubelet API: token review failed\" error=\"{}\"",
                   user.error().toString());
      out.status = 503;
      out.message = "Unauthorized: the token could not be reviewed: " + user.error().message;
      co_return out;
    }
    if (!user->has_value()) {
      out.status = 401;
      out.message = "Unauthorized: the cluster does not accept the bearer token";
      co_return out;
    }
    out.user = std::move(**user);
  }
  const auto attributes = attributesOf(request.method, request.path);
  auto decision = co_await authorize(out.user, attributes);
  if (!decision.ok()) {
    spdlog::warn("msg=\"kubelet API: access review failed\" user=\"{}\" error=\"{}\"",
                 out.user.name, decision.error().toString());
    out.status = 503;
    out.message = "Forbidden: the access could not be reviewed: " + decision.error().message;
    co_return out;
  }
  if (!decision->allowed) {
    out.status = 403;
    out.message =
        fmt::format("Forbidden (user={}, verb={}, resource=nodes, subresource={}, name={})",
                    out.user.name, attributes.verb, attributes.subresource, options_.nodeName);
    if (!decision->reason.empty()) {
      out.message += ": " + decision->reason;
    }
  }
  co_return out;
}

}  // namespace burstlet::kubelet
