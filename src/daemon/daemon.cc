#include "daemon/daemon.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/wait.h"
#include "daemon/admission_server.h"
#include "daemon/api_cluster_objects.h"
#include "daemon/kubelet_server.h"
#include "daemon/leadership.h"
#include "daemon/network_parts.h"
#include "daemon/providers.h"
#include "kube/events.h"
#include "kube/leader_election.h"
#include "kube/rest.h"
#include "node/node_controller.h"
#include "pod/pod_controller.h"
#include "pod/prepare.h"
#include "provider/cci/backend.h"
#include "provider/cci/cci_provider.h"
#include "server/http_server.h"

namespace burstlet::daemon {

namespace asio = boost::asio;

namespace {

int fail(const std::string& what, const Error& error) {
  std::fprintf(stderr, "burstlet run: %s: %s\n", what.c_str(), error.toString().c_str());
  return 1;
}

// What run() waits on while the parts work: each part's run() ending (its completion
// handler, so also when it threw), the provider's feeds, and the request to shut down (a
// signal, or the provider failing).
struct Parts {
  Latch shutdown;
  Latch podsDone;
  Latch nodeDone;
  Latch providerDone;
  Latch servicesDone;
  Latch eventsDone;
  Latch feedsStarted;
  Latch electorDone;
  Gate feeds;
  // Set once this replica works (at once without leader election); what the pod controller and
  // a standing-by provider wait for.
  Latch leading;
  Latch workStarted;  // set by the work's start: what a standing-by provider waits for
  Latch podsGo;       // Services known, the provider ready: the pod controller may reconcile
  std::atomic<bool> providerFailed{false};
  std::atomic<bool> leadershipLost{false};
  // What the work started (on the lifecycle strand): stopping awaits only what ran.
  bool working = false;
  bool providerStarted = false;
  kube::LeaderElector* elector = nullptr;  // null without leader election
  // After a lost Lease, the process ends within this long, stopped or not: a standby may take
  // over once leaseDuration has passed since the last renewal (renewDeadline ago).
  std::chrono::milliseconds lostGrace{5'000};
  pod::PodController* pods = nullptr;
  provider::Provider* provider = nullptr;
  std::vector<kube::Informer*> feedInformers;  // cluster objects the provider follows
  kube::Informer* services = nullptr;
  node::NodeController* node = nullptr;
  kube::EventRecorder* events = nullptr;
  server::HttpServer* health = nullptr;
  server::HttpServer* admission = nullptr;   // null without the webhook
  server::HttpServer* kubeletApi = nullptr;  // null when turned off
  AdmissionCaches* admissionCaches = nullptr;
  // The webhook's own certificates (webhook_certs.h), when running.
  bool webhookCertificates = false;
  Latch webhookCertificatesDone;
  asio::io_context* io = nullptr;
  const Clock* clock = nullptr;
};

// The provider's pod: its environment resolved, then DNS and the proxy sidecar.
asio::awaitable<Result<boost::json::value>> preparePod(pod::PodPreparer* preparer,
                                                       const NetworkParts* network,
                                                       kube::EventRecorder* events,
                                                       boost::json::value pod) {
  auto prepared = co_await preparer->prepare(pod);
  if (!prepared.ok()) {
    co_return std::move(prepared).error();
  }
  co_return finishPreparing(std::move(*prepared), *network, *events);
}

// The network proxy's credentials go to the backend once the provider is ready (its namespace
// exists), then are renewed until shutdown.
asio::awaitable<void> runProxyCredentials(Parts* parts, network::ProxyCredentials* credentials) {
  co_await waitAny(parts->provider->signals().ready, parts->shutdown);
  if (!parts->shutdown.isSet()) {
    co_await credentials->run(parts->shutdown);
  }
}

// Runs `work` on `executor`; `done` is set when it ends, however it ends.
void spawnPart(const asio::any_io_executor& executor, asio::awaitable<void> work, Latch* done,
               const char* what) {
  asio::co_spawn(executor, std::move(work), [done, what](const std::exception_ptr& e) {
    if (e) {
      spdlog::error("msg=\"part ended with an exception\" part={}", what);
    }
    done->set();
  });
}

// Pods reconcile once Services are known (their environments are complete) and the provider is
// ready (its pods listed, so that the reconcile sees them); the pod controller lists and watches
// the node's pods meanwhile (PodController::holdUntil).
asio::awaitable<void> letPodsGo(Parts* parts) {
  co_await waitAny(parts->services->signals().ready, parts->shutdown);
  co_await waitAny(parts->provider->signals().ready, parts->shutdown);
  if (!parts->shutdown.isSet()) {
    parts->podsGo.set();
  }
}

// Runs `start` on the lifecycle strand once this replica leads; a lost lease shuts down (the
// process exits 1 and is restarted as a standby: the work it did may have been taken over).
asio::awaitable<void> lead(Parts* parts, std::function<void()>* start) {
  co_await waitAny(parts->leading, parts->shutdown);
  if (!parts->shutdown.isSet()) {
    (*start)();
    parts->workStarted.set();
  }
  if (parts->elector == nullptr) {
    co_return;
  }
  co_await waitAny(parts->elector->lost(), parts->shutdown);
  if (!parts->elector->lost().isSet() || parts->shutdown.isSet()) {
    co_return;
  }
  spdlog::error("msg=\"leadership lost: stopping\"");
  parts->leadershipLost = true;
  // The writers first, before the orderly shutdown gets to them.
  parts->pods->stop();
  parts->node->stop();
  parts->provider->stop();
  parts->shutdown.set();
  // A thread, not a sleep here: the process must end even when its event loop is stuck (and
  // GCC 12 miscompiles a coroutine that ends in a call that does not return).
  std::thread([grace = parts->lostGrace] {
    std::this_thread::sleep_for(grace);
    spdlog::error("msg=\"leadership lost and not stopped in time: exiting\"");
    std::_Exit(1);
  }).detach();
}

// Sets or removes the leader label on this replica's pod, again with backoff until it is done or
// `until` (or shutdown) is set.
asio::awaitable<void> labelOwnPod(Parts* parts, kube::RestClient* cluster, bool leader,
                                  const Latch* until) {
  std::chrono::milliseconds delay{1000};
  while (!parts->shutdown.isSet() && !until->isSet()) {
    auto s = co_await markOwnPod(*cluster, leader);
    if (s.ok()) {
      co_return;
    }
    spdlog::warn("msg=\"leader label of this replica's pod not {}\" retry={}ms error=\"{}\"",
                 leader ? "set" : "removed", delay.count(), s.error().toString());
    co_await sleepFor(*parts->clock, delay, &parts->shutdown);
    delay = std::min(delay * 2, std::chrono::milliseconds(30'000));
  }
}

// Copies the elector's `leading` into the parts' latch, and moves the leader label of this
// replica's pod with it (unset first: a replica restarted after it lost the Lease keeps its pod).
asio::awaitable<void> followElection(Parts* parts, kube::RestClient* cluster) {
  // Until it is off (a replica restarted after it lost the Lease keeps its pod and its label:
  // the chart's Service would send webhook requests to a standby), or the replica leads.
  co_await labelOwnPod(parts, cluster, false, &parts->elector->leading());
  co_await waitAny(parts->elector->leading(), parts->shutdown);
  if (!parts->elector->leading().isSet() || parts->shutdown.isSet()) {
    co_return;
  }
  parts->leading.set();
  // Until it is on: without it the chart's Service has no endpoint and webhook requests are
  // admitted unchanged.
  co_await labelOwnPod(parts, cluster, true, &parts->elector->lost());
}

// The feeds of cluster objects the provider follows start once it is ready: their first list
// then reports every object, so that what changed while burstlet was not running is caught up.
asio::awaitable<void> startFeeds(Parts* parts, asio::io_context* io) {
  co_await waitAny(parts->provider->signals().ready, parts->shutdown);
  if (parts->shutdown.isSet()) {
    co_return;
  }
  for (auto* feed : parts->feedInformers) {
    if (!parts->feeds.enter()) {
      break;
    }
    asio::co_spawn(asio::make_strand(*io), feed->run(),
                   [parts](const std::exception_ptr&) { parts->feeds.leave(); });
  }
}

asio::awaitable<void> runProvider(Parts* parts) {
  auto s = co_await parts->provider->run();
  if (!s.ok()) {
    spdlog::error("msg=\"backend provider stopped\" error=\"{}\"", s.error().toString());
    parts->providerFailed = true;
    parts->shutdown.set();
  }
}

// Turns SIGTERM/SIGINT into the shutdown latch.
asio::awaitable<void> awaitSignal(Parts* parts, asio::signal_set* signals) {
  boost::system::error_code ec;
  const int sig = co_await signals->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    spdlog::info("msg=\"shutting down\" signal={}", sig);
    parts->shutdown.set();
  }
}

// Waits for the shutdown latch, then stops the parts in order: pods (in-flight syncs end), the
// node (its lease released), the provider and its feeds, then Services, events and the health
// server, the last two given five seconds.
asio::awaitable<void> lifecycle(Parts* parts, asio::signal_set* signals) {
  co_await parts->shutdown.wait();
  boost::system::error_code ignored;
  signals->cancel(ignored);
  // New pods are admitted unchanged from now on (failurePolicy Ignore): they stay local.
  if (parts->kubeletApi != nullptr) {
    parts->kubeletApi->stop();  // ends log streams and exec sessions
  }
  if (parts->admission != nullptr) {
    parts->admission->stop();
  }
  if (parts->admissionCaches != nullptr) {
    co_await parts->admissionCaches->stop();
  }
  parts->pods->stop();
  co_await parts->podsDone.wait();
  if (parts->working) {
    parts->node->stop();
    co_await parts->nodeDone.wait();
  }
  for (auto* feed : parts->feedInformers) {
    feed->stop();
  }
  parts->provider->stop();
  if (parts->providerStarted) {
    co_await parts->providerDone.wait();
  }
  co_await parts->feeds.close();
  parts->services->stop();
  if (!co_await waitFor(parts->servicesDone, *parts->clock, std::chrono::seconds(5))) {
    spdlog::warn("msg=\"service informer did not stop in time\"");
  }
  parts->events->stop();
  if (!co_await waitFor(parts->eventsDone, *parts->clock, std::chrono::seconds(5))) {
    spdlog::warn("msg=\"event recorder did not stop in time\"");
  }
  if (parts->webhookCertificates) {
    const bool stopped =
        co_await waitFor(parts->webhookCertificatesDone, *parts->clock, std::chrono::seconds(5));
    if (!stopped) {
      spdlog::warn("msg=\"webhook certificates did not stop in time\"");
    }
  }
  if (parts->elector != nullptr) {
    // Last: nothing of this replica writes any more when a standby takes over.
    parts->elector->stop();
    if (!co_await waitFor(parts->electorDone, *parts->clock, std::chrono::seconds(5))) {
      spdlog::warn("msg=\"leader election did not stop in time\"");
    }
  }
  parts->health->stop();
  spdlog::info("msg=\"stopped\"");
  // Provider timers (pods that start or exit later) would keep the loop alive.
  parts->io->stop();
}

}  // namespace

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
  if (config.kubeletApi.enabled && config.kubeletApi.webSocketsToKubelet) {
    nodeOptions.declaredFeatures.emplace_back("ExtendWebSocketsToKubelet");
  }

  auto providerStrand = asio::make_strand(io);
  kube::EventRecorderOptions eventOptions;
  eventOptions.host = config.nodeName;
  kube::EventRecorder events(**client, clock, eventOptions);
  auto made = makeProvider(config, ProviderContext{io, providerStrand, **client, events, registry,
                                                   nodeOptions.internalIP, version, clock});
  if (!made.ok()) {
    return fail("provider", made.error());
  }
  ProviderParts providerParts = std::move(*made);
  provider::Provider* provider = providerParts.provider.get();
  auto networkParts = makeNetwork(io, config, **client, *provider, clock);
  if (!networkParts.ok()) {
    return fail("network", networkParts.error());
  }
  std::vector<std::unique_ptr<kube::Informer>> feeds;
  for (const auto& kind : provider->followedKinds()) {
    const auto* resource = followedResource(kind);
    if (resource == nullptr) {
      return fail(
          "provider",
          Error::make(ErrorCode::kInternal, "UnknownKind",
                      fmt::format("the provider follows {}, which cannot be watched", kind)));
    }
    feeds.push_back(makeChangeFeed(**client, *resource, *provider));
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
  preparer.setServiceEnvironment(networkParts->serviceEnv);
  pods.setPreparePod([&preparer, &networkParts, &events](const boost::json::value& pod) {
    return preparePod(&preparer, &*networkParts, &events, pod);
  });

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
  std::unique_ptr<kube::LeaderElector> elector;
  if (config.leaderElection.enabled) {
    auto options = leaderElectionOptions(config);
    spdlog::info("msg=\"leader election on\" lease={}/{} identity={}", options.ns, options.name,
                 options.identity);
    elector = std::make_unique<kube::LeaderElector>(**client, std::move(options), clock);
  }
  registry.gaugeFunc("burstlet_leader",
                     "1 when this replica works (holds the node's Lease, or no leader election).",
                     [&elector] { return !elector || elector->leading().isSet() ? 1.0 : 0.0; });
  (*health)->route("/readyz", [&node, &pods, provider, &elector](const server::Request&) {
    std::string why;
    if (elector && !elector->leading().isSet()) {
      // Ready as a standby that could take over (the Lease read, its caches listed), so that a
      // rolling update (maxUnavailable 0) goes on only with a working new replica; the Service
      // in front of the replicas selects the leader by its pod's label (leadership.h).
      if (!elector->answering()) {
        why += "standby: the node's Lease cannot be read\n";
      }
      if (!pods.listed()) {
        why += "standby: the node's pods not listed yet\n";
      }
      if (auto reason = provider->notReadyReason(); !reason.empty()) {
        why += "standby: provider: " + reason + "\n";
      }
      if (!why.empty()) {
        return server::Response{503, "text/plain; charset=utf-8", why, {}};
      }
      const auto holder = elector->holder();
      why = "standing by: the node's Lease is held by " + (holder.empty() ? "nobody" : holder);
      return server::Response{200, "text/plain; charset=utf-8", why + "\n", {}};
    }
    if (!node.ready()) {
      why += "node not registered or lease not renewed\n";
    }
    if (auto reason = provider->notReadyReason(); !reason.empty()) {
      why += "provider: " + reason + "\n";
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
  std::optional<KubeletParts> kubeletApi;
  if (config.kubeletApi.enabled) {
    auto made = makeKubeletApi(io.get_executor(), config, **client, *provider, pods.pods(),
                               nodeOptions.internalIP, clock);
    if (!made.ok()) {
      return fail("kubelet API", made.error());
    }
    kubeletApi = std::move(*made);
  }
  std::optional<AdmissionParts> admission;
  if (!config.admission.listen.empty()) {
    auto made = makeAdmission(io.get_executor(), config, *clientConfig, nodeOptions.internalIP,
                              providerParts.backendCheck, clock);
    if (!made.ok()) {
      return fail("admission webhook", made.error());
    }
    admission = std::move(*made);
  }
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
  parts.clock = &clock;
  parts.provider = provider;
  parts.elector = elector.get();
  parts.lostGrace = config.leaderElection.leaseDuration - config.leaderElection.renewDeadline;
  for (auto& feed : feeds) {
    parts.feedInformers.push_back(feed.get());
  }
  // A standby keeps its caches warm (the node's pods, Services, the admission caches and, when
  // the provider can stand by, the backend's pods and copies) and writes nothing: the rest starts
  // once it leads.
  const bool providerStandsBy = elector && provider->standBy(parts.workStarted);
  auto lifecycleStrand = asio::make_strand(io);
  std::function<void()> startWork = [&] {
    parts.working = true;
    if (kubeletApi) {
      kubeletApi->server->start();
      parts.kubeletApi = kubeletApi->server.get();
      spdlog::info(
          "msg=\"kubelet API listening\" address={} port={} clientCA={}", kubeletApi->address,
          kubeletApi->server->port(),
          config.kubeletApi.clientCAFile.empty() ? "none" : config.kubeletApi.clientCAFile);
      if (kubeletApi->certificates) {
        asio::co_spawn(asio::make_strand(io), kubeletApi->certificates->run(parts.shutdown),
                       asio::detached);
      }
    }
    if (admission) {
      if (!admission->certificates) {
        admission->server->start();  // else once the certificates are loaded
      }
      spdlog::info("msg=\"admission webhook listening\" port={} url={}", admission->server->port(),
                   admission->registration.url);
      parts.admission = admission->server.get();
      if (admission->certificates) {
        parts.webhookCertificates = true;
        spawnPart(asio::make_strand(io),
                  admission->certificates->run(
                      **client, *admission->server,
                      config.admission.registerWebhook
                          ? std::optional<admission::Registration>(admission->registration)
                          : std::nullopt,
                      parts.shutdown),
                  &parts.webhookCertificatesDone, "webhook certificates");
      } else if (config.admission.registerWebhook) {
        asio::co_spawn(asio::make_strand(io),
                       keepRegistered(**client, admission->registration, clock, parts.shutdown),
                       asio::detached);
      }
    }
    if (networkParts->credentials) {
      asio::co_spawn(asio::make_strand(io),
                     runProxyCredentials(&parts, networkParts->credentials.get()), asio::detached);
    }
    if (!providerStandsBy) {
      parts.providerStarted = true;
      spawnPart(providerStrand, runProvider(&parts), &parts.providerDone, "provider");
    }
    spawnPart(asio::make_strand(io), node.run(), &parts.nodeDone, "node");
  };
  if (admission) {
    parts.admissionCaches = admission->caches.get();
    admission->caches->start(io);
  }
  if (elector) {
    spawnPart(asio::make_strand(io), elector->run(), &parts.electorDone, "leader election");
    asio::co_spawn(asio::make_strand(io), followElection(&parts, client->get()), asio::detached);
  } else {
    parts.leading.set();
  }
  if (providerStandsBy) {
    parts.providerStarted = true;
    spawnPart(providerStrand, runProvider(&parts), &parts.providerDone, "provider");
  }
  asio::co_spawn(lifecycleStrand, lead(&parts, &startWork), asio::detached);
  spawnPart(asio::make_strand(io), startFeeds(&parts, &io), &parts.feedsStarted, "feeds");
  spawnPart(asio::make_strand(io), events.run(), &parts.eventsDone, "events");
  spawnPart(asio::make_strand(io), services.run(), &parts.servicesDone, "services");
  pods.holdUntil(parts.podsGo);
  asio::co_spawn(asio::make_strand(io), letPodsGo(&parts), asio::detached);
  spawnPart(podStrand, pods.run(), &parts.podsDone, "pods");
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::co_spawn(lifecycleStrand, awaitSignal(&parts, &signals), asio::detached);
  asio::co_spawn(lifecycleStrand, lifecycle(&parts, &signals), asio::detached);

  std::vector<std::thread> threads;
  for (int i = 1; i < config.threads; ++i) {
    threads.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& t : threads) {
    t.join();
  }
  return parts.providerFailed || parts.leadershipLost ? 1 : 0;
}

}  // namespace burstlet::daemon
