#include "kube/rest.h"

#include <fmt/format.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "kube/errors.h"
#include "kube/transport.h"

namespace burstlet::kube {

namespace json = boost::json;

std::string ListOptions::query(bool watch) const {
  std::string q;
  auto add = [&q](std::string_view k, std::string_view v) {
    q += q.empty() ? '?' : '&';
    q += k;
    q += '=';
    q += queryEscape(v);
  };
  if (watch) {
    add("watch", "true");
  }
  if (!labelSelector.empty()) {
    add("labelSelector", labelSelector);
  }
  if (!fieldSelector.empty()) {
    add("fieldSelector", fieldSelector);
  }
  if (limit > 0 && !watch) {
    add("limit", std::to_string(limit));
  }
  if (!continueToken.empty() && !watch) {
    add("continue", continueToken);
  }
  if (!resourceVersion.empty()) {
    add("resourceVersion", resourceVersion);
  }
  if (!resourceVersionMatch.empty() && (!watch || sendInitialEvents)) {
    add("resourceVersionMatch", resourceVersionMatch);
  }
  if (sendInitialEvents && watch) {
    add("sendInitialEvents", "true");
  }
  if (timeoutSeconds > 0) {
    add("timeoutSeconds", std::to_string(timeoutSeconds));
  }
  if (allowWatchBookmarks && watch) {
    add("allowWatchBookmarks", "true");
  }
  return q;
}

std::string listContinueToken(const json::value& list) {
  const auto* md = list.is_object() ? list.get_object().if_contains("metadata") : nullptr;
  const auto* c =
      md != nullptr && md->is_object() ? md->get_object().if_contains("continue") : nullptr;
  return c != nullptr && c->is_string() ? std::string(c->get_string()) : std::string();
}

std::string_view patchContentType(PatchType t) {
  switch (t) {
    case PatchType::kJsonMerge:
      return "application/merge-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kApply:
      return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

std::string DeleteOptions::body() const {
  json::object o{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (gracePeriodSeconds) {
    o["gracePeriodSeconds"] = *gracePeriodSeconds;
  }
  if (!propagationPolicy.empty()) {
    o["propagationPolicy"] = propagationPolicy;
  }
  if (!preconditionUid.empty() || !preconditionResourceVersion.empty()) {
    json::object pre;
    if (!preconditionUid.empty()) {
      pre["uid"] = preconditionUid;
    }
    if (!preconditionResourceVersion.empty()) {
      pre["resourceVersion"] = preconditionResourceVersion;
    }
    o["preconditions"] = std::move(pre);
  }
  return json::serialize(o);
}

Result<std::unique_ptr<RestClient>> RestClient::create(asio::any_io_executor executor,
                                                       const ClientConfig& config,
                                                       RestOptions options) {
  std::shared_ptr<CredentialSource> creds =
      makeCredentialSource(config, options.clock != nullptr ? *options.clock : realClock());
  auto transport = makeBeastTransport(executor, config, std::move(creds));
  if (!transport.ok()) {
    return std::move(transport).error();
  }
  return std::make_unique<RestClient>(std::move(executor), std::move(*transport), config,
                                      std::move(options));
}

RestClient::RestClient(asio::any_io_executor executor, std::unique_ptr<Transport> transport,
                       ClientConfig config, RestOptions options)
    : executor_(std::move(executor)),
      transport_(std::move(transport)),
      config_(std::move(config)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : realClock()),
      bucket_(config_.qps, config_.burst, clock_),
      rng_(std::random_device{}()) {}

Error RestClient::errorOf(const HttpResponse& response, std::string_view what) const {
  Error error = errorFromResponse(response, what);
  return options_.dialect ? options_.dialect(std::move(error), response) : error;
}

asio::awaitable<void> RestClient::sleep(std::chrono::nanoseconds d) {
  if (d.count() <= 0) {
    co_return;
  }
  asio::steady_timer timer(executor_, d);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<Result<HttpResponse>> RestClient::call(HttpRequest request, bool idempotent,
                                                       std::string what) {
  for (int attempt = 0;; ++attempt) {
    if (bucket_.enabled()) {
      co_await sleep(bucket_.reserve());
    }
    counters_.total.fetch_add(1, std::memory_order_relaxed);
    auto response = co_await transport_->send(request);
    if (observer_) {
      // HTTP status, or the error class when no answer came.
      const std::string code = response.ok() ? std::to_string(response->status)
                                             : std::string(errorCodeName(response.error().code));
      observer_(std::string_view(boost::beast::http::to_string(request.method)), code);
    }
    std::optional<Error> error;
    if (!response.ok()) {
      error = std::move(response).error();
      error->message = fmt::format("{}: {}", what, error->message);
    } else if (response->status >= 200 && response->status < 300) {
      co_return std::move(*response);
    } else {
      error = errorOf(*response, what);
    }
    if (attempt >= options_.retry.maxRetries || !shouldRetry(*error, idempotent)) {
      counters_.errors.fetch_add(1, std::memory_order_relaxed);
      co_return std::move(*error);
    }
    std::chrono::milliseconds delay;
    {
      std::lock_guard lock(rngMu_);
      delay = retryDelay(options_.retry, attempt, *error, rng_);
    }
    counters_.retries.fetch_add(1, std::memory_order_relaxed);
    co_await sleep(delay);
  }
}

asio::awaitable<Result<RestClient::Json>> RestClient::callJson(HttpRequest request, bool idempotent,
                                                               std::string what) {
  auto response = co_await call(std::move(request), idempotent, what);
  if (!response.ok()) {
    co_return std::move(response).error();
  }
  boost::system::error_code ec;
  // One arena per response: a list page is thousands of small allocations that all die
  // together, and the default heap spent half of a list's CPU time on them. The value keeps
  // its arena alive; values moved out of it keep it too.
  json::value v = json::parse(
      response->body, ec,
      json::make_shared_resource<json::monotonic_resource>(response->body.size() * 2 + 1024));
  if (ec) {
    co_return Error::make(ErrorCode::kInternal, "InvalidResponse",
                          fmt::format("{}: response is not JSON: {}", what, ec.message()));
  }
  co_return v;
}

namespace {
std::string describe(std::string_view verb, const ResourceRef& ref, std::string_view ns,
                     std::string_view name) {
  if (ns.empty()) {
    return fmt::format("{} {} {}", verb, ref.resource, name);
  }
  return fmt::format("{} {} {}/{}", verb, ref.resource, ns, name);
}
}  // namespace

asio::awaitable<Result<RestClient::Json>> RestClient::getCo(ResourceRef ref, std::string ns,
                                                            std::string name,
                                                            std::string subresource) {
  HttpRequest req{Verb::get, ref.path(ns, name, subresource)};
  std::string what = describe("get", ref, ns, name);  // named: see rest.h on co_await temporaries
  co_return co_await callJson(std::move(req), true, std::move(what));
}

asio::awaitable<Result<RestClient::Json>> RestClient::listCo(ResourceRef ref, std::string ns,
                                                             ListOptions options) {
  HttpRequest req{Verb::get, ref.path(ns) + options.query(false)};
  std::string what = describe("list", ref, ns, "");  // named: see rest.h on co_await temporaries
  co_return co_await callJson(std::move(req), true, std::move(what));
}

asio::awaitable<Result<RestClient::Json>> RestClient::listAllCo(ResourceRef ref, std::string ns,
                                                                ListOptions options) {
  json::array items;
  json::value last;
  while (true) {
    auto page = co_await list(ref, ns, options);
    if (!page.ok()) {
      co_return std::move(page).error();
    }
    auto& obj = page->as_object();
    if (auto* it = obj.if_contains("items"); it && it->is_array()) {
      for (auto& item : it->get_array()) {
        items.push_back(std::move(item));
      }
    }
    std::string next = listContinueToken(*page);
    last = std::move(*page);
    if (next.empty()) {
      break;
    }
    options.continueToken = std::move(next);
    // A continue token pins the snapshot; the server refuses a resourceVersion (or match)
    // beside it.
    options.resourceVersion.clear();
    options.resourceVersionMatch.clear();
  }
  last.as_object()["items"] = std::move(items);
  co_return last;
}

asio::awaitable<Result<RestClient::Json>> RestClient::createCo(ResourceRef ref, std::string ns,
                                                               Json object, std::string subresource,
                                                               std::string name) {
  HttpRequest req{Verb::post, subresource.empty() ? ref.path(ns) : ref.path(ns, name, subresource),
                  json::serialize(object), "application/json"};
  std::string what =
      describe("create", ref, ns, name);  // named: see rest.h on co_await temporaries
  co_return co_await callJson(std::move(req), false, std::move(what));
}

asio::awaitable<Result<RestClient::Json>> RestClient::updateCo(ResourceRef ref, std::string ns,
                                                               std::string name, Json object,
                                                               std::string subresource) {
  HttpRequest req{Verb::put, ref.path(ns, name, subresource), json::serialize(object),
                  "application/json"};
  // PUT carries the object's resourceVersion: a repeat after a lost answer fails with a
  // conflict rather than overwriting, so it is safe to retry.
  std::string what =
      describe("update", ref, ns, name);  // named: see rest.h on co_await temporaries
  co_return co_await callJson(std::move(req), true, std::move(what));
}

asio::awaitable<Result<RestClient::Json>> RestClient::patchCo(ResourceRef ref, std::string ns,
                                                              std::string name, PatchType type,
                                                              std::string body,
                                                              std::string subresource,
                                                              PatchOptions options) {
  std::string target = ref.path(ns, name, subresource);
  std::string sep = "?";
  if (!options.fieldManager.empty()) {
    target += sep + "fieldManager=" + queryEscape(options.fieldManager);
    sep = "&";
  }
  if (options.force) {
    target += sep + "force=true";
  }
  HttpRequest req{Verb::patch, std::move(target), std::move(body),
                  std::string(patchContentType(type))};
  // Merge and apply patches state the desired values; repeating them is harmless. A JSON
  // patch may not be (e.g. "add" to a list).
  const bool idempotent = type != PatchType::kJson;
  std::string what = describe("patch", ref, ns, name);  // named: see rest.h on co_await temporaries
  co_return co_await callJson(std::move(req), idempotent, std::move(what));
}

asio::awaitable<Result<RestClient::Json>> RestClient::removeCo(ResourceRef ref, std::string ns,
                                                               std::string name,
                                                               DeleteOptions options) {
  std::string target = ref.path(ns, name);
  if (!options.query.empty()) {
    target += "?" + options.query;
  }
  HttpRequest req{Verb::delete_, std::move(target), options.body(), "application/json"};
  std::string what =
      describe("delete", ref, ns, name);  // named: see rest.h on co_await temporaries
  auto response = co_await call(std::move(req), true, what);
  if (!response.ok()) {
    co_return std::move(response).error();
  }
  // Some servers answer a delete with no body at all (CCI's unbind): that is success too.
  if (response->body.find_first_not_of(" \t\r\n") == std::string::npos) {
    co_return Json();
  }
  boost::system::error_code ec;
  json::value v = json::parse(response->body, ec);
  if (ec) {
    co_return Error::make(ErrorCode::kInternal, "InvalidResponse",
                          fmt::format("{}: response is not JSON: {}", what, ec.message()));
  }
  co_return v;
}

asio::awaitable<Result<std::unique_ptr<ResponseStream>>> RestClient::stream(HttpRequest request,
                                                                            std::string what) {
  counters_.total.fetch_add(1, std::memory_order_relaxed);
  auto stream = co_await transport_->stream(request);
  if (observer_) {
    const std::string code = stream.ok() ? std::to_string((*stream)->status())
                                         : std::string(errorCodeName(stream.error().code));
    std::string_view verb = boost::beast::http::to_string(request.method);
    if (request.target.find("watch=true") != std::string::npos) {
      verb = "WATCH";
    } else if (request.compressedStream) {
      verb = "LIST";
    }
    observer_(verb, code);
  }
  if (!stream.ok()) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    auto error = std::move(stream).error();
    error.message = fmt::format("{}: {}", what, error.message);
    co_return error;
  }
  auto& s = *stream;
  if (s->status() < 200 || s->status() >= 300) {
    HttpResponse r;
    r.status = s->status();
    while (true) {
      auto piece = co_await s->read();
      if (!piece.ok() || !piece->has_value() || r.body.size() > (1u << 20)) {
        break;
      }
      r.body += **piece;
    }
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    co_return errorOf(r, what);
  }
  co_return std::move(s);
}

asio::awaitable<Result<std::unique_ptr<WebSocketConnection>>> RestClient::websocket(
    WebSocketRequest request, std::string what) {
  counters_.total.fetch_add(1, std::memory_order_relaxed);
  auto upgraded = co_await transport_->websocket(std::move(request));
  if (observer_) {
    // As the API server counts these requests: verb CONNECT, 101 when upgraded.
    std::string code;
    if (!upgraded.ok()) {
      code = std::string(errorCodeName(upgraded.error().code));
    } else {
      code = upgraded->connection ? "101" : std::to_string(upgraded->refusal.status);
    }
    observer_("CONNECT", code);
  }
  if (!upgraded.ok()) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    auto error = std::move(upgraded).error();
    error.message = fmt::format("{}: {}", what, error.message);
    co_return error;
  }
  if (!upgraded->connection) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    co_return errorOf(upgraded->refusal, what);
  }
  co_return std::move(upgraded->connection);
}

asio::awaitable<Result<std::unique_ptr<WatchStream>>> RestClient::watch(ResourceRef ref,
                                                                        std::string ns,
                                                                        ListOptions options) {
  HttpRequest req{Verb::get, ref.path(ns) + options.query(true)};
  // The stream may stay silent up to the server timeout; bookmarks arrive about every minute.
  req.timeout =
      std::chrono::seconds(options.timeoutSeconds > 0 ? options.timeoutSeconds + 30 : 330);
  std::string what = describe("watch", ref, ns, "");  // named: see rest.h on co_await temporaries
  auto stream = co_await this->stream(std::move(req), std::move(what));
  if (!stream.ok()) {
    co_return std::move(stream).error();
  }
  co_return std::make_unique<WatchStream>(std::move(*stream));
}

asio::awaitable<Result<std::unique_ptr<ListStream>>> RestClient::listStream(ResourceRef ref,
                                                                            std::string ns,
                                                                            ListOptions options) {
  HttpRequest req{Verb::get, ref.path(ns) + options.query(false)};
  req.compressedStream = true;
  std::string what = describe("list", ref, ns, "");  // named: see rest.h on co_await temporaries
  auto stream = co_await this->stream(std::move(req), std::move(what));
  if (!stream.ok()) {
    co_return std::move(stream).error();
  }
  co_return std::make_unique<ListStream>(std::move(*stream));
}

}  // namespace burstlet::kube
