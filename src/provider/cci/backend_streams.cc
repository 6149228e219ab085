#include "provider/cci/backend_streams.h"

#include <fmt/format.h>

#include "kube/port_forward.h"
#include "kube/remotecommand.h"
#include "kube/resource.h"

namespace burstlet::provider::cci {

namespace {

// The backend's names of a pod, and the source's they stand for.
struct Names {
  std::string backendPod;
  std::string backendNamespace;
  PodRef source;
};

void replaceAll(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty()) {
    return;
  }
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// `error` as the user should see it: the backend's names of the pod replaced by the source's.
Error sourceError(Error error, const Names& names) {
  replaceAll(error.message, names.backendPod, names.source.name);
  replaceAll(error.message, names.backendNamespace, names.source.ns);
  return error;
}

class LogStream final : public ByteStream {
 public:
  explicit LogStream(std::unique_ptr<kube::ResponseStream> stream) : stream_(std::move(stream)) {}
  // The bytes as the transport reads them: a followed log never waits for a full buffer.
  asio::awaitable<Result<std::optional<std::string>>> read() override { return stream_->read(); }
  void cancel() override { stream_->cancel(); }

 private:
  std::unique_ptr<kube::ResponseStream> stream_;
};

class ExecStream final : public ExecSession {
 public:
  ExecStream(std::unique_ptr<kube::RemoteCommandSession> session, Names names)
      : session_(std::move(session)), names_(std::move(names)) {}

  asio::awaitable<Status> writeStdin(std::string data) override {
    return session_->writeStdin(std::move(data));
  }
  asio::awaitable<Result<std::optional<OutputChunk>>> read() override {
    auto out = co_await session_->read();
    if (!out.ok()) {
      co_return sourceError(std::move(out).error(), names_);
    }
    if (!out->has_value()) {
      co_return std::optional<OutputChunk>();
    }
    OutputChunk chunk{(*out)->stream, std::move((*out)->data)};
    co_return std::optional<OutputChunk>(std::move(chunk));
  }
  asio::awaitable<Status> resize(TerminalSize size) override {
    return session_->resize(size.width, size.height);
  }
  asio::awaitable<Result<int>> exitCode() override {
    auto code = session_->exitCode();
    if (!code.ok()) {
      co_return sourceError(std::move(code).error(), names_);
    }
    co_return *code;
  }
  void cancel() override { session_->cancel(); }

 private:
  std::unique_ptr<kube::RemoteCommandSession> session_;
  const Names names_;
};

class ForwardedPort final : public PortStream {
 public:
  ForwardedPort(std::unique_ptr<kube::PortForwardStream> stream, Names names)
      : stream_(std::move(stream)), names_(std::move(names)) {}

  asio::awaitable<Status> write(std::string data) override {
    return stream_->write(std::move(data));
  }
  asio::awaitable<Result<std::optional<std::string>>> read() override {
    auto r = co_await stream_->read();
    if (!r.ok()) {
      co_return sourceError(std::move(r).error(), names_);
    }
    co_return std::move(*r);
  }
  void cancel() override { stream_->cancel(); }

 private:
  std::unique_ptr<kube::PortForwardStream> stream_;
  const Names names_;
};

}  // namespace

std::string logQuery(const LogOptions& options) {
  std::string q;
  auto add = [&q](std::string_view k, std::string_view v) {
    q += q.empty() ? '?' : '&';
    q += k;
    q += '=';
    q += kube::queryEscape(v);
  };
  if (!options.container.empty()) {
    add("container", options.container);
  }
  if (options.follow) {
    add("follow", "true");
  }
  if (options.previous) {
    add("previous", "true");
  }
  if (options.timestamps) {
    add("timestamps", "true");
  }
  if (options.tailLines) {
    add("tailLines", std::to_string(*options.tailLines));
  }
  if (options.limitBytes) {
    add("limitBytes", std::to_string(*options.limitBytes));
  }
  if (options.sinceSeconds) {
    add("sinceSeconds", std::to_string(*options.sinceSeconds));
  }
  if (options.sinceTime) {
    add("sinceTime", *options.sinceTime);
  }
  return q;
}

BackendStreams::BackendStreams(kube::RestClient& backend, std::string backendNamespace,
                               Resolve resolve)
    : backend_(backend),
      backendNamespace_(std::move(backendNamespace)),
      resolve_(std::move(resolve)) {}

asio::awaitable<Result<std::unique_ptr<ByteStream>>> BackendStreams::logs(PodRef pod,
                                                                          LogOptions options) {
  auto name = resolve_(pod);
  if (!name.ok()) {
    co_return std::move(name).error();
  }
  const Names names{*name, backendNamespace_, pod};
  kube::HttpRequest req{
      kube::Verb::get,
      kube::resources::kPods.path(backendNamespace_, *name, "log") + logQuery(options)};
  req.accept = "application/json, */*";  // the log is text; a refusal is a Status
  // A followed log may rightly be silent for hours: only the caller ends it. A log read without
  // follow comes at once; a backend silent for the transport's default is given up.
  if (options.follow) {
    req.timeout = kube::kNoTimeout;
  }
  std::string what = fmt::format("logs of pod {}", pod.key());
  auto stream = co_await backend_.stream(std::move(req), std::move(what));
  if (!stream.ok()) {
    co_return sourceError(std::move(stream).error(), names);
  }
  co_return std::unique_ptr<ByteStream>(std::make_unique<LogStream>(std::move(*stream)));
}

asio::awaitable<Result<std::unique_ptr<ExecSession>>> BackendStreams::exec(PodRef pod,
                                                                           ExecOptions options) {
  return remoteCommand(std::move(pod), std::move(options), false);
}

asio::awaitable<Result<std::unique_ptr<ExecSession>>> BackendStreams::attach(PodRef pod,
                                                                             ExecOptions options) {
  return remoteCommand(std::move(pod), std::move(options), true);
}

asio::awaitable<Result<std::unique_ptr<ExecSession>>> BackendStreams::remoteCommand(
    PodRef pod, ExecOptions options, bool attach) {
  auto name = resolve_(pod);
  if (!name.ok()) {
    co_return std::move(name).error();
  }
  Names names{*name, backendNamespace_, pod};
  kube::RemoteCommandOptions command;
  command.container = options.container;
  if (!attach) {
    command.command = options.command;
  }
  command.stdinOpen = options.stdinOpen;
  command.stdoutOpen = options.stdoutOpen;
  command.stderrOpen = options.stderrOpen;
  command.tty = options.tty;
  const auto kind = attach ? kube::RemoteCommandKind::kAttach : kube::RemoteCommandKind::kExec;
  std::string what = fmt::format("{} pod {}", attach ? "attach to" : "exec in", pod.key());
  // Named arguments: see kube/rest.h on class-type temporaries in a co_await.
  std::string ns = backendNamespace_;
  std::string backendPod = *name;
  auto session = co_await kube::openRemoteCommand(backend_, ns, backendPod, kind, command, what);
  if (!session.ok()) {
    co_return sourceError(std::move(session).error(), names);
  }
  co_return std::unique_ptr<ExecSession>(
      std::make_unique<ExecStream>(std::move(*session), std::move(names)));
}

asio::awaitable<Result<std::unique_ptr<PortStream>>> BackendStreams::portForward(PodRef pod,
                                                                                 uint16_t port) {
  auto name = resolve_(pod);
  if (!name.ok()) {
    co_return std::move(name).error();
  }
  Names names{*name, backendNamespace_, pod};
  std::string what = fmt::format("port-forward to port {} of pod {}", port, pod.key());
  std::string ns = backendNamespace_;
  std::string backendPod = *name;
  auto stream = co_await kube::openPortForward(backend_, ns, backendPod, port, what);
  if (!stream.ok()) {
    co_return sourceError(std::move(stream).error(), names);
  }
  co_return std::unique_ptr<PortStream>(
      std::make_unique<ForwardedPort>(std::move(*stream), std::move(names)));
}

}  // namespace burstlet::provider::cci
