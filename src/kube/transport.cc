#include "kube/transport.h"

#include <fmt/format.h>
#include <poll.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <deque>
#include <mutex>
#include <variant>

#include "common/base64.h"
#include "common/gzip.h"

namespace burstlet::kube {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kDefaultTimeout = std::chrono::seconds(30);
constexpr size_t kStreamChunk = size_t{64} * 1024;

struct ServerAddress {
  bool tls = true;
  std::string host;  // without brackets
  std::string port;
  std::string basePath;  // "" or "/prefix" without trailing slash
  std::string hostHeader;
  bool hostIsIp = false;
};

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

// reason for plain I/O failures: "ConnectFailed" when nothing was sent yet (always safe to
// retry), "ConnectionLost" once the request may have reached the server.
Error transportError(const error_code& ec, std::string_view during,
                     std::string_view reason = "ConnectionLost") {
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

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection to the server. Owned by one exchange at a time; idle ones wait in the pool.
struct Connection {
  std::variant<std::unique_ptr<PlainStream>, std::unique_ptr<TlsStream>> stream;
  std::shared_ptr<ssl::context> context;  // keeps the TLS context alive for the stream
  uint64_t generation = 0;                // TLS context generation it was made with
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(*s); },
                      stream);
  }

  // True when the peer closed an idle connection (or sent something unexpected).
  bool stale() {
    auto& sock = lowest().socket();
    if (!sock.is_open()) {
      return true;
    }
    pollfd p{sock.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }
};

class BeastTransport;

class BeastResponseStream final : public ResponseStream {
 public:
  BeastResponseStream(std::shared_ptr<Connection> conn,
                      std::unique_ptr<http::response_parser<http::buffer_body>> parser,
                      std::chrono::milliseconds idle, asio::any_io_executor readerExecutor)
      : conn_(std::move(conn)),
        parser_(std::move(parser)),
        idle_(idle),
        readerExecutor_(std::move(readerExecutor)) {}

  ~BeastResponseStream() override {
    error_code ec;
    conn_->lowest().socket().close(ec);
  }

  unsigned status() const override { return parser_->get().result_int(); }

  asio::awaitable<Result<std::optional<std::string>>> read() override {
    if (!buffer_) {
      buffer_ = std::make_unique_for_overwrite<char[]>(kStreamChunk);
    }
    while (true) {
      if (cancelled_) {
        co_return Error::make(ErrorCode::kCancelled, "Cancelled", "stream cancelled");
      }
      if (parser_->is_done()) {
        co_return endOfBody();
      }
      parser_->get().body().data = buffer_.get();
      parser_->get().body().size = kStreamChunk;
      conn_->lowest().expires_after(idle_);
      error_code ec;
      co_await std::visit(
          [&](auto& s) {
            return http::async_read_some(*s, conn_->buffer, *parser_,
                                         asio::redirect_error(asio::use_awaitable, ec));
          },
          conn_->stream);
      if (ec == http::error::need_buffer) {
        ec = {};
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof) {
        co_return endOfBody();
      }
      if (ec) {
        if (cancelled_) {
          co_return Error::make(ErrorCode::kCancelled, "Cancelled", "stream cancelled");
        }
        co_return transportError(ec, "reading stream");
      }
      const size_t n = kStreamChunk - parser_->get().body().size;
      if (n == 0) {
        continue;
      }
      if (!gzip_) {
        co_return std::optional<std::string>(std::string(buffer_.get(), n));
      }
      std::string decoded;
      auto fed = gzip_->feed(std::string_view(buffer_.get(), n), &decoded);
      if (!fed.ok()) {
        co_return std::move(fed).error();
      }
      if (!decoded.empty()) {
        co_return std::optional<std::string>(std::move(decoded));
      }
    }
  }

  // Decodes the body from here on (Content-Encoding: gzip).
  void decodeGzip() { gzip_ = std::make_unique<GzipDecoder>(); }

  void cancel() override {
    // Runs on the reader's executor so it never races the pending read's completion.
    std::weak_ptr<Connection> weak = conn_;
    cancelled_ = true;
    asio::post(readerExecutor_, [weak] {
      if (auto c = weak.lock()) {
        error_code ec;
        c->lowest().socket().cancel(ec);
      }
    });
  }

 private:
  std::shared_ptr<Connection> conn_;
  std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
  std::chrono::milliseconds idle_;
  asio::any_io_executor readerExecutor_;
  std::atomic<bool> cancelled_{false};
  std::unique_ptr<char[]> buffer_;  // body bytes land here, reused across reads
  std::unique_ptr<GzipDecoder> gzip_;

  Result<std::optional<std::string>> endOfBody() const {
    if (gzip_ && !gzip_->finished()) {
      return Error::make(ErrorCode::kInternal, "MalformedGzip", "gzip body is truncated");
    }
    return std::optional<std::string>{};
  }
};

class BeastTransport final : public Transport {
 public:
  BeastTransport(asio::any_io_executor executor, ServerAddress address, ClientConfig config,
                 std::shared_ptr<CredentialSource> credentials, TransportOptions options)
      : executor_(std::move(executor)),
        address_(std::move(address)),
        config_(std::move(config)),
        credentials_(std::move(credentials)),
        options_(options) {}

  Status init() {
    if (!address_.tls) {
      return okStatus();
    }
    return rebuildContext(config_.clientCertPem, config_.clientKeyPem);
  }

  asio::awaitable<Result<HttpResponse>> send(HttpRequest request) override {
    auto prepared = prepare(request, options_.compression);
    if (!prepared.ok()) {
      co_return std::move(prepared).error();
    }
    const auto timeout = request.timeout.count() > 0
                             ? request.timeout
                             : std::chrono::milliseconds(
                                   config_.timeout.count() > 0 ? config_.timeout : kDefaultTimeout);
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      auto conn = co_await acquire(reused, timeout);
      if (!conn.ok()) {
        co_return std::move(conn).error();
      }
      auto response = co_await exchange(**conn, *prepared, timeout);
      if (!response.ok()) {
        // A pooled connection the server closed under us: one retry on a fresh connection.
        // The request may have reached the server only for idempotent methods to be safe.
        if (reused && attempt == 0 && idempotent(request.method) &&
            response.error().code == ErrorCode::kUnavailable) {
          continue;
        }
        co_return std::move(response).error();
      }
      auto& [res, keepAlive] = *response;
      if (keepAlive) {
        release(std::move(*conn));
      }
      co_return std::move(res);
    }
  }

  asio::awaitable<Result<std::unique_ptr<ResponseStream>>> stream(HttpRequest request) override {
    // Streams ask for compression only when told to: the API server does not compress
    // watches, but does compress a large list read as a stream.
    auto prepared = prepare(request, request.compressedStream && options_.compression);
    if (!prepared.ok()) {
      co_return std::move(prepared).error();
    }
    const auto idle =
        request.timeout.count() > 0 ? request.timeout : std::chrono::milliseconds(kDefaultTimeout);
    // Streams get a fresh connection: they hold it for minutes.
    auto conn = co_await connect(std::min<std::chrono::milliseconds>(idle, kDefaultTimeout));
    if (!conn.ok()) {
      co_return std::move(conn).error();
    }
    std::shared_ptr<Connection> shared(std::move(*conn));
    error_code ec;
    shared->lowest().expires_after(std::min<std::chrono::milliseconds>(idle, kDefaultTimeout));
    co_await std::visit(
        [&](auto& s) {
          return http::async_write(*s, *prepared, asio::redirect_error(asio::use_awaitable, ec));
        },
        shared->stream);
    if (ec) {
      co_return transportError(ec, "sending request");
    }
    auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
    parser->body_limit(boost::none);
    // A watch sends one chunk per event. Without eager parsing every read() would stop at a
    // chunk boundary and cost a trip through the scheduler (an epoll_wait) per event; eager,
    // one read() takes all buffered chunks up to the buffer's size.
    parser->eager(true);
    co_await std::visit(
        [&](auto& s) {
          return http::async_read_header(*s, shared->buffer, *parser,
                                         asio::redirect_error(asio::use_awaitable, ec));
        },
        shared->stream);
    if (ec) {
      co_return transportError(ec, "reading response headers");
    }
    const auto encoding = parser->get()[http::field::content_encoding];
    const bool gzip = beast::iequals(encoding, "gzip");
    if (!gzip && !encoding.empty() && !beast::iequals(encoding, "identity")) {
      co_return Error::make(ErrorCode::kInternal, "UnsupportedContentEncoding",
                            fmt::format("response has Content-Encoding {:?}, which was not asked "
                                        "for",
                                        std::string(encoding)));
    }
    auto exec = co_await asio::this_coro::executor;
    auto out =
        std::make_unique<BeastResponseStream>(std::move(shared), std::move(parser), idle, exec);
    if (gzip) {
      out->decodeGzip();
    }
    co_return std::unique_ptr<ResponseStream>(std::move(out));
  }

 private:
  using Request = http::request<http::string_body>;

  static bool idempotent(Verb v) {
    return v == Verb::get || v == Verb::head || v == Verb::put || v == Verb::delete_ ||
           v == Verb::options;
  }

  // Lets the credential's signer see the request exactly as it will be written, and sends
  // the headers it added or changed.
  static Status signRequest(const RequestSigner& signer, Request& req) {
    SignableRequest signable{req.method_string(), req.target(), req.body(), {}};
    for (const auto& field : req) {
      signable.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    const auto before = signable.headers;
    BURSTLET_RETURN_IF_ERROR(signer.sign(signable));
    for (size_t i = 0; i < signable.headers.size(); ++i) {
      const auto& [name, value] = signable.headers[i];
      if (i >= before.size() || before[i] != signable.headers[i]) {
        req.set(name, value);
      }
    }
    return okStatus();
  }

  Result<Request> prepare(const HttpRequest& in, bool acceptGzip) {
    Request req{in.method, address_.basePath + in.target, 11};
    req.set(http::field::host, address_.hostHeader);
    req.set(http::field::user_agent, config_.userAgent);
    req.set(http::field::accept, in.accept);
    if (!in.contentType.empty()) {
      req.set(http::field::content_type, in.contentType);
    }
    if (acceptGzip) {
      // The API server compresses large non-watch responses (APIResponseCompression): a
      // 10,000-pod list shrinks from 51 MB to 2 MB, which is faster end to end even on
      // loopback, where TLS on 51 MB costs more than gzip on both sides.
      req.set(http::field::accept_encoding, "gzip");
    }
    for (const auto& [k, v] : in.headers) {
      req.set(k, v);
    }
    std::shared_ptr<const RequestSigner> signer;
    if (credentials_) {
      auto cred = credentials_->current();
      if (!cred.ok()) {
        return std::move(cred).error();
      }
      signer = cred->signer;
      if (!cred->bearerToken.empty()) {
        req.set(http::field::authorization, "Bearer " + cred->bearerToken);
      } else if (!cred->basicAuth.empty()) {
        req.set(http::field::authorization, "Basic " + base64Encode(cred->basicAuth));
      }
      for (const auto& [k, v] : cred->headers) {
        req.set(k, v);
      }
      if (address_.tls && !cred->clientCertPem.empty()) {
        std::lock_guard lock(mu_);
        if (cred->clientCertPem != contextCertPem_) {
          BURSTLET_RETURN_IF_ERROR(rebuildContextLocked(cred->clientCertPem, cred->clientKeyPem));
        }
      }
    }
    req.keep_alive(true);
    req.body() = in.body;
    req.prepare_payload();
    if (signer) {
      BURSTLET_RETURN_IF_ERROR(signRequest(*signer, req));
    }
    return req;
  }

  Status rebuildContext(const std::string& certPem, const std::string& keyPem) {
    std::lock_guard lock(mu_);
    return rebuildContextLocked(certPem, keyPem);
  }

  Status rebuildContextLocked(const std::string& certPem, const std::string& keyPem) {
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
      const std::string name =
          config_.tlsServerName.empty() ? address_.host : config_.tlsServerName;
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
    idle_.clear();  // connections made with the old identity
    return okStatus();
  }

  asio::awaitable<Result<std::unique_ptr<Connection>>> acquire(bool& reused,
                                                               std::chrono::milliseconds timeout) {
    {
      std::lock_guard lock(mu_);
      while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (c->generation == generation_ && !c->stale()) {
          reused = true;
          co_return std::move(c);
        }
      }
    }
    reused = false;
    co_return co_await connect(timeout);
  }

  void release(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mu_);
    if (c->generation == generation_ && idle_.size() < options_.maxIdleConnections) {
      idle_.push_back(std::move(c));
    }
  }

  asio::awaitable<Result<std::unique_ptr<Connection>>> connect(std::chrono::milliseconds timeout) {
    auto conn = std::make_unique<Connection>();
    std::shared_ptr<ssl::context> ctx;
    {
      std::lock_guard lock(mu_);
      ctx = context_;
      conn->generation = generation_;
    }
    tcp::resolver resolver(executor_);
    error_code ec;
    auto endpoints = co_await resolver.async_resolve(address_.host, address_.port,
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return transportError(ec, fmt::format("resolving {}", address_.host), "ConnectFailed");
    }
    if (address_.tls) {
      auto s = std::make_unique<TlsStream>(executor_, *ctx);
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
      conn->stream = std::move(s);
      conn->context = std::move(ctx);
    } else {
      auto s = std::make_unique<PlainStream>(executor_);
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

  // Writes the request and reads the whole response. Returns the response and whether the
  // connection may be reused.
  asio::awaitable<Result<std::pair<HttpResponse, bool>>> exchange(
      Connection& conn, Request& req, std::chrono::milliseconds timeout) {
    error_code ec;
    conn.lowest().expires_after(timeout);
    co_await std::visit(
        [&](auto& s) {
          return http::async_write(*s, req, asio::redirect_error(asio::use_awaitable, ec));
        },
        conn.stream);
    if (ec) {
      co_return transportError(ec, "sending request");
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.maxBodyBytes);
    co_await std::visit(
        [&](auto& s) {
          return http::async_read(*s, conn.buffer, parser,
                                  asio::redirect_error(asio::use_awaitable, ec));
        },
        conn.stream);
    if (ec == http::error::body_limit) {
      // Permanent for this request: never retried.
      co_return Error::make(
          ErrorCode::kInternal, "ResponseTooLarge",
          fmt::format("response body exceeds {} bytes; use paging", options_.maxBodyBytes));
    }
    if (ec) {
      co_return transportError(ec, "reading response");
    }
    auto msg = parser.release();
    HttpResponse out;
    out.status = msg.result_int();
    out.contentType = std::string(msg[http::field::content_type]);
    if (auto ra = msg[http::field::retry_after]; !ra.empty()) {
      int secs = 0;
      auto [p, e] = std::from_chars(ra.data(), ra.data() + ra.size(), secs);
      if (e == std::errc() && secs >= 0) {
        out.retryAfter = std::chrono::seconds(secs);
      }
    }
    const bool keepAlive = msg.keep_alive();
    const auto encoding = msg[http::field::content_encoding];
    if (encoding.empty() || beast::iequals(encoding, "identity")) {
      out.body = std::move(msg.body());
    } else if (beast::iequals(encoding, "gzip")) {
      auto decoded = gunzip(msg.body(), options_.maxBodyBytes);
      if (!decoded.ok()) {
        co_return std::move(decoded).error();
      }
      out.body = std::move(*decoded);
    } else {
      co_return Error::make(ErrorCode::kInternal, "UnsupportedContentEncoding",
                            fmt::format("response has Content-Encoding {:?}, which was not asked "
                                        "for",
                                        std::string(encoding)));
    }
    co_return std::make_pair(std::move(out), keepAlive);
  }

  asio::any_io_executor executor_;
  ServerAddress address_;
  ClientConfig config_;
  std::shared_ptr<CredentialSource> credentials_;
  TransportOptions options_;

  std::mutex mu_;  // guards context_, contextCertPem_, generation_, idle_
  std::shared_ptr<ssl::context> context_;
  std::string contextCertPem_;
  uint64_t generation_ = 0;
  std::deque<std::unique_ptr<Connection>> idle_;
};

}  // namespace

Result<std::unique_ptr<Transport>> makeBeastTransport(asio::any_io_executor executor,
                                                      const ClientConfig& config,
                                                      std::shared_ptr<CredentialSource> credentials,
                                                      TransportOptions options) {
  auto address = parseServer(config.server);
  if (!address.ok()) {
    return std::move(address).error();
  }
  auto t = std::make_unique<BeastTransport>(std::move(executor), std::move(*address), config,
                                            std::move(credentials), options);
  BURSTLET_RETURN_IF_ERROR(t->init());
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace burstlet::kube
