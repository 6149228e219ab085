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

namespace {

asio::awaitable<void> sleepFor(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

std::string copyId(std::string_view kind, std::string_view name) {
  return fmt::format("{}/{}", kind, name);
}

// Copies a pod references by name ("ConfigMap/<name>", "Secret/<name>",
// "PersistentVolumeClaim/<name>"), names as written in the pod: the sweep runs it over backend
// pods (backend names), createPod over the source pod to know which references may be absent.
// `required` collects the ones a kubelet would wait for: volumes and projected sources not
// marked optional. Image pull secrets are never required (a kubelet pulls without them).
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

// Whether two backend copies hold the same content (what sameContent compares for a copy
// and its source).
bool sameCopy(const json::value& a, const json::value& b) {
  for (const char* k : {"data", "binaryData", "type", "immutable"}) {
    const auto* x = at(a, {k});
    const auto* y = at(b, {k});
    if ((x == nullptr) != (y == nullptr) || (x != nullptr && *x != *y)) {
      return false;
    }
  }
  return stringAt(a, {"metadata", "annotations", kSourceUidAnnotation}) ==
         stringAt(b, {"metadata", "annotations", kSourceUidAnnotation});
}

}  // namespace

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

asio::awaitable<Result<std::map<std::string, CciProvider::Claim>>> CciProvider::claimsOf(
    const Json& pod) {
  std::map<std::string, Claim> out;
  const std::string ns = stringAt(pod, {"metadata", "namespace"});
  const auto* volumes = arrayAt(pod, {"spec", "volumes"});
  if (volumes == nullptr) {
    co_return out;
  }
  for (const auto& v : *volumes) {
    std::string claim = stringAt(v, {"persistentVolumeClaim", "claimName"});
    if (claim.empty() || out.count(claim) != 0) {
      continue;
    }
    auto pvc = co_await cluster_.persistentVolumeClaim(ns, claim);
    if (!pvc.ok()) {
      if (pvc.error().code == ErrorCode::kNotFound) {
        continue;  // validation answers ClaimNotFound (retried)
      }
      co_return std::move(pvc).error();
    }
    Claim read;
    ClaimInfo& info = read.info;
    info.storageClass = stringAt(*pvc, {"spec", "storageClassName"});
    std::string volume = stringAt(*pvc, {"spec", "volumeName"});
    if (!volume.empty()) {
      auto pv = co_await cluster_.persistentVolume(volume);
      if (!pv.ok()) {
        if (pv.error().code == ErrorCode::kNotFound) {
          // Pre-bound to a volume not created yet: may appear, so retried, not refused.
          co_return Error::make(ErrorCode::kUnavailable, "ClaimNotBound",
                                fmt::format("persistentvolumeclaim \"{}\" is bound to volume "
                                            "\"{}\", which does not exist yet",
                                            claim, volume));
        }
        co_return std::move(pv).error();
      }
      info.driver = stringAt(*pv, {"spec", "csi", "driver"});
      if (info.storageClass.empty()) {
        info.storageClass = stringAt(*pv, {"spec", "storageClassName"});
      }
      read.pv = std::move(*pv);
    } else if (!info.storageClass.empty()) {
      std::string cls = info.storageClass;
      auto sc = co_await cluster_.storageClass(cls);
      if (!sc.ok()) {
        if (sc.error().code == ErrorCode::kNotFound) {
          co_return Error::make(ErrorCode::kUnavailable, "StorageClassNotFound",
                                fmt::format("storageclass \"{}\" of persistentvolumeclaim \"{}\" "
                                            "does not exist yet",
                                            cls, claim));
        }
        co_return std::move(sc).error();
      }
      info.driver = stringAt(*sc, {"parameters", "csi.storage.k8s.io/csi-driver-name"});
      if (info.driver.empty()) {
        info.driver = stringAt(*sc, {"provisioner"});
      }
    }
    read.pvc = std::move(*pvc);
    out.emplace(claim, std::move(read));
  }
  co_return out;
}

// One co_await per statement: GCC 12 miscompiles co_await inside a conditional expression.
asio::awaitable<Result<Json>> CciProvider::readSource(const std::string& kind,
                                                      const std::string& ns,
                                                      const std::string& name) {
  if (kind == "ConfigMap") {
    co_return co_await cluster_.configMap(ns, name);
  }
  co_return co_await cluster_.secret(ns, name);
}

asio::awaitable<Status> CciProvider::writeCopy(const std::string& kind, const Json& copy,
                                               bool exists) {
  auto s = co_await writeCopyOnce(kind, copy, exists);
  if (!s.ok() && s.error().code == ErrorCode::kInvalid) {
    // A backend refusing a copy is not the pod's fault: retried, never a permanent rejection.
    co_return Error::make(ErrorCode::kUnavailable, "CopyFailed",
                          fmt::format("the backend refused the copy {}: {}",
                                      stringAt(copy, {"metadata", "name"}), s.error().message));
  }
  co_return s;
}

asio::awaitable<Status> CciProvider::writeCopyOnce(const std::string& kind, const Json& copy,
                                                   bool exists) {
  const kube::ResourceRef& ref =
      kind == "ConfigMap"
          ? resources::kConfigMaps
          : (kind == "Secret" ? resources::kSecrets : resources::kPersistentVolumeClaims);
  std::string ns = options_.backendNamespace;
  std::string name = stringAt(copy, {"metadata", "name"});
  if (!exists) {
    Json body = copy;
    auto created = co_await backend_.create(ref, ns, std::move(body));
    if (created.ok()) {
      stats_.copyCreates.fetch_add(1);
      std::lock_guard lock(mu_);
      gone_.erase(copyId(kind, name));
      co_return okStatus();
    }
    if (created.error().code != ErrorCode::kAlreadyExists) {
      co_return std::move(created).error();
    }
    // Another create made it a moment ago (pods sharing a ConfigMap start together): a read
    // is cheaper than a write when it already holds the same content.
    auto current = co_await backend_.get(ref, ns, name);
    if (current.ok() && sameCopy(*current, copy)) {
      co_return okStatus();
    }
  }
  Json body = copy;
  auto updated = co_await backend_.update(ref, ns, name, std::move(body));
  if (updated.ok()) {
    stats_.copyUpdates.fetch_add(1);
    co_return okStatus();
  }
  if (updated.error().code != ErrorCode::kInvalid) {
    co_return std::move(updated).error();
  }
  // An immutable copy refuses updates (422): its source was deleted and created again, the only
  // way to change an immutable object, so the copy is too. Pods running keep what they mounted.
  // Read fresh: the informer may not show the copy yet.
  auto current = co_await backend_.get(ref, ns, name);
  if (!current.ok() || !boolAt(*current, {"immutable"})) {
    co_return std::move(updated).error();
  }
  kube::DeleteOptions o;
  o.preconditionUid = std::string(kube::objectUid(*current));
  auto removed = co_await backend_.remove(ref, ns, name, o);
  if (!removed.ok() && removed.error().code != ErrorCode::kNotFound) {
    co_return std::move(removed).error();
  }
  Json replacement = copy;
  auto created = co_await backend_.create(ref, ns, std::move(replacement));
  if (!created.ok()) {
    co_return std::move(created).error();
  }
  stats_.copyUpdates.fetch_add(1);
  co_return okStatus();
}

void CciProvider::forgetWaiting(const std::string& source, const std::string& podKey) {
  if (auto it = waiting_.find(source); it != waiting_.end()) {
    it->second.erase(podKey);
    if (it->second.empty()) {
      waiting_.erase(it);
    }
  }
}

asio::awaitable<Status> CciProvider::ensureCopy(const std::string& kind, const std::string& ns,
                                                const std::string& name, bool optional,
                                                const std::string& podKey) {
  const std::string source = fmt::format("{}/{}/{}", kind, ns, name);
  if (!optional) {
    // Registered before the read: an object created between the read and a later
    // registration would wake nobody.
    std::lock_guard lock(mu_);
    waiting_[source].insert(podKey);
  }
  auto object = co_await readSource(kind, ns, name);
  if (!object.ok()) {
    if (object.error().code != ErrorCode::kNotFound || optional) {
      std::lock_guard lock(mu_);
      forgetWaiting(source, podKey);
    }
    if (object.error().code != ErrorCode::kNotFound) {
      co_return std::move(object).error();
    }
    if (optional) {
      co_return okStatus();
    }
    // The kubelet's words for a mount that cannot be set up yet; the pod is retried and woken
    // when the object appears (clusterObjectChanged).
    co_return Error::make(
        ErrorCode::kNotFound, kCreateContainerConfigError,
        fmt::format("{} \"{}\" not found", kind == "ConfigMap" ? "configmap" : "secret", name));
  }
  {
    std::lock_guard lock(mu_);
    forgetWaiting(source, podKey);
  }
  auto copy = kind == "ConfigMap" ? toBackendConfigMap(*object, translate_)
                                  : toBackendSecret(*object, translate_);
  if (!copy.ok()) {
    co_return std::move(copy).error();
  }
  const std::string backendName = stringAt(*copy, {"metadata", "name"});
  auto existing = copiesOf(kind).store().get(options_.backendNamespace + "/" + backendName);
  {
    std::lock_guard lock(mu_);
    if (gone_.count(copyId(kind, backendName)) != 0) {
      existing = nullptr;  // deleted by the sweep; the informer has not shown it yet
    }
  }
  if (existing && sameContent(*existing, *object)) {
    co_return okStatus();
  }
  const bool exists = existing != nullptr;
  if (!exists) {
    co_return co_await writeCopy(kind, *copy, exists);
  }
  // An update takes part in the per-copy order of refreshes (refreshing_/dirty_), so that an
  // older read never lands after a newer one.
  const std::string id = copyId(kind, backendName);
  {
    std::lock_guard lock(mu_);
    if (refreshing_.count(id) != 0) {
      dirty_.insert(id);  // the refresh in flight writes again, with what is current then
      co_return okStatus();
    }
    refreshing_.insert(id);
  }
  auto s = co_await writeCopy(kind, *copy, exists);
  bool again = false;
  {
    std::lock_guard lock(mu_);
    again = dirty_.erase(id) != 0 && !stopped_;
    if (again) {
      ++running_;
    } else {
      refreshing_.erase(id);
    }
  }
  if (again) {
    asio::co_spawn(executor_, refreshCopy(kind, ns, name),
                   [this](const std::exception_ptr&) { --running_; });
  }
  co_return s;
}

asio::awaitable<Status> CciProvider::ensureClaim(const std::string& ns, const std::string& claim,
                                                 const Claim& read) {
  const Json& pvc = read.pvc;
  const std::string name = copyName(options_.nodeName, ns, claim);
  auto existing = claims_->store().get(options_.backendNamespace + "/" + name);
  {
    std::lock_guard lock(mu_);
    if (gone_.count(copyId("PersistentVolumeClaim", name)) != 0) {
      existing = nullptr;  // deleted by the sweep; the informer has not shown it yet
    }
  }
  if (existing) {
    if (stringAt(*existing, {"metadata", "annotations", kSourceUidAnnotation}) ==
        kube::objectUid(pvc)) {
      co_return okStatus();
    }
    // The claim was deleted and created again (another volume): the old copy must go first,
    // which the sweep does once no pod uses it. Never mount the old file system.
    co_return Error::make(
        ErrorCode::kUnavailable, "ClaimReplaced",
        fmt::format("persistentvolumeclaim \"{}\" was replaced; its old backend copy is still in "
                    "use",
                    claim));
  }
  if (!read.pv) {
    co_return Error::make(
        ErrorCode::kUnavailable, "ClaimNotBound",
        fmt::format("persistentvolumeclaim \"{}\" is not bound to a volume yet", claim));
  }
  const Json& pv = *read.pv;
  auto backendPv = toBackendPersistentVolume(pvc, pv, translate_);
  if (!backendPv.ok()) {
    co_return std::move(backendPv).error();
  }
  // Volumes are cluster-scoped: the cluster id tells ours from other clusters' on the backend.
  if (auto& meta = backendPv->as_object()["metadata"]; meta.is_object()) {
    auto& labels = meta.as_object()["labels"];
    if (!labels.is_object()) {
      labels = json::object{};
    }
    labels.as_object()[kClusterIdLabel] = options_.clusterID;
  }
  std::string none;
  Json wantedPv = *backendPv;
  auto createdPv =
      co_await backend_.create(resources::kPersistentVolumes, none, std::move(*backendPv));
  if (!createdPv.ok() && createdPv.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(createdPv).error();
  }
  if (!createdPv.ok()) {
    // Left by an earlier copy of this claim (the sweep deletes it later), or not ours at all.
    if (auto s = co_await reuseVolume(wantedPv); !s.ok()) {
      co_return s;
    }
  }
  auto backendPvc = toBackendPersistentVolumeClaim(pvc, pv, translate_);
  if (!backendPvc.ok()) {
    co_return std::move(backendPvc).error();
  }
  std::string bns = options_.backendNamespace;
  auto createdPvc =
      co_await backend_.create(resources::kPersistentVolumeClaims, bns, std::move(*backendPvc));
  if (!createdPvc.ok() && createdPvc.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(createdPvc).error();
  }
  stats_.copyCreates.fetch_add(1);
  co_return okStatus();
}

asio::awaitable<Status> CciProvider::reuseVolume(const Json& wanted) {
  std::string none;
  std::string pvName = stringAt(wanted, {"metadata", "name"});
  auto found = co_await backend_.get(resources::kPersistentVolumes, none, pvName);
  if (!found.ok()) {
    co_return std::move(found).error();  // deleted meanwhile: the retry makes it again
  }
  // A binding to the claim copy as it exists now (another create made the pair a moment ago)
  // is not stale: read that claim only when the volume is bound at all.
  std::string liveClaimUid;
  if (!stringAt(*found, {"spec", "claimRef", "uid"}).empty()) {
    std::string bns = options_.backendNamespace;
    std::string claim = stringAt(wanted, {"spec", "claimRef", "name"});
    auto live = co_await backend_.get(resources::kPersistentVolumeClaims, bns, claim);
    if (!live.ok() && live.error().code != ErrorCode::kNotFound) {
      co_return std::move(live).error();
    }
    liveClaimUid = live.ok() ? std::string(kube::objectUid(*live)) : "";
  }
  const auto check = checkExistingVolume(*found, wanted, options_.clusterID, liveClaimUid);
  switch (check.verdict) {
    case ExistingVolume::Verdict::kUse:
      co_return okStatus();
    case ExistingVolume::Verdict::kNotOurs:
      co_return Error::make(ErrorCode::kConflict, check.reason, check.message);
    case ExistingVolume::Verdict::kReplaced:
      co_return Error::make(ErrorCode::kUnavailable, check.reason, check.message);
    case ExistingVolume::Verdict::kRebind:
      break;
  }
  std::string body = rebindPatch(*found, wanted);
  auto patched = co_await backend_.patch(resources::kPersistentVolumes, none, pvName,
                                         kube::PatchType::kJsonMerge, std::move(body));
  if (!patched.ok()) {
    co_return std::move(patched).error();  // 409: the PV controller moved first; retried
  }
  spdlog::info("msg=\"backend volume handed to a new claim copy\" volume={} claim={}", pvName,
               stringAt(wanted, {"spec", "claimRef", "name"}));
  co_return okStatus();
}

asio::awaitable<Status> CciProvider::awaitPredecessor(const PodRef& ref,
                                                      const json::value& existing) {
  // The backend pod of an earlier pod of this name, gone from the cluster (names are unique):
  // it stops with its own grace period, and this one waits for it.
  auto src = sourceRefOf(existing);
  if (src && at(existing, {"metadata", "deletionTimestamp"}) == nullptr) {
    PodRef predecessor{ref.ns, ref.name, src->uid};
    if (auto s = co_await deletePod(predecessor, kOwnGracePeriod); !s.ok()) {
      co_return s;
    }
  }
  co_return Error::make(ErrorCode::kUnavailable, kPredecessorTerminating,
                        "waiting for the previous pod of this name to stop on the backend");
}

asio::awaitable<Status> CciProvider::createPod(Json pod) {
  const PodRef ref = podRefOf(pod);
  const std::string podKey = ref.key();
  const std::string name = backendName(ref.ns, ref.name);
  if (auto existing = backendPod(name)) {
    auto src = sourceRefOf(*existing);
    if (src && src->uid == ref.uid) {
      co_return okStatus();  // a repeated create (restart, retry)
    }
    if (src) {
      co_return co_await awaitPredecessor(ref, *existing);
    }
    co_return Error::make(ErrorCode::kAlreadyExists, "AlreadyExists",
                          fmt::format("backend pod {} is not one of burstlet's", name));
  }
  auto claims = co_await claimsOf(pod);
  if (!claims.ok()) {
    co_return std::move(claims).error();
  }
  const auto& claimMap = *claims;
  ClaimLookup lookup = [&claimMap](const std::string& claim) -> std::optional<ClaimInfo> {
    auto it = claimMap.find(claim);
    return it == claimMap.end() ? std::nullopt : std::optional<ClaimInfo>(it->second.info);
  };
  if (auto s = admit(pod, options_.validate, lookup); !s.ok()) {
    co_return s;
  }

  std::set<std::string> all;
  std::set<std::string> required;
  referencesOf(pod, &all, &required);
  // The copies this create needs stay out of the sweep's reach until it is done.
  std::vector<std::string> held;
  for (const auto& id : all) {
    const auto slash = id.find('/');
    held.push_back(
        copyId(id.substr(0, slash), copyName(options_.nodeName, ref.ns, id.substr(slash + 1))));
  }
  // And the volumes of its claims: the sweep must not delete one between ensureClaim's look at
  // it and the claim copy that binds it.
  for (const auto& [claim, read] : claimMap) {
    if (read.pv) {
      held.push_back(copyId("PersistentVolume", backendPersistentVolumeName(
                                                    options_.backendNamespace, options_.nodeName,
                                                    kube::objectName(*read.pv))));
    }
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& id : held) {
      ++inUse_[id];
      marked_.erase(id);
    }
  }
  auto release = [this, &held] {
    std::lock_guard lock(mu_);
    for (const auto& id : held) {
      if (--inUse_[id] <= 0) {
        inUse_.erase(id);
      }
    }
  };
  // A copy the sweep is deleting right now is made again once that delete is done.
  while (!stopped_) {
    bool busy = false;
    {
      std::lock_guard lock(mu_);
      for (const auto& id : held) {
        busy = busy || deleting_.count(id) != 0;
      }
    }
    if (!busy) {
      break;
    }
    co_await sleepFor(std::chrono::milliseconds(20));
  }
  for (const auto& id : all) {
    const auto slash = id.find('/');
    const std::string kind = id.substr(0, slash);
    const std::string source = id.substr(slash + 1);
    Status s = okStatus();
    if (kind == "PersistentVolumeClaim") {
      // Validation passed, so every claim the pod mounts was read.
      s = co_await ensureClaim(ref.ns, source, claimMap.at(source));
    } else {
      const bool optional = required.count(id) == 0;
      s = co_await ensureCopy(kind, ref.ns, source, optional, podKey);
    }
    if (!s.ok()) {
      release();
      co_return s;
    }
  }
  auto translated = toBackendPod(pod, translate_);
  if (!translated.ok()) {
    release();
    co_return std::move(translated).error();
  }
  std::string bns = options_.backendNamespace;
  auto created = co_await backend_.create(resources::kPods, bns, std::move(*translated));
  if (!created.ok()) {
    if (created.error().code != ErrorCode::kAlreadyExists) {
      release();
      co_return std::move(created).error();
    }
    // Created by an earlier attempt whose answer was lost: ours if it carries this uid.
    auto got = co_await backend_.get(resources::kPods, bns, name);
    release();
    if (!got.ok()) {
      co_return std::move(got).error();
    }
    auto src = sourceRefOf(*got);
    if (src && src->uid == ref.uid) {
      std::lock_guard lock(mu_);
      if (!pods_->store().get(bns + "/" + name)) {  // else the informer has it already
        recent_[name] =
            Recent{std::make_shared<const json::value>(std::move(*got)), clock_.steadyNow()};
      }
      co_return okStatus();
    }
    if (src) {
      co_return co_await awaitPredecessor(ref, *got);
    }
    co_return Error::make(ErrorCode::kAlreadyExists, "AlreadyExists",
                          fmt::format("backend pod {} is not one of burstlet's", name));
  }
  stats_.podCreates.fetch_add(1);
  {
    std::lock_guard lock(mu_);
    if (!pods_->store().get(bns + "/" + name)) {
      recent_[name] =
          Recent{std::make_shared<const json::value>(std::move(*created)), clock_.steadyNow()};
    }
  }
  release();
  co_return okStatus();
}

asio::awaitable<Status> CciProvider::updatePod(Json pod) {
  const PodRef ref = podRefOf(pod);
  const std::string name = backendName(ref.ns, ref.name);
  auto existing = backendPod(name);
  if (!existing) {
    co_return Error::make(ErrorCode::kNotFound, "NotFound",
                          fmt::format("backend pod {} not found", name));
  }
  // The backend pod of that name may belong to an earlier pod of that name (being replaced):
  // an update meant for this one never touches it, and every write carries the backend pod's
  // UID as a precondition.
  if (auto src = sourceRefOf(*existing); !src || (!ref.uid.empty() && src->uid != ref.uid)) {
    co_return Error::make(ErrorCode::kNotFound, "NotFound",
                          fmt::format("backend pod {} belongs to another pod", name));
  }
  const std::string backendUid(kube::objectUid(*existing));
  // The same normalization as at create, so its annotations are not seen as removed.
  if (auto n = normalizePod(pod); !n.ok()) {
    co_return std::move(n).error();
  }
  auto translated = toBackendPod(pod, translate_);
  if (!translated.ok()) {
    co_return std::move(translated).error();
  }
  // Labels and annotations: set the new ones, remove (null) the ones that went away; images
  // by container name (strategic merge keys containers by name).
  json::object metadata;
  const auto previous = sourceKeysOf(*existing);
  for (const char* key : {"labels", "annotations"}) {
    json::object patch;
    const auto* want = at(*translated, {"metadata", key});
    const auto* have = at(*existing, {"metadata", key});
    const bool isLabels = std::string_view(key) == "labels";
    if (have != nullptr && have->is_object()) {
      for (const auto& [k, v] : have->as_object()) {
        if (want != nullptr && want->is_object() && want->as_object().contains(k)) {
          continue;
        }
        // Only keys that came from the source go; the backend's own keys stay.
        const std::string name(k);
        if (previous && (isLabels ? previous->labels : previous->annotations).count(name) == 0) {
          continue;
        }
        patch[k] = nullptr;
      }
    }
    if (want != nullptr && want->is_object()) {
      for (const auto& [k, v] : want->as_object()) {
        patch[k] = v;
      }
    }
    metadata[key] = std::move(patch);
  }
  json::object spec;
  for (const char* list : {"initContainers", "containers"}) {
    if (const auto* cs = arrayAt(*translated, {"spec", list})) {
      json::array images;
      for (const auto& c : *cs) {
        images.push_back(
            json::object{{"name", stringAt(c, {"name"})}, {"image", stringAt(c, {"image"})}});
      }
      spec[list] = std::move(images);
    }
  }
  const json::value patch{{"metadata", std::move(metadata)}, {"spec", std::move(spec)}};
  std::string bns = options_.backendNamespace;
  // A call that only adds ephemeral containers changes nothing here: no write.
  if (patchChanges(*existing, patch)) {
    json::value guarded = patch;
    guarded.as_object()["metadata"].as_object()["uid"] = backendUid;
    std::string body = json::serialize(guarded);
    auto patched = co_await backend_.patch(resources::kPods, bns, name,
                                           kube::PatchType::kStrategicMerge, std::move(body));
    if (!patched.ok()) {
      co_return std::move(patched).error();
    }
    existing = rememberUpdate(name, std::move(*patched));
  }
  const json::array added =
      missingEphemeralContainers(*existing, toBackendEphemeralContainers(pod, translate_));
  if (added.empty()) {
    co_return okStatus();
  }
  // The subresource kubectl debug uses; strategic merge keys ephemeral containers by name, so
  // the ones there stay as they are.
  // (No UID here: the subresource keeps nothing but the ephemeral containers of a patch; the
  // backend pod was checked above to be this pod's.)
  std::string body =
      json::serialize(json::object{{"spec", json::object{{"ephemeralContainers", added}}}});
  std::string subresource = "ephemeralcontainers";
  auto patched =
      co_await backend_.patch(resources::kPods, bns, name, kube::PatchType::kStrategicMerge,
                              std::move(body), std::move(subresource));
  const std::string backend = fmt::format("{} (namespace {})", backend_.config().server, bns);
  if (!patched.ok()) {
    const Error& e = patched.error();
    if (e.code == ErrorCode::kNotFound) {
      // No such route, or no such pod any more: only the second is worth a retry.
      auto again = co_await backend_.get(resources::kPods, bns, name);
      if (!again.ok()) {
        co_return std::move(again).error();
      }
      co_return ephemeralContainersNotSupported(backend, ref.key(), added,
                                                "HTTP 404 on pods/ephemeralcontainers");
    }
    if (e.reason == "MethodNotAllowed") {
      co_return ephemeralContainersNotSupported(backend, ref.key(), added,
                                                "HTTP 405 on pods/ephemeralcontainers");
    }
    co_return std::move(patched).error();
  }
  if (!hasEphemeralContainers(*patched, added)) {
    co_return ephemeralContainersNotSupported(backend, ref.key(), added,
                                              "the request was accepted but added nothing");
  }
  rememberUpdate(name, std::move(*patched));
  co_return okStatus();
}

kube::ObjectPtr CciProvider::rememberUpdate(const std::string& name, Json pod) {
  auto updated = std::make_shared<const json::value>(std::move(pod));
  std::lock_guard lock(mu_);
  if (auto it = recent_.find(name); it != recent_.end()) {
    it->second.pod = updated;
  }
  return updated;
}

asio::awaitable<Status> CciProvider::deletePod(PodRef pod, int64_t gracePeriodSeconds) {
  const std::string name = backendName(pod.ns, pod.name);
  {
    std::lock_guard lock(mu_);
    const std::string key = pod.key();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      it->second.erase(key);
      it = it->second.empty() ? waiting_.erase(it) : std::next(it);
    }
  }
  std::string bns = options_.backendNamespace;
  kube::ObjectPtr existing = backendPod(name);
  if (!existing) {
    // The informer may not show a pod created a moment ago by an earlier process.
    auto got = co_await backend_.get(resources::kPods, bns, name);
    if (!got.ok()) {
      co_return got.error().code == ErrorCode::kNotFound ? okStatus() : Status(got.error());
    }
    existing = std::make_shared<const json::value>(std::move(*got));
  }
  auto src = sourceRefOf(*existing);
  if (!src || (!pod.uid.empty() && src->uid != pod.uid)) {
    co_return okStatus();  // the name belongs to another pod now
  }
  if (at(*existing, {"metadata", "deletionTimestamp"}) != nullptr) {
    // Already terminating: a second delete only costs a write, unless it shortens the grace.
    const auto* g = at(*existing, {"metadata", "deletionGracePeriodSeconds"});
    if (gracePeriodSeconds < 0 || g == nullptr || !g->is_int64() ||
        g->as_int64() <= gracePeriodSeconds) {
      co_return okStatus();
    }
  }
  kube::DeleteOptions o;
  if (gracePeriodSeconds >= 0) {
    o.gracePeriodSeconds = gracePeriodSeconds;  // else the backend pod's own
  }
  o.preconditionUid = std::string(kube::objectUid(*existing));
  auto r = co_await backend_.remove(resources::kPods, bns, name, o);
  if (!r.ok() && r.error().code == ErrorCode::kConflict) {
    // Our view was stale: the backend pod of that name was made again. Delete it if it is
    // still this source pod's.
    auto got = co_await backend_.get(resources::kPods, bns, name);
    if (!got.ok()) {
      co_return got.error().code == ErrorCode::kNotFound ? okStatus() : Status(got.error());
    }
    auto again = sourceRefOf(*got);
    if (!again || (!pod.uid.empty() && again->uid != pod.uid)) {
      co_return okStatus();
    }
    o.preconditionUid = std::string(kube::objectUid(*got));
    r = co_await backend_.remove(resources::kPods, bns, name, o);
  }
  if (!r.ok() && r.error().code != ErrorCode::kNotFound && r.error().code != ErrorCode::kConflict) {
    co_return std::move(r).error();
  }
  stats_.podDeletes.fetch_add(1);
  std::lock_guard lock(mu_);
  recent_.erase(name);
  co_return okStatus();
}

asio::awaitable<Result<Json>> CciProvider::getPod(PodRef pod) {
  const std::string name = backendName(pod.ns, pod.name);
  auto existing = backendPod(name);
  if (existing) {
    auto src = sourceRefOf(*existing);
    if (src && (pod.uid.empty() || src->uid == pod.uid)) {
      co_return toSourcePod(*existing, nullptr, translate_);
    }
  }
  co_return Error::make(ErrorCode::kNotFound, "NotFound",
                        fmt::format("pod {} not found on the backend", pod.key()));
}

asio::awaitable<Result<std::vector<Json>>> CciProvider::listPods() {
  std::vector<Json> out;
  std::set<std::string> seen;
  for (const auto& p : pods_->store().list()) {
    if (sourceRefOf(*p)) {
      seen.insert(std::string(kube::objectName(*p)));
      out.push_back(toSourcePod(*p, nullptr, translate_));
    }
  }
  std::lock_guard lock(mu_);
  for (const auto& [name, r] : recent_) {
    if (seen.count(name) == 0 && sourceRefOf(*r.pod)) {
      out.push_back(toSourcePod(*r.pod, nullptr, translate_));
    }
  }
  co_return out;
}

void CciProvider::clusterObjectChanged(std::string_view kind, const Json& object) {
  const std::string k(kind);
  const std::string ns(kube::objectNamespace(object));
  const std::string name(kube::objectName(object));
  std::set<std::string> wake;
  {
    std::lock_guard lock(mu_);
    if (auto it = waiting_.find(fmt::format("{}/{}/{}", k, ns, name)); it != waiting_.end()) {
      wake = std::move(it->second);
      waiting_.erase(it);
    }
  }
  std::function<void(const PodRef&)> cb;
  {
    std::lock_guard lock(mu_);
    cb = callback_;
  }
  if (cb) {
    for (const auto& key : wake) {
      const auto slash = key.find('/');
      cb(PodRef{key.substr(0, slash), key.substr(slash + 1), ""});
    }
  }
  if (k != "ConfigMap" && k != "Secret") {
    return;
  }
  const std::string copy = copyName(options_.nodeName, ns, name);
  const std::string id = copyId(k, copy);
  {
    std::lock_guard lock(mu_);
    if (stopped_) {
      return;
    }
    const bool copied = copiesOf(k).store().get(options_.backendNamespace + "/" + copy) != nullptr;
    if (!copied && inUse_.count(id) == 0) {
      return;  // no copy, none being made: nothing on the backend to follow
    }
    // One refresh per copy at a time, repeated while changes keep coming, so an older read
    // never overwrites a newer one.
    if (refreshing_.count(id) != 0) {
      dirty_.insert(id);
      return;
    }
    refreshing_.insert(id);
    ++running_;
  }
  asio::co_spawn(executor_, refreshCopy(k, ns, name),
                 [this](const std::exception_ptr&) { --running_; });
}

asio::awaitable<void> CciProvider::refreshCopy(std::string kind, std::string ns, std::string name) {
  const std::string id = copyId(kind, copyName(options_.nodeName, ns, name));
  while (true) {
    co_await refreshCopyOnce(kind, ns, name);
    std::lock_guard lock(mu_);
    if (dirty_.erase(id) == 0 || stopped_) {
      refreshing_.erase(id);
      dirty_.erase(id);
      break;
    }
  }
}

asio::awaitable<void> CciProvider::refreshCopyOnce(const std::string& kind, const std::string& ns,
                                                   const std::string& name) {
  auto object = co_await readSource(kind, ns, name);
  if (!object.ok()) {
    co_return;  // deleted: the copy stays while pods use it, as a kubelet keeps the files
  }
  auto existing = copiesOf(kind).store().get(options_.backendNamespace + "/" +
                                             copyName(options_.nodeName, ns, name));
  if (!existing || sameContent(*existing, *object)) {
    co_return;
  }
  auto copy = kind == "ConfigMap" ? toBackendConfigMap(*object, translate_)
                                  : toBackendSecret(*object, translate_);
  if (!copy.ok()) {
    co_return;
  }
  const bool exists = true;
  auto s = co_await writeCopy(kind, *copy, exists);
  if (!s.ok()) {
    spdlog::warn("msg=\"could not update backend copy\" kind={} source={}/{} error=\"{}\"", kind,
                 ns, name, s.error().toString());
    co_return;
  }
  spdlog::info("msg=\"updated backend copy\" kind={} source={}/{}", kind, ns, name);
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

asio::awaitable<void> CciProvider::sweepLoop() {
  while (!stopped_) {
    const auto next = clock_.steadyNow() + options_.sweepInterval;
    while (!stopped_ && clock_.steadyNow() < next) {
      co_await sleepFor(std::chrono::milliseconds(100));
    }
    if (stopped_) {
      break;
    }
    if (auto s = co_await sweep(); !s.ok()) {
      spdlog::warn("msg=\"backend sweep failed\" error=\"{}\"", s.error().toString());
    }
  }
}

asio::awaitable<Status> CciProvider::sweep() {
  std::set<std::string> referenced;
  for (const auto& p : pods_->store().list()) {
    referencesOf(*p, &referenced, nullptr);
  }
  {
    std::lock_guard lock(mu_);
    const auto now = clock_.steadyNow();
    for (auto it = recent_.begin(); it != recent_.end();) {
      if (now - it->second.at > kRecentTtl) {
        it = recent_.erase(it);
        continue;
      }
      referencesOf(*it->second.pod, &referenced, nullptr);
      ++it;
    }
  }
  std::string bns = options_.backendNamespace;
  std::set<std::string> liveClaims;
  for (const char* kind : {"ConfigMap", "Secret", "PersistentVolumeClaim"}) {
    const std::string k(kind);
    const kube::ResourceRef& ref =
        k == "ConfigMap"
            ? resources::kConfigMaps
            : (k == "Secret" ? resources::kSecrets : resources::kPersistentVolumeClaims);
    for (const auto& copy : copiesOf(k).store().list()) {
      if (stopped_) {
        co_return okStatus();
      }
      const std::string name(kube::objectName(*copy));
      const std::string id = copyId(k, name);
      bool remove = false;
      {
        // Decided and announced (deleting_) under one lock: a create that holds the copy from
        // now on waits until the delete is done, then makes the copy again.
        std::lock_guard lock(mu_);
        if (referenced.count(id) != 0 || inUse_.count(id) != 0 || gone_.count(id) != 0) {
          marked_.erase(id);
        } else if (marked_.count(id) != 0) {
          remove = true;
          deleting_.insert(id);
        } else {
          marked_.insert(id);
        }
      }
      if (!remove) {
        if (k == "PersistentVolumeClaim") {
          liveClaims.insert(name);
        }
        continue;
      }
      auto r = co_await backend_.remove(ref, bns, name);
      std::lock_guard lock(mu_);
      deleting_.erase(id);
      marked_.erase(id);
      if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
        co_return std::move(r).error();
      }
      gone_.insert(id);  // until the informer shows the delete
      stats_.copyDeletes.fetch_add(1);
    }
  }
  // Backend volumes whose claim is gone. Retain policy: the file system itself stays.
  kube::ListOptions lo;
  lo.labelSelector =
      ourSelector(options_) + fmt::format(",{}={}", kClusterIdLabel, options_.clusterID);
  std::string none;
  auto pvs = co_await backend_.list(resources::kPersistentVolumes, none, lo);
  if (!pvs.ok()) {
    co_return std::move(pvs).error();
  }
  if (const auto* items = arrayAt(*pvs, {"items"})) {
    for (const auto& pv : *items) {
      if (stopped_) {
        co_return okStatus();
      }
      const std::string claim = stringAt(pv, {"spec", "claimRef", "name"});
      std::string pvName(kube::objectName(pv));
      const std::string id = copyId("PersistentVolume", pvName);
      std::string claimKey = bns;
      claimKey.append("/").append(claim);
      bool remove = false;
      {
        // Two passes like copies: a volume is made before its claim, which the informer shows
        // later still. Decided and announced (deleting_) under one lock, as for copies: a create
        // holding the volume from now on waits for the delete, then makes the volume again.
        std::lock_guard lock(mu_);
        const bool used = liveClaims.count(claim) != 0 || claims_->store().get(claimKey) ||
                          inUse_.count(copyId("PersistentVolumeClaim", claim)) != 0 ||
                          inUse_.count(id) != 0;
        if (used) {
          marked_.erase(id);
        } else if (marked_.count(id) != 0) {
          remove = true;
          deleting_.insert(id);
        } else {
          marked_.insert(id);
        }
      }
      if (!remove) {
        continue;
      }
      // Last check against the backend itself, not a cache: the claim must really be gone.
      auto fresh = co_await backend_.get(resources::kPersistentVolumeClaims, bns, claim);
      const bool claimGone = !fresh.ok() && fresh.error().code == ErrorCode::kNotFound;
      Status removed = okStatus();
      if (claimGone) {
        auto r = co_await backend_.remove(resources::kPersistentVolumes, none, pvName);
        if (!r.ok() && r.error().code != ErrorCode::kNotFound) {
          removed = std::move(r).error();
        }
      }
      {
        std::lock_guard lock(mu_);
        marked_.erase(id);
        deleting_.erase(id);
      }
      if (!claimGone) {
        continue;
      }
      if (!removed.ok()) {
        co_return removed;
      }
      stats_.copyDeletes.fetch_add(1);
    }
  }
  co_return okStatus();
}

}  // namespace burstlet::provider::cci
