#include "kubelet/kubelet_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>

#include "kube/informer.h"
#include "kube/json_path.h"
#include "kubelet/remote_command.h"
#include "kubelet/requests.h"
#include "kubelet/stats.h"

namespace burstlet::kubelet {

namespace json = boost::json;

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kJson = "application/json";

server::Response text(unsigned status, std::string body) {
  if (!body.ends_with('\n')) {
    body += '\n';
  }
  return server::Response{status, kText, std::move(body), {}};
}

asio::awaitable<server::Response> runGuarded(RequestAuth& auth, server::Handler handler,
                                             server::Exchange& exchange) {
  AuthOutcome outcome = co_await auth.check(exchange.request());
  if (outcome.status != 0) {
    co_return text(outcome.status, std::move(outcome.message));
  }
  co_return co_await handler(exchange);
}

asio::awaitable<void> pumpLogs(server::Exchange& exchange, provider::ByteStream& stream,
                               const std::string& what) {
  for (;;) {
    auto chunk = co_await stream.read();
    if (!chunk.ok()) {
      if (chunk.error().code != ErrorCode::kCancelled) {
        spdlog::warn("msg=\"log stream ended early\" pod={} error=\"{}\"", what,
                     chunk.error().toString());
      }
      co_return;
    }
    if (!chunk->has_value()) {
      co_return;
    }
    const Status written = co_await exchange.write(**chunk);
    if (!written.ok()) {
      co_return;
    }
  }
}

// Cancels `stream` once the client went away (or this is cancelled: the pump ended).
asio::awaitable<void> cancelWhenGone(server::Exchange& exchange, provider::ByteStream& stream) {
  co_await exchange.untilClientGone();
  stream.cancel();
}

bool isSpdyUpgrade(const server::Request& request) {
  const auto upgrade = request.header("Upgrade");
  return upgrade.size() >= 4 && (upgrade.substr(0, 4) == "SPDY" || upgrade.substr(0, 4) == "spdy");
}

json::value podListOf(json::array items) {
  return json::object{{"kind", "PodList"},
                      {"apiVersion", "v1"},
                      {"metadata", json::object{}},
                      {"items", std::move(items)}};
}

}  // namespace

server::Response errorResponse(const Error& error) {
  unsigned status = 500;
  switch (error.code) {
    case ErrorCode::kNotFound:
      status = 404;
      break;
    case ErrorCode::kBadRequest:
    case ErrorCode::kInvalid:
      status = 400;
      break;
    case ErrorCode::kUnauthorized:
    case ErrorCode::kForbidden:
      // The backend refused burstlet itself: a gateway failure, not the caller's credentials.
      status = error.code == ErrorCode::kForbidden ? 403 : 502;
      break;
    case ErrorCode::kConflict:
    case ErrorCode::kAlreadyExists:
      status = 409;
      break;
    case ErrorCode::kTooManyRequests:
      status = 429;
      break;
    case ErrorCode::kNotSupported:
      status = 501;
      break;
    case ErrorCode::kUnavailable:
    case ErrorCode::kCancelled:
    case ErrorCode::kGone:
      status = 503;
      break;
    case ErrorCode::kTimeout:
      status = 504;
      break;
    case ErrorCode::kInternal:
      status = 500;
      break;
  }
  return text(status, error.message.empty() ? error.reason : error.message);
}

PodPtr StorePodSource::pod(const std::string& ns, const std::string& name) const {
  return store_.get(ns + "/" + name);
}

std::vector<PodPtr> StorePodSource::pods() const { return store_.list(); }

KubeletApi::KubeletApi(provider::Provider& provider, const PodSource& pods, RequestAuth& auth,
                       KubeletApiOptions options, SpdyStreams* spdy)
    : provider_(provider), pods_(pods), auth_(auth), options_(std::move(options)), spdy_(spdy) {}

server::Handler KubeletApi::guarded(server::Handler handler) {
  return [this, handler = std::move(handler)](server::Exchange& exchange) {
    return runGuarded(auth_, handler, exchange);
  };
}

void KubeletApi::install(server::HttpServer& server) {
  server.route("/healthz", guarded([](server::Exchange&) -> asio::awaitable<server::Response> {
                 co_return text(200, "ok");
               }));
  server.route("/pods", guarded([this](server::Exchange&) -> asio::awaitable<server::Response> {
                 co_return podList();
               }));
  const server::Handler running = [this](server::Exchange&) { return runningPods(); };
  server.route("/runningpods/", guarded(running));
  server.route("/runningpods", guarded(running));
  server.routePrefix("/containerLogs/",
                     guarded([this](server::Exchange& ex) { return containerLogs(ex); }));
  const server::Methods streaming{"GET", "POST"};
  server.routePrefix("/exec/", guarded([this](server::Exchange& ex) { return command(ex, true); }),
                     streaming);
  server.routePrefix(
      "/attach/", guarded([this](server::Exchange& ex) { return command(ex, false); }), streaming);
  server.routePrefix("/portForward/",
                     guarded([this](server::Exchange& ex) { return portForward(ex); }), streaming);
  server.route("/stats/summary", guarded([this](server::Exchange& ex) { return statsSummary(ex); }),
               streaming);
  server.route("/metrics/resource",
               guarded([this](server::Exchange& ex) { return resourceMetrics(ex); }));
}

Result<provider::PodRef> KubeletApi::findPod(const std::string& ns, const std::string& name,
                                             const std::string& uid, const std::string& container,
                                             bool logsOfInjected) const {
  auto pod = pods_.pod(ns, name);
  const std::string podUid = pod ? kube::stringAt(*pod, {"metadata", "uid"}) : std::string();
  if (!pod || (!uid.empty() && uid != podUid)) {
    return Error::make(ErrorCode::kNotFound, "PodNotFound",
                       fmt::format("pod {}/{}{} is not on node {}", ns, name,
                                   uid.empty() ? "" : " (uid " + uid + ")", options_.nodeName));
  }
  const auto& injected = options_.injectedContainers;
  const bool injectedOne =
      logsOfInjected && std::find(injected.begin(), injected.end(), container) != injected.end();
  if (!container.empty() && !hasContainer(*pod, container) && !injectedOne) {
    return Error::make(ErrorCode::kNotFound, "ContainerNotFound",
                       fmt::format("container \"{}\" is not in pod {}/{}", container, ns, name));
  }
  return provider::PodRef{ns, name, podUid};
}

asio::awaitable<server::Response> KubeletApi::containerLogs(server::Exchange& exchange) {
  const auto& request = exchange.request();
  auto target = parsePodTarget(request.path, "/containerLogs/", true);
  if (!target.ok()) {
    co_return errorResponse(target.error());
  }
  auto ref = findPod(target->ns, target->pod, target->uid, target->container, true);
  if (!ref.ok()) {
    co_return errorResponse(ref.error());
  }
  auto options = parseLogOptions(request.query, target->container);
  if (!options.ok()) {
    co_return errorResponse(options.error());
  }
  auto stream = co_await provider_.logs(*ref, std::move(*options));
  if (!stream.ok()) {
    co_return errorResponse(stream.error());
  }
  const server::Response head{200, kText, "", {}};
  const Status started = co_await exchange.startStream(head);
  if (!started.ok()) {
    (*stream)->cancel();
    co_return server::Response{};
  }
  using namespace asio::experimental::awaitable_operators;  // NOLINT(google-build-using-namespace)
  const std::string what = ref->key();
  auto pump = pumpLogs(exchange, **stream, what);
  auto watch = cancelWhenGone(exchange, **stream);
  auto ended = co_await (std::move(pump) || std::move(watch));
  (void)ended;
  co_return server::Response{};
}

asio::awaitable<server::Response> KubeletApi::command(server::Exchange& exchange, bool isExec) {
  const auto& request = exchange.request();
  auto target = parsePodTarget(request.path, isExec ? "/exec/" : "/attach/", true);
  if (!target.ok()) {
    co_return errorResponse(target.error());
  }
  auto ref = findPod(target->ns, target->pod, target->uid, target->container);
  if (!ref.ok()) {
    co_return errorResponse(ref.error());
  }
  auto options = parseExecOptions(request.query, target->container, isExec);
  if (!options.ok()) {
    co_return errorResponse(options.error());
  }
  const bool webSocket = exchange.isWebSocketUpgrade();
  if (!webSocket && (!isSpdyUpgrade(request) || spdy_ == nullptr)) {
    co_return text(400, spdy_ == nullptr ? "an upgrade to WebSocket is required"
                                         : "an upgrade to WebSocket or SPDY/3.1 is required");
  }
  provider::ExecOptions asked = *options;
  // Two statements: GCC 12 mishandles co_await inside ?: (see src/kube/rest.h).
  Result<std::unique_ptr<provider::ExecSession>> session =
      Error::make(ErrorCode::kInternal, "NotStarted", "");
  if (isExec) {
    session = co_await provider_.exec(*ref, std::move(asked));
  } else {
    session = co_await provider_.attach(*ref, std::move(asked));
  }
  if (!session.ok()) {
    co_return errorResponse(session.error());
  }
  if (!webSocket) {
    co_return co_await spdy_->command(exchange, **session, *options);
  }
  auto socket = co_await exchange.acceptWebSocket(webSocketCommandProtocols());
  if (!socket.ok()) {
    (*session)->cancel();
    co_return errorResponse(socket.error());
  }
  auto peer = makeWebSocketPeer(std::move(*socket), options->command);
  co_await bridgeCommand(*peer, **session);
  co_return server::Response{};
}

asio::awaitable<server::Response> KubeletApi::portForward(server::Exchange& exchange) {
  const auto& request = exchange.request();
  auto target = parsePodTarget(request.path, "/portForward/", false);
  if (!target.ok()) {
    co_return errorResponse(target.error());
  }
  const std::string noContainer;
  auto ref = findPod(target->ns, target->pod, target->uid, noContainer);
  if (!ref.ok()) {
    co_return errorResponse(ref.error());
  }
  if ((!isSpdyUpgrade(request) && !exchange.isWebSocketUpgrade()) || spdy_ == nullptr) {
    co_return text(400,
                   "port-forward needs an upgrade to SPDY/3.1 (portforward.k8s.io) or a WebSocket "
                   "tunnel (SPDY/3.1+portforward.k8s.io)");
  }
  co_return co_await spdy_->portForward(exchange, provider_, *ref);
}

asio::awaitable<Result<json::value>> KubeletApi::summary() {
  auto stats = co_await provider_.statsSummary();
  if (!stats.ok()) {
    co_return stats.error();
  }
  // Only pods bound to this node, as the cluster names them.
  if (auto* pods = stats->is_object() ? stats->as_object().if_contains("pods") : nullptr;
      pods != nullptr && pods->is_array()) {
    json::array kept;
    for (auto& p : pods->as_array()) {
      const auto ns = kube::stringAt(p, {"podRef", "namespace"});
      const auto name = kube::stringAt(p, {"podRef", "name"});
      if (pods_.pod(ns, name)) {
        kept.push_back(std::move(p));
      }
    }
    *pods = std::move(kept);
  }
  co_return completeSummary(std::move(*stats), options_.nodeName, options_.startTime);
}

asio::awaitable<server::Response> KubeletApi::statsSummary(server::Exchange&) {
  auto doc = co_await summary();
  if (!doc.ok()) {
    co_return errorResponse(doc.error());
  }
  co_return server::Response{200, kJson, json::serialize(*doc), {}};
}

asio::awaitable<server::Response> KubeletApi::resourceMetrics(server::Exchange&) {
  auto doc = co_await summary();
  if (!doc.ok()) {
    // metrics-server reads resource_scrape_error; the error goes to our log.
    spdlog::warn("msg=\"resource metrics unavailable\" error=\"{}\"", doc.error().toString());
    co_return server::Response{
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container "
        "metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n",
        {}};
  }
  co_return server::Response{
      200, "text/plain; version=0.0.4; charset=utf-8", renderResourceMetrics(*doc), {}};
}

server::Response KubeletApi::podList() const {
  json::array items;
  for (const auto& pod : pods_.pods()) {
    items.push_back(*pod);
  }
  return server::Response{200, kJson, json::serialize(podListOf(std::move(items))), {}};
}

asio::awaitable<server::Response> KubeletApi::runningPods() {
  auto listed = co_await provider_.listPods();
  if (!listed.ok()) {
    co_return errorResponse(listed.error());
  }
  json::array items;
  for (const auto& pod : *listed) {
    if (kube::stringAt(pod, {"status", "phase"}) != "Running") {
      continue;
    }
    json::array containers;
    if (const auto* list = kube::arrayAt(pod, {"spec", "containers"})) {
      for (const auto& c : *list) {
        containers.push_back(json::object{{"name", kube::stringAt(c, {"name"})},
                                          {"image", kube::stringAt(c, {"image"})},
                                          {"resources", json::object{}}});
      }
    }
    items.push_back(json::object{
        {"metadata", json::object{{"name", kube::stringAt(pod, {"metadata", "name"})},
                                  {"namespace", kube::stringAt(pod, {"metadata", "namespace"})},
                                  {"uid", kube::stringAt(pod, {"metadata", "uid"})},
                                  {"creationTimestamp", nullptr}}},
        {"spec", json::object{{"containers", std::move(containers)}}},
        {"status", json::object{}},
    });
  }
  co_return server::Response{200, kJson, json::serialize(podListOf(std::move(items))), {}};
}

}  // namespace burstlet::kubelet
