#include "admission/webhook.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <vector>

#include "admission/profile_patch.h"
#include "common/base64.h"
#include "kube/json_path.h"

namespace burstlet::admission {

namespace asio = boost::asio;
namespace json = boost::json;
using kube::stringAt;

namespace {

const kube::ResourceRef kReplicaSets{"apps", "v1", "replicasets", true, "ReplicaSet"};
const kube::ResourceRef kStatefulSets{"apps", "v1", "statefulsets", true, "StatefulSet"};
const kube::ResourceRef kDaemonSets{"apps", "v1", "daemonsets", true, "DaemonSet"};
const kube::ResourceRef kJobs{"batch", "v1", "jobs", true, "Job"};
const kube::ResourceRef kCronJobs{"batch", "v1", "cronjobs", true, "CronJob"};

constexpr int kMaxOwnerDepth = 3;

Error invalidReview(std::string_view what) {
  return Error::make(ErrorCode::kInvalid, "InvalidAdmissionReview",
                     fmt::format("not an AdmissionReview v1: {}", what));
}

// The controller reference of `object` (kind, name), if any.
std::optional<std::pair<std::string, std::string>> controllerOf(const json::value& object) {
  const auto* refs = kube::at(object, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) {
    return std::nullopt;
  }
  for (const auto& r : refs->get_array()) {
    const auto* controller = kube::at(r, {"controller"});
    if (controller != nullptr && controller->is_bool() && controller->get_bool()) {
      return std::pair{stringAt(r, {"kind"}), stringAt(r, {"name"})};
    }
  }
  return std::nullopt;
}

server::Response jsonAnswer(unsigned status, std::string body) {
  server::Response r;
  r.status = status;
  r.contentType = "application/json";
  r.body = std::move(body);
  return r;
}

}  // namespace

const kube::ResourceRef* ownerResource(std::string_view kind) {
  for (const auto* r : {&kReplicaSets, &kube::resources::kDeployments, &kStatefulSets, &kDaemonSets,
                        &kJobs, &kCronJobs}) {
    if (r->kind == kind) {
      return r;
    }
  }
  return nullptr;
}

Result<ReviewRequest> parseReview(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return invalidReview("the body is not a JSON object");
  }
  if (stringAt(v, {"apiVersion"}) != "admission.k8s.io/v1" ||
      stringAt(v, {"kind"}) != "AdmissionReview") {
    return invalidReview("apiVersion admission.k8s.io/v1 and kind AdmissionReview expected");
  }
  const auto* request = kube::at(v, {"request"});
  if (request == nullptr || !request->is_object()) {
    return invalidReview("no request");
  }
  ReviewRequest r;
  r.uid = stringAt(*request, {"uid"});
  if (r.uid.empty()) {
    return invalidReview("request.uid is missing");
  }
  r.operation = stringAt(*request, {"operation"});
  r.ns = stringAt(*request, {"namespace"});
  if (const auto* dry = kube::at(*request, {"dryRun"}); dry != nullptr && dry->is_bool()) {
    r.dryRun = dry->get_bool();
  }
  r.isPod = stringAt(*request, {"resource", "group"}).empty() &&
            stringAt(*request, {"resource", "version"}) == "v1" &&
            stringAt(*request, {"resource", "resource"}) == "pods" &&
            stringAt(*request, {"subResource"}).empty();
  r.isDaemonSet = stringAt(*request, {"resource", "group"}) == "apps" &&
                  stringAt(*request, {"resource", "version"}) == "v1" &&
                  stringAt(*request, {"resource", "resource"}) == "daemonsets" &&
                  stringAt(*request, {"subResource"}).empty();
  if (const auto* object = kube::at(*request, {"object"}); object != nullptr) {
    r.object = *object;
  }
  if (r.isPod && r.operation == "CREATE" && !r.object.is_object()) {
    return invalidReview("request.object is not a pod");
  }
  if (r.isDaemonSet && (r.operation == "CREATE" || r.operation == "UPDATE") &&
      !r.object.is_object()) {
    return invalidReview("request.object is not a DaemonSet");
  }
  return r;
}

std::string reviewResponse(std::string_view uid, const Decision& decision) {
  json::object response{{"uid", uid}, {"allowed", decision.allowed}};
  if (!decision.allowed) {
    response["status"] =
        json::object{{"code", 403}, {"reason", "Forbidden"}, {"message", decision.message}};
  }
  if (decision.allowed && !decision.patch.empty()) {
    response["patchType"] = "JSONPatch";
    response["patch"] = base64Encode(json::serialize(decision.patch));
  }
  if (!decision.warnings.empty()) {
    json::array warnings;
    for (const auto& w : decision.warnings) {
      warnings.push_back(json::string(w));
    }
    response["warnings"] = std::move(warnings);
  }
  return json::serialize(json::object{{"apiVersion", "admission.k8s.io/v1"},
                                      {"kind", "AdmissionReview"},
                                      {"response", std::move(response)}});
}

AdmissionWebhook::AdmissionWebhook(OwnerSource& owners, PlacementOptions options,
                                   BackendCheck check, ProfileSources profiles)
    : owners_(owners),
      options_(std::move(options)),
      check_(std::move(check)),
      profiles_(profiles) {}

asio::awaitable<server::Response> AdmissionWebhook::handle(const server::Request& request) {
  auto review = parseReview(request.body);
  if (!review.ok()) {
    spdlog::warn("msg=\"admission request refused\" remote={} bytes={} error=\"{}\"",
                 request.remoteAddress, request.body.size(), review.error().message);
    co_return jsonAnswer(400, json::serialize(json::object{{"error", review.error().message}}));
  }
  Decision decision;
  if (review->isPod && review->operation == "CREATE") {
    decision = co_await decidePod(*review);
  } else if (review->isDaemonSet &&
             (review->operation == "CREATE" || review->operation == "UPDATE")) {
    decision.patch = daemonSetPatch(review->object, options_);
  }
  co_return jsonAnswer(200, reviewResponse(review->uid, decision));
}

asio::awaitable<Decision> AdmissionWebhook::decidePod(const ReviewRequest& review) {
  // The owners' objects must live while the policy looks at their labels.
  std::vector<json::value> objects;
  std::vector<std::pair<std::string, std::string>> chain;  // kind, name
  objects.reserve(kMaxOwnerDepth);
  const json::value* current = &review.object;
  for (int depth = 0; depth < kMaxOwnerDepth; ++depth) {
    auto ref = controllerOf(*current);
    if (!ref) {
      break;
    }
    chain.push_back(*ref);
    const kube::ResourceRef* resource = ownerResource(ref->first);
    if (resource == nullptr || resource->kind == "DaemonSet") {
      break;  // a kind without a strategy, or a DaemonSet: its kind is all that matters
    }
    std::string ns = review.ns;
    std::string name = ref->second;
    auto object = co_await owners_.read(*resource, ns, name);
    if (!object.ok()) {
      if (object.error().code != ErrorCode::kNotFound) {
        spdlog::warn("msg=\"admission: owner not read\" kind={} name={}/{} error=\"{}\"",
                     ref->first, ns, name, object.error().toString());
      }
      break;
    }
    objects.push_back(std::move(*object));
    current = &objects.back();
  }
  std::vector<Labelled> owners;
  for (size_t i = 0; i < chain.size(); ++i) {
    owners.push_back(
        Labelled{chain[i].first, chain[i].second,
                 i < objects.size() ? kube::at(objects[i], {"metadata", "labels"}) : nullptr});
  }
  // Pods of controllers are named by the API server after admission: messages say the
  // generateName. Only the names in messages come from this copy; the patch is computed on it
  // too, and touches no name.
  json::value pod = review.object;
  if (stringAt(pod, {"metadata", "name"}).empty()) {
    auto& meta = pod.as_object()["metadata"];
    if (!meta.is_object()) {
      meta = json::object{};
    }
    meta.as_object()["name"] = stringAt(review.object, {"metadata", "generateName"}) + "*";
  }
  std::optional<BurstProfile> profile;
  std::vector<std::string> others;
  if (profiles_.index != nullptr) {
    const auto list = profiles_.index->inNamespace(review.ns);
    if (const auto* p = pickProfile(list, kube::at(pod, {"metadata", "labels"}), &others);
        p != nullptr) {
      profile = *p;
    }
  }
  std::optional<ProfileChoice> profileChoice;
  if (profile) {
    profileChoice = ProfileChoice{profile->name, profile->strategy};
  }
  Decision d = decide(pod, owners, profileChoice, options_, check_);
  if (d.allowed && d.choice.byProfile && d.choice.strategy != Strategy::kOff) {
    if (!others.empty()) {
      d.warnings.push_back(
          fmt::format("BurstProfiles {} select this pod too; {} (the oldest) applies",
                      fmt::join(others, ", "), profile->name));
    }
    placeByProfile(review, pod, *profile, d);
  }
  co_return d;
}

void AdmissionWebhook::placeByProfile(const ReviewRequest& review, const json::value& pod,
                                      const BurstProfile& profile, Decision& d) {
  std::optional<Slot> slot;
  if (profiles_.ledger != nullptr) {
    slot = profiles_.ledger->admit(profile, d.choice.strategy, review.uid, !review.dryRun);
  }
  if (!slot) {
    slot = Slot::kLocal;
    if (profile.localMax || profile.burstMax) {
      d.warnings.push_back(fmt::format(
          "profile {}: its maxNum is not applied to this pod (burstlet is still reading the "
          "cluster's pods)",
          profile.name));
    }
  }
  if (*slot == Slot::kBurst || *slot == Slot::kBurstGated) {
    // local.maxNum sends it to the backend as enforce would, if the pod lets it.
    const std::string selected = stringAt(pod, {"spec", "nodeSelector", options_.nodeLabelKey});
    if (!selected.empty() && selected != options_.nodeLabelValue) {
      d.warnings.push_back(fmt::format(
          "profile {}: local.maxNum is reached, but the pod's nodeSelector {}={} excludes "
          "virtual nodes; it stays local",
          profile.name, options_.nodeLabelKey, selected));
      *slot = Slot::kLocal;
    }
  }
  d.patch = profilePatch(pod, d.choice, profile, *slot, review.uid, options_);
}

}  // namespace burstlet::admission
