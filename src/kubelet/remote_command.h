// Exec and attach between the API server and the provider: stdin and terminal resizes in,
// stdout/stderr out, and the exit code (remotecommand v4+: a Status on the error stream) at the
// end. The carrier is the CommandPeer: a WebSocket (channel.k8s.io, v4/v5.channel.k8s.io) here,
// SPDY/3.1 in spdy_command.h.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "provider/provider.h"
#include "server/websocket.h"

namespace burstlet::kubelet {

namespace asio = boost::asio;

// The remotecommand protocol versions, as X-Stream-Protocol-Version and WebSocket subprotocols
// name them, most preferred first.
inline constexpr const char* kStreamProtocolV5 = "v5.channel.k8s.io";
inline constexpr const char* kStreamProtocolV4 = "v4.channel.k8s.io";
inline constexpr const char* kStreamProtocolV3 = "v3.channel.k8s.io";
inline constexpr const char* kStreamProtocolV2 = "v2.channel.k8s.io";
inline constexpr const char* kStreamProtocolV1 = "channel.k8s.io";

// What the API server sends during a command.
struct CommandInput {
  enum class Kind { kStdin, kStdinClosed, kResize, kGone };
  Kind kind = Kind::kGone;
  std::string data;  // kStdin
  provider::TerminalSize size;
};

// The API server's end of one exec or attach. One reader and one writer at a time, on the
// handler's executor.
class CommandPeer {
 public:
  virtual ~CommandPeer() = default;
  // The next input; kGone once the peer went away or close() was called.
  virtual asio::awaitable<CommandInput> read() = 0;
  // Output of the command: stream 1 stdout, 2 stderr.
  virtual asio::awaitable<Status> writeOutput(int stream, std::string data) = 0;
  // How the command ended (an exit code, or why it could not run), then the end of the
  // exchange.
  virtual asio::awaitable<void> finish(Result<int> exit) = 0;
  // Ends the exchange without a status (the command could not be bridged); a pending read()
  // returns kGone.
  virtual asio::awaitable<void> close() = 0;
};

// The error-stream document of protocol v4 and later: Success for exit code 0, Failure with
// reason NonZeroExitCode and the code as cause ExitCode otherwise, Failure with the error's
// message when the command did not run.
boost::json::value exitStatus(const Result<int>& exit, const std::vector<std::string>& command);

// The text of the error stream before v4: empty on success.
std::string exitText(const Result<int>& exit, const std::vector<std::string>& command);

// Runs one command between `peer` and `session` until the command ended and its output was
// sent (then finish()), or the peer went away (then the session is cancelled).
asio::awaitable<void> bridgeCommand(CommandPeer& peer, provider::ExecSession& session);

// The WebSocket subprotocols the kubelet API accepts for exec and attach, preferred first.
const std::vector<std::string>& webSocketCommandProtocols();

// A CommandPeer over an accepted WebSocket (its subprotocol one of the above).
std::unique_ptr<CommandPeer> makeWebSocketPeer(std::unique_ptr<server::WebSocket> socket,
                                               std::vector<std::string> command);

}  // namespace burstlet::kubelet
