// EventMirror: the events of the node's backend pods, written on their source pods in the
// cluster (what each becomes is events.h's to say). An informer on the backend namespace's pod
// events feeds it; events from before this process (the informer's first list) are not mirrored
// again, and an event is mirrored again only when its count grows.
//
// Thread-safety: the informer's handlers run on its coroutine; `mu_` guards counts_.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "kube/events.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/cci_options.h"

namespace burstlet::provider::cci {

class EventMirror {
 public:
  // The backend pod of that (backend) name, or null (BackendPods::find).
  using FindPod = std::function<kube::ObjectPtr(const std::string&)>;

  // `backend`, `events` (records on cluster pods) and `stats` must outlive this.
  EventMirror(kube::RestClient& backend, kube::EventRecorder& events, const CciOptions& options,
              CciStats& stats, FindPod findPod);
  ~EventMirror();

  // The informer on the backend's pod events, for the owner to run.
  kube::Informer& informer() { return *informer_; }

 private:
  void mirror(const kube::ObjectPtr& old, const kube::ObjectPtr& event);
  // Records `count` as seen for event `uid`; false when it was seen already.
  bool firstSeen(const std::string& uid, int64_t count);

  kube::EventRecorder& events_;
  const std::string nodeName_;
  CciStats& stats_;
  const FindPod findPod_;
  std::unique_ptr<kube::Informer> informer_;
  std::mutex mu_;  // guards counts_
  // Backend events mirrored so far: event uid -> count.
  std::unordered_map<std::string, int64_t> counts_;
};

}  // namespace burstlet::provider::cci
