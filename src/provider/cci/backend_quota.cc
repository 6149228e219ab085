#include "provider/cci/backend_quota.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

namespace burstlet::provider::cci {

namespace {

// Answers that say the quotas cannot be read by us, rather than that the backend is away: the
// informer would retry them forever, logging each time.
bool unreadable(ErrorCode code) {
  return code == ErrorCode::kForbidden || code == ErrorCode::kUnauthorized ||
         code == ErrorCode::kNotFound;
}

// Lines of left-out quotas kept to log each once; a backend that keeps making new ones starts
// the set over rather than growing it.
constexpr size_t kReportedLimit = 256;

std::string resourcesText(const NodeCapacity& c) {
  return "cpu=" + c.cpu + " memory=" + c.memory + " pods=" + c.pods +
         " ephemeral-storage=" + c.ephemeralStorage;
}

}  // namespace

BackendQuota::BackendQuota(kube::RestClient& backend, const CciOptions& options, const Clock& clock)
    : backend_(backend),
      namespace_(options.backendNamespace),
      cap_(options.capacity),
      clock_(clock),
      resources_{options.capacity, options.capacity} {
  kube::InformerOptions io;
  io.resource = kResourceQuotas;
  io.ns = namespace_;
  io.clock = &clock;
  informer_ = std::make_unique<kube::Informer>(backend, io);
  informer_->addHandlers(kube::InformerHandlers{
      [this](const kube::ObjectPtr&) { recompute(); },
      [this](const kube::ObjectPtr&, const kube::ObjectPtr&) { recompute(); },
      [this](const kube::ObjectPtr&, bool) { recompute(); }});
}

BackendQuota::~BackendQuota() = default;

boost::asio::awaitable<void> BackendQuota::run() {
  bool refused = false;
  while (!stop_.isSet()) {
    // One plain list first: a refusal is then logged once here instead of at every retry of the
    // informer. Other failures are the informer's to retry.
    const std::string ns = namespace_;
    auto listed = co_await backend_.list(kResourceQuotas, ns);
    if (listed.ok() || !unreadable(listed.error().code)) {
      break;
    }
    if (!refused) {
      spdlog::warn(
          "msg=\"backend quotas cannot be read, the node advertises its configured capacity\" "
          "namespace={} {} retry={}m error=\"{}\"",
          namespace_, resourcesText(cap_), kUnreadableRetry.count(), listed.error().toString());
      refused = true;
    }
    co_await sleepFor(clock_, kUnreadableRetry, &stop_);
  }
  if (stop_.isSet()) {
    co_return;
  }
  if (refused) {
    spdlog::info("msg=\"backend quotas readable now\" namespace={}", namespace_);
  }
  co_await informer_->run();
}

void BackendQuota::stop() {
  stop_.set();
  informer_->stop();
}

void BackendQuota::podChanged(const kube::ObjectPtr& old, const kube::ObjectPtr& current) {
  PodUsage before = old ? podUsage(*old) : PodUsage{};
  PodUsage after = current ? podUsage(*current) : PodUsage{};
  if (before == after) {
    return;  // most updates: status only
  }
  {
    std::lock_guard lock(mu_);
    own_ -= before;
    own_ += after;
  }
  if (informer_->store().size() > 0) {
    recompute();  // without a quota own pods change nothing
  }
}

NodeResources BackendQuota::resources() const {
  std::lock_guard lock(mu_);
  return resources_;
}

void BackendQuota::onChange(std::function<void()> callback) {
  std::lock_guard lock(callbackMu_);
  callback_ = std::move(callback);
}

void BackendQuota::recompute() {
  std::vector<boost::json::value> quotas;
  for (const auto& q : informer_->store().list()) {
    quotas.push_back(*q);
  }
  std::vector<std::string> ignored;
  bool changed = false;
  bool capacityChanged = false;
  NodeResources now;
  {
    std::lock_guard lock(mu_);
    now = quotaResources(cap_, quotas, own_, &ignored);
    changed = now != resources_;
    capacityChanged = now.capacity != resources_.capacity;
    resources_ = now;
    if (reported_.size() > kReportedLimit) {
      reported_.clear();
    }
    std::erase_if(ignored,
                  [this](const std::string& line) { return !reported_.insert(line).second; });
  }
  for (const auto& line : ignored) {
    spdlog::warn("msg=\"backend quota left out of the node's capacity\" namespace={} why={:?}",
                 namespace_, line);
  }
  if (!changed) {
    return;
  }
  // Allocatable moves with every pod of another node while a quota is there: not news.
  spdlog::log(capacityChanged ? spdlog::level::info : spdlog::level::debug,
              "msg=\"node resources from the backend quotas\" namespace={} quotas={} "
              "capacity=\"{}\" allocatable=\"{}\"",
              namespace_, quotas.size(), resourcesText(now.capacity),
              resourcesText(now.allocatable));
  std::lock_guard lock(callbackMu_);
  if (callback_) {
    callback_();
  }
}

}  // namespace burstlet::provider::cci
