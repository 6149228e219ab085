#include "kube/remotecommand.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>

#include "kube/errors.h"
#include "kube/json_path.h"
#include "kube/resource.h"
#include "kube/rest.h"

namespace burstlet::kube {

namespace {

// A session idle this long gets a ping (after half of it), and is given up when the peer
// answers nothing at all (not even the pong) for the whole of it. Interactive shells stay quiet
// for hours; the pings keep them open through proxies and load balancers that drop idle ones.
constexpr std::chrono::seconds kSessionIdle{60};

Error protocolError(std::string message) {
  return Error::make(ErrorCode::kInternal, "ProtocolError", std::move(message));
}

std::string channelMessage(StreamChannel channel, std::string_view data) {
  std::string message;
  message.reserve(data.size() + 1);
  message.push_back(static_cast<char>(channel));
  message.append(data);
  return message;
}

}  // namespace

std::string remoteCommandQuery(RemoteCommandKind kind, const RemoteCommandOptions& options) {
  std::string q;
  auto add = [&q](std::string_view k, std::string_view v) {
    q += q.empty() ? '?' : '&';
    q += k;
    q += '=';
    q += queryEscape(v);
  };
  if (kind == RemoteCommandKind::kExec) {
    for (const auto& arg : options.command) {
      add("command", arg);
    }
  }
  if (!options.container.empty()) {
    add("container", options.container);
  }
  add("stdin", options.stdinOpen ? "true" : "false");
  add("stdout", options.stdoutOpen ? "true" : "false");
  add("stderr", options.stderrOpen ? "true" : "false");
  add("tty", options.tty ? "true" : "false");
  return q;
}

Result<int> exitCodeOf(std::string_view errorChannel) {
  if (errorChannel.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return 0;  // as client-go: an error channel closed without a word is success
  }
  boost::system::error_code ec;
  const boost::json::value status = boost::json::parse(errorChannel, ec);
  if (ec || !status.is_object()) {
    return protocolError(
        fmt::format("the error channel carried no Status: {:?}",
                    errorChannel.substr(0, std::min<size_t>(200, errorChannel.size()))));
  }
  const std::string state = stringAt(status, {"status"});
  if (state == "Success") {
    return 0;
  }
  if (state != "Failure") {
    return protocolError(fmt::format("the error channel's Status has status {:?}", state));
  }
  const std::string reason = stringAt(status, {"reason"});
  const std::string message = stringAt(status, {"message"});
  if (reason == "NonZeroExitCode") {
    if (const auto* causes = arrayAt(status, {"details", "causes"})) {
      for (const auto& cause : *causes) {
        if (stringAt(cause, {"reason"}) != "ExitCode") {
          continue;
        }
        const std::string text = stringAt(cause, {"message"});
        int code = 0;
        const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), code);
        if (err != std::errc() || end != text.data() + text.size() || code < 0) {
          return protocolError(fmt::format("invalid exit code {:?}", text));
        }
        return code;
      }
    }
    return protocolError("the error channel's NonZeroExitCode Status has no ExitCode cause");
  }
  const int64_t httpCode = intAt(status, {"code"});
  const ErrorCode code =
      httpCode > 0 ? classifyStatus(static_cast<unsigned>(httpCode), reason) : ErrorCode::kInternal;
  return Error::make(code, reason.empty() ? "InternalError" : reason,
                     message.empty() ? "the command failed" : message);
}

RemoteCommandSession::RemoteCommandSession(std::unique_ptr<WebSocketConnection> connection)
    : connection_(std::move(connection)) {}

RemoteCommandSession::~RemoteCommandSession() = default;

asio::awaitable<Status> RemoteCommandSession::writeStdin(std::string data) {
  if (data.empty()) {
    if (stdinClosed_ || protocol() != kRemoteCommandV5) {
      stdinClosed_ = true;
      co_return okStatus();
    }
    stdinClosed_ = true;
    std::string signal = channelMessage(StreamChannel::kClose, "");
    signal.push_back(static_cast<char>(StreamChannel::kStdin));
    co_return co_await connection_->write(std::move(signal));
  }
  std::string message = channelMessage(StreamChannel::kStdin, data);
  co_return co_await connection_->write(std::move(message));
}

asio::awaitable<Status> RemoteCommandSession::resize(uint16_t width, uint16_t height) {
  std::string message = channelMessage(StreamChannel::kResize,
                                       fmt::format(R"({{"Width":{},"Height":{}}})", width, height));
  co_return co_await connection_->write(std::move(message));
}

asio::awaitable<Result<std::optional<CommandOutput>>> RemoteCommandSession::read() {
  while (!ended_) {
    auto message = co_await connection_->read();
    if (!message.ok()) {
      // The command's Status came already: however the connection ends after it, that is the
      // end of the session (a server may drop the connection without a close frame).
      if (!errorChannel_.empty() && message.error().code != ErrorCode::kCancelled) {
        ended_ = true;
        break;
      }
      co_return std::move(message).error();
    }
    if (!message->has_value()) {
      ended_ = true;
      break;
    }
    const std::string& m = **message;
    if (m.empty()) {
      continue;
    }
    const auto channel = static_cast<StreamChannel>(static_cast<uint8_t>(m[0]));
    if (channel == StreamChannel::kStdout || channel == StreamChannel::kStderr) {
      if (m.size() == 1) {
        continue;  // the server's first, empty message: the streams are set up
      }
      CommandOutput out{static_cast<int>(channel), m.substr(1)};
      co_return std::optional<CommandOutput>(std::move(out));
    }
    if (channel == StreamChannel::kError) {
      errorChannel_.append(m, 1);
    }
    // Anything else (a close signal, a channel the client writes) says nothing to the client.
  }
  co_return std::optional<CommandOutput>();
}

Result<int> RemoteCommandSession::exitCode() const {
  if (!ended_) {
    return Error::make(ErrorCode::kInternal, "SessionNotEnded",
                       "the exit code is known once all output was read");
  }
  return exitCodeOf(errorChannel_);
}

asio::awaitable<Result<std::unique_ptr<RemoteCommandSession>>> openRemoteCommand(
    RestClient& client, std::string ns, std::string pod, RemoteCommandKind kind,
    RemoteCommandOptions options, std::string what) {
  WebSocketRequest request;
  request.target =
      resources::kPods.path(ns, pod, kind == RemoteCommandKind::kExec ? "exec" : "attach") +
      remoteCommandQuery(kind, options);
  request.subprotocols = {std::string(kRemoteCommandV5), std::string(kRemoteCommandV4)};
  request.idleTimeout = kSessionIdle;
  const std::string name = what;
  auto connection = co_await client.websocket(std::move(request), std::move(what));
  if (!connection.ok()) {
    co_return std::move(connection).error();
  }
  const std::string& picked = (*connection)->subprotocol();
  if (picked != kRemoteCommandV5 && picked != kRemoteCommandV4) {
    co_return Error::make(ErrorCode::kInternal, "UnexpectedSubprotocol",
                          fmt::format("{}: the server speaks neither {} nor {} (it picked {:?})",
                                      name, kRemoteCommandV5, kRemoteCommandV4, picked));
  }
  co_return std::make_unique<RemoteCommandSession>(std::move(*connection));
}

}  // namespace burstlet::kube
