// AdmissionWebhook: what the API server calls for every pod created (the
// MutatingWebhookConfiguration burstlet registers): an AdmissionReview v1 in, the burst policy's
// decision (placement.h) out as a JSON patch with admission warnings. The pod's owners are read
// through an OwnerSource (the controller chain: ReplicaSet then Deployment, Job then CronJob; at
// most three levels). A body that is not an AdmissionReview v1 for a pod gets 400 and a log line,
// never a crash.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "admission/placement.h"
#include "admission/profile.h"
#include "admission/profile_ledger.h"
#include "common/result.h"
#include "kube/resource.h"
#include "server/exchange.h"

namespace burstlet::admission {

// Reads a pod's owners (the I/O seam; the daemon's reads the cluster, tests script it).
class OwnerSource {
 public:
  virtual ~OwnerSource() = default;
  // The object `ns`/`name` of `resource`; kNotFound when it does not exist.
  virtual boost::asio::awaitable<Result<boost::json::value>> read(const kube::ResourceRef& resource,
                                                                  std::string ns,
                                                                  std::string name) = 0;
};

// The resource of an owner kind the policy reads labels from (ReplicaSet, Deployment,
// StatefulSet, Job, CronJob; DaemonSet, whose kind alone matters); null for other kinds.
const kube::ResourceRef* ownerResource(std::string_view kind);

// What the webhook needs of one AdmissionReview.
struct ReviewRequest {
  std::string uid;
  std::string operation;  // CREATE, ...
  std::string ns;
  bool isPod = false;        // request.resource is core/v1 pods (no subresource)
  bool isDaemonSet = false;  // apps/v1 daemonsets (no subresource)
  bool dryRun = false;       // nothing will be stored: the profile ledger reserves nothing
  boost::json::value object;
};

// kInvalid "InvalidAdmissionReview" naming what is missing or malformed.
Result<ReviewRequest> parseReview(std::string_view body);

// The AdmissionReview v1 answer for `uid`.
std::string reviewResponse(std::string_view uid, const Decision& decision);

// The BurstProfiles and the ledger that holds their maxNum (both null: no profiles).
struct ProfileSources {
  const ProfileIndex* index = nullptr;
  ProfileLedger* ledger = nullptr;
};

class AdmissionWebhook {
 public:
  // `owners` and the profile sources must outlive this.
  AdmissionWebhook(OwnerSource& owners, PlacementOptions options, BackendCheck check,
                   ProfileSources profiles = {});

  // The route's handler (POST).
  boost::asio::awaitable<server::Response> handle(const server::Request& request);

 private:
  boost::asio::awaitable<Decision> decidePod(const ReviewRequest& review);
  // A profile chose `d`: its slot (the ledger's counts), patch and labels.
  void placeByProfile(const ReviewRequest& review, const boost::json::value& pod,
                      const BurstProfile& profile, Decision& d);

  OwnerSource& owners_;
  const PlacementOptions options_;
  const BackendCheck check_;
  const ProfileSources profiles_;
};

}  // namespace burstlet::admission
