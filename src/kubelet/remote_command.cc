#include "kubelet/remote_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>

#include "kube/json_path.h"

namespace burstlet::kubelet {

namespace json = boost::json;

namespace {

constexpr unsigned char kStdinChannel = 0;
constexpr unsigned char kErrorChannel = 3;
constexpr unsigned char kResizeChannel = 4;
constexpr unsigned char kCloseSignal = 255;

std::string commandText(const std::vector<std::string>& command) {
  return fmt::format("[{}]", fmt::join(command, " "));
}

// Shared by the two pumps of one command: whether the command's end was reported.
struct BridgeState {
  bool ended = false;
};

asio::awaitable<void> pumpInput(CommandPeer& peer, provider::ExecSession& session,
                                BridgeState& state) {
  for (;;) {
    CommandInput in = co_await peer.read();
    switch (in.kind) {
      case CommandInput::Kind::kGone:
        if (!state.ended) {
          session.cancel();  // the client went away: stop the command's streams
        }
        co_return;
      case CommandInput::Kind::kStdin:
        if (!in.data.empty()) {
          const Status written = co_await session.writeStdin(std::move(in.data));
          (void)written;  // a process that stopped reading: its output tells the rest
        }
        break;
      case CommandInput::Kind::kStdinClosed: {
        std::string none;
        const Status closed = co_await session.writeStdin(std::move(none));
        (void)closed;
        break;
      }
      case CommandInput::Kind::kResize: {
        const Status resized = co_await session.resize(in.size);
        (void)resized;
        break;
      }
    }
  }
}

asio::awaitable<void> pumpOutput(CommandPeer& peer, provider::ExecSession& session,
                                 BridgeState& state) {
  for (;;) {
    auto chunk = co_await session.read();
    if (!chunk.ok()) {
      state.ended = true;
      Result<int> failed = chunk.error();
      co_await peer.finish(std::move(failed));
      session.cancel();
      co_return;
    }
    if (!chunk->has_value()) {
      break;
    }
    auto& out = **chunk;
    const Status written = co_await peer.writeOutput(out.stream, std::move(out.data));
    if (!written.ok()) {
      session.cancel();  // the client is gone; the input pump sees it too
      co_await peer.close();
      co_return;
    }
  }
  auto code = co_await session.exitCode();
  state.ended = true;
  co_await peer.finish(std::move(code));
  session.cancel();  // ends a stdin write the process never took
}

class WebSocketPeer final : public CommandPeer {
 public:
  WebSocketPeer(std::unique_ptr<server::WebSocket> socket, std::vector<std::string> command)
      : socket_(std::move(socket)), command_(std::move(command)) {
    const auto& p = socket_->subprotocol();
    statusDocument_ = p == kStreamProtocolV5 || p == kStreamProtocolV4;
    closeSignal_ = p == kStreamProtocolV5;
  }

  asio::awaitable<CommandInput> read() override {
    CommandInput in;
    while (!closed_) {
      auto message = co_await socket_->read();
      if (!message.ok()) {
        break;
      }
      const std::string& data = message->data;
      if (data.empty()) {
        continue;
      }
      const auto channel = static_cast<unsigned char>(data[0]);
      if (closeSignal_ && channel == kCloseSignal) {
        if (data.size() == 2 && static_cast<unsigned char>(data[1]) == kStdinChannel) {
          in.kind = CommandInput::Kind::kStdinClosed;
          co_return in;
        }
        continue;  // closing a stream we do not read
      }
      if (channel == kStdinChannel) {
        in.kind = CommandInput::Kind::kStdin;
        in.data = data.substr(1);
        co_return in;
      }
      if (channel == kResizeChannel) {
        boost::system::error_code ec;
        auto size = json::parse(std::string_view(data).substr(1), ec);
        if (ec || !size.is_object()) {
          continue;  // as the kubelet: a bad resize is dropped, the session goes on
        }
        in.kind = CommandInput::Kind::kResize;
        in.size.width = static_cast<uint16_t>(kube::intAt(size, {"Width"}));
        in.size.height = static_cast<uint16_t>(kube::intAt(size, {"Height"}));
        co_return in;
      }
    }
    in.kind = CommandInput::Kind::kGone;
    co_return in;
  }

  asio::awaitable<Status> writeOutput(int stream, std::string data) override {
    std::string message;
    message.reserve(data.size() + 1);
    message += static_cast<char>(stream);
    message += data;
    co_return co_await socket_->write(message, true);
  }

  asio::awaitable<void> finish(Result<int> exit) override {
    std::string message(1, static_cast<char>(kErrorChannel));
    if (statusDocument_) {
      message += json::serialize(exitStatus(exit, command_));
    } else {
      message += exitText(exit, command_);
    }
    if (message.size() > 1 || statusDocument_) {
      const Status written = co_await socket_->write(message, true);
      (void)written;
    }
    co_await close();
  }

  asio::awaitable<void> close() override {
    if (closed_) {
      co_return;
    }
    closed_ = true;
    const std::string reason;
    const Status closed = co_await socket_->close(1000, reason);
    (void)closed;
  }

 private:
  std::unique_ptr<server::WebSocket> socket_;
  std::vector<std::string> command_;
  bool statusDocument_ = false;
  bool closeSignal_ = false;
  bool closed_ = false;
};

}  // namespace

json::value exitStatus(const Result<int>& exit, const std::vector<std::string>& command) {
  if (exit.ok() && *exit == 0) {
    return json::object{{"metadata", json::object{}}, {"status", "Success"}};
  }
  if (exit.ok()) {
    return json::object{
        {"metadata", json::object{}},
        {"status", "Failure"},
        {"message", fmt::format("command terminated with non-zero exit code: error executing "
                                "command {}, exit code {}",
                                commandText(command), *exit)},
        {"reason", "NonZeroExitCode"},
        {"details",
         json::object{{"causes", json::array{json::object{{"reason", "ExitCode"},
                                                          {"message", std::to_string(*exit)}}}}}},
    };
  }
  return json::object{
      {"metadata", json::object{}}, {"status", "Failure"}, {"message", exit.error().message}};
}

std::string exitText(const Result<int>& exit, const std::vector<std::string>& command) {
  if (exit.ok() && *exit == 0) {
    return {};
  }
  if (exit.ok()) {
    return fmt::format("command {} exited with code {}", commandText(command), *exit);
  }
  return exit.error().message;
}

asio::awaitable<void> bridgeCommand(CommandPeer& peer, provider::ExecSession& session) {
  using namespace asio::experimental::awaitable_operators;  // NOLINT(google-build-using-namespace)
  BridgeState state;
  auto input = pumpInput(peer, session, state);
  auto output = pumpOutput(peer, session, state);
  co_await (std::move(input) && std::move(output));
}

const std::vector<std::string>& webSocketCommandProtocols() {
  static const std::vector<std::string> protocols{kStreamProtocolV5, kStreamProtocolV4,
                                                  kStreamProtocolV1};
  return protocols;
}

std::unique_ptr<CommandPeer> makeWebSocketPeer(std::unique_ptr<server::WebSocket> socket,
                                               std::vector<std::string> command) {
  return std::make_unique<WebSocketPeer>(std::move(socket), std::move(command));
}

}  // namespace burstlet::kubelet
