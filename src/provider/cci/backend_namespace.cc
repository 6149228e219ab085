#include "provider/cci/backend_namespace.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "kube/json_path.h"
#include "provider/cci/cci_errors.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
namespace resources = kube::resources;
using kube::at;
using kube::stringAt;

namespace {

// How often a terminating namespace is looked at, and for how many looks (about 5 minutes).
constexpr std::chrono::milliseconds kTerminatingPoll{500};
constexpr int kTerminatingPolls = 600;
// How many times CCI may say a name exists that this account cannot see before it counts as
// another account's.
constexpr int kNameTakenTries = 3;
// How many refusals of the node's marker (not transient: forbidden, invalid) are tried again
// before the node goes on without one. A refusal can be passing: a namespace that began to
// terminate refuses new objects (403) until it is gone and made again.
constexpr int kMarkerRefusals = 3;

// The wait before attempt `attempt` + 1 when the backend does not answer: 200 ms .. 10 s.
std::chrono::milliseconds backoff(int attempt) {
  return std::min(std::chrono::milliseconds(200) * (1 << std::min(attempt, 6)),
                  std::chrono::milliseconds(10'000));
}

}  // namespace

BackendNamespace::BackendNamespace(kube::RestClient& backend, const CciOptions& options,
                                   const Clock& clock)
    : backend_(backend),
      name_(options.backendNamespace),
      clusterID_(options.clusterID),
      nodeName_(options.nodeName),
      cci_(options.cci),
      flavor_(options.flavor),
      clock_(clock) {}

asio::awaitable<Status> BackendNamespace::ensure(const Latch& stop) {
  // The backend may not answer yet (it starts with us, or the network is down): keep trying,
  // except when it says the namespace is not ours.
  int markerRefusals = 0;
  for (int attempt = 0; !stop.isSet(); ++attempt) {
    auto s = co_await ensureOnce(stop);
    if (!s.ok()) {
      const ErrorCode code = s.error().code;
      if (code == ErrorCode::kForbidden || code == ErrorCode::kInvalid ||
          code == ErrorCode::kUnauthorized) {
        co_return s;
      }
    } else {
      s = co_await ensureMarker();
      if (s.ok()) {
        co_return s;
      }
      const ErrorCode code = s.error().code;
      if ((code == ErrorCode::kForbidden || code == ErrorCode::kInvalid ||
           code == ErrorCode::kUnauthorized) &&
          ++markerRefusals >= kMarkerRefusals) {
        spdlog::warn(
            "msg=\"node marker not written: another node's burstlet cleanup will not see this "
            "node while it runs no pod\" namespace={} marker={} error=\"{}\"",
            name_, nodeMarkerName(nodeName_), s.error().toString());
        co_return okStatus();
      }
    }
    spdlog::warn("msg=\"backend namespace not ready, retrying\" error=\"{}\"",
                 s.error().toString());
    co_await sleepFor(clock_, backoff(attempt), &stop);
  }
  co_return Error::make(ErrorCode::kCancelled, "Stopped",
                        "stopped before the backend namespace was ready");
}

asio::awaitable<Status> BackendNamespace::ensureOnce(const Latch& stop) {
  std::string none;
  int nameTaken = 0;
  for (int attempt = 0;; ++attempt) {
    std::string ns = name_;
    auto got = co_await backend_.get(resources::kNamespaces, none, ns);
    if (got.ok()) {
      if (auto owned = checkOwned(*got); !owned.ok()) {
        co_return owned;
      }
      const bool terminating = at(*got, {"metadata", "deletionTimestamp"}) != nullptr;
      // CCI keeps a new namespace Pending for a while: no pod may go there until it is Active.
      const bool pending = stringAt(*got, {"status", "phase"}) == "Pending";
      if (!terminating && !pending) {
        co_return okStatus();
      }
      // Terminating: `burstlet cleanup` (or an operator) is deleting it; wait until it is gone.
      bool slept = false;
      if (attempt <= kTerminatingPolls) {
        slept = co_await sleepFor(clock_, kTerminatingPoll, &stop);
      }
      if (!slept) {
        co_return terminating
            ? Error::make(ErrorCode::kUnavailable, "NamespaceTerminating",
                          fmt::format("backend namespace {} is being deleted", name_))
            : Error::make(ErrorCode::kUnavailable, "NamespacePending",
                          fmt::format("backend namespace {} is still Pending", name_));
      }
      continue;
    }
    // Forbidden to read: CCI hides another account's namespace so (its names are unique across
    // accounts). The create says which it is: a conflict (the name is taken) or forbidden too.
    if (got.error().code != ErrorCode::kNotFound && got.error().code != ErrorCode::kForbidden) {
      co_return std::move(got).error();
    }
    json::value body = object();
    auto created = co_await backend_.create(resources::kNamespaces, none, std::move(body));
    if (created.ok()) {
      spdlog::info("msg=\"created backend namespace\" namespace={}", name_);
      if (stringAt(*created, {"status", "phase"}) != "Pending") {
        co_return okStatus();
      }
      continue;  // wait until it is Active
    }
    if (created.error().code != ErrorCode::kAlreadyExists) {
      co_return std::move(created).error();
    }
    // CCI's namespace names are unique across accounts: a name CCI says exists that this
    // account still cannot read after a few tries a moment apart (so not a create of our own
    // whose answer was lost, or a read that lags) is taken.
    if (created.error().reason == kNamespaceNameTaken) {
      if (++nameTaken >= kNameTakenTries) {
        co_return Error::make(
            ErrorCode::kForbidden, kNamespaceNameTaken,
            fmt::format("backend namespace {}: CCI says the name exists but this account "
                        "cannot see it (names are unique across accounts); choose another "
                        "provider.cci.clusterID or namespacePrefix: {}",
                        name_, created.error().message));
      }
      if (!co_await sleepFor(clock_, kTerminatingPoll, &stop)) {
        co_return Error::make(ErrorCode::kCancelled, "Stopped",
                              "stopped before the backend namespace was ready");
      }
    }
  }
}

asio::awaitable<Status> BackendNamespace::ensureMarker() {
  const std::string name = nodeMarkerName(nodeName_);
  json::value marker = json::object{
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata",
       json::object{{"name", name},
                    {"namespace", name_},
                    {"labels", json::object{{kManagedByLabel, kManagedByValue},
                                            {kNodeMarkerLabel, safeLabelValue(nodeName_)},
                                            {kClusterIdLabel, clusterID_}}}}},
      {"data", json::object{{"node", nodeName_}}}};
  std::string ns = name_;
  auto created = co_await backend_.create(resources::kConfigMaps, ns, std::move(marker));
  if (created.ok()) {
    spdlog::info("msg=\"node marker written\" namespace={} marker={}", name_, name);
    co_return okStatus();
  }
  if (created.error().code == ErrorCode::kAlreadyExists) {
    co_return okStatus();  // an earlier run's, or a replica's of the same node
  }
  co_return std::move(created).error();
}

Status BackendNamespace::checkOwned(const json::value& ns) const {
  if (stringAt(ns, {"metadata", "labels", kManagedByLabel}) == kManagedByValue &&
      stringAt(ns, {"metadata", "labels", kClusterIdLabel}) == clusterID_) {
    return okStatus();
  }
  return Error::make(
      ErrorCode::kForbidden, "NamespaceNotOwned",
      fmt::format("backend namespace {} exists but is not labelled {}={} and {}={}: "
                  "burstlet only uses a namespace it created",
                  name_, kManagedByLabel, kManagedByValue, kClusterIdLabel, clusterID_));
}

json::value BackendNamespace::object() const {
  json::object labels{{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, clusterID_}};
  json::object annotations;
  if (cci_) {
    annotations[kCciFlavorAnnotation] = flavor_;
  }
  return json::object{{"apiVersion", "v1"},
                      {"kind", "Namespace"},
                      {"metadata", json::object{{"name", name_},
                                                {"labels", std::move(labels)},
                                                {"annotations", std::move(annotations)}}}};
}

asio::awaitable<Status> BackendNamespace::check() {
  std::string none;
  std::string ns = name_;
  auto got = co_await backend_.get(resources::kNamespaces, none, ns);
  if (!got.ok()) {
    co_return std::move(got).error();
  }
  co_return okStatus();
}

}  // namespace burstlet::provider::cci
