// Connector: what the HTTP transport (transport.h) and the WebSocket client (websocket_client.h)
// share for one API server, so that both reach it the same way: its parsed address, the TLS
// context (CA, verification, client certificate; rebuilt when the credential's certificate
// changes), fresh connections under a deadline, and the credential applied to a request (bearer
// token or basic auth, extra headers, then the RequestSigner over the final request).
// Internal to src/kube.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/result.h"
#include "kube/config.h"
#include "kube/credentials.h"

namespace burstlet::kube {

namespace asio = boost::asio;

// Connect, TLS handshake and (for send) whole-exchange deadline when none is given.
inline constexpr std::chrono::seconds kDefaultTimeout{30};

struct ServerAddress {
  bool tls = true;
  std::string host;  // without brackets
  std::string port;
  std::string basePath;  // "" or "/prefix" without trailing slash
  std::string hostHeader;
  bool hostIsIp = false;
};

// The server URL of a ClientConfig, checked: https or http, a host. kInvalid "InvalidServer"
// (the message shows the URL without any user:password part).
Result<ServerAddress> parseServer(const std::string& raw);

// An I/O failure as an Error. `reason` for plain failures: "ConnectFailed" when nothing was
// sent yet (always safe to retry), "ConnectionLost" once the request may have reached the
// server. Timeouts are kTimeout, cancellation kCancelled, TLS failures kUnavailable "TLSError".
Error transportError(const boost::system::error_code& ec, std::string_view during,
                     std::string_view reason = "ConnectionLost");

using PlainStream = boost::beast::tcp_stream;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// One connection to the server.
struct Connection {
  // Declared first: the TLS stream refers to it, so it must be destroyed last.
  std::shared_ptr<asio::ssl::context> context;
  std::variant<std::unique_ptr<PlainStream>, std::unique_ptr<TlsStream>> stream;
  uint64_t generation = 0;  // TLS context generation it was made with
  boost::beast::flat_buffer buffer;

  boost::beast::tcp_stream& lowest();
  // True when the peer closed an idle connection (or sent something unexpected).
  bool stale();
};

class Connector {
 public:
  // Fails (kInvalid) on a malformed server URL or unusable TLS material. `credentials` may be
  // null (anonymous).
  static Result<std::shared_ptr<Connector>> create(asio::any_io_executor executor,
                                                   const ClientConfig& config,
                                                   std::shared_ptr<CredentialSource> credentials);
  Connector(asio::any_io_executor executor, ServerAddress address, ClientConfig config,
            std::shared_ptr<CredentialSource> credentials);

  const ServerAddress& address() const { return address_; }
  const ClientConfig& config() const { return config_; }
  const asio::any_io_executor& executor() const { return executor_; }

  // The credential for the next request; std::nullopt when anonymous. A client certificate other
  // than the TLS context's rebuilds the context first (connections made since carry it).
  Result<std::optional<Credential>> credential();
  // Puts `credential` on `request` (Authorization, its extra headers), then lets its signer sign
  // the request exactly as it will be written: call it last, once the target, every other
  // header and the body (`body`, "" for none) are final.
  static Status authorize(const Credential& credential,
                          boost::beast::http::request_header<>& request, std::string_view body);

  // A new connection within `timeout` (resolve, connect and, for https, the TLS handshake), its
  // sockets bound to `executor` (one reader and one writer at a time need a strand).
  asio::awaitable<Result<std::unique_ptr<Connection>>> connect(std::chrono::milliseconds timeout,
                                                               asio::any_io_executor executor);

  // The TLS context generation: connections of an older one carry an old client identity.
  uint64_t generation() const;

 private:
  Status init();
  Status rebuildContextLocked(const std::string& certPem, const std::string& keyPem);

  asio::any_io_executor executor_;
  ServerAddress address_;
  ClientConfig config_;
  std::shared_ptr<CredentialSource> credentials_;

  mutable std::mutex mu_;  // guards context_, contextCertPem_, generation_
  std::shared_ptr<asio::ssl::context> context_;
  std::string contextCertPem_;
  uint64_t generation_ = 0;
};

}  // namespace burstlet::kube
