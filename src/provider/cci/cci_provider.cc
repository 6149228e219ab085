#include "provider/cci/cci_provider.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/cci_provider_internal.h"
#include "provider/cci/claims.h"
#include "provider/cci/events.h"
#include "provider/cci/normalize.h"
#include "provider/cci/pod_update.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;
using kube::arrayAt;
using kube::at;
using kube::boolAt;
using kube::stringAt;

namespace internal {

asio::awaitable<void> sleepFor(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

std::string copyId(std::string_view kind, std::string_view name) {
  return fmt::format("{}/{}", kind, name);
}

void referencesOf(const json::value& pod, std::set<std::string>* all,
                  std::set<std::string>* required) {
  auto add = [&](std::string_view kind, const std::string& name, bool optional) {
    if (name.empty()) {
      return;
    }
    const std::string id = copyId(kind, name);
    all->insert(id);
    if (!optional && required != nullptr) {
      required->insert(id);
    }
  };
  if (const auto* volumes = arrayAt(pod, {"spec", "volumes"})) {
    for (const auto& v : *volumes) {
      if (const auto* cm = at(v, {"configMap"})) {
        add("ConfigMap", stringAt(*cm, {"name"}), boolAt(*cm, {"optional"}));
      }
      if (const auto* s = at(v, {"secret"})) {
        add("Secret", stringAt(*s, {"secretName"}), boolAt(*s, {"optional"}));
      }
      if (const auto* c = at(v, {"persistentVolumeClaim"})) {
        add("PersistentVolumeClaim", stringAt(*c, {"claimName"}), false);
      }
      if (const auto* sources = arrayAt(v, {"projected", "sources"})) {
        // The ServiceAccount token volume (kube-api-access-*) is dropped on the way to the
        // backend, and with it the kube-root-ca.crt it projects.
        bool tokenVolume = false;
        for (const auto& src : *sources) {
          tokenVolume = tokenVolume || at(src, {"serviceAccountToken"}) != nullptr;
        }
        if (tokenVolume) {
          continue;
        }
        for (const auto& src : *sources) {
          if (const auto* cm = at(src, {"configMap"})) {
            add("ConfigMap", stringAt(*cm, {"name"}), boolAt(*cm, {"optional"}));
          }
          if (const auto* s = at(src, {"secret"})) {
            add("Secret", stringAt(*s, {"name"}), boolAt(*s, {"optional"}));
          }
        }
      }
    }
  }
  if (const auto* pulls = arrayAt(pod, {"spec", "imagePullSecrets"})) {
    for (const auto& p : *pulls) {
      add("Secret", stringAt(p, {"name"}), true);
    }
  }
}

std::string ourSelector(const CciOptions& o) {
  return fmt::format("{}={},{}={}", kManagedByLabel, kManagedByValue, kNodeLabel,
                     safeLabelValue(o.nodeName));
}

}  // namespace internal

using namespace internal;  // NOLINT(google-build-using-namespace): this class's own helpers

std::string namespaceFor(std::string_view prefix, std::string_view clusterID) {
  return fmt::format("{}{}", prefix, clusterID);
}

CciProvider::CciProvider(asio::any_io_executor executor, kube::RestClient& backend,
                         ClusterObjects& cluster, kube::EventRecorder& events, CciOptions options,
                         const Clock& clock)
    : executor_(std::move(executor)),
      backend_(backend),
      cluster_(cluster),
      events_(events),
      options_(std::move(options)),
      clock_(clock) {
  translate_.backendNamespace = options_.backendNamespace;
  translate_.nodeName = options_.nodeName;
  translate_.nodeIP = options_.nodeIP;
  const std::string selector = ourSelector(options_);
  auto informerFor = [&](const kube::ResourceRef& resource) {
    kube::InformerOptions o;
    o.resource = resource;
    o.ns = options_.backendNamespace;
    o.labelSelector = selector;
    return std::make_unique<kube::Informer>(backend_, o);
  };
  pods_ = informerFor(resources::kPods);
  configMaps_ = informerFor(resources::kConfigMaps);
  secrets_ = informerFor(resources::kSecrets);
  claims_ = informerFor(resources::kPersistentVolumeClaims);
  kube::InformerOptions eo;
  eo.resource = resources::kEvents;
  eo.ns = options_.backendNamespace;
  eo.fieldSelector = "involvedObject.kind=Pod";
  eo.transform = trimBackendEvent;
  eventsInformer_ = std::make_unique<kube::Informer>(backend_, eo);

  pods_->addHandlers(kube::InformerHandlers{
      [this](const kube::ObjectPtr& p) {
        {
          std::lock_guard lock(mu_);
          recent_.erase(std::string(kube::objectName(*p)));
        }
        notify(p);
      },
      [this](const kube::ObjectPtr& old, const kube::ObjectPtr& p) {
        const auto* a = old ? at(*old, {"status"}) : nullptr;
        const auto* b = at(*p, {"status"});
        const bool deleting = at(*p, {"metadata", "deletionTimestamp"}) != nullptr;
        if (a == nullptr || b == nullptr || *a != *b || deleting) {
          notify(p);
        }
      },
      [this](const kube::ObjectPtr& last, bool) { notify(last); }});
  // A copy the sweep deleted counts as absent until its informer shows the delete (see gone_).
  for (const auto& [informer, kind] :
       {std::pair{configMaps_.get(), "ConfigMap"}, std::pair{secrets_.get(), "Secret"},
        std::pair{claims_.get(), "PersistentVolumeClaim"}}) {
    const std::string k = kind;
    informer->addHandlers(
        kube::InformerHandlers{nullptr, nullptr, [this, k](const kube::ObjectPtr& last, bool) {
                                 std::lock_guard lock(mu_);
                                 gone_.erase(copyId(k, kube::objectName(*last)));
                               }});
  }
  eventsInformer_->addHandlers(kube::InformerHandlers{
      [this](const kube::ObjectPtr& e) { mirrorEvent(nullptr, e); },
      [this](const kube::ObjectPtr& old, const kube::ObjectPtr& e) { mirrorEvent(old, e); },
      [this](const kube::ObjectPtr& e, bool) {
        std::lock_guard lock(mu_);
        eventCounts_.erase(std::string(kube::objectUid(*e)));
      }});
}

CciProvider::~CciProvider() = default;

void CciProvider::onPodStatusChange(std::function<void(const PodRef&)> callback) {
  std::lock_guard lock(mu_);
  callback_ = std::move(callback);
}

void CciProvider::notify(const kube::ObjectPtr& backendPod) {
  if (!backendPod) {
    return;
  }
  auto ref = sourceRefOf(*backendPod);
  if (!ref) {
    return;
  }
  std::function<void(const PodRef&)> cb;
  {
    std::lock_guard lock(mu_);
    cb = callback_;
  }
  if (cb) {
    cb(*ref);
  }
}

kube::ObjectPtr CciProvider::backendPod(const std::string& name) const {
  // recent_ first: the informer stores a pod before its handler forgets the recent entry, so
  // this order never misses both.
  {
    std::lock_guard lock(mu_);
    if (auto it = recent_.find(name); it != recent_.end()) {
      return it->second.pod;
    }
  }
  return pods_->store().get(options_.backendNamespace + "/" + name);
}

kube::Informer& CciProvider::copiesOf(const std::string& kind) {
  if (kind == "ConfigMap") {
    return *configMaps_;
  }
  if (kind == "Secret") {
    return *secrets_;
  }
  return *claims_;
}

asio::awaitable<Status> CciProvider::ensureNamespace() {
  const std::string& ns = options_.backendNamespace;
  for (int attempt = 0;; ++attempt) {
    std::string none;
    auto got = co_await backend_.get(resources::kNamespaces, none, ns);
    if (got.ok()) {
      if (stringAt(*got, {"metadata", "labels", kManagedByLabel}) != kManagedByValue ||
          stringAt(*got, {"metadata", "labels", kClusterIdLabel}) != options_.clusterID) {
        co_return Error::make(
            ErrorCode::kForbidden, "NamespaceNotOwned",
            fmt::format("backend namespace {} exists but is not labelled {}={} and {}={}: "
                        "burstlet only uses a namespace it created",
                        ns, kManagedByLabel, kManagedByValue, kClusterIdLabel, options_.clusterID));
      }
      if (at(*got, {"metadata", "deletionTimestamp"}) != nullptr) {
        // `burstlet cleanup` (or an operator) is deleting it: wait until it is gone.
        if (stopped_ || attempt > 600) {
          co_return Error::make(ErrorCode::kUnavailable, "NamespaceTerminating",
                                fmt::format("backend namespace {} is being deleted", ns));
        }
        co_await sleepFor(std::chrono::milliseconds(500));
        continue;
      }
      co_return okStatus();
    }
    if (got.error().code != ErrorCode::kNotFound) {
      co_return std::move(got).error();
    }
    json::object labels{{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, options_.clusterID}};
    json::object annotations;
    if (options_.cci) {
      annotations[kCciFlavorAnnotation] = options_.flavor;
    }
    json::value object =
        json::object{{"apiVersion", "v1"},
                     {"kind", "Namespace"},
                     {"metadata", json::object{{"name", ns},
                                               {"labels", std::move(labels)},
                                               {"annotations", std::move(annotations)}}}};
    auto created = co_await backend_.create(resources::kNamespaces, none, std::move(object));
    if (created.ok()) {
      spdlog::info("msg=\"created backend namespace\" namespace={}", ns);
      co_return okStatus();
    }
    if (created.error().code != ErrorCode::kAlreadyExists) {
      co_return std::move(created).error();
    }
  }
}

asio::awaitable<Status> CciProvider::run() {
  signals_.started.set();
  auto s = co_await runUntilStopped();
  signals_.stopped.set();
  co_return s;
}

asio::awaitable<Status> CciProvider::runUntilStopped() {
  // The backend may not answer yet (it starts with us, or the network is down): keep trying,
  // except when it says the namespace is not ours.
  for (int attempt = 0; !stopped_; ++attempt) {
    auto s = co_await ensureNamespace();
    if (s.ok()) {
      break;
    }
    if (s.error().code == ErrorCode::kForbidden || s.error().code == ErrorCode::kInvalid ||
        s.error().code == ErrorCode::kUnauthorized) {
      co_return s;
    }
    spdlog::warn("msg=\"backend namespace not ready, retrying\" error=\"{}\"",
                 s.error().toString());
    // Slept in short steps so that stop() is not held up by a long backoff.
    const int steps = std::min(4 << std::min(attempt, 6), 200);  // 200 ms .. 10 s
    for (int i = 0; i < steps && !stopped_; ++i) {
      co_await sleepFor(std::chrono::milliseconds(50));
    }
  }
  if (stopped_ && !ready_) {
    co_return okStatus();  // stopped before the backend was reachable: not a failure
  }
  auto finished = [this](const std::exception_ptr& e) {
    if (e) {
      spdlog::error("msg=\"cci provider coroutine failed\"");
    }
    --running_;
  };
  for (auto* inf :
       {pods_.get(), configMaps_.get(), secrets_.get(), claims_.get(), eventsInformer_.get()}) {
    ++running_;
    asio::co_spawn(executor_, inf->run(), finished);
  }
  while (!stopped_ && !(pods_->synced() && configMaps_->synced() && secrets_->synced() &&
                        claims_->synced() && eventsInformer_->synced())) {
    co_await sleepFor(std::chrono::milliseconds(20));
  }
  if (!stopped_) {
    ready_ = true;
    signals_.ready.set();
    spdlog::info("msg=\"backend ready\" namespace={} pods={}", options_.backendNamespace,
                 pods_->store().size());
    ++running_;
    asio::co_spawn(executor_, sweepLoop(), finished);
  }
  while (!stopped_) {
    co_await sleepFor(std::chrono::milliseconds(50));
  }
  for (auto* inf :
       {pods_.get(), configMaps_.get(), secrets_.get(), claims_.get(), eventsInformer_.get()}) {
    inf->stop();
  }
  while (running_.load() > 0) {
    co_await sleepFor(std::chrono::milliseconds(10));
  }
  ready_ = false;
  co_return okStatus();
}

void CciProvider::stop() {
  // Under mu_: clusterObjectChanged checks it there before it counts a refresh in running_.
  std::lock_guard lock(mu_);
  stopped_ = true;
}

asio::awaitable<Status> CciProvider::ping() {
  // The node registers while the backend namespace is being set up: give that a moment, so a
  // healthy start does not show the node NotReady (and taint it) for a whole status period.
  for (int i = 0; i < 100 && !ready_ && !stopped_; ++i) {
    co_await sleepFor(std::chrono::milliseconds(50));
  }
  std::string none;
  std::string ns = options_.backendNamespace;
  auto got = co_await backend_.get(resources::kNamespaces, none, ns);
  if (!got.ok()) {
    co_return std::move(got).error();
  }
  if (!ready_) {
    co_return Error::make(ErrorCode::kUnavailable, "BackendNotReady",
                          "the backend namespace is not listed yet");
  }
  co_return okStatus();
}

void CciProvider::mirrorEvent(const kube::ObjectPtr& old, const kube::ObjectPtr& event) {
  if (!eventsInformer_->synced() && !old) {
    return;  // history from before this process: mirrored by an earlier one
  }
  const std::string uid(kube::objectUid(*event));
  const int64_t count = backendEventCount(*event);
  {
    std::lock_guard lock(mu_);
    auto& seen = eventCounts_[uid];
    if (count <= seen) {
      return;
    }
    seen = count;
  }
  if (old && backendEventCount(*old) >= count) {
    return;
  }
  auto pod = backendPod(stringAt(*event, {"involvedObject", "name"}));
  if (!pod) {
    return;
  }
  auto src = sourceRefOf(*pod);
  if (!src) {
    return;
  }
  auto mirrored =
      mirroredEvent(*event, *pod, *src, MirrorOptions{std::string(name()), options_.nodeName});
  // A backend retry (the count grows) of what is shown once is not shown again.
  if (!mirrored || (mirrored->once && old)) {
    return;
  }
  kube::ObjectReference target;
  target.apiVersion = "v1";
  target.kind = "Pod";
  target.ns = src->ns;
  target.name = src->name;
  target.uid = src->uid;
  target.fieldPath = mirrored->fieldPath;
  events_.record(target, mirrored->type, mirrored->reason, mirrored->message);
  stats_.eventsMirrored.fetch_add(1);
}

}  // namespace burstlet::provider::cci
