#include "daemon/admission_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "kube/config.h"

namespace burstlet::daemon {

namespace asio = boost::asio;

asio::awaitable<Result<boost::json::value>> ApiOwnerSource::read(const kube::ResourceRef& resource,
                                                                 std::string ns, std::string name) {
  kube::HttpRequest request{kube::Verb::get, resource.path(ns, name)};
  request.timeout = perRead_;
  std::string what = fmt::format("get {} {}/{}", resource.resource, ns, name);
  auto response = co_await cluster_.call(std::move(request), true, what);
  if (!response.ok()) {
    co_return std::move(response).error();
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(response->body, ec);
  if (ec || !v.is_object()) {
    co_return Error::make(ErrorCode::kInternal, "InvalidResponse",
                          fmt::format("{}: response is not a JSON object", what));
  }
  co_return v;
}

namespace {

// Three reads at most per review, under the registration's 5 s timeout.
constexpr std::chrono::milliseconds kOwnerReadTimeout{1000};

}  // namespace

Result<AdmissionParts> makeAdmission(const asio::any_io_executor& executor, const Config& config,
                                     const kube::ClientConfig& clusterConfig,
                                     const std::string& nodeIP, admission::BackendCheck check,
                                     const Clock& clock) {
  const auto& a = config.admission;
  AdmissionParts parts;
  kube::RestOptions readOptions;
  readOptions.retry.maxRetries = 0;
  readOptions.clock = &clock;
  auto client = kube::RestClient::create(executor, clusterConfig, readOptions);
  if (!client.ok()) {
    return std::move(client).error();
  }
  parts.client = std::move(*client);
  std::vector<std::string> hosts = a.hosts.empty() ? std::vector<std::string>{nodeIP} : a.hosts;
  server::Options options;
  options.clock = &clock;
  options.maxBodyBytes = size_t{3} << 20;  // the API server's own request limit is 3 MiB
  server::TlsOptions tls;
  if (!a.certFile.empty()) {
    tls.certFile = a.certFile;
    tls.keyFile = a.keyFile;
  } else {
    // A stand-in until the certificates kept in the Secret are loaded: WebhookCertificates::run
    // starts the listener then.
    tls.selfSignedHosts = hosts;
  }
  options.tls = tls;
  auto server = server::HttpServer::create(executor, a.listen, options);
  if (!server.ok()) {
    return std::move(server).error();
  }
  parts.server = std::move(*server);
  if (!a.caFile.empty()) {
    auto ca = kube::readFileNamed(a.caFile, "admission.caFile");
    if (!ca.ok()) {
      return std::move(ca).error();
    }
    parts.registration.caBundlePem = std::move(*ca);
  } else {
    // burstlet's own CA, kept in a Secret: WebhookCertificates::run registers its bundle.
    parts.certificates =
        std::make_unique<WebhookCertificates>(webhookCertOptions(config, hosts), clock);
  }
  parts.registration.name = "burstlet-" + config.nodeName;
  parts.registration.url =
      !a.url.empty()
          ? a.url
          : fmt::format("https://{}:{}{}",
                        hosts.front().find(':') != std::string::npos ? "[" + hosts.front() + "]"
                                                                     : hosts.front(),
                        parts.server->port(), admission::kWebhookPath);
  parts.registration.skipNamespaces = a.skipNamespaces;
  // burstlet's own namespace is never sent to the webhook.
  if (std::string own = ownNamespace(a);
      std::find(a.skipNamespaces.begin(), a.skipNamespaces.end(), own) == a.skipNamespaces.end()) {
    parts.registration.skipNamespaces.push_back(std::move(own));
  }
  parts.owners = std::make_unique<ApiOwnerSource>(*parts.client, kOwnerReadTimeout);
  parts.caches = std::make_unique<AdmissionCaches>(*parts.client, *parts.owners,
                                                   admission::PlacementOptions{}, clock);
  parts.webhook = std::make_unique<admission::AdmissionWebhook>(
      parts.caches->owners(), admission::PlacementOptions{}, std::move(check),
      parts.caches->profileSources());
  auto* webhook = parts.webhook.get();
  parts.server->route(std::string(admission::kWebhookPath),
                      [webhook](server::Exchange& exchange) -> asio::awaitable<server::Response> {
                        co_return co_await webhook->handle(exchange.request());
                      },
                      {"POST"});
  return parts;
}

asio::awaitable<void> keepRegistered(kube::RestClient& cluster,
                                     admission::Registration registration, const Clock& clock,
                                     const Latch& stop) {
  while (!stop.isSet()) {
    admission::Registration r = registration;
    const Status s = co_await admission::ensureRegistration(cluster, std::move(r));
    if (s.ok()) {
      co_return;
    }
    spdlog::warn("msg=\"admission webhook not registered yet\" configuration={} error=\"{}\"",
                 registration.name, s.error().toString());
    if (!co_await sleepFor(clock, std::chrono::seconds(10), &stop)) {
      co_return;
    }
  }
}

}  // namespace burstlet::daemon
