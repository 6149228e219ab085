#include "network/proxy_credentials.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "network/sidecar.h"

namespace burstlet::network {

namespace asio = boost::asio;
namespace json = boost::json;

ProxyCredentials::ProxyCredentials(kube::RestClient& cluster, provider::Provider& provider,
                                   ProxyCredentialsOptions options, const Clock& clock)
    : cluster_(cluster), provider_(provider), options_(std::move(options)), clock_(clock) {}

asio::awaitable<Result<Clock::WallTime>> ProxyCredentials::refresh() {
  std::string ca = options_.caPem;
  if (ca.empty()) {
    const std::string ns = options_.serviceAccountNamespace;
    const std::string name = "kube-root-ca.crt";
    auto cm = co_await cluster_.get(kube::resources::kConfigMaps, ns, name);
    if (!cm.ok()) {
      co_return std::move(cm).error();
    }
    ca = kube::stringAt(*cm, {"data", "ca.crt"});
    if (ca.empty()) {
      co_return Error::make(ErrorCode::kNotFound, "NoClusterCA",
                            fmt::format("ConfigMap {}/kube-root-ca.crt holds no ca.crt", ns));
    }
  }
  const json::value request =
      json::object{{"apiVersion", "authentication.k8s.io/v1"},
                   {"kind", "TokenRequest"},
                   {"spec", json::object{{"expirationSeconds", options_.tokenLifetime.count()}}}};
  const std::string ns = options_.serviceAccountNamespace;
  const std::string subresource = "token";
  const std::string account = options_.serviceAccount;
  auto answer = co_await cluster_.create(kube::resources::kServiceAccounts, ns, request,
                                         subresource, account);
  if (!answer.ok()) {
    co_return Error::make(
        answer.error().code, answer.error().reason,
        fmt::format("token for ServiceAccount {}/{}: {}", ns, account, answer.error().message));
  }
  std::string token = kube::stringAt(*answer, {"status", "token"});
  if (token.empty()) {
    co_return Error::make(ErrorCode::kInternal, "NoToken",
                          fmt::format("the TokenRequest for {}/{} returned no token", ns, account));
  }
  const auto now = clock_.now();
  auto expires = parseRfc3339(kube::stringAt(*answer, {"status", "expirationTimestamp"}))
                     .value_or(now + options_.tokenLifetime);
  std::map<std::string, std::string> data{
      {kCredentialToken, std::move(token)},
      {kCredentialCA, std::move(ca)},
      {kCredentialServer, options_.apiServer.url()},
  };
  if (!options_.apiServer.serverName.empty()) {
    data[kCredentialServerName] = options_.apiServer.serverName;
  }
  const std::string purpose(kProxySecretPurpose);
  auto put = co_await provider_.putNodeSecret(purpose, std::move(data));
  if (!put.ok()) {
    co_return std::move(put).error();
  }
  co_return expires;
}

asio::awaitable<void> ProxyCredentials::run(const Latch& stop) {
  signals_.started.set();
  std::chrono::seconds retry{1};
  while (!stop.isSet()) {
    auto expires = co_await refresh();
    std::chrono::nanoseconds wait{};
    if (expires.ok()) {
      signals_.ready.set();
      retry = std::chrono::seconds(1);
      const auto left =
          std::chrono::duration_cast<std::chrono::nanoseconds>(*expires - clock_.now());
      wait = std::max<std::chrono::nanoseconds>(left - left / 5, std::chrono::seconds(10));
      spdlog::info("msg=\"network proxy credentials written\" renewIn={}s",
                   std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    } else {
      spdlog::warn("msg=\"network proxy credentials not written\" error=\"{}\" retryIn={}s",
                   expires.error().toString(), retry.count());
      wait = retry;
      retry = std::min<std::chrono::seconds>(retry * 2, std::chrono::minutes(1));
    }
    const bool due = co_await sleepFor(clock_, wait, &stop);
    if (!due) {
      break;
    }
  }
  signals_.stopped.set();
}

}  // namespace burstlet::network
