// PodController: status back to the cluster, written as a kubelet's status manager writes it:
// the whole status built from the provider's pod (kubelet_status.h), as one patch with the pod's
// UID as precondition; a patch the API server refuses is said once and not repeated unchanged;
// provider failures and config errors shown the kubelet's way.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <charconv>
#include <optional>

#include "kube/json_path.h"
#include "pod/kubelet_status.h"
#include "pod/lifecycle.h"
#include "pod/pod_controller.h"
#include "pod/status.h"

namespace burstlet::pod {

namespace json = boost::json;
using provider::PodRef;
namespace resources = kube::resources;

namespace {

std::optional<uint64_t> numericVersion(std::string_view rv) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), v);
  if (ec != std::errc() || p != rv.data() + rv.size()) {
    return std::nullopt;
  }
  return v;
}

std::string refusalKey(const json::value& patch) {
  json::value copy = patch;
  auto* status = copy.is_object() ? copy.as_object().if_contains("status") : nullptr;
  auto* conditions = status != nullptr && status->is_object()
                         ? status->as_object().if_contains("conditions")
                         : nullptr;
  if (conditions != nullptr && conditions->is_array()) {
    for (auto& c : conditions->as_array()) {
      if (c.is_object()) {
        c.as_object().erase("lastTransitionTime");
      }
    }
  }
  return json::serialize(copy);
}

}  // namespace

asio::awaitable<Status> PodController::pushStatus(const json::value& pod,
                                                  const json::value& providerPod) {
  const auto* provided = providerPod.as_object().if_contains("status");
  if (provided == nullptr || !provided->is_object()) {
    co_return okStatus();
  }
  const json::value view = latest(pod);
  json::value status = kubeletStatus(view, providerPod, clock_.now());
  {
    std::lock_guard lock(mu_);
    if (auto it = ephemeralUnsupported_.find(std::string(kube::objectUid(pod)));
        it != ephemeralUnsupported_.end()) {
      auto& list = status.as_object()["ephemeralContainerStatuses"];
      if (!list.is_array()) {
        list = json::array{};
      }
      if (const auto* specs = kube::arrayAt(pod, {"spec", "ephemeralContainers"})) {
        for (const auto& c : *specs) {
          const std::string name = kube::stringAt(c, {"name"});
          if (it->second.names.count(name) == 0) {
            continue;
          }
          json::value shown = unsupportedEphemeralStatus(c, it->second.reason, it->second.message);
          bool replaced = false;
          for (auto& have : list.as_array()) {
            if (kube::stringAt(have, {"name"}) == name) {
              have = shown;  // in place of the default "waiting"
              replaced = true;
            }
          }
          if (!replaced) {
            list.as_array().push_back(std::move(shown));
          }
        }
      }
    }
  }
  auto patch = statusPatch(view, status);
  if (!patch) {
    co_return okStatus();
  }
  co_return co_await writeStatus(pod, std::move(*patch));
}

json::value PodController::latest(const json::value& pod) {
  // The informer may not have seen our last write yet: compare with what we wrote then, so a
  // burst of notifications does not write the same status twice.
  json::value view = pod;
  std::lock_guard lock(mu_);
  if (auto it = written_.find(kube::objectKey(pod)); it != written_.end()) {
    const auto seen = numericVersion(kube::objectResourceVersion(pod));
    const auto ours = numericVersion(it->second.resourceVersion);
    if (seen && ours && *seen < *ours) {
      view.as_object()["status"] = it->second.status;
    } else {
      written_.erase(it);
    }
  }
  return view;
}

asio::awaitable<Status> PodController::showWaiting(const json::value& pod,
                                                   const std::string& message) {
  const json::value view = latest(pod);
  const json::value pending = json::object{{"status", json::object{{"phase", "Pending"}}}};
  json::value status = kubeletStatus(view, pending, clock_.now(), kContainerCreating, message);
  auto patch = statusPatch(view, status);
  if (!patch) {
    co_return okStatus();
  }
  co_return co_await writeStatus(pod, std::move(*patch));
}

asio::awaitable<Status> PodController::writeStatus(const json::value& pod, json::value patch) {
  PodRef ref = provider::podRefOf(pod);
  // The kubelet's precondition: a status meant for this pod never lands on a new pod that took
  // its name after a force delete.
  patch.as_object()["metadata"] = json::object{{"uid", ref.uid}};
  std::string body = json::serialize(patch);
  // What makes two patches the same for the refusal memory: their content, not the transition
  // times each attempt stamps anew on conditions the cluster never got.
  std::string content = refusalKey(patch);
  {
    std::lock_guard lock(mu_);
    if (auto it = refused_.find(ref.key());
        it != refused_.end() && it->second.uid == ref.uid && it->second.body == content) {
      co_return okStatus();  // refused before, said once: not sent again unchanged
    }
  }
  std::string subresource = "status";  // named: see kube/rest.h on co_await temporaries
  auto r = co_await client_.patch(resources::kPods, ref.ns, ref.name,
                                  kube::PatchType::kStrategicMerge, std::move(body), subresource);
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kNotFound) {
      co_return okStatus();  // deleted meanwhile; its delete event follows
    }
    if (isUidMismatch(r.error())) {
      spdlog::info("msg=\"status not written: the pod was replaced\" pod={} uid={}", ref.key(),
                   ref.uid);
      co_return okStatus();  // a new pod of that name: its own sync follows
    }
    if (r.error().code == ErrorCode::kInvalid || r.error().code == ErrorCode::kBadRequest) {
      // The API server will refuse this patch every time: said once, with the pod, and not
      // retried until the status to write changes.
      spdlog::warn("msg=\"the API server refused the pod's status\" pod={} uid={} error=\"{}\"",
                   ref.key(), ref.uid, r.error().toString());
      stats_.statusRefused.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(mu_);
      refused_[ref.key()] = Refused{ref.uid, std::move(content)};
      co_return okStatus();
    }
    co_return std::move(r).error();
  }
  stats_.statusPatches.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  refused_.erase(ref.key());
  if (const auto* st = r->as_object().if_contains("status")) {
    written_[kube::objectKey(pod)] = Written{std::string(kube::objectResourceVersion(*r)), *st};
  }
  co_return okStatus();
}

asio::awaitable<void> PodController::reportFailure(const json::value& pod, const Error& error,
                                                   bool permanent) {
  const std::string reason = permanent ? error.reason : std::string(kProviderFailedReason);
  const std::string message =
      permanent
          ? fmt::format("the {} provider cannot run this pod: {}", provider_.name(), error.message)
          : fmt::format("the {} provider failed, retrying: {}", provider_.name(), error.toString());
  events_.record(kube::referenceTo(pod), kube::EventType::kWarning, reason, message);
  auto patch = failurePatch(pod, reason, message, permanent);
  if (!patch) {
    co_return;
  }
  auto s = co_await writeStatus(pod, std::move(*patch));
  if (!s.ok()) {
    spdlog::warn("msg=\"recording a provider failure on the pod failed\" pod={} error=\"{}\"",
                 kube::objectKey(pod), s.error().toString());
  }
}

asio::awaitable<void> PodController::reportConfigError(const json::value& pod, const Error& error) {
  // As the kubelet shows it: a Warning "Failed" event and every container waiting with
  // CreateContainerConfigError.
  events_.record(kube::referenceTo(pod), kube::EventType::kWarning, "Failed",
                 "Error: " + error.message);
  json::array statuses;
  const auto* spec = pod.as_object().if_contains("spec");
  const auto* containers =
      spec != nullptr && spec->is_object() ? spec->as_object().if_contains("containers") : nullptr;
  if (containers != nullptr && containers->is_array()) {
    for (const auto& c : containers->as_array()) {
      const auto* o = c.if_object();
      if (o == nullptr) {
        continue;
      }
      statuses.push_back(json::object{
          {"name", o->contains("name") ? o->at("name") : json::value("")},
          {"image", o->contains("image") ? o->at("image") : json::value("")},
          {"imageID", ""},
          {"ready", false},
          {"started", false},
          {"restartCount", 0},
          {"state",
           json::object{{"waiting", json::object{{"reason", provider::kCreateContainerConfigError},
                                                 {"message", error.message}}}}}});
    }
  }
  json::object status{{"containerStatuses", std::move(statuses)}};
  const auto* current = pod.as_object().if_contains("status");
  if (current != nullptr && current->is_object() &&
      current->as_object().if_contains("containerStatuses") != nullptr &&
      current->as_object().at("containerStatuses") == status.at("containerStatuses")) {
    co_return;
  }
  json::value patch = json::object{{"status", std::move(status)}};
  auto s = co_await writeStatus(pod, std::move(patch));
  if (!s.ok()) {
    spdlog::warn("msg=\"recording a config error on the pod failed\" pod={} error=\"{}\"",
                 kube::objectKey(pod), s.error().toString());
  }
}

}  // namespace burstlet::pod
