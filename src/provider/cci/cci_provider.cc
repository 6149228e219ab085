#include "provider/cci/cci_provider.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/json/serialize.hpp>

#include "common/base64.h"
#include "kube/server_version.h"
#include "provider/cci/api_fields.h"
#include "provider/cci/pod_update.h"

namespace burstlet::provider::cci {

namespace {

// How long ping() waits for the provider to get ready at start.
constexpr std::chrono::seconds kPingReadyWait{5};
// For this long after its Network turned Active, CCI may still refuse a pod for the lack of
// one (the check reads the Network through a cache): such a refusal is retried, not final.
constexpr std::chrono::seconds kNetworkSettle{10};

}  // namespace

CciProvider::CciProvider(asio::any_io_executor executor, kube::RestClient& backend,
                         ClusterObjects& cluster, kube::EventRecorder& events, CciOptions options,
                         const Clock& clock)
    : executor_(std::move(executor)),
      backend_(backend),
      options_(std::move(options)),
      clock_(clock),
      namespace_(backend, options_, clock) {
  copies_ = std::make_unique<Copies>(
      executor_, backend, cluster, options_, clock, stats_, [this] { return pods_->all(); },
      [this](const PodRef& ref) { notifyPod(ref); });
  pods_ = std::make_unique<BackendPods>(backend, *copies_, options_, clock, stats_,
                                        [this](const PodRef& ref) { notifyPod(ref); });
  quota_ = std::make_unique<BackendQuota>(backend, options_, clock);
  // The node's own pods, summed as the quotas count them.
  pods_->informer().addHandlers(kube::InformerHandlers{
      [this](const kube::ObjectPtr& p) { quota_->podChanged(nullptr, p); },
      [this](const kube::ObjectPtr& old, const kube::ObjectPtr& p) { quota_->podChanged(old, p); },
      [this](const kube::ObjectPtr& last, bool) { quota_->podChanged(last, nullptr); }});
  events_ =
      std::make_unique<EventMirror>(backend, events, options_, stats_,
                                    [this](const std::string& name) { return pods_->find(name); });
  podStats_ = std::make_unique<BackendStats>(backend, options_.backendNamespace);
  streams_ = std::make_unique<BackendStreams>(
      backend, options_.backendNamespace, [this](const PodRef& ref) -> Result<std::string> {
        if (auto pod = pods_->findSource(ref)) {
          return std::string(kube::objectName(*pod));
        }
        return Error::make(
            ErrorCode::kNotFound, "NotFound",
            fmt::format("pod {} does not run on virtual node {}", ref.key(), options_.nodeName));
      });
  if (options_.cci && options_.network) {
    network_ = std::make_unique<BackendNetwork>(backend, events, options_, clock);
    pods_->onBackendRefusal([this](Error refused) { return settleRefusal(std::move(refused)); });
  }
}

CciProvider::~CciProvider() = default;

std::vector<kube::Informer*> CciProvider::informers() {
  std::vector<kube::Informer*> out{&pods_->informer()};
  for (auto* inf : copies_->informers()) {
    out.push_back(inf);
  }
  out.push_back(&events_->informer());
  return out;
}

void CciProvider::onPodStatusChange(std::function<void(const PodRef&)> callback) {
  std::lock_guard lock(callbackMu_);
  callback_ = std::move(callback);
}

void CciProvider::onResourcesChange(std::function<void()> callback) {
  quota_->onChange(std::move(callback));
}

void CciProvider::notifyPod(const PodRef& ref) {
  std::function<void(const PodRef&)> cb;
  {
    std::lock_guard lock(callbackMu_);
    cb = callback_;
  }
  if (cb) {
    cb(ref);
  }
}

asio::awaitable<Status> CciProvider::run() {
  signals_.started.set();
  auto s = co_await runUntilStopped();
  signals_.stopped.set();
  co_return s;
}

asio::awaitable<Status> CciProvider::runUntilStopped() {
  // A standby reads only: the namespace (and the node's marker) is made once it leads, and its
  // informers list an absent namespace as empty until then.
  const bool standby = leading_ != nullptr && !leading_->isSet();
  if (!standby) {
    if (auto s = co_await namespace_.ensure(stop_); !s.ok()) {
      // Stopped before the backend was reachable: not a failure.
      co_return s.error().code == ErrorCode::kCancelled ? okStatus() : s;
    }
    if (stop_.isSet()) {
      co_return okStatus();
    }
  }
  co_await readBackendRelease();
  // Not one of informers(): quotas that cannot be read must not keep the provider from ready.
  spawn(quota_->run());
  // The event mirror writes events: no standby's to run.
  auto* mirror = &events_->informer();
  for (auto* inf : informers()) {
    if (inf != mirror) {
      spawn(inf->run());
    }
  }
  if (standby) {
    spawn(markWarm());
    spdlog::info("msg=\"standing by: backend caches kept warm\" namespace={}",
                 options_.backendNamespace);
    co_await waitAny(*leading_, stop_);
    if (!stop_.isSet()) {
      auto s = co_await namespace_.ensure(stop_);
      if (!s.ok() && s.error().code != ErrorCode::kCancelled) {
        std::lock_guard lock(callbackMu_);
        fatal_ = s.error();
        stop();
      }
    }
  }
  if (network_ && !stop_.isSet()) {
    spawn(runNetwork());
  }
  if (!stop_.isSet()) {
    spawn(mirror->run());
  }
  if (co_await awaitSynced()) {
    signals_.ready.set();
    readyOrStopping_.set();
    spdlog::info("msg=\"backend ready\" namespace={} pods={}", options_.backendNamespace,
                 pods_->informer().store().size());
    spawn(copies_->sweep());
  }
  co_await stop_.wait();
  for (auto* inf : informers()) {
    inf->stop();
  }
  quota_->stop();
  co_await gate_.close();
  co_await copies_->drain();
  std::lock_guard lock(callbackMu_);
  co_return fatal_ ? Status(*fatal_) : okStatus();
}

asio::awaitable<void> CciProvider::markWarm() {
  auto* mirror = &events_->informer();
  for (auto* inf : informers()) {
    if (inf != mirror) {
      co_await waitAny(inf->signals().ready, stop_);
    }
  }
  if (!stop_.isSet()) {
    warm_ = true;
  }
}

asio::awaitable<void> CciProvider::readBackendRelease() {
  std::optional<int> read;
  if (options_.backendVersion.empty()) {
    auto release = co_await kube::serverRelease(backend_);
    if (release.ok()) {
      read = kube::minorOf(*release);
      spdlog::info("msg=\"backend release\" release={}", *release);
    } else {
      spdlog::warn("msg=\"backend release not read\" error=\"{}\"", release.error().toString());
    }
  }
  // The setting was checked at start (validateBackend).
  auto minor = backendMinor(options_.backendVersion, read, options_.cci);
  const std::optional<int> checked = minor.ok() ? *minor : std::nullopt;
  if (checked) {
    spdlog::info("msg=\"pods checked against the backend's API\" kubernetes=1.{}", *checked);
  }
  pods_->setBackendMinor(checked);
}

asio::awaitable<void> CciProvider::runNetwork() {
  auto s = co_await network_->run(stop_);
  if (!s.ok()) {
    spdlog::error("msg=\"backend network refused\" error=\"{}\"", s.error().toString());
    {
      std::lock_guard lock(callbackMu_);
      fatal_ = s.error();
    }
    stop();
  }
}

Status CciProvider::networkReady() const {
  if (!network_) {
    return okStatus();
  }
  if (auto why = network_->notActive(); !why.empty()) {
    return Error::make(ErrorCode::kUnavailable, kBackendNetworkNotActive, std::move(why));
  }
  return okStatus();
}

std::string CciProvider::notReadyReason() const {
  if (signals_.stopped.isSet()) {
    return "the cci provider stopped";
  }
  if (leading_ != nullptr && !leading_->isSet()) {
    // A standby does not follow the Network: that is the leader's.
    return warm_ ? "" : "standing by, the backend's pods and copies not listed yet";
  }
  // Also after readiness: a Network lost since takes pods away as well.
  if (auto s = networkReady(); !s.ok()) {
    return s.error().message;
  }
  if (!ready()) {
    return fmt::format("backend namespace {} not set up or not listed yet",
                       options_.backendNamespace);
  }
  return "";
}

asio::awaitable<bool> CciProvider::awaitSynced() {
  for (auto* inf : informers()) {
    co_await waitAny(inf->signals().ready, stop_);
    if (stop_.isSet()) {
      co_return false;
    }
  }
  if (network_) {
    // No pod goes to the backend before its Network is Active.
    co_await waitAny(network_->firstActive(), stop_);
  }
  co_return !stop_.isSet();
}

void CciProvider::spawn(asio::awaitable<void> work) {
  if (!gate_.enter()) {
    return;
  }
  asio::co_spawn(executor_, std::move(work), [this](const std::exception_ptr& e) {
    if (e) {
      spdlog::error("msg=\"cci provider coroutine failed\"");
    }
    gate_.leave();
  });
}

void CciProvider::stop() {
  stop_.set();
  readyOrStopping_.set();
  copies_->stop();
}

asio::awaitable<Status> CciProvider::ping() {
  // The node registers while the backend namespace is being set up: give that a moment, so a
  // healthy start does not show the node NotReady (and taint it) for a whole status period.
  co_await waitFor(readyOrStopping_, clock_, kPingReadyWait);
  if (auto s = co_await namespace_.check(); !s.ok()) {
    co_return s;
  }
  if (auto s = networkReady(); !s.ok()) {
    co_return s;
  }
  if (!ready()) {
    co_return Error::make(ErrorCode::kUnavailable, "BackendNotReady",
                          "the backend namespace is not listed yet");
  }
  co_return okStatus();
}

void CciProvider::clusterObjectChanged(std::string_view kind, const boost::json::value& object) {
  copies_->sourceChanged(kind, object);
}

// The pod calls forward to BackendPods' coroutines (plain functions: no frame of their own).
asio::awaitable<Status> CciProvider::createPod(Json pod) {
  if (!network_) {
    return pods_->create(std::move(pod));
  }
  return createOnNetwork(std::move(pod));
}

asio::awaitable<Status> CciProvider::createOnNetwork(Json pod) {
  // The Network was Active once (the provider is ready), but may have been lost since.
  if (auto s = networkReady(); !s.ok()) {
    co_return s;
  }
  // A named argument: GCC 12 mishandles class-type temporaries in a co_await (kube/rest.h).
  co_return co_await pods_->create(pod);
}

Error CciProvider::settleRefusal(Error refused) const {
  // The backend's admission may not see a Network Active for a moment after it turned so: a pod
  // it refuses then is tried again. burstlet's own refusals never get here (BackendPods).
  const auto since = network_->activeSince();
  if (since && clock_.steadyNow() - *since < kNetworkSettle) {
    return Error::make(
        ErrorCode::kUnavailable, kBackendNetworkNotActive,
        "refused right after the backend Network turned Active, tried again: " + refused.message);
  }
  return refused;
}

asio::awaitable<Status> CciProvider::updatePod(Json pod) { return pods_->update(std::move(pod)); }

asio::awaitable<Status> CciProvider::deletePod(PodRef pod, int64_t gracePeriodSeconds) {
  return pods_->remove(std::move(pod), gracePeriodSeconds);
}

asio::awaitable<Result<Json>> CciProvider::getPod(PodRef pod) {
  auto got = co_await pods_->get(pod);
  if (!got.ok()) {
    co_return got;
  }
  // The pod's own containers are done: the injected ones (the network proxy) stop too, so that
  // the pod ends.
  if (auto backendPod = pods_->findSource(pod); backendPod && injectedShouldStop(*backendPod)) {
    const std::string ns = options_.backendNamespace;
    const std::string name(kube::objectName(*backendPod));
    const std::string body = boost::json::serialize(boost::json::object{
        {"metadata",
         boost::json::object{
             {"annotations", boost::json::object{{kInjectedStopAnnotation, "true"}}}}}});
    auto patched = co_await backend_.patch(kube::resources::kPods, ns, name,
                                           kube::PatchType::kJsonMerge, body);
    if (!patched.ok()) {
      // The sync fails and is tried again soon: the pod must not run (and bill) on.
      co_return Error::make(patched.error().code, patched.error().reason,
                            fmt::format("telling the injected containers of {} to stop: {}",
                                        pod.key(), patched.error().message));
    }
  }
  co_return got;
}

asio::awaitable<Result<std::vector<Json>>> CciProvider::listPods() { return pods_->list(); }

asio::awaitable<Result<std::unique_ptr<ByteStream>>> CciProvider::logs(PodRef pod,
                                                                       LogOptions options) {
  return streams_->logs(std::move(pod), std::move(options));
}

asio::awaitable<Result<std::unique_ptr<ExecSession>>> CciProvider::exec(PodRef pod,
                                                                        ExecOptions options) {
  return streams_->exec(std::move(pod), std::move(options));
}

asio::awaitable<Result<std::unique_ptr<ExecSession>>> CciProvider::attach(PodRef pod,
                                                                          ExecOptions options) {
  return streams_->attach(std::move(pod), std::move(options));
}

asio::awaitable<Result<std::unique_ptr<PortStream>>> CciProvider::portForward(PodRef pod,
                                                                              uint16_t port) {
  return streams_->portForward(std::move(pod), port);
}

asio::awaitable<Result<Json>> CciProvider::statsSummary() {
  auto pods = co_await pods_->list();
  if (!pods.ok()) {
    co_return pods.error();
  }
  co_return co_await podStats_->summary(*pods);
}

std::string CciProvider::nodeSecretName(std::string_view purpose) const {
  return cci::nodeSecretName(options_.nodeName, purpose);
}

asio::awaitable<Status> CciProvider::putNodeSecret(std::string purpose,
                                                   std::map<std::string, std::string> data) {
  const std::string name = nodeSecretName(purpose);
  boost::json::object encoded;
  for (const auto& [k, v] : data) {
    encoded[k] = base64Encode(v);
  }
  const Json secret = boost::json::object{
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata",
       boost::json::object{
           {"name", name},
           {"namespace", options_.backendNamespace},
           {"labels", boost::json::object{{kManagedByLabel, kManagedByValue},
                                          {kNodeSecretLabel, safeLabelValue(options_.nodeName)},
                                          {kClusterIdLabel, options_.clusterID}}}}},
      {"type", "Opaque"},
      {"data", std::move(encoded)}};
  const std::string ns = options_.backendNamespace;
  // Secrets take an update without a resourceVersion: the whole object is ours.
  auto updated = co_await backend_.update(kube::resources::kSecrets, ns, name, secret);
  if (updated.ok()) {
    co_return okStatus();
  }
  if (updated.error().code != ErrorCode::kNotFound) {
    co_return std::move(updated).error();
  }
  auto created = co_await backend_.create(kube::resources::kSecrets, ns, secret);
  if (created.ok()) {
    co_return okStatus();
  }
  if (created.error().code != ErrorCode::kAlreadyExists) {
    co_return std::move(created).error();
  }
  // Created meanwhile (another put): replace it once more.
  auto again = co_await backend_.update(kube::resources::kSecrets, ns, name, secret);
  if (!again.ok()) {
    co_return std::move(again).error();
  }
  co_return okStatus();
}

}  // namespace burstlet::provider::cci
