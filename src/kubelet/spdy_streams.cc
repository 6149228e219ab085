#include "kubelet/spdy_streams.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <strings.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <functional>
#include <map>
#include <set>

#include "common/wait.h"
#include "kube/json_path.h"
#include "kubelet/channels.h"
#include "kubelet/remote_command.h"

namespace burstlet::kubelet {

namespace json = boost::json;
using StreamPtr = std::shared_ptr<spdy::Stream>;
using boost::system::error_code;

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";

server::Response text(unsigned status, std::string body) {
  return server::Response{status, kText, std::move(body) + "\n", {}};
}

// Runs the session to its end, then `onEnd` (cancel what waits on the other side).
asio::awaitable<void> runSession(std::shared_ptr<spdy::Session> session,
                                 std::function<void()> onEnd) {
  const Status ended = co_await session->run();
  (void)ended;
  onEnd();
}

// Closes the session when `after` passes unless disarmed (the client did not open its
// streams in time).
class SessionDeadline {
 public:
  SessionDeadline(const std::shared_ptr<spdy::Session>& session, std::chrono::milliseconds after)
      : timer_(session->executor()) {
    timer_.expires_after(after);
    timer_.async_wait(
        [weak = std::weak_ptr<spdy::Session>(session), armed = armed_](error_code ec) {
          if (!ec && *armed) {
            if (auto s = weak.lock()) {
              s->close();
            }
          }
        });
  }
  ~SessionDeadline() { disarm(); }
  SessionDeadline(const SessionDeadline&) = delete;
  SessionDeadline& operator=(const SessionDeadline&) = delete;
  void disarm() {
    *armed_ = false;
    timer_.cancel();
  }

 private:
  std::shared_ptr<bool> armed_ = std::make_shared<bool>(true);
  asio::steady_timer timer_;
};

// --- exec and attach -----------------------------------------------------------------------

struct CommandStreams {
  StreamPtr error;
  StreamPtr in;
  StreamPtr out;
  StreamPtr err;
  StreamPtr resize;
};

asio::awaitable<Result<CommandStreams>> acceptCommandStreams(spdy::Session& session, int expected) {
  CommandStreams s;
  int got = 0;
  while (got < expected) {
    auto stream = co_await session.accept();
    if (!stream.ok()) {
      co_return stream.error();
    }
    const auto type = (*stream)->header("streamtype").value_or("");
    StreamPtr* slot = nullptr;
    if (type == "error") {
      slot = &s.error;
    } else if (type == "stdin") {
      slot = &s.in;
    } else if (type == "stdout") {
      slot = &s.out;
    } else if (type == "stderr") {
      slot = &s.err;
    } else if (type == "resize") {
      slot = &s.resize;
    }
    if (slot == nullptr || *slot) {
      (*stream)->reset(spdy::RstStatus::kProtocolError);  // unknown or repeated
      continue;
    }
    *slot = *stream;
    ++got;
  }
  co_return s;
}

asio::awaitable<void> pumpStdin(StreamPtr in, provider::ExecSession& exec) {
  if (!in) {
    co_return;
  }
  for (;;) {
    auto data = co_await in->read();
    if (!data.ok()) {
      co_return;
    }
    if (!data->has_value()) {
      std::string none;
      const Status closed = co_await exec.writeStdin(std::move(none));
      (void)closed;
      co_return;
    }
    if (!(*data)->empty()) {
      const Status written = co_await exec.writeStdin(std::move(**data));
      (void)written;
    }
  }
}

// The resize stream: JSON TerminalSize objects one after another.
asio::awaitable<void> pumpResize(StreamPtr in, provider::ExecSession& exec) {
  if (!in) {
    co_return;
  }
  std::string buffer;
  for (;;) {
    auto data = co_await in->read();
    if (!data.ok() || !data->has_value()) {
      co_return;
    }
    buffer += **data;
    for (auto end = buffer.find('}'); end != std::string::npos; end = buffer.find('}')) {
      error_code ec;
      auto size = json::parse(std::string_view(buffer).substr(0, end + 1), ec);
      buffer.erase(0, end + 1);
      if (ec || !size.is_object()) {
        continue;
      }
      provider::TerminalSize ts;
      ts.width = static_cast<uint16_t>(kube::intAt(size, {"Width"}));
      ts.height = static_cast<uint16_t>(kube::intAt(size, {"Height"}));
      const Status resized = co_await exec.resize(ts);
      (void)resized;
    }
    if (buffer.size() > 4096) {
      co_return;  // not a stream of terminal sizes
    }
  }
}

asio::awaitable<void> pumpOutput(CommandStreams& s, provider::ExecSession& exec,
                                 const std::vector<std::string>& command, bool statusDocument) {
  Result<int> exit = 0;
  for (;;) {
    auto chunk = co_await exec.read();
    if (!chunk.ok()) {
      exit = chunk.error();
      break;
    }
    if (!chunk->has_value()) {
      auto code = co_await exec.exitCode();
      exit = std::move(code);
      break;
    }
    const auto& out = **chunk;
    const StreamPtr target = out.stream == 2 ? s.err : s.out;
    if (!target) {
      continue;
    }
    const Status written = co_await target->write(out.data);
    if (!written.ok()) {
      exec.cancel();  // the client went away
      exit = written.error();
      break;
    }
  }
  if (s.out) {
    const Status closed = co_await s.out->closeWrite();
    (void)closed;
  }
  if (s.err) {
    const Status closed = co_await s.err->closeWrite();
    (void)closed;
  }
  if (s.error) {
    const std::string report =
        statusDocument ? json::serialize(exitStatus(exit, command)) : exitText(exit, command);
    if (!report.empty()) {
      const Status written = co_await s.error->write(report);
      (void)written;
    }
    const Status closed = co_await s.error->closeWrite();
    (void)closed;
  }
  // The command ended: stdin and resizes the client may still send go nowhere.
  if (s.in) {
    s.in->reset();
  }
  if (s.resize) {
    s.resize->reset();
  }
  exec.cancel();
}

asio::awaitable<void> graceThenClose(std::shared_ptr<spdy::Session> session,
                                     std::chrono::milliseconds grace) {
  session->goAway();
  asio::steady_timer timer(session->executor());
  timer.expires_after(grace);
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  session->close();
}

asio::awaitable<void> commandWork(std::shared_ptr<spdy::Session> session,
                                  provider::ExecSession& exec, provider::ExecOptions options,
                                  std::string protocol, SpdyOptions spdyOptions) {
  const bool resizing = options.tty && protocol != kStreamProtocolV1 &&
                        protocol != kStreamProtocolV2 && !protocol.empty();
  const int expected = 1 + (options.stdinOpen ? 1 : 0) + (options.stdoutOpen ? 1 : 0) +
                       (options.stderrOpen ? 1 : 0) + (resizing ? 1 : 0);
  Result<CommandStreams> streams = Error::make(ErrorCode::kInternal, "NotAccepted", "");
  {
    SessionDeadline deadline(session, spdyOptions.streamCreationTimeout);
    streams = co_await acceptCommandStreams(*session, expected);
  }
  if (!streams.ok()) {
    spdlog::warn("msg=\"exec: the client's streams did not arrive\" error=\"{}\"",
                 streams.error().toString());
    exec.cancel();
    session->close();
    co_return;
  }
  using namespace asio::experimental::awaitable_operators;  // NOLINT(google-build-using-namespace)
  auto in = pumpStdin(streams->in, exec);
  auto resize = pumpResize(streams->resize, exec);
  auto out = pumpOutput(*streams, exec, options.command, protocol == kStreamProtocolV4);
  co_await (std::move(in) && std::move(resize) && std::move(out));
  co_await graceThenClose(session, spdyOptions.closeGrace);
}

// --- port-forward --------------------------------------------------------------------------

// The backend connections of one session, cancelled when the session ends. On the session's
// strand only.
struct PortRegistry {
  std::set<provider::PortStream*> open;
  bool ended = false;
  void cancelAll() {
    ended = true;
    for (auto* p : open) {
      p->cancel();
    }
  }
};

asio::awaitable<void> reportPortError(const StreamPtr& error, const std::string& message) {
  const Status written = co_await error->write(message);
  (void)written;
  const Status closed = co_await error->closeWrite();
  (void)closed;
}

asio::awaitable<void> pumpToPort(StreamPtr data, provider::PortStream& port) {
  for (;;) {
    auto bytes = co_await data->read();
    if (!bytes.ok()) {
      port.cancel();
      co_return;
    }
    if (!bytes->has_value()) {
      std::string none;
      const Status closed = co_await port.write(std::move(none));  // half-close
      (void)closed;
      co_return;
    }
    const Status written = co_await port.write(std::move(**bytes));
    if (!written.ok()) {
      data->reset();
      co_return;
    }
  }
}

asio::awaitable<void> pumpFromPort(StreamPtr data, provider::PortStream& port) {
  for (;;) {
    auto bytes = co_await port.read();
    if (!bytes.ok()) {
      data->reset();
      co_return;
    }
    if (!bytes->has_value()) {
      const Status closed = co_await data->closeWrite();
      (void)closed;
      co_return;
    }
    const Status written = co_await data->write(**bytes);
    if (!written.ok()) {
      port.cancel();
      co_return;
    }
  }
}

std::optional<uint16_t> portOf(std::optional<std::string_view> header) {
  if (!header) {
    return std::nullopt;
  }
  unsigned value = 0;
  const auto* end = header->data() + header->size();
  auto [p, ec] = std::from_chars(header->data(), end, value);
  if (ec != std::errc() || p != end || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

asio::awaitable<void> forwardOne(StreamPtr data, StreamPtr error, provider::Provider& provider,
                                 provider::PodRef pod, std::shared_ptr<PortRegistry> registry) {
  const auto port = portOf(data->header("port"));
  if (!port) {
    const std::string message =
        fmt::format("invalid port \"{}\"", data->header("port").value_or(""));
    co_await reportPortError(error, message);
    data->reset();
    co_return;
  }
  auto stream = co_await provider.portForward(pod, *port);
  if (!stream.ok()) {
    const std::string message = fmt::format("an error occurred forwarding {} -> {}: {}", *port,
                                            *port, stream.error().message);
    co_await reportPortError(error, message);
    data->reset();
    co_return;
  }
  if (registry->ended) {
    (*stream)->cancel();
    co_return;
  }
  registry->open.insert(stream->get());
  using namespace asio::experimental::awaitable_operators;  // NOLINT(google-build-using-namespace)
  auto up = pumpToPort(data, **stream);
  auto down = pumpFromPort(data, **stream);
  co_await (std::move(up) && std::move(down));
  registry->open.erase(stream->get());
  const Status closed = co_await error->closeWrite();
  (void)closed;
}

asio::awaitable<void> portForwardWork(std::shared_ptr<spdy::Session> session,
                                      provider::Provider& provider, provider::PodRef pod,
                                      std::shared_ptr<PortRegistry> registry) {
  struct Pair {
    StreamPtr data;
    StreamPtr error;
  };
  std::map<std::string, Pair> pending;
  Gate gate;
  for (;;) {
    auto stream = co_await session->accept();
    if (!stream.ok()) {
      break;
    }
    const auto type = (*stream)->header("streamtype").value_or("");
    const std::string id((*stream)->header("requestid").value_or(""));
    auto& pair = pending[id];
    if (type == "data" && !pair.data) {
      pair.data = *stream;
    } else if (type == "error" && !pair.error) {
      pair.error = *stream;
    } else {
      (*stream)->reset(spdy::RstStatus::kProtocolError);
      continue;
    }
    if (!pair.data || !pair.error) {
      continue;
    }
    Pair ready = std::move(pair);
    pending.erase(id);
    if (!gate.enter()) {
      break;
    }
    asio::co_spawn(
        session->executor(),
        forwardOne(std::move(ready.data), std::move(ready.error), provider, pod, registry),
        [&gate](const std::exception_ptr&) { gate.leave(); });
  }
  registry->cancelAll();
  for (auto& [id, pair] : pending) {
    for (auto* s : {&pair.data, &pair.error}) {
      if (*s) {
        (*s)->reset();
      }
    }
  }
  co_await gate.close();
}

}  // namespace

const std::vector<std::string>& spdyCommandProtocols() {
  static const std::vector<std::string> protocols{kStreamProtocolV4, kStreamProtocolV3,
                                                  kStreamProtocolV2, kStreamProtocolV1};
  return protocols;
}

std::string negotiateStreamProtocol(const server::Request& request,
                                    const std::vector<std::string>& supported) {
  std::vector<std::string> offered;
  for (const auto& [name, value] : request.headers) {
    if (name.size() != 25 || strcasecmp(name.c_str(), "X-Stream-Protocol-Version") != 0) {
      continue;
    }
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      auto one = rest.substr(0, comma);
      while (!one.empty() && one.front() == ' ') {
        one.remove_prefix(1);
      }
      while (!one.empty() && one.back() == ' ') {
        one.remove_suffix(1);
      }
      if (!one.empty()) {
        offered.emplace_back(one);
      }
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  if (offered.empty()) {
    return kStreamProtocolV1;  // a client from before negotiation
  }
  for (const auto& o : offered) {
    for (const auto& s : supported) {
      if (o == s) {
        return s;
      }
    }
  }
  return {};
}

asio::awaitable<server::Response> SpdyStreamsImpl::command(server::Exchange& exchange,
                                                           provider::ExecSession& session,
                                                           const provider::ExecOptions& options) {
  const std::string protocol = negotiateStreamProtocol(exchange.request(), spdyCommandProtocols());
  if (protocol.empty()) {
    session.cancel();
    co_return text(403,
                   "unable to upgrade: none of the offered stream protocols is supported "
                   "(v4.channel.k8s.io, v3, v2, channel.k8s.io)");
  }
  const server::Headers headers{{"X-Stream-Protocol-Version", protocol}};
  const std::string upgradeTo = "SPDY/3.1";
  auto raw = co_await exchange.upgrade(upgradeTo, headers);
  if (!raw.ok()) {
    session.cancel();
    co_return server::Response{};
  }
  spdy::SessionOptions sessionOptions;
  sessionOptions.server = true;
  sessionOptions.idleTimeout = options_.idleTimeout;
  auto spdySession = spdy::Session::create(rawStreamChannel(std::move(*raw)), sessionOptions);
  if (!spdySession.ok()) {
    session.cancel();
    co_return server::Response{};
  }
  co_await serveCommand(*spdySession, session, options, protocol, options_);
  co_return server::Response{};
}

asio::awaitable<void> serveCommand(std::shared_ptr<spdy::Session> session,
                                   provider::ExecSession& exec, provider::ExecOptions options,
                                   std::string protocol, SpdyOptions spdyOptions) {
  using namespace asio::experimental::awaitable_operators;  // NOLINT(google-build-using-namespace)
  auto running = runSession(session, [&exec] { exec.cancel(); });
  auto work = commandWork(session, exec, std::move(options), std::move(protocol), spdyOptions);
  auto ended = co_await (std::move(running) || std::move(work));
  (void)ended;
}

asio::awaitable<server::Response> SpdyStreamsImpl::portForward(server::Exchange& exchange,
                                                               provider::Provider& provider,
                                                               provider::PodRef pod) {
  std::unique_ptr<spdy::ByteChannel> channel;
  if (exchange.isWebSocketUpgrade()) {
    const std::vector<std::string> protocols{kPortForwardTunnelProtocol};
    auto socket = co_await exchange.acceptWebSocket(protocols);
    if (!socket.ok()) {
      co_return errorResponse(socket.error());
    }
    channel = webSocketChannel(std::move(*socket));
  } else {
    const std::vector<std::string> supported{kPortForwardProtocol};
    const std::string protocol = negotiateStreamProtocol(exchange.request(), supported);
    if (protocol != kPortForwardProtocol) {
      co_return text(403, "unable to upgrade: port-forward speaks portforward.k8s.io only");
    }
    const server::Headers headers{{"X-Stream-Protocol-Version", protocol}};
    const std::string upgradeTo = "SPDY/3.1";
    auto raw = co_await exchange.upgrade(upgradeTo, headers);
    if (!raw.ok()) {
      co_return server::Response{};
    }
    channel = rawStreamChannel(std::move(*raw));
  }
  spdy::SessionOptions sessionOptions;
  sessionOptions.server = true;
  sessionOptions.idleTimeout = options_.idleTimeout;
  auto session = spdy::Session::create(std::move(channel), sessionOptions);
  if (!session.ok()) {
    co_return server::Response{};
  }
  co_await servePortForward(*session, provider, std::move(pod));
  co_return server::Response{};
}

asio::awaitable<void> servePortForward(std::shared_ptr<spdy::Session> session,
                                       provider::Provider& provider, provider::PodRef pod) {
  auto registry = std::make_shared<PortRegistry>();
  using namespace asio::experimental::awaitable_operators;  // NOLINT(google-build-using-namespace)
  auto running = runSession(session, [registry] { registry->cancelAll(); });
  auto work = portForwardWork(session, provider, std::move(pod), registry);
  co_await (std::move(running) && std::move(work));
}

}  // namespace burstlet::kubelet
