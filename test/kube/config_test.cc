#include "kube/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "common/base64.h"
#include "common/log.h"
#include "mocks/temp_dir.h"

namespace burstlet::kube {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "kubeconfig-test-token-0123456789abcdef";

using burstlet::testing::kCaPem;
using burstlet::testing::kCertPem;
using burstlet::testing::kKeyPem;
using burstlet::testing::TempDir;

// Sets or unsets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    if (value == nullptr) {
      unsetenv(name);
    } else {
      setenv(name, value, 1);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

std::string indent(const std::string& text, int spaces) {
  std::istringstream in(text);
  std::string out;
  std::string line;
  while (std::getline(in, line)) {
    out += std::string(static_cast<size_t>(spaces), ' ') + line + "\n";
  }
  return out;
}

// One cluster "c", one user "u", one context "ctx" (current) with namespace team-a.
std::string kubeconfig(const std::string& cluster, const std::string& user,
                       const std::string& context = "cluster: c\nuser: u\nnamespace: team-a\n") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: ctx\nclusters:\n- name: c\n  cluster:\n" +
         indent(cluster, 4) + "users:\n- name: u\n  user:\n" + indent(user, 4) +
         "contexts:\n- name: ctx\n  context:\n" + indent(context, 4);
}

const std::string kServer = "server: https://api.example.test:6443\n";
const std::string kTokenUser = std::string("token: ") + kToken + "\n";

class KubeconfigTest : public ::testing::Test {
 protected:
  Result<ClientConfig> load(const std::string& yaml, KubeconfigOptions options = {}) {
    options.paths = {dir_.write("config", yaml)};
    return loadKubeconfig(options);
  }

  TempDir dir_;
};

TEST(SplitKubeconfigEnvTest, SplitsAndDropsEmptyEntries) {
  EXPECT_THAT(splitKubeconfigEnv("/a:/b/c::d:"), ::testing::ElementsAre("/a", "/b/c", "d"));
  EXPECT_TRUE(splitKubeconfigEnv("").empty());
  EXPECT_TRUE(splitKubeconfigEnv(":::").empty());
  EXPECT_THAT(splitKubeconfigEnv("one"), ::testing::ElementsAre("one"));
}

TEST_F(KubeconfigTest, LoadsInlineCertificatesAndNamespace) {
  const auto config =
      load(kubeconfig(kServer + "certificate-authority-data: " + base64Encode(kCaPem) + "\n",
                      "client-certificate-data: " + base64Encode(kCertPem) +
                          "\nclient-key-data: " + base64Encode(kKeyPem) + "\n"));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "https://api.example.test:6443");
  EXPECT_EQ(config->caPem, kCaPem);
  EXPECT_EQ(config->clientCertPem, kCertPem);
  EXPECT_EQ(config->clientKeyPem, kKeyPem);
  EXPECT_EQ(config->defaultNamespace, "team-a");
  EXPECT_FALSE(config->insecureSkipTlsVerify);
  EXPECT_TRUE(config->token.empty());
  EXPECT_FALSE(config->exec.has_value());
  EXPECT_EQ(config->source, "kubeconfig " + dir_.file("config") + " context ctx");
}

TEST_F(KubeconfigTest, CertificateFilesAreRelativeToTheKubeconfig) {
  dir_.write("kc/pki/ca.crt", kCaPem);
  dir_.write("kc/pki/client.crt", kCertPem);
  dir_.write("kc/pki/client.key", kKeyPem);
  const std::string path =
      dir_.write("kc/config", kubeconfig(kServer + "certificate-authority: pki/ca.crt\n",
                                         "client-certificate: pki/client.crt\nclient-key: " +
                                             dir_.file("kc/pki/client.key") + "\n"));
  const auto config = loadKubeconfig({.paths = {path}});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->caPem, kCaPem);
  EXPECT_EQ(config->clientCertPem, kCertPem);
  EXPECT_EQ(config->clientKeyPem, kKeyPem);
}

TEST_F(KubeconfigTest, TokenAndTlsServerName) {
  const auto config =
      load(kubeconfig(kServer + "tls-server-name: kubernetes.default\n", kTokenUser));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->token, kToken);
  EXPECT_EQ(config->tlsServerName, "kubernetes.default");
  EXPECT_TRUE(config->caPem.empty());
}

TEST_F(KubeconfigTest, InsecureSkipTlsVerify) {
  const auto config = load(kubeconfig(kServer + "insecure-skip-tls-verify: true\n", kTokenUser));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_TRUE(config->insecureSkipTlsVerify);
}

TEST_F(KubeconfigTest, TokenFileIsResolvedButNotRead) {
  const auto config = load(kubeconfig(kServer, "tokenFile: secrets/token\n"));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->tokenFile, dir_.file("secrets/token"));
  EXPECT_TRUE(fs::path(config->tokenFile).is_absolute());
  EXPECT_TRUE(config->token.empty());
}

TEST_F(KubeconfigTest, BasicAuth) {
  const auto config =
      load(kubeconfig(kServer, "username: admin\npassword: kubeconfig-test-password\n"));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->username, "admin");
  EXPECT_EQ(config->password, "kubeconfig-test-password");
}

TEST_F(KubeconfigTest, UserWithoutCredentialsIsAnonymous) {
  const auto config = load(kubeconfig(kServer, "{}", "cluster: c\nuser: u\n"));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_TRUE(config->token.empty());
  EXPECT_TRUE(config->clientCertPem.empty());
  EXPECT_TRUE(config->defaultNamespace.empty());
}

TEST_F(KubeconfigTest, ExecPlugin) {
  const auto config = load(kubeconfig(kServer, R"(exec:
  apiVersion: client.authentication.k8s.io/v1beta1
  command: ./bin/get-token
  args: ["--cluster", "prod"]
  env:
  - name: AWS_PROFILE
    value: burst
  provideClusterInfo: true
  installHint: install get-token from example.test
  interactiveMode: IfAvailable
)"));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  ASSERT_TRUE(config->exec.has_value());
  const ExecConfig& exec = *config->exec;
  EXPECT_EQ(exec.command, dir_.file("bin/get-token"));
  EXPECT_THAT(exec.args, ::testing::ElementsAre("--cluster", "prod"));
  ASSERT_EQ(exec.env.size(), 1u);
  EXPECT_EQ(exec.env[0].first, "AWS_PROFILE");
  EXPECT_EQ(exec.env[0].second, "burst");
  EXPECT_EQ(exec.apiVersion, "client.authentication.k8s.io/v1beta1");
  EXPECT_TRUE(exec.provideClusterInfo);
  EXPECT_EQ(exec.installHint, "install get-token from example.test");
  EXPECT_EQ(exec.interactiveMode, "IfAvailable");
}

TEST_F(KubeconfigTest, ExecCommandWithoutSlashIsLookedUpInPath) {
  const auto config = load(kubeconfig(
      kServer,
      "exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: gke-gcloud-auth-plugin\n"
      "  interactiveMode: Never\n"));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->exec->command, "gke-gcloud-auth-plugin");
  EXPECT_TRUE(config->exec->args.empty());
  EXPECT_FALSE(config->exec->provideClusterInfo);
}

TEST_F(KubeconfigTest, ContextClusterAndUserOverrides) {
  const std::string yaml = R"(current-context: one
clusters:
- name: c1
  cluster: {server: "https://one.example.test"}
- name: c2
  cluster: {server: "http://two.example.test:8080/prefix"}
users:
- name: u1
  user: {token: token-of-user-one-1234}
- name: u2
  user: {token: token-of-user-two-1234}
contexts:
- name: one
  context: {cluster: c1, user: u1, namespace: ns1}
- name: two
  context: {cluster: c2, user: u2, namespace: ns2}
)";
  auto config = load(yaml);
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "https://one.example.test");
  EXPECT_EQ(config->token, "token-of-user-one-1234");

  config = load(yaml, {.context = "two"});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "http://two.example.test:8080/prefix");
  EXPECT_EQ(config->token, "token-of-user-two-1234");
  EXPECT_EQ(config->defaultNamespace, "ns2");
  EXPECT_THAT(config->source, HasSubstr("context two"));

  config = load(yaml, {.context = "two", .cluster = "c1", .user = "u1"});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "https://one.example.test");
  EXPECT_EQ(config->token, "token-of-user-one-1234");
  EXPECT_EQ(config->defaultNamespace, "ns2");
}

TEST_F(KubeconfigTest, MergesFilesFirstDefinitionWins) {
  const std::string first = dir_.write("a/config", R"(clusters:
- name: shared
  cluster: {server: "https://first.example.test"}
users:
- name: shared
  user: {token: first-file-token-123}
contexts:
- name: ctx-a
  context: {cluster: shared, user: shared, namespace: from-a}
)");
  dir_.write("b/ca.crt", kCaPem);
  const std::string second = dir_.write("b/config", R"(current-context: ctx-b
clusters:
- name: shared
  cluster: {server: "https://second.example.test"}
- name: only-b
  cluster: {server: "https://only-b.example.test", certificate-authority: ca.crt}
users:
- name: shared
  user: {token: second-file-token-123}
contexts:
- name: ctx-b
  context: {cluster: shared, user: shared, namespace: from-b}
- name: ctx-a
  context: {cluster: only-b, user: shared, namespace: shadowed}
)");
  // current-context comes from the second file (the first sets none); names resolve to the
  // first file that defines them.
  auto config = loadKubeconfig({.paths = {first, second}});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "https://first.example.test");
  EXPECT_EQ(config->token, "first-file-token-123");
  EXPECT_EQ(config->defaultNamespace, "from-b");
  EXPECT_EQ(config->source, "kubeconfig " + second + " context ctx-b");

  config = loadKubeconfig({.paths = {first, second}, .context = "ctx-a"});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->defaultNamespace, "from-a");
  EXPECT_EQ(config->source, "kubeconfig " + first + " context ctx-a");

  // A cluster from the second file reads its CA relative to the second file.
  config = loadKubeconfig({.paths = {first, second}, .cluster = "only-b"});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "https://only-b.example.test");
  EXPECT_EQ(config->caPem, kCaPem);

  // Reversed order: the second file's definitions win.
  config = loadKubeconfig({.paths = {second, first}});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "https://second.example.test");
  EXPECT_EQ(config->token, "second-file-token-123");
}

TEST_F(KubeconfigTest, FirstCurrentContextWins) {
  const std::string a = dir_.write("a", "current-context: two\n");
  const std::string b = dir_.write("b", R"(current-context: one
clusters:
- {name: c, cluster: {server: "https://c.example.test"}}
contexts:
- {name: one, context: {cluster: c, namespace: one}}
- {name: two, context: {cluster: c, namespace: two}}
)");
  const std::string empty = dir_.write("empty", "");
  auto config = loadKubeconfig({.paths = {empty, a, b}});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->defaultNamespace, "two");
  config = loadKubeconfig({.paths = {b, a}});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->defaultNamespace, "one");
}

TEST_F(KubeconfigTest, KubeconfigEnvSkipsMissingFiles) {
  const std::string path = dir_.write("real", kubeconfig(kServer, kTokenUser));
  {
    const ScopedEnv env("KUBECONFIG", (dir_.file("missing") + "::" + path).c_str());
    const auto config = loadKubeconfig({});
    ASSERT_TRUE(config.ok()) << config.error().toString();
    EXPECT_EQ(config->token, kToken);
  }
  {
    const ScopedEnv env("KUBECONFIG", dir_.file("missing").c_str());
    const auto config = loadKubeconfig({});
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.error().code, ErrorCode::kInvalid);
    EXPECT_THAT(config.error().message, HasSubstr(dir_.file("missing")));
  }
}

TEST_F(KubeconfigTest, FallsBackToHomeKubeConfig) {
  dir_.write(".kube/config", kubeconfig(kServer, kTokenUser));
  const ScopedEnv kubeconfigEnv("KUBECONFIG", nullptr);
  const ScopedEnv home("HOME", dir_.path().c_str());
  const auto config = loadKubeconfig({});
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->source, "kubeconfig " + dir_.file(".kube/config") + " context ctx");
}

TEST_F(KubeconfigTest, ExplicitMissingFileIsAnError) {
  const std::string present = dir_.write("present", kubeconfig(kServer, kTokenUser));
  const auto config = loadKubeconfig({.paths = {present, dir_.file("absent")}});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(config.error().reason, "InvalidKubeconfig");
  EXPECT_EQ(config.error().message,
            "kubeconfig: cannot read " + dir_.file("absent") + ": No such file or directory");
}

TEST_F(KubeconfigTest, UnreadableCertificateFileNamesFieldAndPath) {
  const auto config = load(kubeconfig(
      kServer, "client-certificate-data: " + base64Encode(kCertPem) + "\nclient-key: key.pem\n"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(config.error().reason, "InvalidKubeconfig");
  EXPECT_EQ(config.error().message, "kubeconfig " + dir_.file("config") +
                                        ": users[\"u\"].client-key: cannot read " +
                                        dir_.file("key.pem") + ": No such file or directory");
}

struct BrokenCase {
  const char* name;
  std::string yaml;
  std::string want;  // part of the message: the field at fault
  KubeconfigOptions options = {};
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const BrokenCase& c, std::ostream* os) {  // NOLINT(readability-identifier-naming)
  *os << c.name;
}

class BrokenKubeconfigTest : public ::testing::TestWithParam<BrokenCase> {
 protected:
  TempDir dir_;
};

TEST_P(BrokenKubeconfigTest, IsInvalidAndNamesTheField) {
  const BrokenCase& c = GetParam();
  KubeconfigOptions options = c.options;
  const std::string path = dir_.write("config", c.yaml);
  dir_.write("dir.pem/placeholder", "");
  options.paths = {path};
  const auto config = loadKubeconfig(options);
  ASSERT_FALSE(config.ok()) << c.name;
  EXPECT_EQ(config.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(config.error().reason, "InvalidKubeconfig");
  EXPECT_THAT(config.error().message, HasSubstr(c.want));
  EXPECT_THAT(config.error().message, HasSubstr(path)) << "the message names the file";
  // Secrets in the same file never leak into the message.
  EXPECT_THAT(config.error().message, Not(HasSubstr(kToken)));
  EXPECT_THAT(config.error().message, Not(HasSubstr("Y2xpZW50IGtleQ")));
  EXPECT_THAT(config.error().message, Not(HasSubstr("bm90IGEgcGVt")));
}

const std::string kCertAndKeyUser = "client-certificate-data: " + base64Encode(kCertPem) +
                                    "\nclient-key-data: " + base64Encode(kKeyPem) + "\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, BrokenKubeconfigTest,
    ::testing::Values(
        BrokenCase{"BadYaml", "clusters: [\n  - {name: c\n" + kTokenUser, "invalid YAML at line"},
        BrokenCase{"SequenceAtTop", "- a\n- b\n", "top level must be a map"},
        BrokenCase{"ScalarAtTop", "just some text\n", "top level must be a map"},
        BrokenCase{"ClustersNotAList", "clusters: {c: {}}\n", "clusters: must be a list"},
        BrokenCase{"EntryWithoutName", "clusters:\n- cluster: {server: https://x}\n",
                   "clusters[0].name: required"},
        BrokenCase{"NoCurrentContext", "clusters: []\n", "current-context: not set"},
        BrokenCase{"UnknownContext",
                   kubeconfig(kServer, kTokenUser),
                   "context \"nope\": not found",
                   {.context = "nope"}},
        BrokenCase{"ContextWithMissingCluster",
                   kubeconfig(kServer, kTokenUser, "cluster: gone\nuser: u\n"),
                   "contexts[\"ctx\"].cluster: cluster \"gone\" not found"},
        BrokenCase{"ContextWithMissingUser",
                   kubeconfig(kServer, kTokenUser, "cluster: c\nuser: gone\n"),
                   "contexts[\"ctx\"].user: user \"gone\" not found"},
        BrokenCase{"ContextWithoutCluster", kubeconfig(kServer, kTokenUser, "user: u\n"),
                   "contexts[\"ctx\"].cluster: required"},
        BrokenCase{"ServerMissing", kubeconfig("insecure-skip-tls-verify: true\n", kTokenUser),
                   "clusters[\"c\"].server: required"},
        BrokenCase{"ServerNotHttp", kubeconfig("server: ftp://x.example.test\n", kTokenUser),
                   "clusters[\"c\"].server: \"ftp://x.example.test\" must be an http or https"},
        BrokenCase{"ServerNotUrl", kubeconfig("server: not a url\n", kTokenUser),
                   "clusters[\"c\"].server"},
        BrokenCase{"ServerWithUserinfo",
                   kubeconfig("server: https://admin:hunter2hunter2@x.example.test\n", kTokenUser),
                   "clusters[\"c\"].server: credentials in the URL"},
        BrokenCase{"InsecureNotBool",
                   kubeconfig(kServer + "insecure-skip-tls-verify: maybe\n", kTokenUser),
                   "clusters[\"c\"].insecure-skip-tls-verify: must be true or false"},
        BrokenCase{"InsecureWithCa",
                   kubeconfig(kServer +
                                  "insecure-skip-tls-verify: true\n"
                                  "certificate-authority-data: " +
                                  base64Encode(kCaPem) + "\n",
                              kTokenUser),
                   "clusters[\"c\"].insecure-skip-tls-verify: cannot be combined"},
        BrokenCase{"ProxyUrl", kubeconfig(kServer + "proxy-url: http://proxy:3128\n", kTokenUser),
                   "clusters[\"c\"].proxy-url: proxy-url is not supported"},
        BrokenCase{
            "BadBase64",
            kubeconfig(kServer + "certificate-authority-data: '!!notbase64!!'\n", kTokenUser),
            "clusters[\"c\"].certificate-authority-data: invalid base64"},
        BrokenCase{
            "CaDataNotPem",
            kubeconfig(kServer + "certificate-authority-data: " + base64Encode("not a pem") + "\n",
                       kTokenUser),
            "clusters[\"c\"].certificate-authority-data: not PEM"},
        BrokenCase{"CaFileUnreadable",
                   kubeconfig(kServer + "certificate-authority: missing-ca.crt\n", kTokenUser),
                   "clusters[\"c\"].certificate-authority: cannot read "},
        BrokenCase{"CaFileIsDirectory",
                   kubeconfig(kServer + "certificate-authority: dir.pem\n", kTokenUser),
                   "clusters[\"c\"].certificate-authority: cannot read "},
        BrokenCase{
            "KeyDataNotPem",
            kubeconfig(kServer, "client-certificate-data: " + base64Encode(kCertPem) +
                                    "\nclient-key-data: " + base64Encode("not a pem") + "\n"),
            "users[\"u\"].client-key-data: not PEM"},
        BrokenCase{"KeyDataBadBase64",
                   kubeconfig(kServer, "client-certificate-data: " + base64Encode(kCertPem) +
                                           "\nclient-key-data: Y2xpZW50IGtleQ=x\n"),
                   "users[\"u\"].client-key-data: invalid base64"},
        BrokenCase{"CertWithoutKey",
                   kubeconfig(kServer, "client-certificate-data: " + base64Encode(kCertPem) + "\n"),
                   "users[\"u\"].client-certificate: set without client-key"},
        BrokenCase{"KeyWithoutCert",
                   kubeconfig(kServer, "client-key-data: " + base64Encode(kKeyPem) + "\n"),
                   "users[\"u\"].client-key: set without client-certificate"},
        BrokenCase{"CertFileAndData",
                   kubeconfig(kServer, kCertAndKeyUser + "client-certificate: client.crt\n"),
                   "users[\"u\"]: client-certificate and client-certificate-data are both set"},
        BrokenCase{"TokenAndBasicAuth",
                   kubeconfig(kServer, kTokenUser + "username: a\npassword: b\n"),
                   "users[\"u\"]: more than one authentication method"},
        BrokenCase{"TokenNotString", kubeconfig(kServer, "token: [a, b]\n"),
                   "users[\"u\"].token: must be a string"},
        BrokenCase{"AuthProvider",
                   kubeconfig(kServer, kTokenUser + "auth-provider:\n  name: oidc\n"),
                   "users[\"u\"].auth-provider: auth-provider plugins are not supported, use exec"},
        BrokenCase{"ExecWithoutCommand",
                   kubeconfig(kServer, "exec:\n  apiVersion: client.authentication.k8s.io/v1\n"),
                   "users[\"u\"].exec.command: required"},
        BrokenCase{"ExecBadApiVersion",
                   kubeconfig(kServer, "exec:\n  command: x\n  apiVersion: v1\n"),
                   "users[\"u\"].exec.apiVersion: \"v1\" is not supported"},
        BrokenCase{"ExecInteractiveAlways",
                   kubeconfig(kServer,
                              "exec:\n  command: x\n  apiVersion: client.authentication.k8s.io/v1\n"
                              "  interactiveMode: Always\n"),
                   "users[\"u\"].exec.interactiveMode: Always needs a terminal"},
        BrokenCase{"ExecEnvWithoutName",
                   kubeconfig(kServer,
                              "exec:\n  command: x\n  apiVersion: client.authentication.k8s.io/v1\n"
                              "  env:\n  - value: y\n"),
                   "users[\"u\"].exec.env[0].name"}),
    [](const ::testing::TestParamInfo<BrokenCase>& info) { return std::string(info.param.name); });

TEST_F(KubeconfigTest, TokensNeverReachLogs) {
  std::ostringstream logs;
  ASSERT_TRUE(log::init({"trace", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs)}).ok());
  auto config = load(kubeconfig(kServer, kTokenUser));
  ASSERT_TRUE(config.ok()) << config.error().toString();
  spdlog::info("msg=\"config for test\" user_token={} error=\"{}\"", config->token,
               load(kubeconfig(kServer, kTokenUser, "cluster: gone\nuser: u\n")).error().message);
  spdlog::default_logger()->flush();
  EXPECT_THAT(logs.str(), HasSubstr("loaded kubeconfig"));
  EXPECT_THAT(logs.str(), Not(HasSubstr(kToken)));
  ASSERT_TRUE(log::init({"info", nullptr}).ok());
}

TEST(ReadFileNamedTest, ReadsWholeFileOrNamesIt) {
  TempDir dir;
  const std::string path = dir.write("f", std::string(40000, 'x'));
  const auto text = readFileNamed(path, "test file");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->size(), 40000u);
  const auto missing = readFileNamed(dir.file("nope"), "test file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(missing.error().message,
            "test file: cannot read " + dir.file("nope") + ": No such file or directory");
}

class InClusterConfigTest : public ::testing::Test {
 protected:
  void writeServiceAccount() {
    dir_.write("ca.crt", kCaPem);
    dir_.write("token", std::string(kToken) + "\n");
    dir_.write("namespace", "burst-system\n");
  }
  TempDir dir_;
};

TEST_F(InClusterConfigTest, NotInCluster) {
  const ScopedEnv host("KUBERNETES_SERVICE_HOST", nullptr);
  const ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  writeServiceAccount();
  const auto config = inClusterConfig(dir_.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(config.error().message, "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT unset");
}

TEST_F(InClusterConfigTest, ReadsServiceAccount) {
  const ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  const ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  writeServiceAccount();
  const auto config = inClusterConfig(dir_.path());
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->caPem, kCaPem);
  EXPECT_EQ(config->tokenFile, dir_.file("token"));
  EXPECT_TRUE(config->token.empty()) << "the token is re-read by the credential source";
  EXPECT_EQ(config->defaultNamespace, "burst-system");
}

TEST_F(InClusterConfigTest, BracketsIpv6AndNamespaceIsOptional) {
  const ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
  const ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
  dir_.write("ca.crt", kCaPem);
  dir_.write("token", kToken);
  const auto config = inClusterConfig(dir_.path());
  ASSERT_TRUE(config.ok()) << config.error().toString();
  EXPECT_EQ(config->server, "https://[fd00:10:96::1]:6443");
  EXPECT_TRUE(config->defaultNamespace.empty());
}

TEST_F(InClusterConfigTest, MissingTokenOrCaIsAnError) {
  const ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  const ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  dir_.write("ca.crt", kCaPem);
  auto config = inClusterConfig(dir_.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(config.error().message, HasSubstr(dir_.file("token")));

  fs::remove(dir_.file("ca.crt"));
  dir_.write("token", kToken);
  config = inClusterConfig(dir_.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(config.error().message, HasSubstr(dir_.file("ca.crt")));
}

}  // namespace
}  // namespace burstlet::kube
