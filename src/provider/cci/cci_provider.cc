#include "provider/cci/cci_provider.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>

namespace burstlet::provider::cci {

namespace {

// How long ping() waits for the provider to get ready at start.
constexpr std::chrono::seconds kPingReadyWait{5};

}  // namespace

CciProvider::CciProvider(asio::any_io_executor executor, kube::RestClient& backend,
                         ClusterObjects& cluster, kube::EventRecorder& events, CciOptions options,
                         const Clock& clock)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      clock_(clock),
      namespace_(backend, options_, clock) {
  copies_ = std::make_unique<Copies>(
      executor_, backend, cluster, options_, clock, stats_, [this] { return pods_->all(); },
      [this](const PodRef& ref) { notifyPod(ref); });
  pods_ = std::make_unique<BackendPods>(backend, *copies_, options_, clock, stats_,
                                        [this](const PodRef& ref) { notifyPod(ref); });
  events_ =
      std::make_unique<EventMirror>(backend, events, options_, stats_,
                                    [this](const std::string& name) { return pods_->find(name); });
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
  if (auto s = co_await namespace_.ensure(stop_); !s.ok()) {
    // Stopped before the backend was reachable: not a failure.
    co_return s.error().code == ErrorCode::kCancelled ? okStatus() : s;
  }
  if (stop_.isSet()) {
    co_return okStatus();
  }
  for (auto* inf : informers()) {
    spawn(inf->run());
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
  co_await gate_.close();
  co_await copies_->drain();
  co_return okStatus();
}

asio::awaitable<bool> CciProvider::awaitSynced() {
  for (auto* inf : informers()) {
    co_await waitAny(inf->signals().ready, stop_);
    if (stop_.isSet()) {
      co_return false;
    }
  }
  co_return true;
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
asio::awaitable<Status> CciProvider::createPod(Json pod) { return pods_->create(std::move(pod)); }

asio::awaitable<Status> CciProvider::updatePod(Json pod) { return pods_->update(std::move(pod)); }

asio::awaitable<Status> CciProvider::deletePod(PodRef pod, int64_t gracePeriodSeconds) {
  return pods_->remove(std::move(pod), gracePeriodSeconds);
}

asio::awaitable<Result<Json>> CciProvider::getPod(PodRef pod) { return pods_->get(std::move(pod)); }

asio::awaitable<Result<std::vector<Json>>> CciProvider::listPods() { return pods_->list(); }

}  // namespace burstlet::provider::cci
