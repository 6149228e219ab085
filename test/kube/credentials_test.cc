#include "kube/credentials.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/base64.h"
#include "common/log.h"
#include "kube/config.h"
#include "mocks/fake_clock.h"
#include "mocks/temp_dir.h"

namespace burstlet::kube {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kV1 = "client.authentication.k8s.io/v1";

using burstlet::testing::kCaPem;
using burstlet::testing::kCertPem;
using burstlet::testing::kKeyPem;
using burstlet::testing::TempDir;

// The clock starts at 2023-11-14T22:13:20Z.
constexpr const char* kInOneHour = "2023-11-14T23:13:20Z";
constexpr const char* kTomorrow = "2023-11-15T22:13:20Z";
constexpr const char* kAnHourAgo = "2023-11-14T21:13:20Z";

std::string execCredential(const std::string& apiVersion, const std::string& status) {
  return R"({"apiVersion":")" + apiVersion + R"(","kind":"ExecCredential","status":)" + status +
         "}";
}

// A script that counts its runs in `runs` and prints `output` (a shell word, quoted by the
// caller as needed).
std::string countingPlugin(const TempDir& dir, const std::string& output) {
  return dir.script("plugin.sh",
                    "echo run >> '" + dir.file("runs") + "'\ncat <<'EOF'\n" + output + "\nEOF\n");
}

size_t runs(const TempDir& dir) {
  const std::string text = dir.read("runs");
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

ClientConfig execConfig(const std::string& command) {
  ClientConfig config;
  config.server = "https://api.example.test:6443";
  config.exec = ExecConfig{};
  config.exec->command = command;
  config.exec->apiVersion = kV1;
  return config;
}

TEST(StaticCredentialTest, TokenCertificateAndBasicAuth) {
  ClientConfig config;
  config.token = "static-credential-token-0001";
  config.clientCertPem = kCertPem;
  config.clientKeyPem = kKeyPem;
  auto source = makeCredentialSource(config);
  auto cred = source->current();
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->bearerToken, "static-credential-token-0001");
  EXPECT_EQ(cred->clientCertPem, kCertPem);
  EXPECT_EQ(cred->clientKeyPem, kKeyPem);
  EXPECT_FALSE(cred->expiresAt.has_value());
  source->invalidate();
  EXPECT_EQ(source->current()->bearerToken, "static-credential-token-0001");
  EXPECT_EQ(log::redact("x static-credential-token-0001 y"), "x <redacted> y");

  ClientConfig basic;
  basic.username = "admin";
  basic.password = "static-credential-password";
  cred = makeCredentialSource(basic)->current();
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->basicAuth, "admin:static-credential-password");
  EXPECT_TRUE(cred->bearerToken.empty());

  cred = makeCredentialSource(ClientConfig{})->current();
  ASSERT_TRUE(cred.ok());
  EXPECT_TRUE(cred->bearerToken.empty() && cred->clientCertPem.empty() && cred->basicAuth.empty());
}

TEST(StaticCredentialTest, TokenWinsOverExec) {
  ClientConfig config = execConfig("/nonexistent/plugin");
  config.token = "static-token-beats-exec-01";
  const auto cred = makeCredentialSource(config)->current();
  ASSERT_TRUE(cred.ok()) << cred.error().toString();
  EXPECT_EQ(cred->bearerToken, "static-token-beats-exec-01");
}

class TokenFileCredentialTest : public ::testing::Test {
 protected:
  std::unique_ptr<CredentialSource> source(const std::string& path) {
    ClientConfig config;
    config.tokenFile = path;
    config.clientCertPem = kCertPem;
    config.clientKeyPem = kKeyPem;
    return makeCredentialSource(config, clock_);
  }
  std::string token(CredentialSource& s) {
    auto cred = s.current();
    EXPECT_TRUE(cred.ok()) << cred.error().toString();
    return cred.ok() ? cred->bearerToken : "<error>";
  }
  TempDir dir_;
  testing::FakeClock clock_;
};

TEST_F(TokenFileCredentialTest, RereadsWhenTheFileChangesAtMostOncePerSecond) {
  const std::string path = dir_.write("token", "  token-file-value-one\n");
  auto s = source(path);
  EXPECT_EQ(token(*s), "token-file-value-one");
  EXPECT_EQ(s->current()->clientCertPem, kCertPem);

  dir_.write("token", "token-file-value-two-longer\n");
  EXPECT_EQ(token(*s), "token-file-value-one") << "no stat within a second";
  clock_.advance(900ms);
  EXPECT_EQ(token(*s), "token-file-value-one");
  clock_.advance(100ms);
  EXPECT_EQ(token(*s), "token-file-value-two-longer");

  // Unchanged file: the same value after many seconds.
  clock_.advance(5s);
  EXPECT_EQ(token(*s), "token-file-value-two-longer");

  // Same size, new mtime.
  dir_.write("token", "token-file-value-TWO-longer\n");
  const timespec times[2] = {{0, UTIME_OMIT}, {1'600'000'000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  clock_.advance(1s);
  EXPECT_EQ(token(*s), "token-file-value-TWO-longer");
}

TEST_F(TokenFileCredentialTest, InvalidateForcesReread) {
  dir_.write("token", "token-file-before-401\n");
  auto s = source(dir_.file("token"));
  EXPECT_EQ(token(*s), "token-file-before-401");
  dir_.write("token", "token-file-after-401!\n");
  EXPECT_EQ(token(*s), "token-file-before-401");
  s->invalidate();
  EXPECT_EQ(token(*s), "token-file-after-401!");
}

TEST_F(TokenFileCredentialTest, AtomicRenameIsNoticed) {
  // The kubelet rotates projected tokens by swapping a symlink; model it with rename().
  dir_.write("token", "token-rename-aaaa\n");
  auto s = source(dir_.file("token"));
  EXPECT_EQ(token(*s), "token-rename-aaaa");
  dir_.write("token.new", "token-rename-bbbb\n");
  fs::rename(dir_.file("token.new"), dir_.file("token"));
  clock_.advance(1s);
  EXPECT_EQ(token(*s), "token-rename-bbbb");
}

TEST_F(TokenFileCredentialTest, EmptyOrMissingFileIsAnError) {
  dir_.write("token", " \n");
  auto s = source(dir_.file("token"));
  auto cred = s->current();
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(cred.error().message, HasSubstr("is empty"));

  auto missing = source(dir_.file("absent"));
  cred = missing->current();
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(cred.error().message, HasSubstr(dir_.file("absent")));

  // Once the file is fixed, the next call reads it.
  dir_.write("token", "token-file-fixed-now\n");
  EXPECT_EQ(token(*s), "token-file-fixed-now");
}

TEST_F(TokenFileCredentialTest, TokenIsRegisteredAsSecret) {
  dir_.write("token", "token-file-registered-secret-42\n");
  auto s = source(dir_.file("token"));
  EXPECT_EQ(token(*s), "token-file-registered-secret-42");
  EXPECT_EQ(log::redact("got token-file-registered-secret-42"), "got <redacted>");
}

class ExecCredentialTest : public ::testing::Test {
 protected:
  TempDir dir_;
  testing::FakeClock clock_;
};

TEST_F(ExecCredentialTest, TokenIsCachedUntilItExpires) {
  // First run: valid for an hour; later runs: valid until tomorrow.
  const std::string plugin = dir_.script(
      "plugin.sh", "echo run >> '" + dir_.file("runs") + "'\n" + "if [ \"$(wc -l < '" +
                       dir_.file("runs") + "')\" -eq 1 ]; then exp=" + kInOneHour +
                       "; tok=exec-token-first-run; else exp=" + kTomorrow +
                       "; tok=exec-token-later-run; fi\n" + "printf '" +
                       execCredential(kV1, R"({"token":"%s","expirationTimestamp":"%s"})") +
                       "' \"$tok\" \"$exp\"\n");
  auto source = makeCredentialSource(execConfig(plugin), clock_);
  auto cred = source->current();
  ASSERT_TRUE(cred.ok()) << cred.error().toString();
  EXPECT_EQ(cred->bearerToken, "exec-token-first-run");
  ASSERT_TRUE(cred->expiresAt.has_value());
  EXPECT_EQ(*cred->expiresAt, clock_.now() + 1h);
  EXPECT_EQ(runs(dir_), 1u);

  clock_.advance(59min);
  EXPECT_EQ(source->current()->bearerToken, "exec-token-first-run");
  EXPECT_EQ(runs(dir_), 1u);

  clock_.advance(1min);  // exactly at expiry: fetch again
  cred = source->current();
  ASSERT_TRUE(cred.ok()) << cred.error().toString();
  EXPECT_EQ(cred->bearerToken, "exec-token-later-run");
  EXPECT_EQ(runs(dir_), 2u);

  source->invalidate();
  EXPECT_EQ(source->current()->bearerToken, "exec-token-later-run");
  EXPECT_EQ(runs(dir_), 3u);
  EXPECT_EQ(log::redact("exec-token-later-run"), "<redacted>");
}

TEST_F(ExecCredentialTest, ClientCertificateWithoutExpiryIsCachedUntilInvalidated) {
  const boost::json::object status{{"clientCertificateData", kCertPem}, {"clientKeyData", kKeyPem}};
  auto source = makeCredentialSource(
      execConfig(countingPlugin(dir_, execCredential(kV1, boost::json::serialize(status)))),
      clock_);
  auto cred = source->current();
  ASSERT_TRUE(cred.ok()) << cred.error().toString();
  EXPECT_EQ(cred->clientCertPem, kCertPem);
  EXPECT_EQ(cred->clientKeyPem, kKeyPem);
  EXPECT_TRUE(cred->bearerToken.empty());
  EXPECT_FALSE(cred->expiresAt.has_value());
  clock_.advance(24h * 365);
  ASSERT_TRUE(source->current().ok());
  EXPECT_EQ(runs(dir_), 1u);
  source->invalidate();
  ASSERT_TRUE(source->current().ok());
  EXPECT_EQ(runs(dir_), 2u);
}

TEST_F(ExecCredentialTest, PluginSeesExecInfoArgsAndEnv) {
  const std::string plugin = dir_.script(
      "plugin.sh", "printf '%s' \"$KUBERNETES_EXEC_INFO\" > '" + dir_.file("info") + "'\n" +
                       "printf '%s %s|%s|%s' \"$1\" \"$2\" \"$PLUGIN_PROFILE\" \"$HOME\" > '" +
                       dir_.file("args") + "'\n" +
                       "if read -r line; then echo data; else echo eof; fi > '" +
                       dir_.file("stdin") + "'\necho '" +
                       execCredential("client.authentication.k8s.io/v1beta1",
                                      R"({"token":"exec-token-info-test"})") +
                       "'\n");
  ClientConfig config = execConfig(plugin);
  config.tlsServerName = "kubernetes.default";
  config.caPem = kCaPem;
  config.exec->apiVersion = "client.authentication.k8s.io/v1beta1";
  config.exec->args = {"--region", "ap southeast"};
  config.exec->env = {{"PLUGIN_PROFILE", "burst"}};
  config.exec->provideClusterInfo = true;
  auto cred = makeCredentialSource(config, clock_)->current();
  ASSERT_TRUE(cred.ok()) << cred.error().toString();
  EXPECT_EQ(cred->bearerToken, "exec-token-info-test");

  const char* home = std::getenv("HOME");
  EXPECT_EQ(dir_.read("args"),
            std::string("--region ap southeast|burst|") + (home != nullptr ? home : ""));
  boost::system::error_code ec;
  const auto info = boost::json::parse(dir_.read("info"), ec);
  ASSERT_FALSE(ec) << dir_.read("info");
  EXPECT_EQ(info.at("apiVersion"), "client.authentication.k8s.io/v1beta1");
  EXPECT_EQ(info.at("kind"), "ExecCredential");
  EXPECT_EQ(info.at("spec").at("interactive"), false);
  const auto& cluster = info.at("spec").at("cluster");
  EXPECT_EQ(cluster.at("server"), "https://api.example.test:6443");
  EXPECT_EQ(cluster.at("tls-server-name"), "kubernetes.default");
  EXPECT_EQ(boost::json::value_to<std::string>(cluster.at("certificate-authority-data")),
            base64Encode(kCaPem));
  EXPECT_EQ(cluster.as_object().if_contains("insecure-skip-tls-verify"), nullptr);
  EXPECT_EQ(dir_.read("stdin"), "eof\n") << "stdin is /dev/null";
}

TEST_F(ExecCredentialTest, NoClusterInfoUnlessAsked) {
  const std::string plugin = dir_.script(
      "plugin.sh", "printf '%s' \"$KUBERNETES_EXEC_INFO\" > '" + dir_.file("info") + "'\necho '" +
                       execCredential(kV1, R"({"token":"exec-token-no-cluster"})") + "'\n");
  ASSERT_TRUE(makeCredentialSource(execConfig(plugin), clock_)->current().ok());
  EXPECT_EQ(boost::json::parse(dir_.read("info")),
            boost::json::parse(R"({"apiVersion":"client.authentication.k8s.io/v1",)"
                               R"("kind":"ExecCredential","spec":{"interactive":false}})"));
}

TEST_F(ExecCredentialTest, NonZeroExitReportsCodeAndRedactedStderr) {
  log::registerSecret("exec-stderr-secret-value");
  const std::string plugin = dir_.script(
      "plugin.sh",
      "echo 'login failed for exec-stderr-secret-value: Authorization: Bearer abcdefghijkl' >&2\n"
      "i=0; while [ $i -lt 50 ]; do printf 'padding-' >&2; i=$((i+1)); done\n"
      "echo '" +
          execCredential(kV1, R"({"token":"exec-token-printed-before-failure"})") + "'\nexit 3\n");
  auto cred = makeCredentialSource(execConfig(plugin), clock_)->current();
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.error().code, ErrorCode::kUnauthorized);
  EXPECT_EQ(cred.error().reason, "ExecPluginFailed");
  EXPECT_THAT(cred.error().message, HasSubstr("exited with code 3: login failed for <redacted>"));
  EXPECT_THAT(cred.error().message, Not(HasSubstr("exec-stderr-secret-value")));
  EXPECT_THAT(cred.error().message, Not(HasSubstr("abcdefghijkl")));
  EXPECT_THAT(cred.error().message, Not(HasSubstr("exec-token-printed-before-failure")));
  const size_t stderrStart = cred.error().message.find("login failed");
  EXPECT_LE(cred.error().message.size() - stderrStart, 200u);
}

TEST_F(ExecCredentialTest, InvalidOutputIsNeverQuoted) {
  struct Case {
    const char* name;
    std::string output;
  };
  for (const Case& c : {
           Case{"not json", R"(token: "exec-raw-stdout-secret-1")"},
           Case{"not an object", R"(["exec-raw-stdout-secret-1"])"},
           Case{"wrong kind", R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"Pod",)"
                              R"("status":{"token":"exec-raw-stdout-secret-1"}})"},
           Case{"wrong apiVersion", execCredential("client.authentication.k8s.io/v1beta1",
                                                   R"({"token":"exec-raw-stdout-secret-1"})")},
           Case{"no status", R"({"apiVersion":"client.authentication.k8s.io/v1",)"
                             R"("kind":"ExecCredential","token":"exec-raw-stdout-secret-1"})"},
           Case{"empty status", execCredential(kV1, "{}")},
           Case{"cert without key", execCredential(kV1, R"({"clientCertificateData":"x"})")},
           Case{"key not pem",
                execCredential(kV1, R"({"clientCertificateData":"-----BEGIN C",)"
                                    R"("clientKeyData":"exec-raw-stdout-secret-1"})")},
           Case{"bad expiry", execCredential(kV1, R"({"token":"exec-raw-stdout-secret-1",)"
                                                  R"("expirationTimestamp":"tomorrow"})")},
       }) {
    TempDir dir;
    auto cred = makeCredentialSource(execConfig(countingPlugin(dir, c.output)), clock_)->current();
    ASSERT_FALSE(cred.ok()) << c.name;
    EXPECT_EQ(cred.error().code, ErrorCode::kUnauthorized) << c.name;
    EXPECT_EQ(cred.error().reason, "ExecPluginInvalidOutput") << c.name;
    EXPECT_THAT(cred.error().message, Not(HasSubstr("exec-raw-stdout-secret-1"))) << c.name;
  }
}

TEST_F(ExecCredentialTest, WrongApiVersionNamesTheConfiguredOne) {
  auto cred =
      makeCredentialSource(
          execConfig(countingPlugin(dir_, execCredential("client.authentication.k8s.io/v1beta1",
                                                         R"({"token":"exec-token-version"})"))),
          clock_)
          ->current();
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.error().reason, "ExecPluginInvalidOutput");
  EXPECT_THAT(cred.error().message, HasSubstr("apiVersion"));
  EXPECT_THAT(cred.error().message, HasSubstr(kV1));
}

TEST_F(ExecCredentialTest, ExpiredCredentialIsRejected) {
  auto source = makeCredentialSource(
      execConfig(countingPlugin(
          dir_, execCredential(kV1, std::string(R"({"token":"exec-token-expired",)") +
                                        R"("expirationTimestamp":")" + kAnHourAgo + "\"}"))),
      clock_);
  auto cred = source->current();
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.error().code, ErrorCode::kUnauthorized);
  EXPECT_EQ(cred.error().reason, "ExecCredentialExpired");
  EXPECT_THAT(cred.error().message, Not(HasSubstr("exec-token-expired")));
  // Not cached: the next call runs the plugin again.
  EXPECT_FALSE(source->current().ok());
  EXPECT_EQ(runs(dir_), 2u);
}

TEST_F(ExecCredentialTest, MissingCommandIncludesInstallHint) {
  for (const std::string& command :
       {dir_.file("no-such-plugin"), std::string("burstlet-no-such-plugin-7d1c")}) {
    ClientConfig config = execConfig(command);
    config.exec->installHint = "Install it with: apt install burstlet-login";
    auto cred = makeCredentialSource(config, clock_)->current();
    ASSERT_FALSE(cred.ok()) << command;
    EXPECT_EQ(cred.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(cred.error().reason, "ExecPluginNotFound");
    EXPECT_THAT(cred.error().message, HasSubstr(command));
    EXPECT_THAT(cred.error().message, HasSubstr("Install it with: apt install burstlet-login"));
  }
}

TEST_F(ExecCredentialTest, ScriptWithMissingInterpreterIsNotReportedAsMissing) {
  const std::string plugin = dir_.write("plugin", "#!/nonexistent/interpreter\n");
  fs::permissions(plugin, fs::perms::owner_all);
  auto cred = makeCredentialSource(execConfig(plugin), clock_)->current();
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.error().code, ErrorCode::kUnauthorized);
  EXPECT_EQ(cred.error().reason, "ExecPluginFailed");
  EXPECT_THAT(cred.error().message, HasSubstr("cannot start"));
}

// True once `pid` is gone or a zombie (a container's init may never reap it).
bool processEnded(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string line;
  if (!std::getline(in, line)) {
    return true;
  }
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

TEST_F(ExecCredentialTest, HangingPluginIsKilledAfterTheTimeout) {
  // The plugin waits on a child of its own: the kill must reach it too.
  const std::string plugin = dir_.script(
      "plugin.sh", "sleep 30 &\necho $! > '" + dir_.file("child") + "'\nwait\necho late\n");
  ClientConfig config = execConfig(plugin);
  config.exec->timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  auto cred = makeCredentialSource(config, clock_)->current();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(cred.error().reason, "ExecPluginTimeout");
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 3s);

  std::string child = dir_.read("child");
  while (!child.empty() && child.back() == '\n') {
    child.pop_back();
  }
  ASSERT_FALSE(child.empty());
  bool ended = false;
  for (int i = 0; i < 100 && !ended; ++i) {
    ended = processEnded(child);
    if (!ended) {
      std::this_thread::sleep_for(10ms);
    }
  }
  EXPECT_TRUE(ended) << "the plugin's child " << child << " survived";
}

TEST_F(ExecCredentialTest, PluginThatClosesStdoutButKeepsRunningIsKilled) {
  const std::string plugin = dir_.script("plugin.sh", "exec >/dev/null 2>&1\nsleep 30\n");
  ClientConfig config = execConfig(plugin);
  config.exec->timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  auto cred = makeCredentialSource(config, clock_)->current();
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.error().reason, "ExecPluginTimeout");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(ExecCredentialTest, ConcurrentCallersShareOneRun) {
  auto source = makeCredentialSource(
      execConfig(countingPlugin(dir_, execCredential(kV1, R"({"token":"exec-token-shared"})"))),
      clock_);
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto cred = source->current();
      if (cred.ok() && cred->bearerToken == "exec-token-shared") {
        ++ok;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(runs(dir_), 1u);
}

TEST_F(ExecCredentialTest, FromKubeconfigWithRelativeCommand) {
  dir_.script("bin/login.sh",
              "echo '" + execCredential(kV1, R"({"token":"exec-token-from-kubeconfig"})") + "'\n");
  const std::string kubeconfig = dir_.write("config", R"(current-context: ctx
clusters:
- {name: c, cluster: {server: "https://api.example.test"}}
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/login.sh
      interactiveMode: Never
contexts:
- {name: ctx, context: {cluster: c, user: u}}
)");
  const auto config = loadKubeconfig({.paths = {kubeconfig}});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  const auto cred = makeCredentialSource(*config, clock_)->current();
  ASSERT_TRUE(cred.ok()) << cred.error().toString();
  EXPECT_EQ(cred->bearerToken, "exec-token-from-kubeconfig");
}

TEST_F(ExecCredentialTest, TokensNeverReachLogs) {
  std::ostringstream logs;
  ASSERT_TRUE(log::init({"trace", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs)}).ok());
  // A plugin that later fails and echoes the token it issued before.
  const std::string ok = dir_.script(
      "ok.sh", "echo '" + execCredential(kV1, R"({"token":"exec-token-log-check-99"})") + "'\n");
  auto good = makeCredentialSource(execConfig(ok), clock_)->current();
  ASSERT_TRUE(good.ok());
  const std::string plugin = dir_.script(
      "plugin.sh", "echo 'failing, old credential exec-token-log-check-99' >&2\nexit 1\n");
  auto cred = makeCredentialSource(execConfig(plugin), clock_)->current();
  ASSERT_FALSE(cred.ok());
  EXPECT_THAT(cred.error().message, Not(HasSubstr("exec-token-log-check-99")));
  spdlog::default_logger()->flush();
  EXPECT_THAT(logs.str(), HasSubstr("exec credential plugin failed"));
  EXPECT_THAT(logs.str(), Not(HasSubstr("exec-token-log-check-99")));
  ASSERT_TRUE(log::init({"info", nullptr}).ok());
}

}  // namespace
}  // namespace burstlet::kube
