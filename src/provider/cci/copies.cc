#include "provider/cci/copies.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/references.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;
using kube::at;
using kube::boolAt;
using kube::stringAt;

namespace {

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

Copies::Copies(asio::any_io_executor executor, kube::RestClient& backend, ClusterObjects& cluster,
               const CciOptions& options, const Clock& clock, CciStats& stats,
               CopySweep::BackendPodList pods, WakePod wake)
    : executor_(std::move(executor)),
      backend_(backend),
      cluster_(cluster),
      backendNamespace_(options.backendNamespace),
      nodeName_(options.nodeName),
      translate_(translateOptionsOf(options)),
      stats_(stats),
      wake_(std::move(wake)),
      configMaps_(ownInformer(backend, options, resources::kConfigMaps)),
      secrets_(ownInformer(backend, options, resources::kSecrets)),
      claimCopies_(ownInformer(backend, options, resources::kPersistentVolumeClaims)),
      claims_(backend, cluster, claimCopies_->store(), ledger_, options, stats),
      sweep_(backend, ledger_,
             CopyStores{configMaps_->store(), secrets_->store(), claimCopies_->store()},
             std::move(pods), options, clock, stats) {
  // A copy the sweep deleted counts as absent until its informer shows the delete (ledger).
  for (const auto& [informer, kind] :
       {std::pair{configMaps_.get(), "ConfigMap"}, std::pair{secrets_.get(), "Secret"},
        std::pair{claimCopies_.get(), "PersistentVolumeClaim"}}) {
    const std::string k = kind;
    informer->addHandlers(
        kube::InformerHandlers{nullptr, nullptr, [this, k](const kube::ObjectPtr& last, bool) {
                                 ledger_.present(copyId(k, kube::objectName(*last)));
                               }});
  }
}

Copies::~Copies() = default;

std::vector<kube::Informer*> Copies::informers() {
  return {configMaps_.get(), secrets_.get(), claimCopies_.get()};
}

asio::awaitable<Result<PodClaims>> Copies::readClaims(const json::value& pod) {
  co_return co_await claims_.read(pod);
}

std::vector<std::string> Copies::heldBy(const PodRef& ref, const std::set<std::string>& all,
                                        const PodClaims& claims) const {
  std::vector<std::string> held;
  for (const auto& id : all) {
    const auto slash = id.find('/');
    held.push_back(copyId(id.substr(0, slash), copyName(nodeName_, ref.ns, id.substr(slash + 1))));
  }
  // And the volumes of its claims: the sweep must not delete one between ClaimCopies::ensure's
  // look at it and the claim copy that binds it.
  for (const auto& [claim, read] : claims) {
    if (read.pv) {
      held.push_back(copyId(
          "PersistentVolume",
          backendPersistentVolumeName(backendNamespace_, nodeName_, kube::objectName(*read.pv))));
    }
  }
  return held;
}

asio::awaitable<Result<CopyHold>> Copies::ensure(const json::value& pod, const PodClaims& claims) {
  const PodRef ref = podRefOf(pod);
  const std::string podKey = ref.key();
  std::set<std::string> all;
  std::set<std::string> required;
  referencesOf(pod, &all, &required);
  // The copies this create needs stay out of the sweep's reach until the hold goes.
  const std::vector<std::string> held = heldBy(ref, all, claims);
  ledger_.hold(held);
  CopyHold hold([this, held] { ledger_.release(held); });
  // A copy the sweep is deleting right now is made again once that delete is done.
  co_await ledger_.awaitDeletes(held, stop_);
  for (const auto& id : all) {
    const auto slash = id.find('/');
    const std::string kind = id.substr(0, slash);
    const std::string source = id.substr(slash + 1);
    Status s = okStatus();
    if (kind == "PersistentVolumeClaim") {
      // Validation passed, so every claim the pod mounts was read.
      s = co_await claims_.ensure(ref.ns, source, claims.at(source));
    } else {
      const bool optional = required.count(id) == 0;
      s = co_await ensureCopy(kind, ref.ns, source, optional, podKey);
    }
    if (!s.ok()) {
      co_return std::move(s).error();
    }
  }
  co_return std::move(hold);
}

void Copies::forget(const std::string& podKey) { waiters_.removePod(podKey); }

asio::awaitable<Result<std::optional<json::value>>> Copies::readRequired(
    const std::string& kind, const std::string& ns, const std::string& name, bool optional,
    const std::string& podKey) {
  const std::string source = SourceWaiters::sourceId(kind, ns, name);
  if (!optional) {
    // Registered before the read: an object created between the read and a later
    // registration would wake nobody.
    waiters_.add(source, podKey);
  }
  auto object = co_await readSource(kind, ns, name);
  if (object.ok() || object.error().code != ErrorCode::kNotFound || optional) {
    waiters_.remove(source, podKey);
  }
  if (object.ok()) {
    co_return std::optional<json::value>(std::move(*object));
  }
  if (object.error().code != ErrorCode::kNotFound) {
    co_return std::move(object).error();
  }
  if (optional) {
    co_return std::optional<json::value>();
  }
  // The kubelet's words for a mount that cannot be set up yet; the pod is retried and woken
  // when the object appears (sourceChanged).
  co_return Error::make(
      ErrorCode::kNotFound, kCreateContainerConfigError,
      fmt::format("{} \"{}\" not found", kind == "ConfigMap" ? "configmap" : "secret", name));
}

asio::awaitable<Status> Copies::ensureCopy(const std::string& kind, const std::string& ns,
                                           const std::string& name, bool optional,
                                           const std::string& podKey) {
  auto object = co_await readRequired(kind, ns, name, optional, podKey);
  if (!object.ok()) {
    co_return std::move(object).error();
  }
  if (!*object) {
    co_return okStatus();  // optional and absent
  }
  auto copy = translate(kind, **object);
  if (!copy.ok()) {
    co_return std::move(copy).error();
  }
  const std::string backendName = stringAt(*copy, {"metadata", "name"});
  auto existing = existingCopy(kind, backendName);
  if (ledger_.gone(copyId(kind, backendName))) {
    existing = nullptr;  // deleted by the sweep; the informer has not shown it yet
  }
  if (existing && sameContent(*existing, **object)) {
    co_return okStatus();
  }
  if (!existing) {
    const bool exists = false;
    co_return co_await writeCopy(kind, *copy, exists);
  }
  co_return co_await updateCopy(copyId(kind, backendName), kind, ns, name, *copy);
}

asio::awaitable<Status> Copies::updateCopy(const std::string& id, const std::string& kind,
                                           const std::string& ns, const std::string& name,
                                           const json::value& copy) {
  // An update takes part in the per-copy order of refreshes (refreshing_/dirty_), so that an
  // older read never lands after a newer one.
  {
    std::lock_guard lock(mu_);
    if (refreshing_.count(id) != 0) {
      dirty_.insert(id);  // the refresh in flight writes again, with what is current then
      co_return okStatus();
    }
    refreshing_.insert(id);
  }
  const bool exists = true;
  auto s = co_await writeCopy(kind, copy, exists);
  bool again = false;
  {
    std::lock_guard lock(mu_);
    again = dirty_.erase(id) != 0 && !stop_.isSet();
    if (!again) {
      refreshing_.erase(id);
    }
  }
  if (again) {
    spawnRefresh(id, kind, ns, name);
  }
  co_return s;
}

// One co_await per statement: GCC 12 miscompiles co_await inside a conditional expression.
asio::awaitable<Result<json::value>> Copies::readSource(const std::string& kind,
                                                        const std::string& ns,
                                                        const std::string& name) {
  if (kind == "ConfigMap") {
    co_return co_await cluster_.configMap(ns, name);
  }
  co_return co_await cluster_.secret(ns, name);
}

Result<json::value> Copies::translate(const std::string& kind, const json::value& source) const {
  return kind == "ConfigMap" ? toBackendConfigMap(source, translate_)
                             : toBackendSecret(source, translate_);
}

kube::ObjectPtr Copies::existingCopy(const std::string& kind,
                                     const std::string& backendName) const {
  const auto& informer = kind == "ConfigMap" ? *configMaps_ : *secrets_;
  return informer.store().get(backendNamespace_ + "/" + backendName);
}

asio::awaitable<Status> Copies::writeCopy(const std::string& kind, const json::value& copy,
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

asio::awaitable<Status> Copies::writeCopyOnce(const std::string& kind, const json::value& copy,
                                              bool exists) {
  const kube::ResourceRef& ref = copyResource(kind);
  std::string ns = backendNamespace_;
  std::string name = stringAt(copy, {"metadata", "name"});
  if (!exists) {
    json::value body = copy;
    auto created = co_await backend_.create(ref, ns, std::move(body));
    if (created.ok()) {
      stats_.copyCreates.fetch_add(1);
      ledger_.present(copyId(kind, name));
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
  json::value body = copy;
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
  if (auto s = co_await replaceCopy(kind, *current, copy); !s.ok()) {
    co_return s;
  }
  stats_.copyUpdates.fetch_add(1);
  co_return okStatus();
}

asio::awaitable<Status> Copies::replaceCopy(const std::string& kind, const json::value& current,
                                            const json::value& copy) {
  const kube::ResourceRef& ref = copyResource(kind);
  std::string ns = backendNamespace_;
  std::string name = stringAt(copy, {"metadata", "name"});
  kube::DeleteOptions o;
  o.preconditionUid = std::string(kube::objectUid(current));
  auto removed = co_await backend_.remove(ref, ns, name, o);
  if (!removed.ok() && removed.error().code != ErrorCode::kNotFound) {
    co_return std::move(removed).error();
  }
  json::value replacement = copy;
  auto created = co_await backend_.create(ref, ns, std::move(replacement));
  if (!created.ok()) {
    co_return std::move(created).error();
  }
  co_return okStatus();
}

void Copies::sourceChanged(std::string_view kind, const json::value& object) {
  const std::string k(kind);
  const std::string ns(kube::objectNamespace(object));
  const std::string name(kube::objectName(object));
  for (const auto& key : waiters_.take(SourceWaiters::sourceId(k, ns, name))) {
    const auto slash = key.find('/');
    wake_(PodRef{key.substr(0, slash), key.substr(slash + 1), ""});
  }
  if ((k != "ConfigMap" && k != "Secret") || stop_.isSet()) {
    return;
  }
  const std::string copy = copyName(nodeName_, ns, name);
  const std::string id = copyId(k, copy);
  if (!existingCopy(k, copy) && !ledger_.held(id)) {
    return;  // no copy, none being made: nothing on the backend to follow
  }
  {
    // One refresh per copy at a time, repeated while changes keep coming, so an older read
    // never overwrites a newer one.
    std::lock_guard lock(mu_);
    if (refreshing_.count(id) != 0) {
      dirty_.insert(id);
      return;
    }
    refreshing_.insert(id);
  }
  spawnRefresh(id, k, ns, name);
}

void Copies::spawnRefresh(const std::string& id, const std::string& kind, const std::string& ns,
                          const std::string& name) {
  if (!refreshes_.enter()) {
    std::lock_guard lock(mu_);
    refreshing_.erase(id);
    dirty_.erase(id);
    return;
  }
  asio::co_spawn(executor_, refreshCopy(id, kind, ns, name),
                 [this](const std::exception_ptr&) { refreshes_.leave(); });
}

asio::awaitable<void> Copies::refreshCopy(std::string id, std::string kind, std::string ns,
                                          std::string name) {
  while (true) {
    co_await refreshCopyOnce(kind, ns, name);
    std::lock_guard lock(mu_);
    if (dirty_.erase(id) == 0 || stop_.isSet()) {
      refreshing_.erase(id);
      dirty_.erase(id);
      break;
    }
  }
}

asio::awaitable<void> Copies::refreshCopyOnce(const std::string& kind, const std::string& ns,
                                              const std::string& name) {
  auto object = co_await readSource(kind, ns, name);
  if (!object.ok()) {
    co_return;  // deleted: the copy stays while pods use it, as a kubelet keeps the files
  }
  auto existing = existingCopy(kind, copyName(nodeName_, ns, name));
  if (!existing || sameContent(*existing, *object)) {
    co_return;
  }
  auto copy = translate(kind, *object);
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

asio::awaitable<void> Copies::sweep() { co_await sweep_.run(stop_); }

void Copies::stop() { stop_.set(); }

asio::awaitable<void> Copies::drain() { co_await refreshes_.close(); }

}  // namespace burstlet::provider::cci
