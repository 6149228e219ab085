#include "kube/websocket_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <optional>

#include "kube/connector.h"
#include "kube/errors.h"

namespace burstlet::kube {

asio::awaitable<Result<WebSocketUpgrade>> Transport::websocket(WebSocketRequest request) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  co_return Error::make(ErrorCode::kNotSupported, "NotSupported",
                        fmt::format("WebSocket {}: this transport does not open WebSockets", path));
}

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using boost::system::error_code;
using Strand = asio::strand<asio::any_io_executor>;

// The request's path for messages: the query may carry a command line, which is the user's.
std::string pathOf(const std::string& target) { return target.substr(0, target.find('?')); }

template <typename T>
asio::awaitable<void> deliver(asio::awaitable<T> work, std::optional<T>* out) {
  out->emplace(co_await std::move(work));
}

// Runs `work` on `strand` and hands its result back. Through deliver(): co_spawn's own result
// passing needs a default-constructible type, which Result<T> is not.
template <typename T>
asio::awaitable<T> onStrand(Strand strand, asio::awaitable<T> work) {
  std::optional<T> out;
  auto op = deliver(std::move(work), &out);
  co_await asio::co_spawn(strand, std::move(op), asio::use_awaitable);
  co_return std::move(*out);
}

Error cancelledError() {
  return Error::make(ErrorCode::kCancelled, "Cancelled", "WebSocket cancelled");
}

// A failed read, write or close of an open WebSocket.
Error messageError(const error_code& ec, std::string_view during) {
  if (ec == beast::error::timeout) {
    return Error::make(ErrorCode::kTimeout, "Timeout",
                       fmt::format("WebSocket {}: the peer went silent", during));
  }
  if (ec == websocket::error::message_too_big) {
    return Error::make(ErrorCode::kInvalid, "MessageTooBig",
                       fmt::format("WebSocket {}: message over the size limit", during));
  }
  if (ec == asio::error::operation_aborted) {
    return cancelledError();
  }
  return Error::make(ErrorCode::kUnavailable, "ConnectionLost",
                     fmt::format("WebSocket {}: connection lost: {}", during, ec.message()));
}

// The I/O state of one WebSocket, shared by the operations in flight (each holds it until it
// ends, even past the connection object). Touched on the connection's strand only, but for
// `cancelled`.
template <class Next>
struct SocketState {
  SocketState(Next&& next, std::shared_ptr<ssl::context> ctx, const Strand& strand)
      : context(std::move(ctx)), ws(std::move(next)), writeTurn(strand) {
    // Never expires: waiters are woken by cancel() when a write ends.
    writeTurn.expires_at(asio::steady_timer::time_point::max());
  }

  std::shared_ptr<ssl::context> context;  // first: the TLS stream needs it to the end
  websocket::stream<Next> ws;
  beast::flat_buffer buffer;     // the reader's
  asio::steady_timer writeTurn;  // writers waiting while another writes (Beast takes one)
  bool writing = false;
  std::atomic<bool> cancelled{false};

  // Waits until no write of ours is in flight, then takes the turn; false when cancelled.
  asio::awaitable<bool> takeWriteTurn() {
    while (writing && !cancelled) {
      error_code ec;
      co_await writeTurn.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (cancelled) {
      co_return false;
    }
    writing = true;
    co_return true;
  }
  void giveWriteTurn() {
    writing = false;
    writeTurn.cancel();
  }
};

template <class Next>
asio::awaitable<Result<std::optional<std::string>>> readOn(std::shared_ptr<SocketState<Next>> s) {
  if (s->cancelled) {
    co_return cancelledError();
  }
  s->buffer.clear();
  error_code ec;
  const size_t n =
      co_await s->ws.async_read(s->buffer, asio::redirect_error(asio::use_awaitable, ec));
  static_cast<void>(n);
  if (s->cancelled) {
    co_return cancelledError();
  }
  if (ec == websocket::error::closed) {
    co_return std::optional<std::string>();
  }
  if (ec) {
    co_return messageError(ec, "read");
  }
  std::string message = beast::buffers_to_string(s->buffer.data());
  co_return std::optional<std::string>(std::move(message));
}

template <class Next>
asio::awaitable<Status> writeOn(std::shared_ptr<SocketState<Next>> s, std::string message) {
  const bool turn = co_await s->takeWriteTurn();
  if (!turn) {
    co_return cancelledError();
  }
  error_code ec;
  const size_t n = co_await s->ws.async_write(asio::buffer(message),
                                              asio::redirect_error(asio::use_awaitable, ec));
  static_cast<void>(n);
  s->giveWriteTurn();
  if (s->cancelled) {
    co_return cancelledError();
  }
  if (ec) {
    co_return messageError(ec, "write");
  }
  co_return okStatus();
}

template <class Next>
asio::awaitable<Status> closeOn(std::shared_ptr<SocketState<Next>> s) {
  const bool turn = co_await s->takeWriteTurn();
  if (!turn) {
    co_return cancelledError();
  }
  error_code ec;
  if (s->ws.is_open()) {
    const websocket::close_reason reason(websocket::close_code::normal);
    co_await s->ws.async_close(reason, asio::redirect_error(asio::use_awaitable, ec));
  }
  s->giveWriteTurn();
  if (s->cancelled) {
    co_return cancelledError();
  }
  if (ec && ec != websocket::error::closed) {
    co_return messageError(ec, "close");
  }
  co_return okStatus();
}

template <class Next>
class BeastWebSocket final : public WebSocketConnection {
 public:
  BeastWebSocket(std::shared_ptr<SocketState<Next>> state, Strand strand, std::string subprotocol)
      : state_(std::move(state)),
        strand_(std::move(strand)),
        subprotocol_(std::move(subprotocol)) {}
  ~BeastWebSocket() override { cancel(); }

  const std::string& subprotocol() const override { return subprotocol_; }

  asio::awaitable<Result<std::optional<std::string>>> read() override {
    return onStrand(strand_, readOn(state_));
  }
  asio::awaitable<Status> write(std::string message) override {
    return onStrand(strand_, writeOn(state_, std::move(message)));
  }
  asio::awaitable<Status> close() override { return onStrand(strand_, closeOn(state_)); }

  void cancel() override {
    if (state_->cancelled.exchange(true)) {
      return;
    }
    // On the strand: never beside an operation's own steps.
    asio::post(strand_, [s = state_] {
      error_code ec;
      auto& socket = beast::get_lowest_layer(s->ws).socket();
      socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      socket.close(ec);
      s->writeTurn.cancel();
    });
  }

 private:
  std::shared_ptr<SocketState<Next>> state_;
  Strand strand_;
  std::string subprotocol_;
};

HttpResponse responseOf(const websocket::response_type& res) {
  HttpResponse out;
  out.status = res.result_int();
  out.body = res.body();
  out.contentType = std::string(res[http::field::content_type]);
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += out.empty() ? "" : ", ";
    out += item;
  }
  return out;
}

// The WebSocket handshake on a connected stream (TLS done), within `timeout`.
template <class Next>
asio::awaitable<Result<WebSocketUpgrade>> handshake(std::unique_ptr<Next> next,
                                                    std::shared_ptr<ssl::context> context,
                                                    Strand strand, const Connector& connector,
                                                    const WebSocketRequest& request,
                                                    const std::optional<Credential>& credential,
                                                    std::chrono::milliseconds timeout) {
  auto state = std::make_shared<SocketState<Next>>(std::move(*next), std::move(context), strand);
  auto& ws = state->ws;
  // Beast's own timers from here on (the connect deadline must not cut the session).
  beast::get_lowest_layer(ws).expires_never();
  websocket::stream_base::timeout limits;
  limits.handshake_timeout = timeout;
  limits.idle_timeout =
      request.idleTimeout.count() > 0
          ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(request.idleTimeout)
          : websocket::stream_base::none();
  limits.keep_alive_pings = request.idleTimeout.count() > 0;
  ws.set_option(limits);
  ws.read_message_max(request.maxMessageBytes);
  ws.binary(true);
  const std::string offered = joined(request.subprotocols);
  Status authorized = okStatus();
  // Called once, while async_handshake builds the upgrade request: the credential goes on last
  // so that a signer covers the final request (its target and Sec-WebSocket-Key included).
  ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    req.set(http::field::user_agent, connector.config().userAgent);
    if (!offered.empty()) {
      req.set(http::field::sec_websocket_protocol, offered);
    }
    for (const auto& [k, v] : request.headers) {
      req.set(k, v);
    }
    if (credential) {
      authorized = Connector::authorize(*credential, req, "");
    }
  }));
  const std::string target = connector.address().basePath + request.target;
  const std::string& host = connector.address().hostHeader;
  websocket::response_type res;
  error_code ec;
  co_await ws.async_handshake(res, host, target, asio::redirect_error(asio::use_awaitable, ec));
  // The decorator refers to this frame: never to be called again.
  ws.set_option(websocket::stream_base::decorator([](websocket::request_type&) {}));
  if (!authorized.ok()) {
    co_return std::move(authorized).error();
  }
  const std::string what = "WebSocket " + pathOf(request.target);
  if (ec == websocket::error::upgrade_declined) {
    WebSocketUpgrade refused;
    refused.refusal = responseOf(res);
    co_return refused;
  }
  if (ec == websocket::condition::handshake_failed) {
    co_return Error::make(ErrorCode::kUnavailable, "WebSocketHandshakeFailed",
                          fmt::format("{}: {}", what, ec.message()));
  }
  if (ec) {
    co_return transportError(ec, what);
  }
  std::string picked(res[http::field::sec_websocket_protocol]);
  if (!picked.empty() && std::find(request.subprotocols.begin(), request.subprotocols.end(),
                                   picked) == request.subprotocols.end()) {
    co_return Error::make(ErrorCode::kInternal, "UnexpectedSubprotocol",
                          fmt::format("{}: the server picked subprotocol {:?}, offered were {:?}",
                                      what, picked, offered));
  }
  WebSocketUpgrade open;
  open.connection =
      std::make_unique<BeastWebSocket<Next>>(std::move(state), std::move(strand), picked);
  co_return open;
}

asio::awaitable<Result<WebSocketUpgrade>> upgradeOn(std::shared_ptr<Connector> connector,
                                                    Strand strand, WebSocketRequest request) {
  const auto timeout =
      request.timeout.count() > 0 ? request.timeout : std::chrono::milliseconds(kDefaultTimeout);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto credential = connector->credential();
  if (!credential.ok()) {
    co_return std::move(credential).error();
  }
  auto conn = co_await connector->connect(timeout, strand);
  if (!conn.ok()) {
    auto error = std::move(conn).error();
    error.message = fmt::format("WebSocket {}: {}", pathOf(request.target), error.message);
    co_return error;
  }
  // What is left of the deadline bounds the upgrade.
  const auto left =
      std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 deadline - std::chrono::steady_clock::now()));
  auto& stream = (*conn)->stream;
  std::shared_ptr<ssl::context> context = std::move((*conn)->context);
  if (auto* tls = std::get_if<std::unique_ptr<TlsStream>>(&stream)) {
    std::unique_ptr<TlsStream> next = std::move(*tls);
    co_return co_await handshake<TlsStream>(std::move(next), std::move(context), strand, *connector,
                                            request, *credential, left);
  }
  std::unique_ptr<PlainStream> next = std::move(std::get<std::unique_ptr<PlainStream>>(stream));
  co_return co_await handshake<PlainStream>(std::move(next), std::move(context), strand, *connector,
                                            request, *credential, left);
}

}  // namespace

Result<std::unique_ptr<WebSocketClient>> WebSocketClient::create(
    asio::any_io_executor executor, const ClientConfig& config,
    std::shared_ptr<CredentialSource> credentials) {
  auto connector = Connector::create(std::move(executor), config, std::move(credentials));
  if (!connector.ok()) {
    return std::move(connector).error();
  }
  return std::make_unique<WebSocketClient>(std::move(*connector));
}

WebSocketClient::WebSocketClient(std::shared_ptr<Connector> connector)
    : connector_(std::move(connector)) {}

WebSocketClient::~WebSocketClient() = default;

asio::awaitable<Result<WebSocketUpgrade>> WebSocketClient::upgrade(WebSocketRequest request) {
  // Every step of the connection on its strand, the upgrade included.
  Strand strand = asio::make_strand(connector_->executor());
  return onStrand(strand, upgradeOn(connector_, strand, std::move(request)));
}

asio::awaitable<Result<std::unique_ptr<WebSocketConnection>>> WebSocketClient::connect(
    WebSocketRequest request) {
  const std::string what = "WebSocket " + pathOf(request.target);
  auto upgraded = co_await upgrade(std::move(request));
  if (!upgraded.ok()) {
    co_return std::move(upgraded).error();
  }
  if (!upgraded->connection) {
    co_return errorFromResponse(upgraded->refusal, what);
  }
  co_return std::move(upgraded->connection);
}

}  // namespace burstlet::kube
