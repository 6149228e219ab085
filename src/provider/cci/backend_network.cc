#include "provider/cci/backend_network.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/translate.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::at;
using kube::stringAt;

namespace {

std::string secondsText(std::chrono::milliseconds d) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  return s >= 60 && s % 60 == 0 ? fmt::format("{}m", s / 60) : fmt::format("{}s", s);
}

// CCI's reason for a state: its reference spells the key "Message"; other sources "message".
std::string statusMessage(const json::value& network) {
  std::string m = stringAt(network, {"status", "message"});
  return m.empty() ? stringAt(network, {"status", "Message"}) : m;
}

}  // namespace

BackendNetwork::BackendNetwork(kube::RestClient& backend, kube::EventRecorder& events,
                               const CciOptions& options, const Clock& clock,
                               NetworkPolling polling)
    : backend_(backend),
      events_(events),
      settings_(options.network.value_or(NetworkSettings{})),
      namespace_(options.backendNamespace),
      clusterID_(options.clusterID),
      nodeName_(options.nodeName),
      clock_(clock),
      polling_(polling) {}

asio::awaitable<Status> BackendNetwork::run(const Latch& stop) {
  {
    std::lock_guard lock(mu_);
    waitingSince_ = clock_.steadyNow();
  }
  int slow = 0;
  while (!stop.isSet()) {
    if (auto s = co_await look(); !s.ok()) {
      co_return s;
    }
    std::chrono::milliseconds next = polling_.active;
    {
      std::lock_guard lock(mu_);
      if (active_) {
        slow = 0;
      } else {
        next = std::min(polling_.first * (1 << std::min(slow, 10)), polling_.slow);
        ++slow;
        if (waitingSince_ && !warned_) {
          // Wake when the wait reaches activeTimeout, to report it then.
          const auto due = *waitingSince_ + settings_.activeTimeout - clock_.steadyNow();
          const auto dueMs = std::chrono::duration_cast<std::chrono::milliseconds>(due);
          next = std::max(std::min(next, dueMs), std::chrono::milliseconds(1));
        }
      }
    }
    co_await sleepFor(clock_, next, &stop);
  }
  co_return okStatus();
}

asio::awaitable<Status> BackendNetwork::look() {
  std::string ns = namespace_;
  std::string name = settings_.name;
  auto got = co_await backend_.get(kNetworks, ns, name);
  if (got.ok()) {
    if (auto owned = checkOwned(*got); !owned.ok()) {
      co_return owned;
    }
    if (at(*got, {"metadata", "deletionTimestamp"}) != nullptr) {
      record(std::string(kNetworkTerminating), "it is being deleted");
    } else {
      std::string state = stringAt(*got, {"status", "state"});
      record(state.empty() ? "without a state" : state, statusMessage(*got));
    }
    co_return okStatus();
  }
  if (got.error().code != ErrorCode::kNotFound) {
    if (isRetryable(got.error().code)) {
      // The backend does not answer: what was last seen stands.
      spdlog::warn("msg=\"backend network not read\" network={} namespace={} error=\"{}\"",
                   settings_.name, namespace_, got.error().toString());
    } else {
      record("", "reading it was refused: " + got.error().toString());
    }
    co_return okStatus();
  }
  json::object labels{{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, clusterID_}};
  json::value body = networkObject(settings_, namespace_, labels);
  auto created = co_await backend_.create(kNetworks, ns, std::move(body));
  if (created.ok()) {
    spdlog::info("msg=\"created backend network\" network={} namespace={} subnet={} vpc={}",
                 settings_.name, namespace_, settings_.subnetID, settings_.vpcID);
    const std::string state = stringAt(*created, {"status", "state"});
    record(state.empty() ? "created, without a state yet" : state, statusMessage(*created));
  } else if (created.error().code != ErrorCode::kAlreadyExists) {
    // Refused (settings CCI does not accept, no permission) or not answered: shown on the node
    // and tried again; the operator may fix it without a restart.
    record("", "creating it failed: " + created.error().toString());
  }
  co_return okStatus();
}

void BackendNetwork::record(std::string state, std::string message) {
  const auto now = clock_.steadyNow();
  bool becameActive = false;
  bool lostActive = false;
  bool warn = false;
  {
    std::lock_guard lock(mu_);
    if (state == kNetworkActive) {
      becameActive = !active_;
      if (becameActive) {
        activeSince_ = now;
      }
      active_ = true;
      message_.clear();
      waitingSince_.reset();
      warned_ = false;
    } else {
      lostActive = active_;
      if (active_ || !waitingSince_) {
        waitingSince_ = now;
      }
      active_ = false;
      message_ = std::move(message);
      if (!warned_ &&
          (state == kNetworkFailed || now - *waitingSince_ >= settings_.activeTimeout)) {
        warned_ = true;
        warn = true;
      }
    }
    state_ = std::move(state);
  }
  if (becameActive) {
    firstActive_.set();
    const std::string text =
        fmt::format("backend Network {} in namespace {} is Active", settings_.name, namespace_);
    spdlog::info("msg=\"backend network active\" network={} namespace={}", settings_.name,
                 namespace_);
    event(kube::EventType::kNormal, kBackendNetworkActive, text);
    return;
  }
  const std::string why = notActive();
  if (lostActive) {
    spdlog::warn("msg=\"backend network no longer active\" why=\"{}\"", why);
  }
  if (warn) {
    spdlog::warn("msg=\"backend network not active\" why=\"{}\"", why);
    event(kube::EventType::kWarning, kBackendNetworkNotActive, why);
  }
}

std::string BackendNetwork::notActive() const {
  std::lock_guard lock(mu_);
  if (active_) {
    return "";
  }
  std::string out = fmt::format("backend Network {} in namespace {}", settings_.name, namespace_);
  if (state_.empty()) {
    out += message_.empty() ? " is not read yet" : " is not available: " + message_;
  } else {
    out += " is " + state_;
    if (!message_.empty()) {
      out += ": " + message_;
    }
  }
  if (waitingSince_ && clock_.steadyNow() - *waitingSince_ >= settings_.activeTimeout) {
    out += fmt::format(" (not Active after {})", secondsText(settings_.activeTimeout));
  }
  return out;
}

std::optional<Clock::SteadyTime> BackendNetwork::activeSince() const {
  std::lock_guard lock(mu_);
  return active_ ? std::optional<Clock::SteadyTime>(activeSince_) : std::nullopt;
}

Status BackendNetwork::checkOwned(const json::value& network) const {
  if (stringAt(network, {"metadata", "labels", kManagedByLabel}) == kManagedByValue &&
      stringAt(network, {"metadata", "labels", kClusterIdLabel}) == clusterID_) {
    return okStatus();
  }
  return Error::make(
      ErrorCode::kForbidden, kNetworkNotOwned,
      fmt::format("backend Network {} in namespace {} exists but is not labelled {}={} and {}={}: "
                  "burstlet only uses a Network it created",
                  settings_.name, namespace_, kManagedByLabel, kManagedByValue, kClusterIdLabel,
                  clusterID_));
}

void BackendNetwork::event(kube::EventType type, const std::string& reason,
                           const std::string& message) {
  // Like the kubelet's own node events: the node's name stands for its uid.
  kube::ObjectReference node{"v1", "Node", "", nodeName_, nodeName_, "", ""};
  events_.record(node, type, reason, message);
}

}  // namespace burstlet::provider::cci
