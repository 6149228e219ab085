#include "daemon/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>

#include "common/quantity.h"
#include "network/api_server.h"
#include "network/dns.h"

namespace burstlet::daemon {

Result<std::chrono::milliseconds> parseDuration(std::string_view text) {
  if (text == "0") {
    return std::chrono::milliseconds(0);
  }
  if (text.empty()) {
    return Error::make(ErrorCode::kInvalid, "InvalidDuration", "empty duration");
  }
  double total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t digits = 0;
    while (digits < rest.size() &&
           ((rest[digits] >= '0' && rest[digits] <= '9') || rest[digits] == '.')) {
      ++digits;
    }
    double value = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + digits, value);
    if (digits == 0 || ec != std::errc() || p != rest.data() + digits) {
      return Error::make(ErrorCode::kInvalid, "InvalidDuration",
                         fmt::format("invalid duration {:?}: want e.g. 500ms, 2s, 1m30s", text));
    }
    rest.remove_prefix(digits);
    size_t unitLen = 0;
    while (unitLen < rest.size() && rest[unitLen] >= 'a' && rest[unitLen] <= 'z') {
      ++unitLen;
    }
    const std::string_view unit = rest.substr(0, unitLen);
    rest.remove_prefix(unitLen);
    static const std::map<std::string_view, double> kMs = {
        {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
    auto it = kMs.find(unit);
    if (it == kMs.end()) {
      return Error::make(ErrorCode::kInvalid, "InvalidDuration",
                         fmt::format("invalid duration {:?}: unit must be ms, s, m or h", text));
    }
    total += value * it->second;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

namespace {

using Setter = std::function<Status(const YAML::Node&, const std::string& where)>;

// RFC 1123 label, as namespace names are.
bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') {
    return false;
  }
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

// RFC 1123 subdomain (dot-separated labels), as ServiceAccount names are.
bool isDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  for (size_t start = 0; start <= s.size();) {
    const size_t dot = std::min(s.find('.', start), s.size());
    if (!isDnsLabel(s.substr(start, dot - start))) {
      return false;
    }
    start = dot + 1;
  }
  return true;
}

Error invalid(const std::string& where, const std::string& what) {
  return Error::make(ErrorCode::kInvalid, "InvalidConfig", fmt::format("{}: {}", where, what));
}

Setter stringInto(std::string* out) {
  return [out](const YAML::Node& n, const std::string& where) -> Status {
    if (!n.IsScalar()) {
      return invalid(where, "want a string");
    }
    *out = n.Scalar();
    return okStatus();
  };
}

Setter intInto(int* out) {
  return [out](const YAML::Node& n, const std::string& where) -> Status {
    int v = 0;
    const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
      return invalid(where, "want an integer");
    }
    *out = v;
    return okStatus();
  };
}

Setter boolInto(bool* out) {
  return [out](const YAML::Node& n, const std::string& where) -> Status {
    const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
    if (s != "true" && s != "false") {
      return invalid(where, "want true or false");
    }
    *out = s == "true";
    return okStatus();
  };
}

Setter durationInto(std::chrono::milliseconds* out) {
  return [out](const YAML::Node& n, const std::string& where) -> Status {
    if (!n.IsScalar()) {
      return invalid(where, "want a duration such as 500ms");
    }
    auto d = parseDuration(n.Scalar());
    if (!d.ok()) {
      return invalid(where, d.error().message);
    }
    *out = *d;
    return okStatus();
  };
}

Setter rateInto(double* out) {
  return [out](const YAML::Node& n, const std::string& where) -> Status {
    const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0 || v > 1) {
      return invalid(where, "want a number between 0 and 1");
    }
    *out = v;
    return okStatus();
  };
}

Setter listInto(std::vector<std::string>* out) {
  return [out](const YAML::Node& n, const std::string& where) -> Status {
    out->clear();
    if (n.IsScalar()) {
      out->push_back(n.Scalar());
      return okStatus();
    }
    if (!n.IsSequence()) {
      return invalid(where, "want a string or a list of strings");
    }
    for (const auto& item : n) {
      if (!item.IsScalar()) {
        return invalid(where, "want a list of strings");
      }
      out->push_back(item.Scalar());
    }
    return okStatus();
  };
}

Status applyMap(
    const YAML::Node& node, const std::string& where, const std::map<std::string, Setter>& setters,
    const std::map<std::string, std::function<Status(const YAML::Node&, const std::string&)>>&
        sections) {
  if (!node.IsMap()) {
    return invalid(where, "want a mapping");
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    std::string path = where;
    path.append(".").append(key);
    if (auto s = setters.find(key); s != setters.end()) {
      BURSTLET_RETURN_IF_ERROR(s->second(kv.second, path));
    } else if (auto sec = sections.find(key); sec != sections.end()) {
      BURSTLET_RETURN_IF_ERROR(sec->second(kv.second, path));
    } else {
      return invalid(path, "unknown key");
    }
  }
  return okStatus();
}

Status validateNetwork(const Config::Network& w) {
  network::DnsOptions dns;
  dns.clusterDNS = w.clusterDNS;
  dns.clusterDomain = w.clusterDomain;
  if (auto s = network::validateDnsOptions(dns); !s.ok()) {
    return s;
  }
  if (!w.apiServer.empty()) {
    if (auto e = network::parseApiServerEndpoint(w.apiServer, "network.apiServer"); !e.ok()) {
      return std::move(e).error();
    }
  }
  const auto& p = w.proxy;
  if (!p.enabled) {
    return okStatus();
  }
  if (p.image.empty()) {
    return invalid("network.proxy.image",
                   "must be set when the proxy is enabled (burstlet's "
                   "own image)");
  }
  if (p.command.empty()) {
    return invalid("network.proxy.command", "must name the image's burstlet binary");
  }
  if (!isDnsSubdomain(p.serviceAccount)) {
    return invalid("network.proxy.serviceAccount", "must be a ServiceAccount name");
  }
  if (!p.ns.empty() && !isDnsLabel(p.ns)) {
    return invalid("network.proxy.namespace", "must be a namespace name (a DNS label)");
  }
  // The TokenRequest API's floor is 10 minutes.
  if (p.tokenLifetime < std::chrono::minutes(10)) {
    return invalid("network.proxy.tokenLifetime", "must be at least 10m");
  }
  if (!Quantity::parse(p.cpu).ok() || !Quantity::parse(p.memory).ok()) {
    return invalid("network.proxy", "cpu and memory must be quantities (e.g. 100m, 64Mi)");
  }
  return okStatus();
}

}  // namespace

Result<Config> loadConfigFile(const std::string& path, Config base) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("config file {}: cannot be read", path));
  } catch (const YAML::Exception& e) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("config file {}: not valid YAML: {}", path, e.msg));
  }
  if (root.IsNull()) {
    return base;  // an empty file changes nothing
  }
  Config c = std::move(base);
  auto& f = c.fake;
  auto fakeSection = [&f](const YAML::Node& n, const std::string& where) -> Status {
    return applyMap(n, where,
                    {{"startDelay", durationInto(&f.startDelay)},
                     {"cpu", stringInto(&f.capacity.cpu)},
                     {"memory", stringInto(&f.capacity.memory)},
                     {"pods", stringInto(&f.capacity.pods)},
                     {"ephemeralStorage", stringInto(&f.capacity.ephemeralStorage)},
                     {"podNetwork", stringInto(&f.podNetwork)},
                     {"transientFailureRate", rateInto(&f.transientFailureRate)},
                     {"stateFile", stringInto(&f.stateFile)}},
                    {});
  };
  auto& b = c.backend;
  auto networkSection = [&b](const YAML::Node& n, const std::string& where) -> Status {
    auto& w = b.network;
    return applyMap(n, where,
                    {{"name", stringInto(&w.name)},
                     {"vpcID", stringInto(&w.vpcID)},
                     {"subnetID", stringInto(&w.subnetID)},
                     {"networkID", stringInto(&w.networkID)},
                     {"securityGroupID", stringInto(&w.securityGroupID)},
                     {"availabilityZone", stringInto(&w.availabilityZone)},
                     {"cidr", stringInto(&w.cidr)},
                     {"domainID", stringInto(&w.domainID)},
                     {"projectID", stringInto(&w.projectID)},
                     {"activeTimeout", durationInto(&w.activeTimeout)}},
                    {});
  };
  auto cceSection = [&b](const YAML::Node& n, const std::string& where) -> Status {
    return applyMap(n, where,
                    {{"endpoint", stringInto(&b.cce.endpoint)},
                     {"vpcEndpoint", stringInto(&b.cce.vpcEndpoint)},
                     {"iamEndpoint", stringInto(&b.cce.iamEndpoint)},
                     {"clusterID", stringInto(&b.cce.clusterID)}},
                    {});
  };
  auto cciSection = [&b, &c, &networkSection, &cceSection](const YAML::Node& n,
                                                           const std::string& where) -> Status {
    return applyMap(n, where,
                    {{"kubeconfig", stringInto(&b.kubeconfig)},
                     {"context", stringInto(&b.context)},
                     {"endpoint", stringInto(&b.endpoint)},
                     {"projectID", stringInto(&b.projectID)},
                     {"tokenFile", stringInto(&b.tokenFile)},
                     {"akskFile", stringInto(&b.akskFile)},
                     {"akskSecret", stringInto(&b.akskSecret)},
                     {"caFile", stringInto(&b.caFile)},
                     {"insecureSkipTLSVerify", boolInto(&b.insecureSkipTLSVerify)},
                     {"clusterID", stringInto(&b.clusterID)},
                     {"namespacePrefix", stringInto(&b.namespacePrefix)},
                     {"storageDrivers", listInto(&b.storageDrivers)},
                     {"storageClasses", listInto(&b.storageClasses)},
                     {"sweepInterval", durationInto(&b.sweepInterval)},
                     {"cpu", stringInto(&c.backendCapacity.cpu)},
                     {"memory", stringInto(&c.backendCapacity.memory)},
                     {"pods", stringInto(&c.backendCapacity.pods)},
                     {"ephemeralStorage", stringInto(&c.backendCapacity.ephemeralStorage)},
                     {"api", stringInto(&b.api)},
                     {"backendVersion", stringInto(&b.backendVersion)}},
                    {{"network", networkSection}, {"cce", cceSection}});
  };
  auto providerSection = [&](const YAML::Node& n, const std::string& where) -> Status {
    return applyMap(n, where, {{"name", stringInto(&c.provider)}},
                    {{"fake", fakeSection}, {"cci", cciSection}});
  };
  auto nodeSection = [&](const YAML::Node& n, const std::string& where) -> Status {
    return applyMap(n, where,
                    {{"name", stringInto(&c.nodeName)},
                     {"internalIP", stringInto(&c.nodeIP)},
                     {"instanceType", stringInto(&c.instanceType)},
                     {"kubeletPort", intInto(&c.kubeletPort)},
                     {"notReadyAfterProviderOutage", durationInto(&c.notReadyAfterProviderOutage)}},
                    {});
  };
  auto admissionSection = [&c](const YAML::Node& n, const std::string& where) -> Status {
    auto& a = c.admission;
    return applyMap(n, where,
                    {{"listen", stringInto(&a.listen)},
                     {"certFile", stringInto(&a.certFile)},
                     {"keyFile", stringInto(&a.keyFile)},
                     {"caFile", stringInto(&a.caFile)},
                     {"hosts", listInto(&a.hosts)},
                     {"namespace", stringInto(&a.ns)},
                     {"certValidity", durationInto(&a.certValidity)},
                     {"caValidity", durationInto(&a.caValidity)},
                     {"url", stringInto(&a.url)},
                     {"register", boolInto(&a.registerWebhook)},
                     {"skipNamespaces", listInto(&a.skipNamespaces)}},
                    {});
  };
  auto kubeletSection = [&c](const YAML::Node& n, const std::string& where) -> Status {
    auto& k = c.kubeletApi;
    return applyMap(n, where,
                    {{"enabled", boolInto(&k.enabled)},
                     {"listen", stringInto(&k.listen)},
                     {"certFile", stringInto(&k.certFile)},
                     {"keyFile", stringInto(&k.keyFile)},
                     {"clientCAFile", stringInto(&k.clientCAFile)},
                     {"serverTLSBootstrap", boolInto(&k.serverTLSBootstrap)},
                     {"approveOwnRequest", boolInto(&k.approveOwnRequest)},
                     {"authentication", boolInto(&k.authentication)},
                     {"webSocketsToKubelet", boolInto(&k.webSocketsToKubelet)}},
                    {});
  };
  auto podNetworkSection = [&c](const YAML::Node& n, const std::string& where) -> Status {
    auto& w = c.network;
    auto proxySection = [&w](const YAML::Node& p, const std::string& at) -> Status {
      return applyMap(p, at,
                      {{"enabled", boolInto(&w.proxy.enabled)},
                       {"image", stringInto(&w.proxy.image)},
                       {"command", listInto(&w.proxy.command)},
                       {"cpu", stringInto(&w.proxy.cpu)},
                       {"memory", stringInto(&w.proxy.memory)},
                       {"serviceAccount", stringInto(&w.proxy.serviceAccount)},
                       {"namespace", stringInto(&w.proxy.ns)},
                       {"tokenLifetime", durationInto(&w.proxy.tokenLifetime)}},
                      {});
    };
    return applyMap(n, where,
                    {{"clusterDNS", listInto(&w.clusterDNS)},
                     {"clusterDomain", stringInto(&w.clusterDomain)},
                     {"apiServer", stringInto(&w.apiServer)},
                     {"apiServerName", stringInto(&w.apiServerName)}},
                    {{"proxy", proxySection}});
  };
  auto leaderSection = [&c](const YAML::Node& n, const std::string& where) -> Status {
    auto& l = c.leaderElection;
    return applyMap(n, where,
                    {{"enabled", boolInto(&l.enabled)},
                     {"namespace", stringInto(&l.ns)},
                     {"leaseName", stringInto(&l.leaseName)},
                     {"identity", stringInto(&l.identity)},
                     {"leaseDuration", durationInto(&l.leaseDuration)},
                     {"renewDeadline", durationInto(&l.renewDeadline)},
                     {"retryPeriod", durationInto(&l.retryPeriod)}},
                    {});
  };
  Status s;
  try {
    s = applyMap(root, path,
                 {{"kubeconfig", listInto(&c.kubeconfigs)},
                  {"context", stringInto(&c.context)},
                  {"inCluster", boolInto(&c.inCluster)},
                  {"workers", intInto(&c.workers)},
                  {"threads", intInto(&c.threads)},
                  {"healthListen", stringInto(&c.healthListen)},
                  {"logLevel", stringInto(&c.logLevel)}},
                 {{"node", nodeSection},
                  {"provider", providerSection},
                  {"admission", admissionSection},
                  {"kubeletApi", kubeletSection},
                  {"network", podNetworkSection},
                  {"leaderElection", leaderSection}});
  } catch (const YAML::Exception& e) {
    return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                       fmt::format("config file {}: {}", path, e.msg));
  }
  if (!s.ok()) {
    return std::move(s).error();
  }
  // The Network's project is the one burstlet works in unless said otherwise.
  if (c.backend.network.projectID.empty()) {
    c.backend.network.projectID = c.backend.projectID;
  }
  return c;
}

Status validate(const Config& c) {
  if (c.nodeName.empty()) {
    return invalid("node.name", "must not be empty");
  }
  if (c.workers < 1 || c.workers > 1024) {
    return invalid("workers", "must be between 1 and 1024");
  }
  if (c.threads < 1 || c.threads > 64) {
    return invalid("threads", "must be between 1 and 64");
  }
  if (c.kubeletPort < 1 || c.kubeletPort > 65535) {
    return invalid("node.kubeletPort", "must be a TCP port");
  }
  if (const auto d = c.notReadyAfterProviderOutage;
      d.count() != 0 && d < std::chrono::seconds(10)) {
    // An outage is only known after a ping timed out (10s): shorter would never be seen.
    return invalid("node.notReadyAfterProviderOutage", "must be 0 (never) or at least 10s");
  }
  if (const auto& a = c.admission; !a.listen.empty()) {
    if (a.certFile.empty() != a.keyFile.empty() || a.certFile.empty() != a.caFile.empty()) {
      return invalid("admission", "certFile, keyFile and caFile go together (or none of them)");
    }
    if (!a.url.empty() && a.url.rfind("https://", 0) != 0) {
      return invalid("admission.url", "must be an https:// URL");
    }
    if (!a.ns.empty() && !isDnsLabel(a.ns)) {
      return invalid("admission.namespace", "must be a namespace name (a DNS label)");
    }
    // Renewed with a third left and checked every sixth: shorter would not be served long.
    if (a.certValidity < std::chrono::seconds(30)) {
      return invalid("admission.certValidity", "must be at least 30s");
    }
    // The CA is renewed with a third left: a serving certificate it signed until then still
    // expires before it.
    if (a.caValidity < 3 * a.certValidity) {
      return invalid("admission.caValidity", "must be at least three times certValidity");
    }
  }
  if (const auto& k = c.kubeletApi; k.certFile.empty() != k.keyFile.empty()) {
    return invalid("kubeletApi", "certFile and keyFile go together (or neither)");
  }
  if (const auto& k = c.kubeletApi; k.serverTLSBootstrap && !k.certFile.empty()) {
    return invalid("kubeletApi.serverTLSBootstrap", "cannot be used with certFile/keyFile");
  }
  if (auto s = validateNetwork(c.network); !s.ok()) {
    return s;
  }
  if (const auto& l = c.leaderElection; l.enabled) {
    if (!l.ns.empty() && !isDnsLabel(l.ns)) {
      return invalid("leaderElection.namespace", "must be a namespace name (a DNS label)");
    }
    if (!l.leaseName.empty() && !isDnsSubdomain(l.leaseName)) {
      return invalid("leaderElection.leaseName", "must be a DNS subdomain");
    }
    if (l.retryPeriod < std::chrono::milliseconds(100)) {
      return invalid("leaderElection.retryPeriod", "must be at least 100ms");
    }
    // As client-go: the holder gives up before a standby may take over, with time to retry.
    if (l.renewDeadline < l.retryPeriod * 2 || l.leaseDuration <= l.renewDeadline) {
      return invalid("leaderElection",
                     "want retryPeriod * 2 <= renewDeadline < leaseDuration (defaults 2s, 10s, "
                     "15s)");
    }
  }
  if (c.provider == "cci") {
    // The cap the backend's quotas lower (docs/cci.md, "Capacity"): the two must compare.
    const auto& cap = c.backendCapacity;
    for (const auto& [key, text] :
         {std::pair{"cpu", &cap.cpu}, std::pair{"memory", &cap.memory},
          std::pair{"pods", &cap.pods}, std::pair{"ephemeralStorage", &cap.ephemeralStorage}}) {
      auto q = Quantity::parse(*text);
      if (!q.ok() || q->sign() < 0 ||
          (std::string_view(key) == "pods" && q->milliValue() % 1000 != 0)) {
        return invalid(std::string("provider.cci.") + key,
                       fmt::format("{:?} is not a {} (e.g. 2000, 500m, 8Ti)", *text,
                                   std::string_view(key) == "pods" ? "whole number" : "quantity"));
      }
    }
    if (auto s = provider::cci::validateBackend(c.backend); !s.ok()) {
      if (s.error().reason == "InvalidNetworkSettings") {
        // Already one line per key, each named in full.
        return Error::make(ErrorCode::kInvalid, "InvalidConfig", s.error().message);
      }
      return invalid("provider.cci", s.error().message);
    }
  } else if (c.provider != "fake") {
    return invalid("provider.name",
                   fmt::format("unknown provider {:?} (known: fake, cci)", c.provider));
  }
  return okStatus();
}

}  // namespace burstlet::daemon
