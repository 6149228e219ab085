#include "provider/cci/cleanup.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "common/wait.h"
#include "kube/json_path.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/network_settings.h"
#include "provider/cci/storage_import.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace asio = boost::asio;
namespace json = boost::json;
namespace resources = kube::resources;
using kube::stringAt;

namespace {

// How long after its grace period a terminating pod is left before cleanup forces it.
constexpr std::chrono::seconds kStuckPodSlack{10};
// How often cleanup looks whether pods or the namespace are gone.
constexpr std::chrono::milliseconds kGonePoll{500};
// Deletes in flight at once: a node may have run 10,000 pods.
constexpr int kParallelDeletes = 16;
// Page size of cleanup's lists.
constexpr int64_t kListPage = 500;

std::string labelAt(const json::value& object, std::string_view key) {
  return stringAt(object, {"metadata", "labels", key});
}

std::string ownedSelector() { return fmt::format("{}={}", kManagedByLabel, kManagedByValue); }

std::string clusterSelector(const std::string& clusterID) {
  return fmt::format("{},{}={}", ownedSelector(), kClusterIdLabel, clusterID);
}

// Objects labelled with `key`=safeLabelValue(node), of burstlet's.
std::string nodeSelector(std::string_view key, const std::string& node) {
  return fmt::format("{},{}={}", ownedSelector(), key, safeLabelValue(node));
}

asio::awaitable<Result<json::array>> listItems(kube::RestClient& backend,
                                               const kube::ResourceRef& resource,
                                               const std::string& ns, const std::string& selector) {
  kube::ListOptions lo;
  lo.labelSelector = selector;
  lo.limit = kListPage;
  auto list = co_await backend.listAll(resource, ns, lo);
  if (!list.ok()) {
    // The namespace went meanwhile, or the backend has no such API (CCI: volumes).
    if (list.error().code == ErrorCode::kNotFound) {
      co_return json::array();
    }
    co_return std::move(list).error();
  }
  const auto* items = kube::arrayAt(*list, {"items"});
  co_return items == nullptr ? json::array() : *items;
}

// The deletes of one removeEach, shared by its workers (which run on the caller's executor, one
// at a time: nothing here is locked).
struct DeleteRun {
  kube::RestClient* backend = nullptr;
  kube::ResourceRef resource;
  std::string ns;
  json::array items;
  kube::DeleteOptions options;
  size_t next = 0;
  int deleted = 0;
  int running = 0;
  std::optional<Error> error;
  Latch done;
};

asio::awaitable<void> deleteWorker(std::shared_ptr<DeleteRun> run) {
  while (!run->error && run->next < run->items.size()) {
    const json::value& item = run->items[run->next++];
    kube::DeleteOptions o = run->options;
    // The object listed, not a successor of the same name made since (a pod of that name may
    // run on another node by now). Not with CCI's unbind, whose page documents only its query.
    if (o.query.empty()) {
      o.preconditionUid = std::string(kube::objectUid(item));
    }
    std::string ns = run->ns;
    std::string name(kube::objectName(item));
    auto r = co_await run->backend->remove(run->resource, ns, name, o);
    if (r.ok() || r.error().code == ErrorCode::kNotFound) {
      ++run->deleted;
    } else if (r.error().code != ErrorCode::kConflict && !run->error) {
      run->error = Error::make(r.error().code, r.error().reason,
                               fmt::format("deleting {} {}/{}: {}", run->resource.resource, ns,
                                           name, r.error().message));
    }
  }
}

// Deletes `items` (objects of `resource` in `ns`) with `options`, several at a time. How many
// went; the first error, after the deletes in flight ended.
asio::awaitable<Result<int>> removeEach(kube::RestClient& backend,
                                        const kube::ResourceRef& resource, const std::string& ns,
                                        json::array items, const kube::DeleteOptions& options) {
  if (items.empty()) {
    co_return 0;
  }
  auto run = std::make_shared<DeleteRun>();
  run->backend = &backend;
  run->resource = resource;
  run->ns = ns;
  run->items = std::move(items);
  run->options = options;
  const auto executor = co_await asio::this_coro::executor;
  const int workers = std::min<int>(kParallelDeletes, static_cast<int>(run->items.size()));
  run->running = workers;
  for (int i = 0; i < workers; ++i) {
    asio::co_spawn(executor, deleteWorker(run), [run](const std::exception_ptr& e) {
      if (e && !run->error) {
        run->error = Error::make(ErrorCode::kInternal, "CleanupFailed", "a delete failed");
      }
      if (--run->running == 0) {
        run->done.set();
      }
    });
  }
  co_await run->done.wait();
  if (run->error) {
    co_return *run->error;
  }
  co_return run->deleted;
}

// Deletes the objects of `resource` in `ns` that `selector` selects; how many went.
asio::awaitable<Result<int>> removeSelected(kube::RestClient& backend,
                                            const kube::ResourceRef& resource,
                                            const std::string& ns, const std::string& selector,
                                            const kube::DeleteOptions& options) {
  auto items = co_await listItems(backend, resource, ns, selector);
  if (!items.ok()) {
    co_return std::move(items).error();
  }
  co_return co_await removeEach(backend, resource, ns, std::move(*items), options);
}

// Pods still terminating well after their grace period (a backend that never finishes them)
// would keep the namespace, and the bill, forever: they are deleted forcibly.
asio::awaitable<Status> forceStuckPods(kube::RestClient& backend, const std::string& ns,
                                       const json::array& pods, const Clock& clock) {
  json::array stuck;
  for (const auto& pod : pods) {
    const auto* ts = kube::at(pod, {"metadata", "deletionTimestamp"});
    const auto* grace = kube::at(pod, {"metadata", "deletionGracePeriodSeconds"});
    if (ts == nullptr || !ts->is_string() ||
        (grace != nullptr && grace->is_int64() && grace->as_int64() == 0)) {
      continue;
    }
    const auto when = parseRfc3339(ts->as_string());
    if (!when || clock.now() < *when + kStuckPodSlack) {
      continue;
    }
    spdlog::warn("msg=\"forcing the deletion of a backend pod stuck terminating\" pod={}/{}", ns,
                 kube::objectName(pod));
    stuck.push_back(pod);
  }
  kube::DeleteOptions o;
  o.gracePeriodSeconds = 0;
  auto forced = co_await removeEach(backend, resources::kPods, ns, std::move(stuck), o);
  co_return forced.ok() ? okStatus() : Status(forced.error());
}

Error timedOut(const std::string& what, std::chrono::milliseconds timeout) {
  return Error::make(
      ErrorCode::kTimeout, "CleanupTimeout",
      fmt::format("{} after {} s", what,
                  std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
}

// What cleanup says when the node's burstlet made `pod` again while cleanup removed its pods.
Error stillRunning(const CleanupOptions& o, const json::value& pod) {
  return Error::make(
      ErrorCode::kConflict, "NodeStillRunning",
      fmt::format("virtual node {} made backend pod {} again during its cleanup: its burstlet "
                  "still runs. Stop it first (the chart: scale its Deployment to 0), then run "
                  "cleanup again; the backend namespace {} stays",
                  o.nodeName, kube::objectName(pod), o.ns));
}

// Waits until no pod `selector` selects is left in `ns`, forcing stuck ones.
asio::awaitable<Status> awaitPodsGone(kube::RestClient& backend, const CleanupOptions& o,
                                      const std::string& selector, Clock::SteadyTime deadline,
                                      const Clock& clock) {
  while (true) {
    auto pods = co_await listItems(backend, resources::kPods, o.ns, selector);
    if (!pods.ok()) {
      co_return std::move(pods).error();
    }
    if (pods->empty()) {
      co_return okStatus();
    }
    // Every pod of the node was deleted: one not terminating was made since, by the node's
    // burstlet, which still runs. Waiting would not end; deleting again would race it.
    for (const auto& pod : *pods) {
      if (kube::at(pod, {"metadata", "deletionTimestamp"}) == nullptr) {
        co_return stillRunning(o, pod);
      }
    }
    if (auto s = co_await forceStuckPods(backend, o.ns, *pods, clock); !s.ok()) {
      spdlog::warn("msg=\"forcing stuck backend pods failed\" namespace={} error=\"{}\"", o.ns,
                   s.error().toString());
    }
    if (clock.steadyNow() >= deadline) {
      co_return timedOut(fmt::format("{} backend pods of node {} are still in namespace {}",
                                     pods->size(), o.nodeName, o.ns),
                         o.timeout);
    }
    co_await sleepFor(clock, kGonePoll);
  }
}

// Waits until `ns` is gone, forcing pods stuck terminating.
asio::awaitable<Status> awaitNamespaceGone(kube::RestClient& backend, const CleanupOptions& o,
                                           Clock::SteadyTime deadline, const Clock& clock) {
  std::string none;
  while (true) {
    std::string ns = o.ns;
    auto still = co_await backend.get(resources::kNamespaces, none, ns);
    if (!still.ok()) {
      if (still.error().code == ErrorCode::kNotFound) {
        co_return okStatus();
      }
      co_return std::move(still).error();
    }
    const std::string all;
    auto pods = co_await listItems(backend, resources::kPods, o.ns, all);
    if (pods.ok()) {
      if (auto s = co_await forceStuckPods(backend, o.ns, *pods, clock); !s.ok()) {
        spdlog::warn("msg=\"forcing stuck backend pods failed\" namespace={} error=\"{}\"", o.ns,
                     s.error().toString());
      }
    }
    if (clock.steadyNow() >= deadline) {
      co_return timedOut(fmt::format("backend namespace {} still exists", o.ns), o.timeout);
    }
    co_await sleepFor(clock, kGonePoll);
  }
}

// Deletes the Networks of ours in `ns` (a backend without the Network API has none).
asio::awaitable<Status> deleteNetworks(kube::RestClient& backend, const CleanupOptions& o) {
  const std::string selector = clusterSelector(o.clusterID);
  auto networks = co_await listItems(backend, kNetworks, o.ns, selector);
  if (!networks.ok()) {
    if (networks.error().code == ErrorCode::kForbidden) {
      // The namespace's deletion takes its Networks along.
      spdlog::warn(
          "msg=\"backend networks not listed, left to the namespace deletion\" "
          "namespace={} error=\"{}\"",
          o.ns, networks.error().toString());
      co_return okStatus();
    }
    co_return std::move(networks).error();
  }
  for (const auto& network : *networks) {
    spdlog::info("msg=\"deleting backend network\" namespace={} network={}", o.ns,
                 kube::objectName(network));
  }
  const kube::DeleteOptions plain;
  auto removed = co_await removeEach(backend, kNetworks, o.ns, std::move(*networks), plain);
  co_return removed.ok() ? okStatus() : Status(removed.error());
}

// Unbinds the claims `selector` selects in `ns` (CCI mode): an imported claim deleted plainly,
// or with its namespace, would take its file system along (storage_import.h). How many.
asio::awaitable<Result<int>> unbindClaims(kube::RestClient& backend, const std::string& ns,
                                          const std::string& selector) {
  auto claims = co_await listItems(backend, resources::kPersistentVolumeClaims, ns, selector);
  if (!claims.ok()) {
    co_return std::move(claims).error();
  }
  for (const auto& claim : *claims) {
    spdlog::info("msg=\"unbinding backend claim, its file system kept\" namespace={} claim={}", ns,
                 kube::objectName(claim));
  }
  const kube::DeleteOptions unbind = unbindOptions();
  auto unbound = co_await removeEach(backend, resources::kPersistentVolumeClaims, ns,
                                     std::move(*claims), unbind);
  if (!unbound.ok()) {
    co_return Error::make(unbound.error().code, unbound.error().reason,
                          fmt::format("backend namespace {} left in place: a claim could not be "
                                      "unbound, and deleting it would delete its file system: {}",
                                      ns, unbound.error().message));
  }
  co_return *unbound;
}

// Adds `n` objects removed, of `what`, to the report; n's error as a Status.
Status counted(CleanupReport& report, const char* what, const Result<int>& n) {
  if (!n.ok()) {
    return n.error();
  }
  if (*n > 0) {
    report.removed[what] += *n;
  }
  return okStatus();
}

// Removes what node o.nodeName made in the namespace, its pods first (waited for until gone: a
// copy or claim goes only once no pod of the node mounts it), its marker last.
asio::awaitable<Status> removeNodeObjects(kube::RestClient& backend, const CleanupOptions& o,
                                          Clock::SteadyTime deadline, const Clock& clock,
                                          CleanupReport& report) {
  const std::string ours = nodeSelector(kNodeLabel, o.nodeName);
  const kube::DeleteOptions plain;
  auto pods = co_await removeSelected(backend, resources::kPods, o.ns, ours, plain);
  if (auto s = counted(report, "pods", pods); !s.ok()) {
    co_return s;
  }
  if (auto s = co_await awaitPodsGone(backend, o, ours, deadline, clock); !s.ok()) {
    co_return s;
  }
  auto configMaps = co_await removeSelected(backend, resources::kConfigMaps, o.ns, ours, plain);
  if (auto s = counted(report, "ConfigMap copies", configMaps); !s.ok()) {
    co_return s;
  }
  auto secrets = co_await removeSelected(backend, resources::kSecrets, o.ns, ours, plain);
  if (auto s = counted(report, "Secret copies", secrets); !s.ok()) {
    co_return s;
  }
  // CCI's imports are unbound (the file system stays); elsewhere the claim copy is deleted, and
  // then its volume (reclaim policy Retain: the file system stays there too).
  Result<int> claims = 0;
  if (o.cciApi) {
    claims = co_await unbindClaims(backend, o.ns, ours);
  } else {
    claims =
        co_await removeSelected(backend, resources::kPersistentVolumeClaims, o.ns, ours, plain);
  }
  if (auto s = counted(report, "claim copies", claims); !s.ok()) {
    co_return s;
  }
  if (!o.cciApi) {
    const std::string selector = ours + fmt::format(",{}={}", kClusterIdLabel, o.clusterID);
    const std::string clusterScoped;
    auto volumes = co_await removeSelected(backend, resources::kPersistentVolumes, clusterScoped,
                                           selector, plain);
    if (!volumes.ok() && volumes.error().code == ErrorCode::kForbidden) {
      spdlog::warn("msg=\"backend volumes not listed\" error=\"{}\"", volumes.error().toString());
      volumes = 0;
    }
    if (auto s = counted(report, "volumes", volumes); !s.ok()) {
      co_return s;
    }
  }
  const std::string secretsOfNode = nodeSelector(kNodeSecretLabel, o.nodeName);
  auto nodeSecrets =
      co_await removeSelected(backend, resources::kSecrets, o.ns, secretsOfNode, plain);
  if (auto s = counted(report, "node secrets", nodeSecrets); !s.ok()) {
    co_return s;
  }
  const std::string markerOfNode = nodeSelector(kNodeMarkerLabel, o.nodeName);
  auto marker = co_await removeSelected(backend, resources::kConfigMaps, o.ns, markerOfNode, plain);
  if (auto s = counted(report, "node marker", marker); !s.ok()) {
    co_return s;
  }
  // The node's burstlet, should it still run, may have made a pod again since the wait: said
  // rather than left running (and billing) on the backend.
  auto late = co_await listItems(backend, resources::kPods, o.ns, ours);
  if (!late.ok()) {
    co_return std::move(late).error();
  }
  if (!late->empty()) {
    co_return stillRunning(o, late->front());
  }
  co_return okStatus();
}

// The other nodes whose objects or markers are in the namespace, by name (a marker's data says
// the node's full name; labels may hold a shortened one).
asio::awaitable<Result<std::vector<std::string>>> otherNodes(kube::RestClient& backend,
                                                             const CleanupOptions& o) {
  const std::string self = safeLabelValue(o.nodeName);
  const std::string owned = ownedSelector();
  std::map<std::string, std::string> nodes;  // label value -> name to show
  for (const auto* resource : {&resources::kPods, &resources::kConfigMaps, &resources::kSecrets,
                               &resources::kPersistentVolumeClaims}) {
    auto items = co_await listItems(backend, *resource, o.ns, owned);
    if (!items.ok()) {
      co_return std::move(items).error();
    }
    for (const auto& item : *items) {
      for (const char* key : {kNodeLabel, kNodeSecretLabel, kNodeMarkerLabel}) {
        const std::string value = labelAt(item, key);
        if (value.empty() || value == self) {
          continue;
        }
        const std::string full =
            key == kNodeMarkerLabel ? stringAt(item, {"data", "node"}) : std::string();
        auto& shown = nodes[value];
        if (!full.empty() || shown.empty()) {
          shown = full.empty() ? value : full;
        }
      }
    }
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& [value, name] : nodes) {
    if (seen.insert(name).second) {
      out.push_back(name);
    }
  }
  co_return out;
}

// Deletes the namespace (its Networks first; in CCI mode every claim unbound first).
asio::awaitable<Status> deleteNamespace(kube::RestClient& backend, const CleanupOptions& o) {
  if (auto s = co_await deleteNetworks(backend, o); !s.ok()) {
    co_return s;
  }
  // Deleting the namespace deletes its claims; an imported one would take its file system
  // with it. Every claim is unbound first, and the namespace stays when one cannot be.
  if (o.cciApi) {
    const std::string all;
    auto unbound = co_await unbindClaims(backend, o.ns, all);
    if (!unbound.ok()) {
      co_return std::move(unbound).error();
    }
  }
  std::string none;
  std::string ns = o.ns;
  kube::DeleteOptions d;
  d.propagationPolicy = "Background";
  auto r = co_await backend.remove(resources::kNamespaces, none, ns, d);
  if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
    co_return std::move(r).error();
  }
  spdlog::info("msg=\"deleting backend namespace\" namespace={}", o.ns);
  co_return okStatus();
}

// Volumes are cluster-scoped and outlive the namespace; ours carry the cluster id. Their reclaim
// policy is Retain: the file systems stay, only the backend's handles go. CCI has no volume API:
// its imports were the claims.
asio::awaitable<Status> deleteClusterVolumes(kube::RestClient& backend, const CleanupOptions& o) {
  const std::string clusterScoped;
  const std::string selector = clusterSelector(o.clusterID);
  const kube::DeleteOptions plain;
  auto volumes = co_await removeSelected(backend, resources::kPersistentVolumes, clusterScoped,
                                         selector, plain);
  if (!volumes.ok() && volumes.error().code != ErrorCode::kForbidden) {
    co_return volumes.error();
  }
  co_return okStatus();
}

}  // namespace

asio::awaitable<Result<CleanupReport>> cleanupBackend(kube::RestClient& backend,
                                                      CleanupOptions options, const Clock& clock) {
  const CleanupOptions& o = options;
  const auto deadline = clock.steadyNow() + o.timeout;
  CleanupReport report;
  std::string none;
  std::string ns = o.ns;
  auto got = co_await backend.get(resources::kNamespaces, none, ns);
  if (!got.ok() && got.error().code != ErrorCode::kNotFound) {
    co_return std::move(got).error();
  }
  report.namespaceFound = got.ok();
  if (got.ok()) {
    if (labelAt(*got, kManagedByLabel) != kManagedByValue ||
        labelAt(*got, kClusterIdLabel) != o.clusterID) {
      co_return Error::make(
          ErrorCode::kForbidden, "NamespaceNotOwned",
          fmt::format("backend namespace {} is not labelled as burstlet's for cluster {}: "
                      "left alone",
                      o.ns, o.clusterID));
    }
    auto others = co_await otherNodes(backend, o);
    if (!others.ok()) {
      co_return std::move(others).error();
    }
    // The last node (or all of them) deletes the namespace, which takes everything in it; so the
    // namespace goes as before even when the node's burstlet still runs (its creates then fail).
    // Otherwise the node's objects go one by one, and the others are looked for again: they may
    // have been uninstalled meanwhile. Each node removes its marker before it looks, so of two
    // cleanups at once the later one sees the other's gone.
    if (!o.allNodes && !others->empty()) {
      auto s = co_await removeNodeObjects(backend, o, deadline, clock, report);
      if (!s.ok()) {
        co_return std::move(s).error();
      }
      others = co_await otherNodes(backend, o);
      if (!others.ok()) {
        co_return std::move(others).error();
      }
    }
    report.otherNodes = std::move(*others);
    if (!o.allNodes && !report.otherNodes.empty()) {
      spdlog::info(
          "msg=\"backend namespace kept: other virtual nodes use it\" namespace={} "
          "nodes={}",
          o.ns, fmt::join(report.otherNodes, ","));
      co_return report;
    }
    if (auto s = co_await deleteNamespace(backend, o); !s.ok()) {
      co_return std::move(s).error();
    }
  }
  // With the namespace gone no claim is left: every volume made for the cluster is unused.
  if (!o.cciApi) {
    if (auto s = co_await deleteClusterVolumes(backend, o); !s.ok()) {
      co_return std::move(s).error();
    }
  }
  if (got.ok()) {
    if (auto s = co_await awaitNamespaceGone(backend, o, deadline, clock); !s.ok()) {
      co_return std::move(s).error();
    }
    report.namespaceDeleted = true;
  }
  co_return report;
}

std::vector<std::string> describeCleanup(const CleanupReport& report,
                                         const CleanupOptions& options) {
  // In the order cleanup removes them: the report's key, one, more.
  static constexpr std::array<std::array<const char*, 3>, 7> kKinds{{
      {"pods", "pod", "pods"},
      {"ConfigMap copies", "ConfigMap copy", "ConfigMap copies"},
      {"Secret copies", "Secret copy", "Secret copies"},
      {"claim copies", "claim copy", "claim copies"},
      {"volumes", "volume", "volumes"},
      {"node secrets", "node secret", "node secrets"},
      {"node marker", "node marker", "node markers"},
  }};
  std::vector<std::string> parts;
  for (const auto& [what, one, more] : kKinds) {
    if (auto it = report.removed.find(what); it != report.removed.end() && it->second > 0) {
      parts.push_back(fmt::format("{} {}", it->second, it->second == 1 ? one : more));
    }
  }
  std::vector<std::string> lines;
  if (!parts.empty()) {
    lines.push_back(fmt::format("removed for virtual node {} from backend namespace {}: {}",
                                options.nodeName, options.ns, fmt::join(parts, ", ")));
  }
  if (!report.namespaceFound) {
    lines.push_back(fmt::format("backend namespace {} is gone (it did not exist)", options.ns));
  } else if (!report.namespaceDeleted) {
    lines.push_back(fmt::format(
        "backend namespace {} stays: virtual nodes {} still use it (the last one's cleanup "
        "removes it; burstlet cleanup --all-nodes removes it now, with their pods)",
        options.ns, fmt::join(report.otherNodes, ", ")));
  } else if (!report.otherNodes.empty()) {
    lines.push_back(
        fmt::format("backend namespace {} is gone, with everything in it, also of virtual nodes {} "
                    "(--all-nodes)",
                    options.ns, fmt::join(report.otherNodes, ", ")));
  } else {
    lines.push_back(fmt::format(
        "backend namespace {} is gone, with everything in it: no other virtual node used it",
        options.ns));
  }
  return lines;
}

}  // namespace burstlet::provider::cci
