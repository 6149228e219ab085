#include "provider/cci/event_mirror.h"

#include "kube/json_path.h"
#include "provider/cci/events.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

namespace resources = kube::resources;
using kube::stringAt;

EventMirror::EventMirror(kube::RestClient& backend, kube::EventRecorder& events,
                         const CciOptions& options, CciStats& stats, FindPod findPod)
    : events_(events), nodeName_(options.nodeName), stats_(stats), findPod_(std::move(findPod)) {
  kube::InformerOptions o;
  o.resource = resources::kEvents;
  o.ns = options.backendNamespace;
  o.fieldSelector = "involvedObject.kind=Pod";
  o.transform = trimBackendEvent;
  informer_ = std::make_unique<kube::Informer>(backend, o);
  informer_->addHandlers(kube::InformerHandlers{
      [this](const kube::ObjectPtr& e) { mirror(nullptr, e); },
      [this](const kube::ObjectPtr& old, const kube::ObjectPtr& e) { mirror(old, e); },
      [this](const kube::ObjectPtr& e, bool) {
        std::lock_guard lock(mu_);
        counts_.erase(std::string(kube::objectUid(*e)));
      }});
}

EventMirror::~EventMirror() = default;

bool EventMirror::firstSeen(const std::string& uid, int64_t count) {
  std::lock_guard lock(mu_);
  auto& seen = counts_[uid];
  if (count <= seen) {
    return false;
  }
  seen = count;
  return true;
}

void EventMirror::mirror(const kube::ObjectPtr& old, const kube::ObjectPtr& event) {
  if (!informer_->synced() && !old) {
    return;  // history from before this process: mirrored by an earlier one
  }
  const int64_t count = backendEventCount(*event);
  if (!firstSeen(std::string(kube::objectUid(*event)), count)) {
    return;
  }
  if (old && backendEventCount(*old) >= count) {
    return;
  }
  auto pod = findPod_(stringAt(*event, {"involvedObject", "name"}));
  if (!pod) {
    return;
  }
  auto src = sourceRefOf(*pod);
  if (!src) {
    return;
  }
  auto mirrored = mirroredEvent(*event, *pod, *src, MirrorOptions{kCciProviderName, nodeName_});
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

}  // namespace burstlet::provider::cci
