// Exec and attach over a WebSocket, as client-go's WebSocket executor speaks them to the API
// server (pods/exec, pods/attach): subprotocol v5.channel.k8s.io, else v4.channel.k8s.io. Every
// message starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error (the command's end: a
// metav1.Status), 4 resize ({"Width":w,"Height":h}); in v5 a message [255, c] half-closes
// channel c (stdin's end of input). v4 has no half-close.
//
// The API server passes v4 to the kubelet as it is and turns v5 into SPDY toward a kubelet
// that does not declare WebSockets (Kubernetes 1.36); both reach the container.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/http.h"

namespace burstlet::kube {

class RestClient;

inline constexpr std::string_view kRemoteCommandV5 = "v5.channel.k8s.io";
inline constexpr std::string_view kRemoteCommandV4 = "v4.channel.k8s.io";

// Channels of the channel.k8s.io protocols.
enum class StreamChannel : uint8_t {
  kStdin = 0,
  kStdout = 1,
  kStderr = 2,
  kError = 3,
  kResize = 4,
  kClose = 255,  // v5: [255, channel] half-closes the channel
};

enum class RemoteCommandKind { kExec, kAttach };

struct RemoteCommandOptions {
  std::string container;             // "" : the pod's only (or default) container
  std::vector<std::string> command;  // exec only; attach joins the running process
  bool stdinOpen = false;
  bool stdoutOpen = true;
  bool stderrOpen = true;
  bool tty = false;
};

// The query of a pods/exec or pods/attach request: "?command=..&command=..&container=..&stdin=..
// &stdout=..&stderr=..&tty=..", command only for exec.
std::string remoteCommandQuery(RemoteCommandKind kind, const RemoteCommandOptions& options);

// How the command ended, from what the error channel carried (all of it): "" or a Status
// "Success" is 0; a "Failure" with reason NonZeroExitCode is the exit code in its ExitCode
// cause; any other failure is an error with the Status' message, classified by its code and
// reason (kInternal when it has none); text that is no Status is kInternal "ProtocolError".
Result<int> exitCodeOf(std::string_view errorChannel);

// Output of the command: stream 1 (stdout) or 2 (stderr).
struct CommandOutput {
  int stream = 1;
  std::string data;
};

// One exec or attach session over an open WebSocket. One reader (read) and one writer
// (writeStdin, resize: the connection queues writes) may run at once, on any threads.
class RemoteCommandSession {
 public:
  explicit RemoteCommandSession(std::unique_ptr<WebSocketConnection> connection);
  ~RemoteCommandSession();

  // The negotiated subprotocol (kRemoteCommandV5 or kRemoteCommandV4).
  const std::string& protocol() const { return connection_->subprotocol(); }

  // Sends bytes to the process's stdin; "" ends its input (v5: the half-close; v4 cannot say
  // it: nothing is sent, the process sees its input end with the session).
  asio::awaitable<Status> writeStdin(std::string data);
  asio::awaitable<Status> resize(uint16_t width, uint16_t height);
  // The next output; std::nullopt once the session ended (exitCode() then says how).
  asio::awaitable<Result<std::optional<CommandOutput>>> read();
  // After read() returned std::nullopt: exitCodeOf(what the error channel carried). Before,
  // kInternal "SessionNotEnded".
  Result<int> exitCode() const;
  // Ends the session at once; pending calls end with kCancelled. Thread-safe.
  void cancel() { connection_->cancel(); }

 private:
  std::unique_ptr<WebSocketConnection> connection_;
  // The reader's: the error channel so far, and whether the session ended.
  std::string errorChannel_;
  bool ended_ = false;
  // The writer's: stdin half-closed already.
  bool stdinClosed_ = false;
};

// Opens pods/exec or pods/attach of `pod` in `ns` through `client`, offering v5 then v4. A pod,
// container or command the server refuses is the classified error of its answer (the API server
// answers 400 for a container that does not exist, 404 for a pod). `what` names the request in
// error messages.
asio::awaitable<Result<std::unique_ptr<RemoteCommandSession>>> openRemoteCommand(
    RestClient& client, std::string ns, std::string pod, RemoteCommandKind kind,
    RemoteCommandOptions options, std::string what);

}  // namespace burstlet::kube
