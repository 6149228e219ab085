#include "kube/credentials.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cerrno>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "common/base64.h"
#include "common/log.h"
#include "common/strings.h"
#include "kube/json_path.h"

namespace burstlet::kube {

namespace {

using namespace std::chrono_literals;

// A token file is stat()ed at most this often: requests are frequent, rotations rare.
constexpr auto kStatInterval = 1s;
constexpr size_t kMaxStdout = size_t{1} << 20;
constexpr size_t kMaxStderr = size_t{64} << 10;
constexpr size_t kStderrInMessage = 200;
constexpr std::string_view kPemBegin = "-----BEGIN";

std::string errnoText(int err) { return std::generic_category().message(err); }

// The parts of a config that do not change: client certificate and basic auth.
Credential staticCredential(const ClientConfig& config) {
  Credential c;
  c.clientCertPem = config.clientCertPem;
  c.clientKeyPem = config.clientKeyPem;
  log::registerSecret(c.clientKeyPem);
  if (!config.username.empty() || !config.password.empty()) {
    c.basicAuth = config.username + ":" + config.password;
    log::registerSecret(config.password);
    log::registerSecret(c.basicAuth);
  }
  return c;
}

class StaticSource final : public CredentialSource {
 public:
  explicit StaticSource(Credential credential) : credential_(std::move(credential)) {}
  Result<Credential> current() override { return credential_; }
  void invalidate() override {}

 private:
  const Credential credential_;  // immutable, so no lock
};

class TokenFileSource final : public CredentialSource {
 public:
  TokenFileSource(std::string path, Credential base, const Clock& clock)
      : path_(std::move(path)), base_(std::move(base)), clock_(clock) {}

  Result<Credential> current() override {
    std::lock_guard lock(mu_);
    const auto now = clock_.steadyNow();
    if (!loaded_) {
      return reload(now);
    }
    if (now - lastCheck_ >= kStatInterval) {
      lastCheck_ = now;
      struct stat st {};
      if (::stat(path_.c_str(), &st) != 0 || !(FileStamp::of(st) == stamp_)) {
        return reload(now);
      }
    }
    return withToken();
  }

  void invalidate() override {
    std::lock_guard lock(mu_);
    loaded_ = false;
  }

 private:
  Result<Credential> reload(Clock::SteadyTime now) {
    lastCheck_ = now;
    loaded_ = false;
    // Stat before reading: if the file changes in between, the next check sees a newer stamp
    // and reads again, rather than missing the change.
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      return Error::make(ErrorCode::kUnauthorized, "TokenFileUnreadable",
                         fmt::format("token file: cannot read {}: {}", path_, errnoText(errno)));
    }
    auto text = readFileNamed(path_, "token file");
    if (!text.ok()) {
      Error e = std::move(text).error();
      return Error::make(ErrorCode::kUnauthorized, "TokenFileUnreadable", std::move(e.message));
    }
    std::string token = trimWhitespace(*text);
    if (token.empty()) {
      return Error::make(ErrorCode::kUnauthorized, "TokenFileEmpty",
                         fmt::format("token file {} is empty", path_));
    }
    log::registerSecret(token);
    if (!token_.empty() && token != token_) {
      spdlog::info("msg=\"bearer token file changed\" path={}", path_);
    }
    token_ = std::move(token);
    stamp_ = FileStamp::of(st);
    loaded_ = true;
    return withToken();
  }

  Credential withToken() const {
    Credential c = base_;
    c.bearerToken = token_;
    return c;
  }

  const std::string path_;
  const Credential base_;
  const Clock& clock_;
  std::mutex mu_;  // guards token_, stamp_, lastCheck_ and loaded_
  std::string token_;
  FileStamp stamp_;
  Clock::SteadyTime lastCheck_{};
  bool loaded_ = false;
};

// A file descriptor closed when it goes out of scope.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

struct ProcessOutput {
  std::string out;
  std::string err;
  int waitStatus = 0;
  bool timedOut = false;
  bool outTooLarge = false;
};

// posix_spawn's attribute and file-action objects, destroyed with the scope.
struct SpawnSetup {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attr{};
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// Reads what is available on `fd` into `into`, keeping at most `limit` bytes. Returns false
// at end of file or on an error.
bool drain(int fd, std::string& into, size_t limit, bool& overflow) {
  std::array<char, 16384> buf{};
  const ssize_t n = ::read(fd, buf.data(), buf.size());
  if (n < 0) {
    return errno == EINTR || errno == EAGAIN;
  }
  if (n == 0) {
    return false;
  }
  const size_t room = limit - std::min(limit, into.size());
  const auto got = static_cast<size_t>(n);
  into.append(buf.data(), std::min(room, got));
  if (got > room) {
    overflow = true;
  }
  return true;
}

// Runs argv[0] (PATH lookup) with stdin from /dev/null, capturing stdout and stderr, and kills
// it (and anything it started in its process group) after `timeout`. Returns the errno of a
// failed spawn as an int error.
std::variant<ProcessOutput, int> runProcess(std::vector<std::string> argv,
                                            std::vector<std::string> env,
                                            std::chrono::milliseconds timeout) {
  std::array<int, 2> outPipe{-1, -1};
  std::array<int, 2> errPipe{-1, -1};
  if (::pipe2(outPipe.data(), O_CLOEXEC) != 0) {
    return errno;
  }
  Fd outRead(outPipe[0]);
  Fd outWrite(outPipe[1]);
  if (::pipe2(errPipe.data(), O_CLOEXEC) != 0) {
    return errno;
  }
  Fd errRead(errPipe[0]);
  Fd errWrite(errPipe[1]);

  SpawnSetup setup;
  posix_spawn_file_actions_addopen(&setup.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, outWrite.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, errWrite.get(), STDERR_FILENO);
  // Own process group, so a timeout kills the plugin's children too; default SIGPIPE and an
  // empty mask, whatever this process set for itself.
  sigset_t none;
  sigemptyset(&none);
  sigset_t pipeOnly;
  sigemptyset(&pipeOnly);
  sigaddset(&pipeOnly, SIGPIPE);
  posix_spawnattr_setflags(&setup.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&setup.attr, 0);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &pipeOnly);

  std::vector<char*> argvPtrs;
  argvPtrs.reserve(argv.size() + 1);
  for (auto& a : argv) {
    argvPtrs.push_back(a.data());
  }
  argvPtrs.push_back(nullptr);
  std::vector<char*> envPtrs;
  envPtrs.reserve(env.size() + 1);
  for (auto& e : env) {
    envPtrs.push_back(e.data());
  }
  envPtrs.push_back(nullptr);

  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argvPtrs[0], &setup.actions, &setup.attr, argvPtrs.data(),
                                envPtrs.data());
  if (rc != 0) {
    return rc;
  }
  // The child holds its own copies; ours must go so that EOF arrives when it exits.
  outWrite.reset();
  errWrite.reset();

  // The plugin runs in real time, so its deadline is the steady clock's, not the injected Clock.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ProcessOutput result;
  bool outOpen = true;
  bool errOpen = true;
  bool errOverflow = false;
  while (outOpen || errOpen) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      result.timedOut = true;
      break;
    }
    std::array<pollfd, 2> fds{};
    nfds_t n = 0;
    if (outOpen) {
      fds[n++] = pollfd{outRead.get(), POLLIN, 0};
    }
    if (errOpen) {
      fds[n++] = pollfd{errRead.get(), POLLIN, 0};
    }
    const int ready = ::poll(fds.data(), n, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      result.timedOut = true;  // cannot wait any more; treat like a hang
      break;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      if (fds[i].fd == outRead.get()) {
        outOpen = drain(outRead.get(), result.out, kMaxStdout, result.outTooLarge);
      } else {
        errOpen = drain(errRead.get(), result.err, kMaxStderr, errOverflow);
      }
    }
    if (result.outTooLarge) {
      break;
    }
  }
  // The pipes are closed; a plugin that keeps running gets until the deadline to exit.
  bool exited = false;
  while (!result.timedOut && !result.outTooLarge) {
    const pid_t w = ::waitpid(pid, &result.waitStatus, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) {
      exited = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      result.timedOut = true;
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  if (!exited) {
    // Not reaped yet, so the group id cannot have been reused.
    ::kill(-pid, SIGKILL);
    while (::waitpid(pid, &result.waitStatus, 0) < 0 && errno == EINTR) {
    }
  }
  return result;
}

// Sets NAME=value in an environment list, replacing an earlier NAME.
void setEnv(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  const std::string prefix = name + "=";
  for (auto& e : env) {
    if (e.compare(0, prefix.size(), prefix) == 0) {
      e = prefix + value;
      return;
    }
  }
  env.push_back(prefix + value);
}

std::string execInfo(const ExecConfig& exec, const ClientConfig& config) {
  boost::json::object spec;
  spec["interactive"] = false;
  if (exec.provideClusterInfo) {
    // Field names and omission rules of client.authentication.k8s.io Cluster.
    boost::json::object cluster;
    cluster["server"] = config.server;
    if (!config.tlsServerName.empty()) {
      cluster["tls-server-name"] = config.tlsServerName;
    }
    if (config.insecureSkipTlsVerify) {
      cluster["insecure-skip-tls-verify"] = true;
    }
    if (!config.caPem.empty()) {
      cluster["certificate-authority-data"] = base64Encode(config.caPem);
    }
    spec["cluster"] = std::move(cluster);
  }
  boost::json::object info;
  info["apiVersion"] = exec.apiVersion;
  info["kind"] = "ExecCredential";
  info["spec"] = std::move(spec);
  return boost::json::serialize(info);
}

std::string describeExit(int waitStatus) {
  if (WIFEXITED(waitStatus)) {
    return fmt::format("exited with code {}", WEXITSTATUS(waitStatus));
  }
  if (WIFSIGNALED(waitStatus)) {
    return fmt::format("was killed by signal {}", WTERMSIG(waitStatus));
  }
  return "stopped abnormally";
}

class ExecSource final : public CredentialSource {
 public:
  ExecSource(ExecConfig exec, std::string execInfo, Credential base, const Clock& clock)
      : exec_(std::move(exec)),
        execInfo_(std::move(execInfo)),
        base_(std::move(base)),
        clock_(clock) {}

  Result<Credential> current() override {
    // Held across the plugin run on purpose: concurrent callers wait for one run instead of
    // starting their own.
    std::lock_guard lock(mu_);
    if (cached_ && (!cached_->expiresAt || clock_.now() < *cached_->expiresAt)) {
      return *cached_;
    }
    cached_.reset();
    auto fresh = fetch();
    if (!fresh.ok()) {
      spdlog::warn("msg=\"exec credential plugin failed\" command={} error=\"{}\"", exec_.command,
                   fresh.error().toString());
      return fresh;
    }
    cached_ = *fresh;
    return fresh;
  }

  void invalidate() override {
    std::lock_guard lock(mu_);
    cached_.reset();
  }

 private:
  Error invalidOutput(std::string_view why) const {
    // Never quote stdout: it is where the credential is.
    return Error::make(ErrorCode::kUnauthorized, "ExecPluginInvalidOutput",
                       fmt::format("exec plugin {}: {}", exec_.command, why));
  }

  Result<Credential> fetch() {
    if (exec_.interactiveMode == "Always") {
      return Error::make(ErrorCode::kInvalid, "ExecPluginInteractive",
                         fmt::format("exec plugin {}: interactiveMode Always needs a terminal, "
                                     "and burstlet has none",
                                     exec_.command));
    }
    std::vector<std::string> argv;
    argv.reserve(exec_.args.size() + 1);
    argv.push_back(exec_.command);
    argv.insert(argv.end(), exec_.args.begin(), exec_.args.end());
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      env.emplace_back(*e);
    }
    for (const auto& [name, value] : exec_.env) {
      setEnv(env, name, value);
    }
    setEnv(env, "KUBERNETES_EXEC_INFO", execInfo_);

    spdlog::debug("msg=\"running exec credential plugin\" command={}", exec_.command);
    auto run = runProcess(std::move(argv), std::move(env), exec_.timeout);
    if (const int* err = std::get_if<int>(&run)) {
      // ENOENT also comes back for a script whose interpreter is missing; only call the
      // plugin missing when it is.
      const bool missing = *err == ENOENT && (exec_.command.find('/') == std::string::npos ||
                                              ::access(exec_.command.c_str(), F_OK) != 0);
      if (missing) {
        return Error::make(ErrorCode::kInvalid, "ExecPluginNotFound",
                           fmt::format("exec plugin {}: executable not found{}{}", exec_.command,
                                       exec_.installHint.empty() ? "" : "; ", exec_.installHint));
      }
      return Error::make(
          ErrorCode::kUnauthorized, "ExecPluginFailed",
          fmt::format("exec plugin {}: cannot start: {}", exec_.command, errnoText(*err)));
    }
    const ProcessOutput& out = std::get<ProcessOutput>(run);
    if (out.timedOut) {
      return Error::make(ErrorCode::kTimeout, "ExecPluginTimeout",
                         fmt::format("exec plugin {}: did not finish within {} ms and was killed",
                                     exec_.command, exec_.timeout.count()));
    }
    if (out.outTooLarge) {
      return invalidOutput(fmt::format("output exceeds {} bytes", kMaxStdout));
    }
    if (!WIFEXITED(out.waitStatus) || WEXITSTATUS(out.waitStatus) != 0) {
      // Redact before cutting: a cut through a secret would leave a fragment redact() cannot
      // recognise.
      std::string err = log::redact(trimWhitespace(out.err));
      if (err.size() > kStderrInMessage) {
        err.resize(kStderrInMessage);
      }
      return Error::make(ErrorCode::kUnauthorized, "ExecPluginFailed",
                         fmt::format("exec plugin {} {}{}{}", exec_.command,
                                     describeExit(out.waitStatus), err.empty() ? "" : ": ", err));
    }
    return parse(out.out);
  }

  Result<Credential> parse(const std::string& stdoutText) const {
    boost::system::error_code ec;
    const boost::json::value doc = boost::json::parse(stdoutText, ec);
    if (ec) {
      return invalidOutput("output is not JSON");
    }
    if (!doc.is_object()) {
      return invalidOutput("output is not a JSON object");
    }
    if (stringOf(at(doc, {"kind"})) != "ExecCredential") {
      return invalidOutput("output kind is not ExecCredential");
    }
    if (stringOf(at(doc, {"apiVersion"})) != exec_.apiVersion) {
      return invalidOutput(
          fmt::format("output apiVersion does not match the configured {}", exec_.apiVersion));
    }
    const auto* status = at(doc, {"status"});
    if (status == nullptr || !status->is_object()) {
      return invalidOutput("output has no status object");
    }
    Credential c = base_;
    const std::string_view token = stringOf(at(*status, {"token"}));
    const std::string_view cert = stringOf(at(*status, {"clientCertificateData"}));
    const std::string_view key = stringOf(at(*status, {"clientKeyData"}));
    log::registerSecret(token);
    log::registerSecret(key);
    if (cert.empty() != key.empty()) {
      return invalidOutput("status has only one of clientCertificateData and clientKeyData");
    }
    if (token.empty() && cert.empty()) {
      return invalidOutput("status has neither token nor clientCertificateData/clientKeyData");
    }
    if (!cert.empty()) {
      if (cert.find(kPemBegin) == std::string_view::npos ||
          key.find(kPemBegin) == std::string_view::npos) {
        return invalidOutput("status clientCertificateData/clientKeyData are not PEM");
      }
      c.clientCertPem = std::string(cert);
      c.clientKeyPem = std::string(key);
    }
    c.bearerToken = std::string(token);
    if (const auto* exp = at(*status, {"expirationTimestamp"}); exp != nullptr && !exp->is_null()) {
      const auto* text = exp->if_string();
      const auto when = text == nullptr ? std::nullopt : parseRfc3339(std::string_view(*text));
      if (!when) {
        return invalidOutput("status.expirationTimestamp is not an RFC 3339 time");
      }
      if (*when <= clock_.now()) {
        return Error::make(ErrorCode::kUnauthorized, "ExecCredentialExpired",
                           fmt::format("exec plugin {}: returned a credential that expired at {}",
                                       exec_.command, formatRfc3339(*when)));
      }
      c.expiresAt = *when;
    }
    return c;
  }

  const ExecConfig exec_;
  const std::string execInfo_;  // KUBERNETES_EXEC_INFO, fixed for the source's life
  const Credential base_;
  const Clock& clock_;
  std::mutex mu_;  // guards cached_, and serializes plugin runs
  std::optional<Credential> cached_;
};

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  const auto lower = [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

}  // namespace

std::optional<std::string_view> SignableRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (equalsIgnoringCase(k, name)) {
      return std::string_view(v);
    }
  }
  return std::nullopt;
}

void SignableRequest::setHeader(std::string_view name, std::string value) {
  auto first = std::find_if(headers.begin(), headers.end(),
                            [&](const auto& h) { return equalsIgnoringCase(h.first, name); });
  if (first == headers.end()) {
    headers.emplace_back(std::string(name), std::move(value));
    return;
  }
  first->second = std::move(value);
  headers.erase(std::remove_if(std::next(first), headers.end(),
                               [&](const auto& h) { return equalsIgnoringCase(h.first, name); }),
                headers.end());
}

std::unique_ptr<CredentialSource> makeCredentialSource(const ClientConfig& config,
                                                       const Clock& clock) {
  Credential base = staticCredential(config);
  // Precedence as in client-go's kubeconfig loading: token, then token file, then exec.
  if (!config.token.empty()) {
    log::registerSecret(config.token);
    base.bearerToken = config.token;
    return std::make_unique<StaticSource>(std::move(base));
  }
  if (!config.tokenFile.empty()) {
    return std::make_unique<TokenFileSource>(config.tokenFile, std::move(base), clock);
  }
  if (config.exec) {
    return std::make_unique<ExecSource>(*config.exec, execInfo(*config.exec, config),
                                        std::move(base), clock);
  }
  return std::make_unique<StaticSource>(std::move(base));
}

}  // namespace burstlet::kube
