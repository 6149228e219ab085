#include "daemon/daemon.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "daemon/api_cluster_objects.h"
#include "kube/events.h"
#include "kube/rest.h"
#include "node/node_controller.h"
#include "pod/pod_controller.h"
#include "pod/prepare.h"
#include "provider/cci/auth.h"
#include "provider/cci/backend.h"
#include "provider/cci/cci_provider.h"
#include "provider/fake/fake_provider.h"
#include "server/http_server.h"

namespace burstlet::daemon {

namespace asio = boost::asio;

namespace {

int fail(const std::string& what, const Error& error) {
  std::fprintf(stderr, "burstlet run: %s: %s\n", what.c_str(), error.toString().c_str());
  return 1;
}

asio::awaitable<void> sleepMs(int ms) {
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

struct Parts {
  std::atomic<bool> providerDone{false};
  std::atomic<bool> providerFailed{false};
  std::atomic<int> feedsRunning{0};
  std::atomic<bool> podsDone{false};
  std::atomic<bool> nodeDone{false};
  std::atomic<bool> eventsDone{false};
  std::atomic<bool> servicesDone{false};
  std::atomic<bool> stopping{false};
  pod::PodController* pods = nullptr;
  provider::cci::CciProvider* cci = nullptr;  // null with other providers
  std::vector<kube::Informer*> feeds;         // cluster ConfigMap/Secret changes (cci)
  kube::Informer* services = nullptr;
  node::NodeController* node = nullptr;
  kube::EventRecorder* events = nullptr;
  server::HttpServer* health = nullptr;
  asio::io_context* io = nullptr;
};

asio::awaitable<void> startPods(Parts* parts, kube::Informer* services) {
  // Pods start once Services are known (their environments are complete) and the backend
  // listed its pods (so that reconcile sees them).
  while (!(services->synced() && (parts->cci == nullptr || parts->cci->ready())) &&
         !parts->stopping) {
    co_await sleepMs(20);
  }
  if (!parts->stopping) {
    co_await parts->pods->run();
  }
}

// Waits for SIGTERM/SIGINT, then stops the parts in order.
asio::awaitable<void> lifecycle(Parts* parts, asio::signal_set* signals) {
  boost::system::error_code ec;
  const int sig = co_await signals->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  spdlog::info("msg=\"shutting down\" signal={}", ec ? 0 : sig);
  parts->stopping = true;
  parts->pods->stop();
  while (!parts->podsDone) {
    co_await sleepMs(20);
  }
  parts->node->stop();
  while (!parts->nodeDone) {
    co_await sleepMs(20);
  }
  if (parts->cci != nullptr) {
    for (auto* feed : parts->feeds) {
      feed->stop();
    }
    parts->cci->stop();
    while (!parts->providerDone || parts->feedsRunning > 0) {
      co_await sleepMs(20);
    }
  }
  parts->services->stop();
  for (int i = 0; i < 250 && !parts->servicesDone; ++i) {
    co_await sleepMs(20);
  }
  parts->events->stop();
  for (int i = 0; i < 250 && !parts->eventsDone; ++i) {
    co_await sleepMs(20);
  }
  parts->health->stop();
  spdlog::info("msg=\"stopped\"");
  // Provider timers (pods that start or exit later) would keep the loop alive.
  parts->io->stop();
}

asio::awaitable<void> startFeeds(Parts* parts, asio::io_context* io) {
  while (!parts->cci->ready() && !parts->stopping) {
    co_await sleepMs(20);
  }
  if (parts->stopping) {
    co_return;
  }
  for (auto* feed : parts->feeds) {
    ++parts->feedsRunning;
    asio::co_spawn(asio::make_strand(*io), feed->run(),
                   [parts](const std::exception_ptr&) { --parts->feedsRunning; });
  }
}

asio::awaitable<void> fetchSecret(kube::RestClient* client, std::string ns, std::string name,
                                  std::optional<Result<boost::json::value>>* out) {
  *out = co_await client->get(kube::resources::kSecrets, std::move(ns), std::move(name));
}

// The backend client. AK/SK kept in a cluster Secret are read once here, before the loop runs.
Result<std::unique_ptr<kube::RestClient>> connect(asio::io_context& io, const Config& config,
                                                  kube::RestClient* cluster,
                                                  const std::string& version, const Clock& clock) {
  std::optional<provider::cci::AkSk> aksk;
  const std::string& ref = config.backend.akskSecret;
  if (!ref.empty()) {
    if (cluster == nullptr) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         "provider.cci.akskSecret needs the cluster connection");
    }
    const auto slash = ref.find('/');
    std::optional<Result<boost::json::value>> got;
    asio::co_spawn(io, fetchSecret(cluster, ref.substr(0, slash), ref.substr(slash + 1), &got),
                   asio::detached);
    io.run();
    io.restart();
    if (!got || !got->ok()) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         fmt::format("provider.cci.akskSecret {}: {}", ref,
                                     got ? got->error().toString() : std::string("not read")));
    }
    const auto* data = got->value().as_object().if_contains("data");
    auto keys = provider::cci::akskFromSecretData(
        data != nullptr && data->is_object() ? data->as_object() : boost::json::object{});
    if (!keys.ok()) {
      return Error::make(ErrorCode::kInvalid, "InvalidConfig",
                         fmt::format("provider.cci.akskSecret {}: {}", ref, keys.error().message));
    }
    aksk = std::move(*keys);
  }
  return provider::cci::connectBackend(io.get_executor(), config.backend, std::move(aksk),
                                       "burstlet/" + version, clock);
}

asio::awaitable<void> runCleanup(kube::RestClient* backend, std::string ns, std::string clusterID,
                                 std::chrono::milliseconds timeout, Status* out) {
  const Clock& clock = realClock();
  *out = co_await provider::cci::cleanupBackend(*backend, ns, clusterID, timeout, clock);
}

Result<kube::ClientConfig> clusterConfig(const Config& config) {
  return config.inCluster ? kube::inClusterConfig()
                          : kube::loadKubeconfig(kube::KubeconfigOptions{config.kubeconfigs,
                                                                         config.context, "", ""});
}

}  // namespace

int cleanup(const Config& config, std::chrono::milliseconds timeout, const std::string& version) {
  if (config.provider != "cci") {
    std::fprintf(stderr,
                 "burstlet cleanup: provider.name is %s; only the cci provider leaves "
                 "anything on a backend\n",
                 config.provider.c_str());
    return 1;
  }
  if (auto s = validate(config); !s.ok()) {
    std::fprintf(stderr, "burstlet cleanup: configuration: %s\n", s.error().toString().c_str());
    return 1;
  }
  asio::io_context io(1);
  std::unique_ptr<kube::RestClient> cluster;
  if (!config.backend.akskSecret.empty()) {
    auto cc = clusterConfig(config);
    if (!cc.ok()) {
      std::fprintf(stderr, "burstlet cleanup: cluster connection: %s\n",
                   cc.error().toString().c_str());
      return 1;
    }
    auto c = kube::RestClient::create(io.get_executor(), *cc);
    if (!c.ok()) {
      std::fprintf(stderr, "burstlet cleanup: cluster connection: %s\n",
                   c.error().toString().c_str());
      return 1;
    }
    cluster = std::move(*c);
  }
  auto backend = connect(io, config, cluster.get(), version, realClock());
  if (!backend.ok()) {
    std::fprintf(stderr, "burstlet cleanup: backend connection: %s\n",
                 backend.error().toString().c_str());
    return 1;
  }
  const std::string ns =
      provider::cci::namespaceFor(config.backend.namespacePrefix, config.backend.clusterID);
  Status result = okStatus();
  asio::co_spawn(io, runCleanup(backend->get(), ns, config.backend.clusterID, timeout, &result),
                 asio::detached);
  io.run();
  if (!result.ok()) {
    std::fprintf(stderr, "burstlet cleanup: %s\n", result.error().toString().c_str());
    return 1;
  }
  std::printf("backend namespace %s is gone\n", ns.c_str());
  return 0;
}

int run(const Config& config, const std::string& version) {
  if (auto s = validate(config); !s.ok()) {
    return fail("configuration", s.error());
  }
  auto clientConfig = clusterConfig(config);
  if (!clientConfig.ok()) {
    return fail("cluster connection", clientConfig.error());
  }
  clientConfig->userAgent = "burstlet/" + version;
  asio::io_context io(config.threads);
  auto client = kube::RestClient::create(io.get_executor(), *clientConfig);
  if (!client.ok()) {
    return fail("cluster connection", client.error());
  }
  const Clock& clock = realClock();

  metrics::Registry registry;
  auto& apiRequests = registry.counterFamily("burstlet_api_requests_total",
                                             "Requests to the cluster API server by verb and code.",
                                             {"verb", "code"});
  (*client)->setRequestObserver([&apiRequests](std::string_view verb, std::string_view code) {
    apiRequests.with({std::string(verb), std::string(code)}).Increment();
  });

  node::NodeOptions nodeOptions;
  nodeOptions.nodeName = config.nodeName;
  nodeOptions.internalIP = config.nodeIP.empty() ? node::detectInternalIP() : config.nodeIP;
  nodeOptions.instanceType = config.instanceType;
  nodeOptions.kubeletPort = config.kubeletPort;
  nodeOptions.burstletVersion = version;  // kubeletVersion: the cluster's, read at start
  nodeOptions.notReadyAfterProviderOutage = config.notReadyAfterProviderOutage;

  auto providerStrand = asio::make_strand(io);
  kube::EventRecorderOptions eventOptions;
  eventOptions.host = config.nodeName;
  kube::EventRecorder events(**client, clock, eventOptions);
  std::unique_ptr<provider::Provider> provider;
  std::unique_ptr<kube::RestClient> backend;
  std::unique_ptr<ApiClusterObjects> clusterObjects;
  provider::cci::CciProvider* cci = nullptr;
  if (config.provider == "cci") {
    auto b = connect(io, config, client->get(), version, clock);
    if (!b.ok()) {
      return fail("backend connection", b.error());
    }
    backend = std::move(*b);
    clusterObjects = std::make_unique<ApiClusterObjects>(**client);
    provider::cci::CciOptions o;
    o.clusterID = config.backend.clusterID;
    o.backendNamespace =
        provider::cci::namespaceFor(config.backend.namespacePrefix, config.backend.clusterID);
    o.nodeName = config.nodeName;
    o.nodeIP = nodeOptions.internalIP;
    o.cci = config.backend.cci();
    o.validate.storageDrivers = config.backend.storageDrivers;
    o.validate.storageClasses = config.backend.storageClasses;
    o.capacity = config.backendCapacity;
    o.sweepInterval = config.backend.sweepInterval;
    auto p = std::make_unique<provider::cci::CciProvider>(providerStrand, *backend, *clusterObjects,
                                                          events, o, clock);
    cci = p.get();
    provider = std::move(p);
  } else {
    provider::FakeProviderOptions fake = config.fake;
    fake.nodeIP = nodeOptions.internalIP;
    auto p = provider::FakeProvider::create(providerStrand, fake, clock);
    if (!p.ok()) {
      return fail("provider", p.error());
    }
    provider = std::move(*p);
  }

  auto health = server::HttpServer::create(io.get_executor(), config.healthListen);
  if (!health.ok()) {
    return fail("health listener", health.error());
  }

  node::NodeController node(**client, *provider, nodeOptions, clock);
  pod::PodControllerOptions podOptions;
  podOptions.nodeName = config.nodeName;
  podOptions.workers = config.workers;
  auto podStrand = asio::make_strand(io);
  pod::PodController pods(podStrand, **client, *provider, events, podOptions, clock);

  // Services for the service-link variables of pod environments.
  kube::InformerOptions serviceOptions;
  serviceOptions.resource = kube::resources::kServices;
  kube::Informer services(**client, serviceOptions);
  services.store().addIndex(pod::kServiceNamespaceIndex, [](const boost::json::value& s) {
    return std::vector<std::string>{std::string(kube::objectNamespace(s))};
  });
  const auto capacity = provider->capacity();
  pod::PodPreparer preparer(**client, &services.store(), events, nodeOptions.internalIP,
                            boost::json::object{{"cpu", capacity.cpu},
                                                {"memory", capacity.memory},
                                                {"pods", capacity.pods},
                                                {"ephemeral-storage", capacity.ephemeralStorage}});
  pods.setPreparePod([&preparer](const boost::json::value& pod) { return preparer.prepare(pod); });

  auto& syncSeconds = registry.histogram("burstlet_pod_sync_duration_seconds",
                                         "Duration of one pod sync (provider and API calls).");
  auto& syncs =
      registry.counterFamily("burstlet_pod_syncs_total", "Pod syncs by outcome.", {"outcome"});
  pods.setSyncObserver([&syncSeconds, &syncs](std::chrono::nanoseconds d, bool ok) {
    syncSeconds.Observe(std::chrono::duration<double>(d).count());
    syncs.with({ok ? "ok" : "error"}).Increment();
  });
  registry.gaugeFunc("burstlet_pod_queue_depth", "Pods waiting for a sync.",
                     [&pods] { return static_cast<double>(pods.queueDepth()); });
  auto& byPhase =
      registry.gaugeFamily("burstlet_pods", "Pods bound to the node by phase.", {"phase"});
  registry.gaugeFunc("burstlet_node_ready", "1 when the node is registered and its lease fresh.",
                     [&node] { return node.ready() ? 1.0 : 0.0; });
  registry.gaugeFunc("burstlet_provider_healthy",
                     "1 when the provider answered its last ping in time.",
                     [&node] { return node.providerHealthy() ? 1.0 : 0.0; });
  const auto& podStats = pods.stats();
  registry.gaugeFunc("burstlet_provider_creates_total", "Pods created on the provider.",
                     [&podStats] { return static_cast<double>(podStats.providerCreates.load()); });
  registry.gaugeFunc("burstlet_pod_status_patches_total", "Status writes to the cluster.",
                     [&podStats] { return static_cast<double>(podStats.statusPatches.load()); });

  (*health)->route("/healthz", [](const server::Request&) {
    return server::Response{200, "text/plain; charset=utf-8", "ok\n", {}};
  });
  (*health)->route("/readyz", [&node, &pods](const server::Request&) {
    std::string why;
    if (!node.ready()) {
      why += "node not registered or lease not renewed\n";
    }
    if (!pods.ready()) {
      why += "pod informer not synced or provider not reconciled\n";
    }
    return why.empty() ? server::Response{200, "text/plain; charset=utf-8", "ok\n", {}}
                       : server::Response{503, "text/plain; charset=utf-8", why, {}};
  });
  (*health)->route("/metrics", [&registry, &pods, &byPhase](const server::Request&) {
    auto counts = pods.podsByPhase();
    for (const char* phase : {"Pending", "Running", "Succeeded", "Failed", "Unknown"}) {
      const auto it = counts.find(phase);
      byPhase.with({phase}).Set(it == counts.end() ? 0.0 : static_cast<double>(it->second));
    }
    return server::Response{200, std::string(metrics::kContentType), registry.render(), {}};
  });
  (*health)->start();
  spdlog::info(
      "msg=\"burstlet starting\" version={} node={} provider={} api={} health=:{} "
      "workers={} threads={}",
      version, config.nodeName, provider->name(), clientConfig->server, (*health)->port(),
      config.workers, config.threads);

  Parts parts;
  parts.pods = &pods;
  parts.node = &node;
  parts.events = &events;
  parts.services = &services;
  parts.health = health->get();
  parts.io = &io;
  parts.cci = cci;
  std::vector<std::unique_ptr<kube::Informer>> feeds;
  if (cci != nullptr) {
    auto& backendRequests = registry.counterFamily(
        "burstlet_backend_requests_total", "Requests to the backend API server by verb and code.",
        {"verb", "code"});
    backend->setRequestObserver([&backendRequests](std::string_view verb, std::string_view code) {
      backendRequests.with({std::string(verb), std::string(code)}).Increment();
    });
    for (const auto* resource : {&kube::resources::kConfigMaps, &kube::resources::kSecrets}) {
      feeds.push_back(makeChangeFeed(**client, *resource, *cci));
      parts.feeds.push_back(feeds.back().get());
    }
    // The feeds start once the backend's copies are listed: their first list then refreshes
    // every copy whose source changed while burstlet was not running.
    ++parts.feedsRunning;
    asio::co_spawn(asio::make_strand(io), startFeeds(&parts, &io),
                   [&parts](const std::exception_ptr&) { --parts.feedsRunning; });
    asio::co_spawn(
        providerStrand, cci->run(), [&parts](const std::exception_ptr& e, const Status& s) {
          if (e || !s.ok()) {
            spdlog::error("msg=\"backend provider stopped\" error=\"{}\"",
                          e ? std::string("unexpected exception") : s.error().toString());
            parts.providerFailed = true;
            std::raise(SIGTERM);
          }
          parts.providerDone = true;
        });
  }
  asio::co_spawn(asio::make_strand(io), events.run(),
                 [&parts](const std::exception_ptr&) { parts.eventsDone = true; });
  asio::co_spawn(asio::make_strand(io), node.run(),
                 [&parts](const std::exception_ptr&) { parts.nodeDone = true; });
  asio::co_spawn(asio::make_strand(io), services.run(),
                 [&parts](const std::exception_ptr&) { parts.servicesDone = true; });
  // Pods start once Services are known, so that their environments are complete.
  asio::co_spawn(podStrand, startPods(&parts, &services),
                 [&parts](const std::exception_ptr&) { parts.podsDone = true; });
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::co_spawn(io, lifecycle(&parts, &signals), asio::detached);

  std::vector<std::thread> threads;
  for (int i = 1; i < config.threads; ++i) {
    threads.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& t : threads) {
    t.join();
  }
  return parts.providerFailed ? 1 : 0;
}

}  // namespace burstlet::daemon
