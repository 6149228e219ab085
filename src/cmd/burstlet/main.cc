// burstlet: a virtual kubelet that runs the pods scheduled onto its node on a serverless
// container backend. This is the single entry point; each subcommand lives in its own area.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>

#include "common/log.h"
#include "common/memory.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "kube/get_command.h"
#include "network/netproxy/netproxy.h"

int main(int argc, char** argv) {
  burstlet::tuneAllocator();
  CLI::App app{"burstlet: a virtual kubelet that bursts pods to a serverless backend"};
  app.set_version_flag("--version", std::string("burstlet ") + BURSTLET_VERSION);
  std::string log_level = "info";
  auto* logLevelOpt = app.add_option(
      "--log-level", log_level, "trace, debug, info, warn, error, critical or off (default info)");
  bool logLevelGiven = false;
  app.require_subcommand(1);

  // Subcommands choose the action; it runs after parsing, once logging is set up.
  std::function<int()> action;

  auto* run = app.add_subcommand("run", "Register the virtual node and run its pods");
  burstlet::daemon::Config runFlags;
  std::string configFile;
  std::string startDelay;
  std::string notReadyAfter;
  run->add_option("--config", configFile,
                  "YAML config file; flags given on the command line override it");
  auto* kubeconfigOpt = run->add_option(
      "--kubeconfig", runFlags.kubeconfigs,
      "kubeconfig file(s) of the cluster; default $KUBECONFIG, then ~/.kube/config");
  auto* contextOpt = run->add_option("--context", runFlags.context, "kubeconfig context");
  auto* inClusterOpt =
      run->add_flag("--in-cluster", runFlags.inCluster, "use the in-cluster ServiceAccount");
  auto* nodeNameOpt = run->add_option("--node-name", runFlags.nodeName,
                                      "name of the virtual node (default burstlet)");
  auto* nodeIPOpt = run->add_option("--node-ip", runFlags.nodeIP,
                                    "InternalIP the node reports (default: detected)");
  auto* kubeletPortOpt = run->add_option("--kubelet-port", runFlags.kubeletPort,
                                         "port of the kubelet API the node advertises (10250)");
  auto* kubeletListenOpt =
      run->add_option("--kubelet-listen", runFlags.kubeletApi.listen,
                      "address of the kubelet API (default <node IP>:<kubelet port>)");
  auto* kubeletCertOpt = run->add_option("--kubelet-cert-file", runFlags.kubeletApi.certFile,
                                         "kubelet API serving certificate (default self-signed)");
  auto* kubeletKeyOpt = run->add_option("--kubelet-key-file", runFlags.kubeletApi.keyFile,
                                        "key of --kubelet-cert-file");
  auto* kubeletCaOpt =
      run->add_option("--kubelet-client-ca-file", runFlags.kubeletApi.clientCAFile,
                      "CAs of the client certificates the kubelet API accepts (the API server's)");
  auto* notReadyOpt = run->add_option(
      "--not-ready-after-provider-outage", notReadyAfter,
      "once the provider has been unreachable this long (e.g. 30m), the node turns NotReady and "
      "the cluster evicts its pods by their tolerations; 0 (default) = never");
  auto* workersOpt =
      run->add_option("--workers", runFlags.workers, "pods synced in parallel (default 16)");
  auto* threadsOpt =
      run->add_option("--threads", runFlags.threads, "threads running the event loop (default 2)");
  auto* healthOpt = run->add_option("--health-listen", runFlags.healthListen,
                                    "address of /healthz, /readyz and /metrics (0.0.0.0:10255)");
  auto* providerOpt = run->add_option(
      "--provider", runFlags.provider,
      "where pods run: fake (default) or cci (see provider.cci in the config file)");
  auto* delayOpt = run->add_option("--fake-start-delay", startDelay,
                                   "fake provider: time from create to Running (e.g. 500ms)");
  auto* stateOpt = run->add_option("--fake-state-file", runFlags.fake.stateFile,
                                   "fake provider: journal that keeps its pods across restarts");
  auto* rateOpt = run->add_option("--fake-failure-rate", runFlags.fake.transientFailureRate,
                                  "fake provider: share of creates that fail transiently (0..1)");
  auto* podsOpt = run->add_option("--fake-pods", runFlags.fake.capacity.pods,
                                  "fake provider: pod capacity of the node (10000)");
  auto* clusterDnsOpt =
      run->add_option("--cluster-dns", runFlags.network.clusterDNS,
                      "cluster DNS address(es) for ClusterFirst pods (like the kubelet's); "
                      "default: DNS left to the backend")
          ->delimiter(',');
  auto* clusterDomainOpt = run->add_option("--cluster-domain", runFlags.network.clusterDomain,
                                           "cluster domain (cluster.local)");
  auto* apiServerOpt =
      run->add_option("--api-server-endpoint", runFlags.network.apiServer,
                      "host:port where backend pods reach the API server (default: the "
                      "EndpointSlice default/kubernetes)");
  auto* apiServerNameOpt =
      run->add_option("--api-server-name", runFlags.network.apiServerName,
                      "name to check in the API server's certificate at that address");
  auto* proxyOpt = run->add_flag("--network-proxy", runFlags.network.proxy.enabled,
                                 "add the network proxy sidecar to backend pods (ClusterIPs)");
  auto* proxyImageOpt = run->add_option("--network-proxy-image", runFlags.network.proxy.image,
                                        "burstlet's image, for the network proxy sidecar");
  auto* leaderOpt =
      run->add_flag("--leader-elect", runFlags.leaderElection.enabled,
                    "run as one of several replicas: only the holder of the node's Lease works");
  auto* leaderNsOpt =
      run->add_option("--leader-elect-namespace", runFlags.leaderElection.ns,
                      "namespace of the Lease (default $POD_NAMESPACE, else kube-system)");
  std::string leaseDuration;
  auto* leaseDurationOpt =
      run->add_option("--leader-elect-lease-duration", leaseDuration,
                      "how long a standby waits for an unrenewed Lease before taking it (15s)");
  run->callback([&] {
    action = [&]() -> int {
      burstlet::daemon::Config config;
      if (!configFile.empty()) {
        auto loaded = burstlet::daemon::loadConfigFile(configFile, config);
        if (!loaded.ok()) {
          std::fprintf(stderr, "burstlet run: %s\n", loaded.error().message.c_str());
          return 1;
        }
        config = std::move(*loaded);
      }
      // Flags given on the command line win over the file.
      auto take = [](const CLI::Option* o, auto& into, const auto& from) {
        if (o->count() > 0) {
          into = from;
        }
      };
      take(kubeconfigOpt, config.kubeconfigs, runFlags.kubeconfigs);
      take(contextOpt, config.context, runFlags.context);
      take(inClusterOpt, config.inCluster, runFlags.inCluster);
      take(nodeNameOpt, config.nodeName, runFlags.nodeName);
      take(nodeIPOpt, config.nodeIP, runFlags.nodeIP);
      take(kubeletPortOpt, config.kubeletPort, runFlags.kubeletPort);
      take(kubeletListenOpt, config.kubeletApi.listen, runFlags.kubeletApi.listen);
      take(kubeletCertOpt, config.kubeletApi.certFile, runFlags.kubeletApi.certFile);
      take(kubeletKeyOpt, config.kubeletApi.keyFile, runFlags.kubeletApi.keyFile);
      take(kubeletCaOpt, config.kubeletApi.clientCAFile, runFlags.kubeletApi.clientCAFile);
      take(workersOpt, config.workers, runFlags.workers);
      take(threadsOpt, config.threads, runFlags.threads);
      take(healthOpt, config.healthListen, runFlags.healthListen);
      take(providerOpt, config.provider, runFlags.provider);
      take(stateOpt, config.fake.stateFile, runFlags.fake.stateFile);
      take(rateOpt, config.fake.transientFailureRate, runFlags.fake.transientFailureRate);
      take(podsOpt, config.fake.capacity.pods, runFlags.fake.capacity.pods);
      take(clusterDnsOpt, config.network.clusterDNS, runFlags.network.clusterDNS);
      take(clusterDomainOpt, config.network.clusterDomain, runFlags.network.clusterDomain);
      take(apiServerOpt, config.network.apiServer, runFlags.network.apiServer);
      take(apiServerNameOpt, config.network.apiServerName, runFlags.network.apiServerName);
      take(proxyOpt, config.network.proxy.enabled, runFlags.network.proxy.enabled);
      take(proxyImageOpt, config.network.proxy.image, runFlags.network.proxy.image);
      take(leaderOpt, config.leaderElection.enabled, runFlags.leaderElection.enabled);
      take(leaderNsOpt, config.leaderElection.ns, runFlags.leaderElection.ns);
      if (leaseDurationOpt->count() > 0) {
        auto d = burstlet::daemon::parseDuration(leaseDuration);
        if (!d.ok()) {
          std::fprintf(stderr, "burstlet run: --leader-elect-lease-duration: %s\n",
                       d.error().message.c_str());
          return 1;
        }
        config.leaderElection.leaseDuration = *d;
      }
      if (delayOpt->count() > 0) {
        auto d = burstlet::daemon::parseDuration(startDelay);
        if (!d.ok()) {
          std::fprintf(stderr, "burstlet run: --fake-start-delay: %s\n", d.error().message.c_str());
          return 1;
        }
        config.fake.startDelay = *d;
      }
      if (notReadyOpt->count() > 0) {
        auto d = burstlet::daemon::parseDuration(notReadyAfter);
        if (!d.ok()) {
          std::fprintf(stderr, "burstlet run: --not-ready-after-provider-outage: %s\n",
                       d.error().message.c_str());
          return 1;
        }
        config.notReadyAfterProviderOutage = *d;
      }
      if (!logLevelGiven && !config.logLevel.empty()) {
        if (auto s = burstlet::log::init({config.logLevel, nullptr}); !s.ok()) {
          std::fprintf(stderr, "burstlet run: logLevel: %s\n", s.error().message.c_str());
          return 1;
        }
      }
      return burstlet::daemon::run(config, BURSTLET_VERSION);
    };
  });

  auto* cleanupCmd = app.add_subcommand(
      "cleanup",
      "Uninstall one virtual node from the cci provider's backend: delete the node's pods (and "
      "wait until they are gone), its ConfigMap, Secret and claim copies, volumes, node secrets "
      "and marker; then delete the backend namespace (its Network first) unless another virtual "
      "node of the cluster still uses it");
  std::string cleanupConfig;
  std::string cleanupTimeout = "10m";
  burstlet::daemon::Config cleanupFlags;
  cleanupCmd->add_option("--config", cleanupConfig, "the YAML config file burstlet runs with")
      ->required();
  auto* cleanupKubeconfigOpt =
      cleanupCmd->add_option("--kubeconfig", cleanupFlags.kubeconfigs,
                             "kubeconfig of the cluster (to read provider.cci.akskSecret, stop "
                             "--stop-deployment and remove the webhook registration)");
  auto* cleanupNodeOpt = cleanupCmd->add_option(
      "--node-name", cleanupFlags.nodeName,
      "the virtual node burstlet ran as (default: node.name of --config): whose backend "
      "objects go, and its webhook registration burstlet-<node>");
  auto* cleanupInClusterOpt = cleanupCmd->add_flag("--in-cluster", cleanupFlags.inCluster,
                                                   "use the in-cluster ServiceAccount");
  cleanupCmd->add_option("--timeout", cleanupTimeout,
                         "how long to wait for the node's pods and the namespace to go, and "
                         "first for --stop-deployment's pods (one deadline; default 10m)");
  bool cleanupAllNodes = false;
  cleanupCmd->add_flag("--all-nodes", cleanupAllNodes,
                       "delete the backend namespace and everything in it, also what other "
                       "virtual nodes of the cluster (same clusterID) run there");
  std::string cleanupStopDeployment;
  cleanupCmd->add_option(
      "--stop-deployment", cleanupStopDeployment,
      "NAMESPACE/NAME of the Deployment this node's burstlet runs as (the Helm chart's hook gives "
      "the release's): first scale it to 0 and wait (within --timeout) until none of its pods is "
      "left, so no burstlet re-creates what cleanup removes; a missing Deployment is fine. Needs "
      "get deployments, patch deployments/scale and list pods in NAMESPACE; refused, cleanup "
      "does not start");
  cleanupCmd->callback([&] {
    action = [&]() -> int {
      auto loaded = burstlet::daemon::loadConfigFile(cleanupConfig, burstlet::daemon::Config{});
      if (!loaded.ok()) {
        std::fprintf(stderr, "burstlet cleanup: %s\n", loaded.error().message.c_str());
        return 1;
      }
      if (cleanupKubeconfigOpt->count() > 0) {
        loaded->kubeconfigs = cleanupFlags.kubeconfigs;
      }
      if (cleanupInClusterOpt->count() > 0) {
        loaded->inCluster = cleanupFlags.inCluster;
      }
      if (cleanupNodeOpt->count() > 0) {
        loaded->nodeName = cleanupFlags.nodeName;
      }
      auto timeout = burstlet::daemon::parseDuration(cleanupTimeout);
      if (!timeout.ok()) {
        std::fprintf(stderr, "burstlet cleanup: --timeout: %s\n", timeout.error().message.c_str());
        return 1;
      }
      return burstlet::daemon::cleanup(*loaded, *timeout, cleanupAllNodes, cleanupStopDeployment,
                                       BURSTLET_VERSION);
    };
  });

  auto* netproxyCmd = app.add_subcommand(
      "netproxy",
      "Make the cluster's ClusterIP Services reachable from this network namespace (the sidecar "
      "of burst pods; needs CAP_NET_ADMIN)");
  burstlet::network::NetProxyOptions netproxy;
  netproxyCmd->add_option(
      "--credentials", netproxy.credentialsDir,
      "directory with token, ca.crt, server (and tls-server-name) of a read-only "
      "cluster identity (required unless --wait-for-rules)");
  netproxyCmd->add_option("--stop-file", netproxy.stopFile,
                          "the pod's annotations (downward API): exit once burstlet marks the "
                          "pod's own containers done");
  std::string waitForRules;
  auto* waitOpt = netproxyCmd->add_option(
      "--wait-for-rules", waitForRules,
      "instead of running, wait until the proxy's rules are in place (e.g. 60s; the sidecar's "
      "postStart hook)");
  netproxyCmd->callback([&] {
    action = [&]() -> int {
      if (waitOpt->count() > 0) {
        auto d = burstlet::daemon::parseDuration(waitForRules);
        if (!d.ok() || d->count() <= 0) {
          std::fprintf(stderr,
                       "burstlet netproxy: --wait-for-rules: want a duration such as 60s\n");
          return 1;
        }
        netproxy.waitForRules = *d;
      }
      return burstlet::network::runNetProxy(netproxy);
    };
  });

  auto* kube = app.add_subcommand("kube", "Talk to an API server with burstlet's client");
  kube->require_subcommand(1);
  burstlet::kube::GetCommandOptions get;
  auto* getCmd = kube->add_subcommand("get", "Get or list objects (like kubectl get)");
  getCmd->add_option("resource", get.resource, "pods, configmaps, nodes, ... (short names work)")
      ->required();
  getCmd->add_option("name", get.name, "one object's name (default: list)");
  getCmd->add_option("--kubeconfig", get.kubeconfigs,
                     "kubeconfig file(s); default $KUBECONFIG, then ~/.kube/config");
  getCmd->add_option("--context", get.context, "kubeconfig context (default current-context)");
  getCmd->add_option("-n,--namespace", get.ns, "namespace (default: the context's, else default)");
  getCmd->add_flag("-A,--all-namespaces", get.allNamespaces, "list across all namespaces");
  getCmd->add_option("-l,--selector", get.labelSelector, "label selector");
  getCmd->add_option("--field-selector", get.fieldSelector, "field selector");
  getCmd->add_option("-o,--output", get.output, "name, json or wide");
  getCmd->add_flag("--in-cluster", get.inCluster, "use the in-cluster ServiceAccount config");
  getCmd->callback(
      [&] { action = [&] { return burstlet::kube::runGetCommand(get, std::cout, std::cerr); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  logLevelGiven = logLevelOpt->count() > 0;
  if (auto s = burstlet::log::init({log_level, nullptr}); !s.ok()) {
    std::fprintf(stderr, "burstlet: %s\n", s.error().message.c_str());
    return 2;
  }
  return action ? action() : 0;
}
