// BackendPods: the node's pods on the backend. create() admits a pod (validate.h, normalize.h),
// has its copies made (PodCopies) and creates the translated pod; update() applies labels,
// annotations, images and ephemeral containers; remove() deletes with the UID as precondition;
// get()/list() answer from the pods informer. The informer's changes are reported through the
// notify callback (status back to the pod controller).
//
// A pod created by this process that the informer does not show yet is kept in `recent_` (so
// get/list answer at once after create); the informer's add forgets it, and so does all() after
// kRecentTtl, since a pod created and deleted while the watch was down never shows up.
//
// A backend pod of the same name but another source UID belongs to an earlier pod of that name
// (its predecessor): create() starts deleting it and answers kPredecessorTerminating. A create
// into the backend namespace while it is deleted or after it is gone answers kUnavailable
// (NamespaceTerminating, NamespaceNotFound): the backend's state, never the pod's.
//
// Thread-safety: every member may be called from any thread; coroutines run on a strand.
// `mu_` guards recent_; notify is called without it.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/pod_copies.h"
#include "provider/cci/translate.h"
#include "provider/provider.h"

namespace burstlet::provider::cci {

class BackendPods {
 public:
  // A backend pod changed: the source pod's status may have.
  using Notify = std::function<void(const PodRef&)>;
  // How long a pod created here is answered without the informer showing it.
  static constexpr std::chrono::minutes kRecentTtl{2};

  // `backend`, `copies` and `stats` must outlive this.
  BackendPods(kube::RestClient& backend, PodCopies& copies, const CciOptions& options,
              const Clock& clock, CciStats& stats, Notify onChange);
  ~BackendPods();

  // The backend refused a pod create as invalid (its own rules, not burstlet's admission): the
  // hook may turn that error into another (a retryable one while the backend settles). Set
  // before the first create.
  using RefusalHook = std::function<Error(Error)>;
  void onBackendRefusal(RefusalHook hook) { onRefusal_ = std::move(hook); }
  // The backend's Kubernetes minor that pods are checked against (api_fields.h); none: no
  // check. Set before the provider is ready.
  void setBackendMinor(std::optional<int> minor) { backendMinor_.store(minor.value_or(-1)); }

  // The informer on the node's backend pods, for the owner to run.
  kube::Informer& informer() { return *informer_; }

  // Provider::createPod, updatePod, deletePod, getPod, listPods.
  asio::awaitable<Status> create(Json pod);
  asio::awaitable<Status> update(Json pod);
  asio::awaitable<Status> remove(PodRef pod, int64_t gracePeriodSeconds);
  asio::awaitable<Result<Json>> get(PodRef pod);
  asio::awaitable<Result<std::vector<Json>>> list();

  // The backend pod `name` (backend name), as created here or as the informer shows it; null.
  kube::ObjectPtr find(const std::string& name) const;
  // The backend pod that stands for the source pod `pod` (its uid too when `pod` has one), as
  // find() sees it; null when this node runs no such pod.
  kube::ObjectPtr findSource(const PodRef& pod) const;
  // Every backend pod of the node: the informer's and those created here it does not show yet
  // (forgetting those older than kRecentTtl). The sweep's view of what pods reference.
  std::vector<kube::ObjectPtr> all();

 private:
  // create() met `existing` under the pod's backend name.
  asio::awaitable<Status> answerExisting(const PodRef& ref, const std::string& name,
                                         const Json& existing);
  // `existing` is the backend pod of an earlier pod of ref's name: deletes it with its own grace
  // period unless it is terminating, and answers kPredecessorTerminating.
  asio::awaitable<Status> awaitPredecessor(const PodRef& ref, const Json& existing);
  // Creates the translated pod; `hold` keeps its copies until it exists.
  asio::awaitable<Status> post(const PodRef& ref, const std::string& name, Json translated,
                               CopyHold& hold);
  // The create met 409: made by an earlier attempt whose answer was lost, or by another pod.
  asio::awaitable<Status> adopt(const PodRef& ref, const std::string& name, CopyHold& hold);
  // updatePod's second half: the ephemeral containers `existing` lacks.
  asio::awaitable<Status> addEphemeralContainers(const PodRef& ref, const std::string& name,
                                                 const Json& pod, const Json& existing);
  // deletePod met a conflict (the name was made again): deletes the backend pod of that name if
  // it is still pod's.
  // Empty when nothing of pod's is there any more.
  asio::awaitable<std::optional<Status>> removeAgain(const PodRef& pod, const std::string& name,
                                                     kube::DeleteOptions options);
  // The backend pod `name` just created: answered until the informer shows it.
  void remember(const std::string& name, Json pod);
  // `pod`, the backend's answer to an update of pod `name`, replaces what recent_ holds for it
  // (the informer may not show the pod yet). Returns it.
  kube::ObjectPtr rememberUpdate(const std::string& name, Json pod);
  void notify(const kube::ObjectPtr& backendPod) const;

  kube::RestClient& backend_;
  PodCopies& copies_;
  const std::string backendNamespace_;
  const ValidateOptions validate_;
  const TranslateOptions translate_;
  const Clock& clock_;
  CciStats& stats_;
  const Notify notify_;
  RefusalHook onRefusal_;
  std::atomic<int> backendMinor_{-1};
  std::unique_ptr<kube::Informer> informer_;
  mutable std::mutex mu_;  // guards recent_
  // Pods created here that the informer has not shown yet: backend name -> pod and when it was
  // created.
  struct Recent {
    kube::ObjectPtr pod;
    Clock::SteadyTime at;
  };
  std::unordered_map<std::string, Recent> recent_;
};

}  // namespace burstlet::provider::cci
