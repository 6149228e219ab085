#include "kube/config.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <boost/url/parse.hpp>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "common/base64.h"
#include "common/log.h"
#include "common/strings.h"

namespace burstlet::kube {

namespace {

namespace fs = std::filesystem;

constexpr const char* kReason = "InvalidKubeconfig";
// A kubeconfig or certificate is a few KiB; the cap only stops a path like /dev/zero from
// eating memory.
constexpr size_t kMaxFileSize = 16 << 20;
constexpr std::string_view kPemBegin = "-----BEGIN";

Error invalid(std::string message) {
  return Error::make(ErrorCode::kInvalid, kReason, std::move(message));
}

// The same error, classified as a kubeconfig problem (readFileNamed has a generic reason).
Error asKubeconfigError(Error e) {
  e.reason = kReason;
  return e;
}

// strerror() is not thread-safe; the generic category's message is.
std::string errnoText(int err) { return std::generic_category().message(err); }

bool isSet(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

// A string field of a map; "" when absent or null. `where` names the field in errors.
Result<std::string> stringField(const YAML::Node& map, const char* key, const std::string& where) {
  const YAML::Node n = map[key];
  if (!isSet(n)) {
    return std::string();
  }
  if (!n.IsScalar()) {
    return invalid(fmt::format("{}.{}: must be a string", where, key));
  }
  return n.Scalar();
}

Result<bool> boolField(const YAML::Node& map, const char* key, const std::string& where) {
  const YAML::Node n = map[key];
  if (!isSet(n)) {
    return false;
  }
  bool value = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) {
    return invalid(fmt::format("{}.{}: must be true or false", where, key));
  }
  return value;
}

// One named cluster, user or context and the file that defined it.
struct Entry {
  YAML::Node node;  // the inner map ("cluster:", "user:", "context:"); may be null
  std::string file;
};

struct Merged {
  std::map<std::string, Entry> clusters;
  std::map<std::string, Entry> users;
  std::map<std::string, Entry> contexts;
  std::string currentContext;
};

// Relative references in a kubeconfig are relative to the directory of that kubeconfig.
std::string resolvePath(const std::string& kubeconfig, const std::string& path) {
  if (path.empty()) {
    return path;
  }
  fs::path p(path);
  if (p.is_absolute()) {
    return p.lexically_normal().string();
  }
  std::error_code ec;
  fs::path dir = fs::absolute(fs::path(kubeconfig), ec).parent_path();
  if (ec) {
    dir = fs::path(kubeconfig).parent_path();
  }
  return (dir / p).lexically_normal().string();
}

Status mergeSection(const YAML::Node& root, const char* section, const char* inner,
                    const std::string& file, std::map<std::string, Entry>& into) {
  const YAML::Node list = root[section];
  if (!isSet(list)) {
    return okStatus();
  }
  if (!list.IsSequence()) {
    return invalid(fmt::format("kubeconfig {}: {}: must be a list", file, section));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string where = fmt::format("kubeconfig {}: {}[{}]", file, section, i);
    if (!item.IsMap()) {
      return invalid(where + ": must be a map");
    }
    auto name = stringField(item, "name", where);
    if (!name.ok()) {
      return std::move(name).error();
    }
    if (name->empty()) {
      return invalid(where + ".name: required");
    }
    const YAML::Node body = item[inner];
    if (isSet(body) && !body.IsMap()) {
      return invalid(
          fmt::format("kubeconfig {}: {}[\"{}\"].{}: must be a map", file, section, *name, inner));
    }
    // First file that defines a name wins, as in client-go.
    into.emplace(*name, Entry{body, file});
  }
  return okStatus();
}

Status mergeFile(const std::string& file, Merged& merged) {
  auto text = readFileNamed(file, "kubeconfig");
  if (!text.ok()) {
    return asKubeconfigError(std::move(text).error());
  }
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    // e.msg names the syntax problem without quoting the document, which may hold secrets.
    return invalid(fmt::format("kubeconfig {}: invalid YAML at line {}, column {}: {}", file,
                               e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (root.IsNull()) {
    return okStatus();  // an empty file contributes nothing, as in client-go
  }
  if (!root.IsMap()) {
    return invalid(fmt::format("kubeconfig {}: top level must be a map", file));
  }
  BURSTLET_RETURN_IF_ERROR(mergeSection(root, "clusters", "cluster", file, merged.clusters));
  BURSTLET_RETURN_IF_ERROR(mergeSection(root, "users", "user", file, merged.users));
  BURSTLET_RETURN_IF_ERROR(mergeSection(root, "contexts", "context", file, merged.contexts));
  auto current = stringField(root, "current-context", "kubeconfig " + file);
  if (!current.ok()) {
    return std::move(current).error();
  }
  if (merged.currentContext.empty()) {
    merged.currentContext = *current;
  }
  return okStatus();
}

// PEM from "<key>-data" (base64) or "<key>" (a file). `where` is the entry's prefix, e.g.
// `kubeconfig /x: users["u"]`. With `bothIsError` a conflict is rejected (client-go does so for
// client certificates and keys); otherwise the inline data wins.
Result<std::string> pemField(const Entry& entry, const std::string& where, const char* fileKey,
                             const std::string& dataKey, bool bothIsError) {
  auto data = stringField(entry.node, dataKey.c_str(), where);
  if (!data.ok()) {
    return std::move(data).error();
  }
  auto file = stringField(entry.node, fileKey, where);
  if (!file.ok()) {
    return std::move(file).error();
  }
  if (!data->empty() && !file->empty() && bothIsError) {
    return invalid(fmt::format("{}: {} and {} are both set; use one", where, fileKey, dataKey));
  }
  if (!data->empty()) {
    auto decoded = base64Decode(*data);
    if (!decoded) {
      return invalid(fmt::format("{}.{}: invalid base64", where, dataKey));
    }
    if (decoded->find(kPemBegin) == std::string::npos) {
      return invalid(fmt::format("{}.{}: not PEM (no -----BEGIN line)", where, dataKey));
    }
    return std::move(*decoded);
  }
  if (!file->empty()) {
    const std::string path = resolvePath(entry.file, *file);
    auto pem = readFileNamed(path, fmt::format("{}.{}", where, fileKey));
    if (!pem.ok()) {
      return asKubeconfigError(std::move(pem).error());
    }
    if (pem->find(kPemBegin) == std::string::npos) {
      return invalid(
          fmt::format("{}.{}: {} is not PEM (no -----BEGIN line)", where, fileKey, path));
    }
    return std::move(*pem);
  }
  return std::string();
}

Status checkServer(const std::string& server, const std::string& where) {
  auto url = boost::urls::parse_absolute_uri(server);
  if (url.has_error()) {
    return invalid(fmt::format("{}.server: \"{}\" is not a URL", where, server));
  }
  const auto scheme = url->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
    return invalid(fmt::format("{}.server: \"{}\" must be an http or https URL", where, server));
  }
  if (url->has_userinfo()) {
    // Do not echo the URL: the user info may hold a password.
    return invalid(where + ".server: credentials in the URL are not supported");
  }
  if (!url->has_authority() || url->encoded_host().empty()) {
    return invalid(fmt::format("{}.server: \"{}\" has no host", where, server));
  }
  return okStatus();
}

Status loadCluster(const std::string& name, const Entry& entry, ClientConfig& out) {
  const std::string where = fmt::format("kubeconfig {}: clusters[\"{}\"]", entry.file, name);
  if (!isSet(entry.node)) {
    return invalid(where + ".server: required");
  }
  auto server = stringField(entry.node, "server", where);
  if (!server.ok()) {
    return std::move(server).error();
  }
  if (server->empty()) {
    return invalid(where + ".server: required");
  }
  BURSTLET_RETURN_IF_ERROR(checkServer(*server, where));
  auto proxy = stringField(entry.node, "proxy-url", where);
  if (!proxy.ok()) {
    return std::move(proxy).error();
  }
  if (!proxy->empty()) {
    return invalid(where + ".proxy-url: proxy-url is not supported");
  }
  auto tlsServerName = stringField(entry.node, "tls-server-name", where);
  if (!tlsServerName.ok()) {
    return std::move(tlsServerName).error();
  }
  auto insecure = boolField(entry.node, "insecure-skip-tls-verify", where);
  if (!insecure.ok()) {
    return std::move(insecure).error();
  }
  auto ca = pemField(entry, where, "certificate-authority", "certificate-authority-data", false);
  if (!ca.ok()) {
    return std::move(ca).error();
  }
  if (*insecure && !ca->empty()) {
    // client-go's transport refuses this too: it is unclear which of the two was meant.
    return invalid(where +
                   ".insecure-skip-tls-verify: cannot be combined with a certificate authority");
  }
  out.server = std::move(*server);
  out.tlsServerName = std::move(*tlsServerName);
  out.insecureSkipTlsVerify = *insecure;
  out.caPem = std::move(*ca);
  return okStatus();
}

Result<ExecConfig> loadExec(const YAML::Node& node, const std::string& kubeconfig,
                            const std::string& where) {
  if (!node.IsMap()) {
    return invalid(where + ": must be a map");
  }
  ExecConfig exec;
  auto command = stringField(node, "command", where);
  if (!command.ok()) {
    return std::move(command).error();
  }
  if (command->empty()) {
    return invalid(where + ".command: required");
  }
  // A bare name is looked up in PATH when the plugin runs; a path with a directory part is
  // relative to the kubeconfig, as in client-go.
  exec.command =
      command->find('/') == std::string::npos ? *command : resolvePath(kubeconfig, *command);
  auto apiVersion = stringField(node, "apiVersion", where);
  if (!apiVersion.ok()) {
    return std::move(apiVersion).error();
  }
  if (*apiVersion != "client.authentication.k8s.io/v1" &&
      *apiVersion != "client.authentication.k8s.io/v1beta1") {
    return invalid(fmt::format(
        "{}.apiVersion: \"{}\" is not supported (want client.authentication.k8s.io/v1 or v1beta1)",
        where, *apiVersion));
  }
  exec.apiVersion = std::move(*apiVersion);

  const YAML::Node args = node["args"];
  if (isSet(args)) {
    if (!args.IsSequence()) {
      return invalid(where + ".args: must be a list of strings");
    }
    for (size_t i = 0; i < args.size(); ++i) {
      if (!args[i].IsScalar()) {
        return invalid(fmt::format("{}.args[{}]: must be a string", where, i));
      }
      exec.args.push_back(args[i].Scalar());
    }
  }
  const YAML::Node env = node["env"];
  if (isSet(env)) {
    if (!env.IsSequence()) {
      return invalid(where + ".env: must be a list of {name, value}");
    }
    for (size_t i = 0; i < env.size(); ++i) {
      const std::string item = fmt::format("{}.env[{}]", where, i);
      if (!env[i].IsMap()) {
        return invalid(item + ": must be a map with name and value");
      }
      auto name = stringField(env[i], "name", item);
      if (!name.ok()) {
        return std::move(name).error();
      }
      if (name->empty() || name->find('=') != std::string::npos) {
        return invalid(item + ".name: must be a non-empty name without '='");
      }
      auto value = stringField(env[i], "value", item);
      if (!value.ok()) {
        return std::move(value).error();
      }
      exec.env.emplace_back(std::move(*name), std::move(*value));
    }
  }
  auto provide = boolField(node, "provideClusterInfo", where);
  if (!provide.ok()) {
    return std::move(provide).error();
  }
  exec.provideClusterInfo = *provide;
  auto hint = stringField(node, "installHint", where);
  if (!hint.ok()) {
    return std::move(hint).error();
  }
  exec.installHint = std::move(*hint);
  auto mode = stringField(node, "interactiveMode", where);
  if (!mode.ok()) {
    return std::move(mode).error();
  }
  if (!mode->empty()) {
    if (*mode == "Always") {
      return invalid(where + ".interactiveMode: Always needs a terminal, and burstlet has none");
    }
    if (*mode != "Never" && *mode != "IfAvailable") {
      return invalid(fmt::format(
          "{}.interactiveMode: \"{}\" is not one of Never, IfAvailable, Always", where, *mode));
    }
    exec.interactiveMode = std::move(*mode);
  }
  return exec;
}

Status loadUser(const std::string& name, const Entry& entry, ClientConfig& out) {
  const std::string where = fmt::format("kubeconfig {}: users[\"{}\"]", entry.file, name);
  if (!isSet(entry.node)) {
    return okStatus();  // a user with no credentials: anonymous requests
  }
  if (isSet(entry.node["auth-provider"])) {
    return invalid(where + ".auth-provider: auth-provider plugins are not supported, use exec");
  }
  auto cert = pemField(entry, where, "client-certificate", "client-certificate-data", true);
  if (!cert.ok()) {
    return std::move(cert).error();
  }
  auto key = pemField(entry, where, "client-key", "client-key-data", true);
  if (!key.ok()) {
    return std::move(key).error();
  }
  log::registerSecret(*key);
  if (cert->empty() && !key->empty()) {
    return invalid(where + ".client-key: set without client-certificate");
  }
  if (!cert->empty() && key->empty()) {
    return invalid(where + ".client-certificate: set without client-key");
  }
  auto token = stringField(entry.node, "token", where);
  if (!token.ok()) {
    return std::move(token).error();
  }
  log::registerSecret(*token);
  auto tokenFile = stringField(entry.node, "tokenFile", where);
  if (!tokenFile.ok()) {
    return std::move(tokenFile).error();
  }
  auto username = stringField(entry.node, "username", where);
  if (!username.ok()) {
    return std::move(username).error();
  }
  auto password = stringField(entry.node, "password", where);
  if (!password.ok()) {
    return std::move(password).error();
  }
  log::registerSecret(*password);
  const bool hasToken = !token->empty() || !tokenFile->empty();
  const bool hasBasic = !username->empty() || !password->empty();
  if (hasToken && hasBasic) {
    return invalid(where + ": more than one authentication method (token and username/password)");
  }
  const YAML::Node execNode = entry.node["exec"];
  if (isSet(execNode)) {
    auto exec = loadExec(execNode, entry.file, where + ".exec");
    if (!exec.ok()) {
      return std::move(exec).error();
    }
    out.exec = std::move(*exec);
  }
  out.clientCertPem = std::move(*cert);
  out.clientKeyPem = std::move(*key);
  out.token = std::move(*token);
  out.tokenFile = resolvePath(entry.file, *tokenFile);
  out.username = std::move(*username);
  out.password = std::move(*password);
  return okStatus();
}

Result<ClientConfig> build(const KubeconfigOptions& options, const std::vector<std::string>& files,
                           const Merged& merged) {
  const std::string filesText = fmt::format("{}", fmt::join(files, ":"));
  const std::string contextName = options.context.empty() ? merged.currentContext : options.context;
  ClientConfig out;
  std::string clusterName = options.cluster;
  std::string userName = options.user;
  std::string contextFile = files.front();
  if (contextName.empty()) {
    if (clusterName.empty()) {
      return invalid(fmt::format("kubeconfig {}: current-context: not set and no context was given",
                                 filesText));
    }
  } else {
    const auto it = merged.contexts.find(contextName);
    if (it == merged.contexts.end()) {
      return invalid(
          fmt::format("kubeconfig {}: context \"{}\": not found", filesText, contextName));
    }
    const Entry& ctx = it->second;
    contextFile = ctx.file;
    const std::string where = fmt::format("kubeconfig {}: contexts[\"{}\"]", ctx.file, contextName);
    if (isSet(ctx.node)) {
      for (auto [key, target] : {std::pair{"cluster", &clusterName}, std::pair{"user", &userName},
                                 std::pair{"namespace", &out.defaultNamespace}}) {
        auto value = stringField(ctx.node, key, where);
        if (!value.ok()) {
          return std::move(value).error();
        }
        if (target->empty()) {
          *target = std::move(*value);
        }
      }
    }
    if (clusterName.empty()) {
      return invalid(where + ".cluster: required");
    }
  }
  const std::string ctxWhere =
      contextName.empty()
          ? fmt::format("kubeconfig {}: options", filesText)
          : fmt::format("kubeconfig {}: contexts[\"{}\"]", contextFile, contextName);
  const auto cluster = merged.clusters.find(clusterName);
  if (cluster == merged.clusters.end()) {
    return invalid(fmt::format("{}.cluster: cluster \"{}\" not found", ctxWhere, clusterName));
  }
  BURSTLET_RETURN_IF_ERROR(loadCluster(clusterName, cluster->second, out));
  if (!userName.empty()) {
    const auto user = merged.users.find(userName);
    if (user == merged.users.end()) {
      return invalid(fmt::format("{}.user: user \"{}\" not found", ctxWhere, userName));
    }
    BURSTLET_RETURN_IF_ERROR(loadUser(userName, user->second, out));
  }
  out.source = contextName.empty()
                   ? fmt::format("kubeconfig {} cluster {}", contextFile, clusterName)
                   : fmt::format("kubeconfig {} context {}", contextFile, contextName);
  return out;
}

// The files to read: explicit ones must exist; from $KUBECONFIG missing ones are skipped.
Result<std::vector<std::string>> kubeconfigFiles(const KubeconfigOptions& options) {
  std::vector<std::string> candidates = options.paths;
  bool fromEnv = false;
  if (candidates.empty()) {
    const char* env = std::getenv("KUBECONFIG");  // NOLINT(concurrency-mt-unsafe)
    if (env != nullptr && *env != '\0') {
      candidates = splitKubeconfigEnv(env);
      fromEnv = !candidates.empty();
    }
  }
  if (candidates.empty()) {
    const char* home = std::getenv("HOME");  // NOLINT(concurrency-mt-unsafe)
    if (home == nullptr || *home == '\0') {
      return invalid("kubeconfig: no file given, KUBECONFIG and HOME are unset");
    }
    candidates.push_back((fs::path(home) / ".kube" / "config").string());
  }
  std::vector<std::string> files;
  std::set<std::string> seen;
  for (const auto& path : candidates) {
    if (!seen.insert(path).second) {
      continue;
    }
    struct stat st {};
    if (fromEnv && ::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
      continue;
    }
    files.push_back(path);
  }
  if (files.empty()) {
    return invalid(fmt::format("kubeconfig: none of the files in KUBECONFIG exist ({})",
                               fmt::join(candidates, ":")));
  }
  return files;
}

}  // namespace

std::vector<std::string> splitKubeconfigEnv(const std::string& value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(':', start);
    if (end == std::string::npos) {
      end = value.size();
    }
    if (end > start) {
      out.push_back(value.substr(start, end - start));
    }
    start = end + 1;
  }
  return out;
}

Result<ClientConfig> loadKubeconfig(const KubeconfigOptions& options) {
  try {
    auto files = kubeconfigFiles(options);
    if (!files.ok()) {
      return std::move(files).error();
    }
    Merged merged;
    for (const auto& file : *files) {
      BURSTLET_RETURN_IF_ERROR(mergeFile(file, merged));
    }
    auto config = build(options, *files, merged);
    if (config.ok()) {
      spdlog::debug("msg=\"loaded kubeconfig\" source=\"{}\" server={}", config->source,
                    config->server);
    }
    return config;
  } catch (const std::exception& e) {
    // yaml-cpp throws on conversions the checks above should have ruled out; keep it inside.
    return invalid(fmt::format("kubeconfig: {}", e.what()));
  }
}

Result<ClientConfig> inClusterConfig(const std::string& saDir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");  // NOLINT(concurrency-mt-unsafe)
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");  // NOLINT(concurrency-mt-unsafe)
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return Error::make(ErrorCode::kInvalid, "NotInCluster",
                       "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT unset");
  }
  const std::string hostText(host);
  ClientConfig out;
  out.server = hostText.find(':') != std::string::npos
                   ? fmt::format("https://[{}]:{}", hostText, port)
                   : fmt::format("https://{}:{}", hostText, port);
  const std::string where = "in-cluster config " + saDir;
  const std::string caPath = (fs::path(saDir) / "ca.crt").string();
  auto ca = readFileNamed(caPath, where + " ca.crt");
  if (!ca.ok()) {
    return std::move(ca).error();
  }
  if (ca->find(kPemBegin) == std::string::npos) {
    return Error::make(ErrorCode::kInvalid, "InvalidInClusterConfig",
                       fmt::format("{} ca.crt: {} is not PEM", where, caPath));
  }
  out.caPem = std::move(*ca);
  out.tokenFile = (fs::path(saDir) / "token").string();
  // Only check that the token is there: the credential source reads it, and re-reads it as
  // the kubelet rotates it.
  if (::access(out.tokenFile.c_str(), R_OK) != 0) {
    return Error::make(
        ErrorCode::kInvalid, "InvalidInClusterConfig",
        fmt::format("{} token: cannot read {}: {}", where, out.tokenFile, errnoText(errno)));
  }
  const std::string nsPath = (fs::path(saDir) / "namespace").string();
  if (::access(nsPath.c_str(), F_OK) == 0) {
    auto ns = readFileNamed(nsPath, where + " namespace");
    if (!ns.ok()) {
      return std::move(ns).error();
    }
    out.defaultNamespace = trimWhitespace(*ns);
  }
  out.source = "in-cluster serviceaccount " + saDir;
  return out;
}

Result<std::string> readFileNamed(const std::string& path, const std::string& what) {
  auto fail = [&](int err) {
    return Error::make(ErrorCode::kInvalid, "UnreadableFile",
                       fmt::format("{}: cannot read {}: {}", what, path, errnoText(err)));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(errno);
  }
  std::string out;
  char buf[16384];
  int err = 0;
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      err = errno;
      break;
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileSize) {
      err = EFBIG;
      break;
    }
  }
  ::close(fd);
  if (err != 0) {
    return fail(err);
  }
  return out;
}

}  // namespace burstlet::kube
