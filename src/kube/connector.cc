#include "kube/connector.h"

#include <fmt/format.h>
#include <poll.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include "common/base64.h"

namespace burstlet::kube {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

// The server URL for messages, without any user:password part.
std::string displayUrl(const std::string& server) {
  const auto scheme = server.find("://");
  const auto at = server.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  const auto slash = server.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) {
    return server;
  }
  return (scheme == std::string::npos ? "" : server.substr(0, scheme + 3)) + server.substr(at + 1);
}

}  // namespace

Result<ServerAddress> parseServer(const std::string& raw) {
  const std::string server = displayUrl(raw);
  auto url = boost::urls::parse_uri(raw);
  if (!url) {
    return Error::make(ErrorCode::kInvalid, "InvalidServer",
                       fmt::format("server URL \"{}\" is not a URL", server));
  }
  ServerAddress a;
  if (url->scheme() == "https") {
    a.tls = true;
  } else if (url->scheme() == "http") {
    a.tls = false;
  } else {
    return Error::make(ErrorCode::kInvalid, "InvalidServer",
                       fmt::format("server URL \"{}\": scheme must be https or http", server));
  }
  a.host = std::string(url->host_address());
  if (a.host.empty()) {
    return Error::make(ErrorCode::kInvalid, "InvalidServer",
                       fmt::format("server URL \"{}\" has no host", server));
  }
  a.hostIsIp = url->host_type() == boost::urls::host_type::ipv4 ||
               url->host_type() == boost::urls::host_type::ipv6;
  a.port = url->has_port() ? std::string(url->port()) : (a.tls ? "443" : "80");
  a.basePath = std::string(url->encoded_path());
  while (!a.basePath.empty() && a.basePath.back() == '/') {
    a.basePath.pop_back();
  }
  const bool v6 = url->host_type() == boost::urls::host_type::ipv6;
  a.hostHeader = (v6 ? "[" + a.host + "]" : a.host) + (url->has_port() ? ":" + a.port : "");
  return a;
}

Error transportError(const error_code& ec, std::string_view during, std::string_view reason) {
  if (ec == beast::error::timeout) {
    return Error::make(ErrorCode::kTimeout, "Timeout",
                       fmt::format("{}: deadline exceeded", during));
  }
  if (ec == asio::error::operation_aborted) {
    return Error::make(ErrorCode::kCancelled, "Cancelled", fmt::format("{}: cancelled", during));
  }
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == asio::ssl::error::get_stream_category()) {
    return Error::make(ErrorCode::kUnavailable, "TLSError",
                       fmt::format("{}: TLS: {}", during, ec.message()));
  }
  return Error::make(ErrorCode::kUnavailable, std::string(reason),
                     fmt::format("{}: {}", during, ec.message()));
}

beast::tcp_stream& Connection::lowest() {
  return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(*s); },
                    stream);
}

bool Connection::stale() {
  auto& sock = lowest().socket();
  if (!sock.is_open()) {
    return true;
  }
  pollfd p{sock.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

Result<std::shared_ptr<Connector>> Connector::create(
    asio::any_io_executor executor, const ClientConfig& config,
    std::shared_ptr<CredentialSource> credentials) {
  auto address = parseServer(config.server);
  if (!address.ok()) {
    return std::move(address).error();
  }
  auto c = std::make_shared<Connector>(std::move(executor), std::move(*address), config,
                                       std::move(credentials));
  BURSTLET_RETURN_IF_ERROR(c->init());
  return c;
}

Connector::Connector(asio::any_io_executor executor, ServerAddress address, ClientConfig config,
                     std::shared_ptr<CredentialSource> credentials)
    : executor_(std::move(executor)),
      address_(std::move(address)),
      config_(std::move(config)),
      credentials_(std::move(credentials)) {}

Status Connector::init() {
  if (!address_.tls) {
    return okStatus();
  }
  std::lock_guard lock(mu_);
  return rebuildContextLocked(config_.clientCertPem, config_.clientKeyPem);
}

uint64_t Connector::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

Result<std::optional<Credential>> Connector::credential() {
  if (!credentials_) {
    return std::optional<Credential>();
  }
  auto cred = credentials_->current();
  if (!cred.ok()) {
    return std::move(cred).error();
  }
  if (address_.tls && !cred->clientCertPem.empty()) {
    std::lock_guard lock(mu_);
    if (cred->clientCertPem != contextCertPem_) {
      BURSTLET_RETURN_IF_ERROR(rebuildContextLocked(cred->clientCertPem, cred->clientKeyPem));
    }
  }
  return std::optional<Credential>(std::move(*cred));
}

Status Connector::authorize(const Credential& credential, http::request_header<>& request,
                            std::string_view body) {
  if (!credential.bearerToken.empty()) {
    request.set(http::field::authorization, "Bearer " + credential.bearerToken);
  } else if (!credential.basicAuth.empty()) {
    request.set(http::field::authorization, "Basic " + base64Encode(credential.basicAuth));
  }
  for (const auto& [k, v] : credential.headers) {
    request.set(k, v);
  }
  if (!credential.signer) {
    return okStatus();
  }
  // The signer sees the request exactly as it will be written; what it added or changed is sent.
  SignableRequest signable{request.method_string(), request.target(), body, {}};
  for (const auto& field : request) {
    signable.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  const auto before = signable.headers;
  BURSTLET_RETURN_IF_ERROR(credential.signer->sign(signable));
  for (size_t i = 0; i < signable.headers.size(); ++i) {
    const auto& [name, value] = signable.headers[i];
    if (i >= before.size() || before[i] != signable.headers[i]) {
      request.set(name, value);
    }
  }
  return okStatus();
}

Status Connector::rebuildContextLocked(const std::string& certPem, const std::string& keyPem) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (config_.insecureSkipTlsVerify) {
    ctx->set_verify_mode(ssl::verify_none, ec);
  } else {
    ctx->set_verify_mode(ssl::verify_peer, ec);
    if (config_.caPem.empty()) {
      ctx->set_default_verify_paths(ec);
    } else {
      ctx->add_certificate_authority(asio::buffer(config_.caPem), ec);
      if (ec) {
        return Error::make(
            ErrorCode::kInvalid, "InvalidCA",
            fmt::format("{}: certificate authority: {}", config_.source, ec.message()));
      }
    }
    const std::string name = config_.tlsServerName.empty() ? address_.host : config_.tlsServerName;
    ctx->set_verify_callback(ssl::host_name_verification(name), ec);
  }
  if (!certPem.empty()) {
    ctx->use_certificate_chain(asio::buffer(certPem), ec);
    if (ec) {
      return Error::make(ErrorCode::kInvalid, "InvalidClientCertificate",
                         fmt::format("{}: client certificate: {}", config_.source, ec.message()));
    }
    ctx->use_private_key(asio::buffer(keyPem), ssl::context::pem, ec);
    if (ec) {
      // Never echo key material; the OpenSSL reason is enough.
      return Error::make(ErrorCode::kInvalid, "InvalidClientKey",
                         fmt::format("{}: client key: {}", config_.source, ec.message()));
    }
  }
  context_ = std::move(ctx);
  contextCertPem_ = certPem;
  ++generation_;
  return okStatus();
}

asio::awaitable<Result<std::unique_ptr<Connection>>> Connector::connect(
    std::chrono::milliseconds timeout, asio::any_io_executor executor) {
  auto conn = std::make_unique<Connection>();
  std::shared_ptr<ssl::context> ctx;
  {
    std::lock_guard lock(mu_);
    ctx = context_;
    conn->generation = generation_;
  }
  tcp::resolver resolver(executor);
  error_code ec;
  auto endpoints = co_await resolver.async_resolve(address_.host, address_.port,
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return transportError(ec, fmt::format("resolving {}", address_.host), "ConnectFailed");
  }
  if (address_.tls) {
    auto s = std::make_unique<TlsStream>(executor, *ctx);
    beast::get_lowest_layer(*s).expires_after(timeout);
    co_await beast::get_lowest_layer(*s).async_connect(
        endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return transportError(ec, fmt::format("connecting to {}", address_.hostHeader),
                               "ConnectFailed");
    }
    beast::get_lowest_layer(*s).socket().set_option(tcp::no_delay(true), ec);
    if (!address_.hostIsIp || !config_.tlsServerName.empty()) {
      const std::string& sni =
          config_.tlsServerName.empty() ? address_.host : config_.tlsServerName;
      SSL_set_tlsext_host_name(s->native_handle(), sni.c_str());
    }
    co_await s->async_handshake(ssl::stream_base::client,
                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return transportError(ec, fmt::format("TLS handshake with {}", address_.hostHeader));
    }
    conn->context = std::move(ctx);
    conn->stream = std::move(s);
  } else {
    auto s = std::make_unique<PlainStream>(executor);
    s->expires_after(timeout);
    co_await s->async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return transportError(ec, fmt::format("connecting to {}", address_.hostHeader),
                               "ConnectFailed");
    }
    s->socket().set_option(tcp::no_delay(true), ec);
    conn->stream = std::move(s);
  }
  co_return std::move(conn);
}

}  // namespace burstlet::kube
