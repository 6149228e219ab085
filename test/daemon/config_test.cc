#include "daemon/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <tuple>

#include "mocks/temp_dir.h"

namespace burstlet::daemon {
namespace {

using burstlet::testing::TempDir;

TEST(ConfigTest, Durations) {
  EXPECT_EQ(parseDuration("0")->count(), 0);
  EXPECT_EQ(parseDuration("250ms")->count(), 250);
  EXPECT_EQ(parseDuration("2s")->count(), 2000);
  EXPECT_EQ(parseDuration("1m30s")->count(), 90'000);
  EXPECT_EQ(parseDuration("1.5h")->count(), 5'400'000);
  for (const char* bad : {"", "5", "s", "5x", "-1s", "1s5"}) {
    auto d = parseDuration(bad);
    EXPECT_FALSE(d.ok()) << bad;
  }
}

TEST(ConfigTest, FullFileOverDefaults) {
  TempDir dir;
  const std::string path = dir.write("burstlet.yaml", R"(
kubeconfig: [/a, /b]
context: prod
workers: 32
threads: 4
healthListen: 127.0.0.1:9000
logLevel: debug
node:
  name: vk-1
  internalIP: 10.0.0.5
  kubeletPort: 10251
  notReadyAfterProviderOutage: 30m
provider:
  name: fake
  fake:
    startDelay: 500ms
    pods: "500"
    transientFailureRate: 0.1
    stateFile: /tmp/x.jsonl
)");
  auto c = loadConfigFile(path, Config{});
  ASSERT_TRUE(c.ok()) << c.error().toString();
  EXPECT_EQ(c->kubeconfigs, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(c->context, "prod");
  EXPECT_EQ(c->workers, 32);
  EXPECT_EQ(c->threads, 4);
  EXPECT_EQ(c->healthListen, "127.0.0.1:9000");
  EXPECT_EQ(c->nodeName, "vk-1");
  EXPECT_EQ(c->nodeIP, "10.0.0.5");
  EXPECT_EQ(c->kubeletPort, 10251);
  EXPECT_EQ(c->notReadyAfterProviderOutage, std::chrono::minutes(30));
  EXPECT_EQ(c->fake.startDelay.count(), 500);
  EXPECT_EQ(c->fake.capacity.pods, "500");
  EXPECT_DOUBLE_EQ(c->fake.transientFailureRate, 0.1);
  EXPECT_EQ(c->fake.stateFile, "/tmp/x.jsonl");
  EXPECT_EQ(c->fake.capacity.cpu, "2000");  // untouched defaults stay
  EXPECT_TRUE(validate(*c).ok());
}

TEST(ConfigTest, EmptyFileChangesNothing) {
  TempDir dir;
  Config base;
  base.workers = 7;
  auto c = loadConfigFile(dir.write("empty.yaml", ""), base);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->workers, 7);
}

TEST(ConfigTest, BadFilesNameTheKey) {
  TempDir dir;
  struct Case {
    std::string yaml;
    std::string mentions;
  };
  const Case cases[] = {
      {"workers: many\n", ".workers: want an integer"},
      {"wrokers: 3\n", ".wrokers: unknown key"},
      {"node:\n  nmae: x\n", ".node.nmae: unknown key"},
      {"node: vk\n", ".node: want a mapping"},
      {"node:\n  notReadyAfterProviderOutage: soon\n",
       ".node.notReadyAfterProviderOutage: invalid duration"},
      {"provider:\n  fake:\n    startDelay: soon\n", ".provider.fake.startDelay: invalid duration"},
      {"provider:\n  fake:\n    transientFailureRate: 2\n", "between 0 and 1"},
      {"inCluster: yes please\n", ".inCluster: want true or false"},
      {"kubeconfig: {a: b}\n", ".kubeconfig: want a string or a list"},
      {"workers: [1\n", "not valid YAML"},
      {"- a\n- b\n", "want a mapping"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.write("bad.yaml", c.yaml);
    auto r = loadConfigFile(path, Config{});
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_NE(r.error().message.find(c.mentions), std::string::npos)
        << c.yaml << " -> " << r.error().message;
  }
  auto missing = loadConfigFile(dir.path() + "/nope.yaml", Config{});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot be read"), std::string::npos);
}

TEST(ConfigTest, AdmissionSection) {
  TempDir dir;
  const std::string path = dir.write("burstlet.yaml", R"(
admission:
  listen: 127.0.0.1:8443
  hosts: [127.0.0.1, burstlet.example]
  url: https://burstlet.example:8443/mutate-pods
  register: false
  skipNamespaces: [kube-system, burstlet]
)");
  auto c = loadConfigFile(path, Config{});
  ASSERT_TRUE(c.ok()) << c.error().toString();
  EXPECT_EQ(c->admission.listen, "127.0.0.1:8443");
  EXPECT_EQ(c->admission.hosts, (std::vector<std::string>{"127.0.0.1", "burstlet.example"}));
  EXPECT_EQ(c->admission.url, "https://burstlet.example:8443/mutate-pods");
  EXPECT_FALSE(c->admission.registerWebhook);
  EXPECT_EQ(c->admission.skipNamespaces, (std::vector<std::string>{"kube-system", "burstlet"}));
  EXPECT_TRUE(validate(*c).ok());
  Config bad = *c;
  bad.admission.certFile = "/tls.crt";  // without its key and CA
  EXPECT_NE(validate(bad).error().message.find("go together"), std::string::npos);
  bad = *c;
  bad.admission.url = "http://plain";
  EXPECT_NE(validate(bad).error().message.find("admission.url"), std::string::npos);
  EXPECT_TRUE(Config{}.admission.listen.empty());  // off unless asked for
}

TEST(ConfigTest, AdmissionOwnCertificates) {
  TempDir dir;
  const std::string path = dir.write("burstlet.yaml", R"(
admission:
  listen: 127.0.0.1:8443
  namespace: burstlet-system
  certValidity: 1m
  caValidity: 720h
)");
  auto c = loadConfigFile(path, Config{});
  ASSERT_TRUE(c.ok()) << c.error().toString();
  EXPECT_EQ(c->admission.ns, "burstlet-system");
  EXPECT_EQ(c->admission.certValidity, std::chrono::minutes(1));
  EXPECT_EQ(c->admission.caValidity, std::chrono::hours(720));
  EXPECT_TRUE(validate(*c).ok());
  EXPECT_EQ(Config{}.admission.certValidity, std::chrono::hours(24 * 365));
  EXPECT_EQ(Config{}.admission.caValidity, std::chrono::hours(24 * 3650));
  Config bad = *c;
  bad.admission.ns = "Not_A_Namespace";
  EXPECT_NE(validate(bad).error().message.find("admission.namespace"), std::string::npos);
  bad = *c;
  bad.admission.certValidity = std::chrono::seconds(10);
  EXPECT_NE(validate(bad).error().message.find("admission.certValidity"), std::string::npos);
  bad = *c;
  bad.admission.caValidity = std::chrono::minutes(2);
  EXPECT_NE(validate(bad).error().message.find("admission.caValidity"), std::string::npos);
}

TEST(ConfigTest, KubeletApiSection) {
  TempDir dir;
  const std::string path = dir.write("burstlet.yaml", R"(
kubeletApi:
  listen: 10.250.0.1:10250
  clientCAFile: /etc/kubernetes/pki/ca.crt
  serverTLSBootstrap: true
  approveOwnRequest: true
  webSocketsToKubelet: false
)");
  auto c = loadConfigFile(path, Config{});
  ASSERT_TRUE(c.ok()) << c.error().toString();
  EXPECT_TRUE(c->kubeletApi.enabled);
  EXPECT_EQ(c->kubeletApi.listen, "10.250.0.1:10250");
  EXPECT_EQ(c->kubeletApi.clientCAFile, "/etc/kubernetes/pki/ca.crt");
  EXPECT_TRUE(c->kubeletApi.serverTLSBootstrap);
  EXPECT_TRUE(c->kubeletApi.approveOwnRequest);
  EXPECT_FALSE(c->kubeletApi.webSocketsToKubelet);
  EXPECT_TRUE(c->kubeletApi.authentication);
  EXPECT_TRUE(validate(*c).ok());
  Config bad = *c;
  bad.kubeletApi.certFile = "/tmp/tls.crt";
  EXPECT_NE(validate(bad).error().message.find("kubeletApi"), std::string::npos);
  bad.kubeletApi.keyFile = "/tmp/tls.key";
  EXPECT_NE(validate(bad).error().message.find("serverTLSBootstrap"), std::string::npos);
  const std::string typo = dir.write("typo.yaml", "kubeletApi:\n  authenticaton: false\n");
  auto refused = loadConfigFile(typo, Config{});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("authenticaton"), std::string::npos);
}

TEST(ConfigTest, Validation) {
  Config c;
  EXPECT_TRUE(validate(c).ok());
  c.workers = 0;
  EXPECT_NE(validate(c).error().message.find("workers"), std::string::npos);
  c = Config{};
  c.provider = "cloud";
  EXPECT_NE(validate(c).error().message.find("unknown provider"), std::string::npos);
  c = Config{};
  c.nodeName.clear();
  EXPECT_FALSE(validate(c).ok());
  c = Config{};
  c.kubeletPort = 70000;
  EXPECT_FALSE(validate(c).ok());
  c = Config{};
  EXPECT_EQ(c.notReadyAfterProviderOutage.count(), 0);  // never, by default
  c.notReadyAfterProviderOutage = std::chrono::seconds(5);
  EXPECT_NE(validate(c).error().message.find("node.notReadyAfterProviderOutage"),
            std::string::npos);
  c.notReadyAfterProviderOutage = std::chrono::minutes(10);
  EXPECT_TRUE(validate(c).ok());
}

TEST(ConfigTest, CciProviderSection) {
  TempDir dir;
  const std::string path = dir.write("cci.yaml", R"(
provider:
  name: cci
  cci:
    endpoint: https://cci.cn-north-4.myhuaweicloud.com
    projectID: 2e93d63d8d2249f5a4ac5e2c78586a6e
    akskSecret: kube-system/burstlet-aksk
    clusterID: c1
    namespacePrefix: burst-
    storageDrivers: [nas.csi.everest.io]
    storageClasses: csi-nas
    sweepInterval: 10s
    cpu: "500"
    pods: "2000"
)");
  auto c = loadConfigFile(path, Config{});
  ASSERT_TRUE(c.ok()) << c.error().toString();
  EXPECT_EQ(c->provider, "cci");
  EXPECT_TRUE(c->backend.usesEndpoint());
  EXPECT_TRUE(c->backend.cciApi());  // CCI's endpoint: CCI mode by default
  EXPECT_TRUE(c->backend.canDiscover());
  EXPECT_EQ(c->backend.projectID, "2e93d63d8d2249f5a4ac5e2c78586a6e");
  EXPECT_EQ(c->backend.network.projectID, c->backend.projectID);
  EXPECT_EQ(c->backend.akskSecret, "kube-system/burstlet-aksk");
  EXPECT_EQ(c->backend.namespacePrefix, "burst-");
  EXPECT_EQ(c->backend.storageDrivers, std::vector<std::string>{"nas.csi.everest.io"});
  EXPECT_EQ(c->backend.storageClasses, std::vector<std::string>{"csi-nas"});
  EXPECT_EQ(c->backend.sweepInterval.count(), 10'000);
  EXPECT_EQ(c->backendCapacity.cpu, "500");
  EXPECT_EQ(c->backendCapacity.pods, "2000");
  EXPECT_TRUE(validate(*c).ok()) << validate(*c).error().toString();

  auto bad =
      loadConfigFile(dir.write("typo.yaml", "provider:\n  cci:\n    clusterid: x\n"), Config{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("provider.cci.clusterid: unknown key"), std::string::npos)
      << bad.error().message;
}

TEST(ConfigTest, CciValidationNamesTheProblem) {
  struct Case {
    std::function<void(provider::cci::BackendConfig&)> edit;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {[](auto& b) { b.clusterID.clear(); }, "clusterID is required"},
      {[](auto& b) { b.clusterID = "Upper_Case"; }, "not a DNS label"},
      {[](auto& b) { b.clusterID = std::string(60, 'a'); }, "at most 63"},
      {[](auto& b) { b.kubeconfig.clear(); }, "exactly one of kubeconfig"},
      {[](auto& b) { b.endpoint = "https://cci.example"; }, "exactly one of kubeconfig"},
      {[](auto& b) {
         b.kubeconfig.clear();
         b.endpoint = "http://cci.example";
         b.tokenFile = "/t";
       },
       "https://"},
      {[](auto& b) {
         b.kubeconfig.clear();
         b.endpoint = "https://cci.example";
       },
       "exactly one of tokenFile"},
      {[](auto& b) {
         b.kubeconfig.clear();
         b.endpoint = "https://cci.example";
         b.tokenFile = "/t";
         b.akskFile = "/k";
       },
       "exactly one of tokenFile"},
      {[](auto& b) {
         b.kubeconfig.clear();
         b.endpoint = "https://cci.example";
         b.akskSecret = "no-slash";
       },
       "namespace/name"},
      {[](auto& b) { b.sweepInterval = std::chrono::milliseconds(0); }, "sweepInterval"},
  };
  for (const auto& c : cases) {
    Config config;
    config.provider = "cci";
    config.backend.kubeconfig = "/backend.kubeconfig";
    config.backend.clusterID = "c1";
    c.edit(config.backend);
    auto s = validate(config);
    ASSERT_FALSE(s.ok()) << c.mentions;
    EXPECT_NE(s.error().message.find("provider.cci"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(c.mentions), std::string::npos) << s.error().message;
  }
}

// The node's cap is compared with the backend's quotas: each must be a quantity, pods whole.
TEST(ConfigTest, CciCapacityMustBeQuantities) {
  struct Case {
    std::function<void(provider::NodeCapacity&)> edit;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {[](auto& c) { c.cpu = "many"; }, "provider.cci.cpu: \"many\" is not a quantity"},
      {[](auto& c) { c.memory = "-1Gi"; }, "provider.cci.memory"},
      {[](auto& c) { c.pods = "10.5"; }, "provider.cci.pods: \"10.5\" is not a whole number"},
      {[](auto& c) { c.ephemeralStorage = ""; }, "provider.cci.ephemeralStorage"},
  };
  for (const auto& c : cases) {
    Config config;
    config.provider = "cci";
    config.backend.kubeconfig = "/backend.kubeconfig";
    config.backend.clusterID = "c1";
    ASSERT_TRUE(validate(config).ok());
    c.edit(config.backendCapacity);
    auto s = validate(config);
    ASSERT_FALSE(s.ok()) << c.mentions;
    EXPECT_NE(s.error().message.find(c.mentions), std::string::npos) << s.error().message;
  }
  Config fine;
  fine.provider = "cci";
  fine.backend.kubeconfig = "/backend.kubeconfig";
  fine.backend.clusterID = "c1";
  fine.backendCapacity = {"500m", "1.5Gi", "1k", "100G"};
  EXPECT_TRUE(validate(fine).ok()) << validate(fine).error().toString();
}

TEST(ConfigTest, CciNetworkSection) {
  TempDir dir;
  const std::string path = dir.write("net.yaml", R"(
provider:
  name: cci
  cci:
    kubeconfig: /backend.kubeconfig
    clusterID: c1
    api: cci
    network:
      name: burst-net
      vpcID: 3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8
      subnetID: 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
      networkID: 11111111-2222-4333-8444-555555555555
      securityGroupID: aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee
      availabilityZone: cn-north-4a
      cidr: 192.168.0.0/24
      domainID: 44c0781c83484eb9a4a5d4d233522cea
      projectID: 2e93d63d8d2249f5a4ac5e2c78586a6e
      activeTimeout: 2m
    cce:
      endpoint: https://cce.example
      clusterID: 6b1f1a2e-0c3d-11ef-9a5e-0255ac100b06
)");
  auto c = loadConfigFile(path, Config{});
  ASSERT_TRUE(c.ok()) << c.error().toString();
  const auto& b = c->backend;
  EXPECT_TRUE(b.cciApi());
  EXPECT_FALSE(b.usesEndpoint());
  EXPECT_FALSE(b.canDiscover());  // no CCI credentials to read CCE with
  EXPECT_EQ(b.network.name, "burst-net");
  EXPECT_EQ(b.network.cidr, "192.168.0.0/24");
  EXPECT_EQ(b.network.activeTimeout, std::chrono::minutes(2));
  EXPECT_EQ(b.cce.endpoint, "https://cce.example");
  EXPECT_EQ(b.cce.clusterID, "6b1f1a2e-0c3d-11ef-9a5e-0255ac100b06");
  EXPECT_TRUE(validate(*c).ok()) << validate(*c).error().toString();

  // A kubeconfig backend is plain Kubernetes unless told otherwise: no Network needed.
  Config plain;
  plain.provider = "cci";
  plain.backend.kubeconfig = "/backend.kubeconfig";
  plain.backend.clusterID = "c1";
  EXPECT_FALSE(plain.backend.cciApi());
  EXPECT_TRUE(validate(plain).ok());
  plain.backend.api = "kubernetes";
  EXPECT_TRUE(validate(plain).ok());
  plain.backend.api = "openstack";
  ASSERT_FALSE(validate(plain).ok());
  EXPECT_NE(validate(plain).error().message.find("neither cci nor kubernetes"), std::string::npos);

  // CCI mode without the settings and without discovery: one line per missing key.
  plain.backend.api = "cci";
  auto s = validate(plain);
  ASSERT_FALSE(s.ok());
  const std::string& m = s.error().message;
  EXPECT_EQ(m.rfind("provider.cci.network.vpcID: must be set", 0), 0U) << m;
  EXPECT_NE(m.find("\nprovider.cci.network.cidr: must be set"), std::string::npos) << m;
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 7) << m;

  // Bad values, each named.
  Config bad = *c;
  bad.backend.network.cidr = "10.247.8.0/24";
  bad.backend.network.subnetID = "subnet-1";
  s = validate(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(
      s.error().message.find("provider.cci.network.cidr: 10.247.8.0/24 overlaps 10.247.0.0/16"),
      std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("provider.cci.network.subnetID: \"subnet-1\" is not an ID"),
            std::string::npos)
      << s.error().message;
  bad = *c;
  bad.backend.cce.vpcEndpoint = "http://vpc.example";
  s = validate(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cce.vpcEndpoint"), std::string::npos) << s.error().message;

  auto typo = loadConfigFile(
      dir.write("typo.yaml", "provider:\n  cci:\n    network:\n      vpcId: x\n"), Config{});
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message.find("provider.cci.network.vpcId: unknown key"), std::string::npos)
      << typo.error().message;
}

TEST(ConfigTest, NetworkSection) {
  TempDir dir;
  const std::string path = dir.write("burstlet.yaml", R"(
network:
  clusterDNS: [10.96.0.10]
  clusterDomain: corp.local
  apiServer: 192.168.0.10:6443
  apiServerName: kubernetes.default.svc
  proxy:
    enabled: true
    image: registry.example/burstlet:1.2
    command: [/usr/bin/burstlet]
    cpu: 200m
    memory: 128Mi
    serviceAccount: netproxy
    namespace: burstlet
    tokenLifetime: 2h
)");
  auto c = loadConfigFile(path, Config{});
  ASSERT_TRUE(c.ok()) << c.error().toString();
  const auto& w = c->network;
  EXPECT_EQ(w.clusterDNS, (std::vector<std::string>{"10.96.0.10"}));
  EXPECT_EQ(w.clusterDomain, "corp.local");
  EXPECT_EQ(w.apiServer, "192.168.0.10:6443");
  EXPECT_EQ(w.apiServerName, "kubernetes.default.svc");
  EXPECT_TRUE(w.proxy.enabled);
  EXPECT_EQ(w.proxy.image, "registry.example/burstlet:1.2");
  EXPECT_EQ(w.proxy.command, (std::vector<std::string>{"/usr/bin/burstlet"}));
  EXPECT_EQ(w.proxy.cpu, "200m");
  EXPECT_EQ(w.proxy.serviceAccount, "netproxy");
  EXPECT_EQ(w.proxy.ns, "burstlet");
  EXPECT_EQ(w.proxy.tokenLifetime, std::chrono::hours(2));
  EXPECT_TRUE(validate(*c).ok());
  // Off, DNS left to the backend, by default.
  EXPECT_FALSE(Config{}.network.proxy.enabled);
  EXPECT_TRUE(Config{}.network.clusterDNS.empty());

  const std::vector<std::pair<std::function<void(Config&)>, std::string>> bad{
      {[](Config& b) { b.network.clusterDNS = {"kube-dns"}; }, "network.clusterDNS"},
      {[](Config& b) { b.network.clusterDomain = "-bad-"; }, "network.clusterDomain"},
      {[](Config& b) { b.network.apiServer = "no-port"; }, "network.apiServer"},
      {[](Config& b) { b.network.proxy.image.clear(); }, "network.proxy.image"},
      {[](Config& b) { b.network.proxy.tokenLifetime = std::chrono::minutes(5); },
       "network.proxy.tokenLifetime"},
      {[](Config& b) { b.network.proxy.memory = "lots"; }, "network.proxy"},
      {[](Config& b) { b.network.proxy.ns = "Not_A_Namespace"; }, "network.proxy.namespace"},
      {[](Config& b) { b.network.proxy.serviceAccount = "a..b"; }, "network.proxy.serviceAccount"},
      {[](Config& b) { b.network.proxy.serviceAccount = "Proxy.Account"; },
       "network.proxy.serviceAccount"},
  };
  for (const auto& [change, key] : bad) {
    Config b = *c;
    change(b);
    auto s = validate(b);
    ASSERT_FALSE(s.ok()) << key;
    EXPECT_NE(s.error().message.find(key), std::string::npos) << s.error().message;
  }
  const std::string typo = dir.write("typo.yaml", "network:\n  proxy:\n    enable: true\n");
  auto t = loadConfigFile(typo, Config{});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("network.proxy.enable: unknown key"), std::string::npos)
      << t.error().message;
}

TEST(ConfigTest, LeaderElectionSection) {
  TempDir dir;
  const std::string path = dir.write("burstlet.yaml", R"(
leaderElection:
  enabled: true
  namespace: burstlet
  leaseName: burstlet-zone-a
  identity: replica
  leaseDuration: 20s
  renewDeadline: 12s
  retryPeriod: 3s
)");
  auto c = loadConfigFile(path, Config{});
  ASSERT_TRUE(c.ok()) << c.error().toString();
  const auto& l = c->leaderElection;
  EXPECT_TRUE(l.enabled);
  EXPECT_EQ(l.ns, "burstlet");
  EXPECT_EQ(l.leaseName, "burstlet-zone-a");
  EXPECT_EQ(l.identity, "replica");
  EXPECT_EQ(l.leaseDuration, std::chrono::seconds(20));
  EXPECT_EQ(l.renewDeadline, std::chrono::seconds(12));
  EXPECT_EQ(l.retryPeriod, std::chrono::seconds(3));
  EXPECT_TRUE(validate(*c).ok());
  EXPECT_FALSE(Config{}.leaderElection.enabled);  // one replica unless asked for
  // The holder must give up before a standby may take over, with time for a retry or two.
  for (auto [duration, deadline, retry] :
       {std::tuple{10, 10, 2}, std::tuple{15, 12, 7}, std::tuple{15, 20, 2}}) {
    Config bad = *c;
    bad.leaderElection.leaseDuration = std::chrono::seconds(duration);
    bad.leaderElection.renewDeadline = std::chrono::seconds(deadline);
    bad.leaderElection.retryPeriod = std::chrono::seconds(retry);
    auto s = validate(bad);
    ASSERT_FALSE(s.ok()) << duration << " " << deadline << " " << retry;
    EXPECT_NE(s.error().message.find("renewDeadline < leaseDuration"), std::string::npos);
  }
  Config bad = *c;
  bad.leaderElection.ns = "Not_A_Namespace";
  EXPECT_NE(validate(bad).error().message.find("leaderElection.namespace"), std::string::npos);
  bad = *c;
  bad.leaderElection.leaseName = "bad/name";
  EXPECT_NE(validate(bad).error().message.find("leaderElection.leaseName"), std::string::npos);
  bad = *c;
  bad.leaderElection.enabled = false;  // not checked when off
  bad.leaderElection.retryPeriod = std::chrono::milliseconds(0);
  EXPECT_TRUE(validate(bad).ok());
  const std::string typo = dir.write("typo.yaml", "leaderElection:\n  leaseDurations: 20s\n");
  auto t = loadConfigFile(typo, Config{});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("leaseDurations"), std::string::npos);
}

}  // namespace
}  // namespace burstlet::daemon
