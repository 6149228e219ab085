#include "daemon/admission_caches.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>

#include "kube/json_path.h"

namespace burstlet::daemon {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

const kube::ResourceRef kBurstProfiles{"burstlet.io", "v1alpha1", "burstprofiles", true,
                                       "BurstProfile"};
const char* const kOwnerKinds[] = {"ReplicaSet", "Deployment", "StatefulSet", "Job", "CronJob"};

// Copies the members `keys` of object `from` that it has.
json::object pick(const json::value* from, std::initializer_list<std::string_view> keys) {
  json::object out;
  const auto* o = from != nullptr ? from->if_object() : nullptr;
  if (o == nullptr) {
    return out;
  }
  for (const auto k : keys) {
    if (const auto* v = o->if_contains(k); v != nullptr) {
      out[k] = *v;
    }
  }
  return out;
}

// Owners: what the policy reads (labels, the controller reference) and what the store needs.
void keepOwnerFields(json::value& object) {
  object = json::object{{"metadata", pick(kube::at(object, {"metadata"}),
                                          {"name", "namespace", "uid", "resourceVersion", "labels",
                                           "ownerReferences"})}};
}

// Pods profiles placed: what the ledger reads.
void keepLedgerPodFields(json::value& object) {
  json::object meta = pick(
      kube::at(object, {"metadata"}),
      {"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"});
  meta["labels"] = pick(kube::at(object, {"metadata", "labels"}),
                        {admission::kProfileLabel, admission::kSlotLabel});
  meta["annotations"] =
      pick(kube::at(object, {"metadata", "annotations"}), {admission::kAdmissionAnnotation});
  json::object spec = pick(kube::at(object, {"spec"}), {"nodeName", "schedulingGates"});
  if (kube::at(object, {"spec", "tolerations"}) != nullptr) {
    spec["tolerations"] = json::array{};  // only whether the list exists matters
  }
  json::object status = pick(kube::at(object, {"status"}), {"phase"});
  if (const auto* conditions = kube::at(object, {"status", "conditions"});
      conditions != nullptr && conditions->is_array()) {
    json::array kept;
    for (const auto& c : conditions->get_array()) {
      if (kube::stringAt(c, {"type"}) == "PodScheduled") {
        kept.push_back(c);
      }
    }
    status["conditions"] = std::move(kept);
  }
  object = json::object{
      {"metadata", std::move(meta)}, {"spec", std::move(spec)}, {"status", std::move(status)}};
}

}  // namespace

asio::awaitable<Result<json::value>> CachedOwnerSource::read(const kube::ResourceRef& resource,
                                                             std::string ns, std::string name) {
  if (auto it = informers_.find(resource.resource);
      it != informers_.end() && it->second->synced()) {
    if (auto object = it->second->store().get(ns + "/" + name); object != nullptr) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      co_return *object;
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  co_return co_await fallback_.read(resource, std::move(ns), std::move(name));
}

AdmissionCaches::AdmissionCaches(kube::RestClient& cluster, admission::OwnerSource& fallback,
                                 const admission::PlacementOptions& options, const Clock& clock)
    : cluster_(cluster),
      clock_(clock),
      ledger_(clock),
      grants_(cluster, ledger_, profiles_, options, clock) {
  std::map<std::string, kube::Informer*> byResource;
  for (const char* kind : kOwnerKinds) {
    const kube::ResourceRef* resource = admission::ownerResource(kind);
    kube::InformerOptions o;
    o.resource = *resource;
    o.transform = keepOwnerFields;
    o.clock = &clock;
    ownerInformers_.push_back(std::make_unique<kube::Informer>(cluster, o));
    byResource[resource->resource] = ownerInformers_.back().get();
  }
  owners_ = std::make_unique<CachedOwnerSource>(std::move(byResource), fallback);

  kube::InformerOptions profileOptions;
  profileOptions.resource = kBurstProfiles;
  profileOptions.clock = &clock;
  profileInformer_ = std::make_unique<kube::Informer>(cluster, profileOptions);
  auto upsertProfile = [this](const kube::ObjectPtr& o) {
    if (auto s = profiles_.upsert(*o); !s.ok()) {
      spdlog::warn("msg=\"BurstProfile ignored\" error=\"{}\"", s.error().message);
    }
  };
  profileInformer_->addHandlers(kube::InformerHandlers{
      upsertProfile,
      [upsertProfile](const kube::ObjectPtr&, const kube::ObjectPtr& o) { upsertProfile(o); },
      [this](const kube::ObjectPtr& o, bool) { profiles_.erase(*o); }});

  kube::InformerOptions podOptions;
  podOptions.resource = kube::resources::kPods;
  podOptions.labelSelector = std::string(admission::kProfileLabel);
  podOptions.transform = keepLedgerPodFields;
  podOptions.clock = &clock;
  podInformer_ = std::make_unique<kube::Informer>(cluster, podOptions);
  podInformer_->addHandlers(kube::InformerHandlers{
      [this](const kube::ObjectPtr& o) { ledger_.upsertPod(*o); },
      [this](const kube::ObjectPtr&, const kube::ObjectPtr& o) { ledger_.upsertPod(*o); },
      [this](const kube::ObjectPtr& o, bool) { ledger_.erasePod(*o); }});

  kube::InformerOptions nodeOptions;
  nodeOptions.resource = kube::resources::kNodes;
  nodeOptions.labelSelector = options.nodeLabelKey + "=" + options.nodeLabelValue;
  nodeOptions.transform = keepOwnerFields;
  nodeOptions.clock = &clock;
  nodeInformer_ = std::make_unique<kube::Informer>(cluster, nodeOptions);
  nodeInformer_->addHandlers(kube::InformerHandlers{
      [this](const kube::ObjectPtr& o) { ledger_.upsertNode(std::string(kube::objectName(*o))); },
      nullptr,
      [this](const kube::ObjectPtr& o, bool) {
        ledger_.eraseNode(std::string(kube::objectName(*o)));
      }});
}

void AdmissionCaches::start(asio::io_context& io) {
  auto spawn = [this, &io](asio::awaitable<void> work) {
    if (!running_.enter()) {
      return;
    }
    asio::co_spawn(asio::make_strand(io), std::move(work), [this](const std::exception_ptr& e) {
      if (e) {
        spdlog::error("msg=\"admission cache part ended with an exception\"");
      }
      running_.leave();
    });
  };
  for (auto& informer : ownerInformers_) {
    spawn(informer->run());
  }
  spawn(podInformer_->run());
  spawn(nodeInformer_->run());
  spawn(markLedgerSynced());
  spawn(runProfilesWhenServed());
  spawn(grants_.run(stop_, std::chrono::seconds(1)));
}

asio::awaitable<void> AdmissionCaches::stop() {
  stop_.set();
  for (auto& informer : ownerInformers_) {
    informer->stop();
  }
  podInformer_->stop();
  nodeInformer_->stop();
  profileInformer_->stop();
  co_await running_.close();
}

asio::awaitable<void> AdmissionCaches::markLedgerSynced() {
  // Two statements: GCC 12 miscompiles co_await on both sides of &&.
  const bool podsReady = co_await readyOrStopped(podInformer_->signals());
  if (!podsReady) {
    co_return;
  }
  const bool nodesReady = co_await readyOrStopped(nodeInformer_->signals());
  if (nodesReady) {
    ledger_.markSynced();
  }
}

asio::awaitable<void> AdmissionCaches::runProfilesWhenServed() {
  bool told = false;
  while (!stop_.isSet()) {
    kube::HttpRequest request{kube::Verb::get, kBurstProfiles.groupVersionPath()};
    request.timeout = std::chrono::seconds(10);
    std::string what = "get burstlet.io/v1alpha1";  // named: see rest.h on co_await temporaries
    auto r = co_await cluster_.call(std::move(request), true, std::move(what));
    if (r.ok()) {
      spdlog::info("msg=\"BurstProfiles served: profiles on\"");
      co_await profileInformer_->run();
      co_return;
    }
    if (r.error().code == ErrorCode::kNotFound) {
      if (!told) {
        spdlog::info(
            "msg=\"BurstProfile CRD not installed (deploy/crds/burstprofiles.yaml): profiles off "
            "until it is\"");
        told = true;
      }
    } else {
      spdlog::warn("msg=\"BurstProfile API not checked\" error=\"{}\"", r.error().toString());
    }
    if (!co_await sleepFor(clock_, std::chrono::minutes(1), &stop_)) {
      co_return;
    }
  }
}

}  // namespace burstlet::daemon
