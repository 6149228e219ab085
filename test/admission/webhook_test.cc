// AdmissionWebhook: AdmissionReview v1 in and out, the owner chain read (ReplicaSet then
// Deployment, Job then CronJob, a DaemonSet by kind alone), bad bodies answered 400.
#include "admission/webhook.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "common/base64.h"
#include "kube/json_path.h"
#include "mocks/fake_clock.h"
#include "mocks/fake_owner_source.h"
#include "mocks/run_sync.h"

namespace burstlet::admission {
namespace {

namespace json = boost::json;
using kube::stringAt;
using testing::FakeOwnerSource;

json::value owned(std::string_view name, const json::object& labels = {}) {
  json::object meta{{"name", name}, {"labels", labels}};
  return json::object{{"metadata", std::move(meta)}};
}

void ownedBy(json::value& object, std::string_view kind, std::string_view name) {
  object.as_object()["metadata"].as_object()["ownerReferences"] = json::array{json::object{
      {"apiVersion", "apps/v1"}, {"kind", kind}, {"name", name}, {"controller", true}}};
}

std::string review(const json::value& pod, std::string_view operation = "CREATE",
                   std::string_view resource = "pods") {
  return json::serialize(json::object{
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       json::object{{"uid", "r-1"},
                    {"operation", operation},
                    {"namespace", "app"},
                    {"resource", {{"group", ""}, {"version", "v1"}, {"resource", resource}}},
                    {"object", pod}}}});
}

struct Fixture {
  boost::asio::io_context io;
  FakeOwnerSource owners;
  AdmissionWebhook webhook{owners, PlacementOptions{}, nullptr};

  server::Response call(std::string body) {
    server::Request r;
    r.method = "POST";
    r.path = "/mutate-pods";
    r.body = std::move(body);
    return testing::runSync(io, webhook.handle(r));
  }
  // The AdmissionReview response of a 200 answer.
  json::value response(std::string body) {
    const auto r = call(std::move(body));
    EXPECT_EQ(r.status, 200U) << r.body;
    EXPECT_EQ(r.contentType, "application/json");
    const json::value v = json::parse(r.body);
    EXPECT_EQ(stringAt(v, {"apiVersion"}), "admission.k8s.io/v1");
    EXPECT_EQ(stringAt(v, {"kind"}), "AdmissionReview");
    EXPECT_EQ(stringAt(v, {"response", "uid"}), "r-1");
    return v.at("response");
  }
};

json::value patchOf(const json::value& response) {
  EXPECT_EQ(stringAt(response, {"patchType"}), "JSONPatch");
  auto decoded = base64Decode(stringAt(response, {"patch"}));
  EXPECT_TRUE(decoded.has_value());
  return json::parse(decoded.value_or("[]"));
}

json::value podOf(std::string_view rsName) {
  json::value pod = json::object{{"metadata", {{"generateName", "web-7d9-"}, {"namespace", "app"}}},
                                 {"spec", json::object{}}};
  if (!rsName.empty()) {
    ownedBy(pod, "ReplicaSet", rsName);
  }
  return pod;
}

TEST(WebhookTest, DeploymentLabelReachesItsPodsThroughTheReplicaSet) {
  Fixture f;
  json::value rs = owned("web-7d9");
  ownedBy(rs, "Deployment", "web");
  f.owners.put("ReplicaSet", "app", "web-7d9", rs);
  f.owners.put("Deployment", "app", "web", owned("web", {{kBurstLabel, "auto"}}));
  const auto response = f.response(review(podOf("web-7d9")));
  EXPECT_TRUE(response.at("allowed").as_bool());
  const json::value patch = patchOf(response);
  EXPECT_NE(json::serialize(patch).find("virtual-kubelet.io/provider"), std::string::npos);
  EXPECT_NE(json::serialize(patch).find("label virtual-kubelet.io/burst-to-cci=auto on "
                                        "Deployment web"),
            std::string::npos)
      << patch;
  EXPECT_EQ(f.owners.reads(), 2);
}

TEST(WebhookTest, CronJobLabelReachesItsPodsThroughTheJob) {
  Fixture f;
  json::value job = owned("nightly-1");
  ownedBy(job, "CronJob", "nightly");
  f.owners.put("Job", "app", "nightly-1", job);
  f.owners.put("CronJob", "app", "nightly", owned("nightly", {{kBurstLabelCci2, "enforce"}}));
  json::value pod = podOf("");
  ownedBy(pod, "Job", "nightly-1");
  const auto response = f.response(review(pod));
  EXPECT_NE(json::serialize(patchOf(response)).find("/spec/nodeSelector"), std::string::npos);
}

TEST(WebhookTest, DaemonSetPodsAreLeftLocalWithoutReads) {
  Fixture f;
  json::value pod = podOf("");
  ownedBy(pod, "DaemonSet", "agent");
  pod.as_object()["metadata"].as_object()["labels"] = json::object{{kBurstLabel, "enforce"}};
  const auto response = f.response(review(pod));
  EXPECT_TRUE(response.at("allowed").as_bool());
  EXPECT_EQ(response.as_object().if_contains("patch"), nullptr);
  ASSERT_NE(response.as_object().if_contains("warnings"), nullptr);
  EXPECT_EQ(f.owners.reads(), 0);
}

TEST(WebhookTest, InvalidLabelIsDeniedWith403AndTheAllowedValues) {
  Fixture f;
  f.owners.put("ReplicaSet", "app", "web-7d9", owned("web-7d9", {{kBurstLabel, "yes"}}));
  const auto response = f.response(review(podOf("web-7d9")));
  EXPECT_FALSE(response.at("allowed").as_bool());
  EXPECT_EQ(response.at("status").at("code").as_int64(), 403);
  EXPECT_NE(stringAt(response, {"status", "message"}).find("auto, localPrefer, enforce, off"),
            std::string::npos);
}

// An owner that cannot be read is no label: the pod stays local (failurePolicy would too).
TEST(WebhookTest, UnreadableOwnerLeavesThePodLocal) {
  Fixture f;
  f.owners.failWith(Error::make(ErrorCode::kUnavailable, "ServiceUnavailable", "down"));
  const auto response = f.response(review(podOf("web-7d9")));
  EXPECT_TRUE(response.at("allowed").as_bool());
  EXPECT_EQ(response.as_object().if_contains("patch"), nullptr);
}

TEST(WebhookTest, OtherRequestsAreAllowedUnchanged) {
  Fixture f;
  const json::value labelled =
      json::object{{"metadata", {{"name", "p"}, {"labels", {{kBurstLabel, "enforce"}}}}},
                   {"spec", json::object{}}};
  for (const auto& body : {review(labelled, "UPDATE"), review(labelled, "CREATE", "services")}) {
    const auto response = f.response(body);
    EXPECT_TRUE(response.at("allowed").as_bool());
    EXPECT_EQ(response.as_object().if_contains("patch"), nullptr);
  }
}

TEST(WebhookTest, DaemonSetsThatTolerateEverythingAreKeptOffVirtualNodes) {
  Fixture f;
  const json::value ds = json::object{
      {"metadata", {{"name", "agent"}}},
      {"spec",
       {{"template",
         {{"spec", {{"tolerations", json::array{json::object{{"operator", "Exists"}}}}}}}}}}};
  for (const char* op : {"CREATE", "UPDATE"}) {
    std::string body = json::serialize(json::object{
        {"apiVersion", "admission.k8s.io/v1"},
        {"kind", "AdmissionReview"},
        {"request",
         json::object{
             {"uid", "r-1"},
             {"operation", op},
             {"namespace", "app"},
             {"resource", {{"group", "apps"}, {"version", "v1"}, {"resource", "daemonsets"}}},
             {"object", ds}}}});
    const auto response = f.response(body);
    EXPECT_TRUE(response.at("allowed").as_bool());
    EXPECT_NE(json::serialize(patchOf(response)).find("NotIn"), std::string::npos) << op;
  }
}

TEST(WebhookTest, BadBodiesAre400) {
  Fixture f;
  for (const std::string& body :
       {std::string("not json"), std::string("[]"), std::string(R"({"kind":"AdmissionReview"})"),
        std::string(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})"),
        std::string(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",)"
                    R"("request":{"operation":"CREATE"}})"),
        std::string(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":)"
                    R"({"uid":"u","operation":"CREATE","resource":{"version":"v1",)"
                    R"("resource":"pods"},"object":"x"}})")}) {
    const auto r = f.call(body);
    EXPECT_EQ(r.status, 400U) << body;
    EXPECT_NE(r.body.find("not an AdmissionReview v1"), std::string::npos) << r.body;
  }
}

// Profiles: the oldest matching profile places the pod through the ledger's counts; a label
// wins over it; several matching profiles are warned about.
struct ProfileFixture {
  boost::asio::io_context io;
  FakeOwnerSource owners;
  testing::FakeClock clock;
  ProfileIndex index;
  ProfileLedger ledger{clock};
  AdmissionWebhook webhook{owners, PlacementOptions{}, nullptr, ProfileSources{&index, &ledger}};

  ProfileFixture() {
    ledger.upsertNode("virtual");
    ledger.markSynced();
    addProfile("web", R"({"strategy":"auto","selector":{"matchLabels":{"app":"web"}},
                          "local":{"maxNum":2}})",
               "2026-01-01T00:00:00Z");
  }
  void addProfile(std::string_view name, std::string_view spec, std::string_view created) {
    const json::value p = json::object{
        {"metadata",
         json::object{{"name", name}, {"namespace", "app"}, {"creationTimestamp", created}}},
        {"spec", json::parse(spec)}};
    ASSERT_TRUE(index.upsert(p).ok());
  }
  json::value admit(const json::value& pod, const std::string& uid) {
    std::string body = review(pod);
    const auto at = body.find("\"r-1\"");
    body.replace(at, 5, "\"" + uid + "\"");
    server::Request r;
    r.method = "POST";
    r.path = "/mutate-pods";
    r.body = std::move(body);
    const auto response = testing::runSync(io, webhook.handle(r));
    EXPECT_EQ(response.status, 200U) << response.body;
    return json::parse(response.body).at("response");
  }
};

json::value webPod(const json::object& labels = {{"app", "web"}}) {
  return json::object{{"metadata", {{"name", "web-1"}, {"namespace", "app"}, {"labels", labels}}},
                      {"spec", json::object{}}};
}

TEST(WebhookProfileTest, LocalMaxNumSendsLaterPodsToTheBackend) {
  ProfileFixture f;
  for (int i = 0; i < 4; ++i) {
    const auto response = f.admit(webPod(), fmt::format("adm-{}", i));
    ASSERT_TRUE(response.at("allowed").as_bool());
    const std::string patch = json::serialize(patchOf(response));
    EXPECT_NE(patch.find(R"("path":"/metadata/labels/burstlet.io~1profile","value":"web")"),
              std::string::npos)
        << patch;
    const bool burst = i >= 2;
    EXPECT_EQ(patch.find("/spec/nodeSelector") != std::string::npos, burst) << i << patch;
    EXPECT_EQ(patch.find("local.maxNum 2 reached") != std::string::npos, burst) << patch;
    EXPECT_NE(patch.find(fmt::format("adm-{}", i)), std::string::npos);
  }
  const Counts c = f.ledger.counts("app/web");
  EXPECT_EQ(c.local, 2);
  EXPECT_EQ(c.burst, 2);
}

TEST(WebhookProfileTest, ALabelWinsOverTheProfile) {
  ProfileFixture f;
  const auto response = f.admit(webPod({{"app", "web"}, {kBurstLabel, "off"}}), "adm-1");
  EXPECT_TRUE(response.at("allowed").as_bool());
  EXPECT_EQ(response.as_object().if_contains("patch"), nullptr);
  EXPECT_EQ(f.ledger.counts("app/web").local, 0);
}

TEST(WebhookProfileTest, UnselectedPodsAndOtherNamespacesAreLeftAlone) {
  ProfileFixture f;
  const auto response = f.admit(webPod({{"app", "api"}}), "adm-1");
  EXPECT_EQ(response.as_object().if_contains("patch"), nullptr);
}

TEST(WebhookProfileTest, SeveralMatchingProfilesAreWarnedAbout) {
  ProfileFixture f;
  f.addProfile("newer", R"({"strategy":"enforce"})", "2026-02-01T00:00:00Z");
  const auto response = f.admit(webPod(), "adm-1");
  ASSERT_NE(response.as_object().if_contains("warnings"), nullptr);
  const std::string warnings = json::serialize(response.at("warnings"));
  EXPECT_NE(warnings.find("BurstProfiles newer select this pod too; web (the oldest) applies"),
            std::string::npos)
      << warnings;
}

TEST(WebhookProfileTest, BeforeTheLedgerSyncedMaxNumIsNotAppliedAndSaysSo) {
  ProfileFixture f;
  ProfileLedger fresh(f.clock);
  AdmissionWebhook webhook{f.owners, PlacementOptions{}, nullptr, ProfileSources{&f.index, &fresh}};
  server::Request r;
  r.method = "POST";
  r.body = review(webPod());
  const auto out = testing::runSync(f.io, webhook.handle(r));
  const json::value response = json::parse(out.body).at("response");
  EXPECT_TRUE(response.at("allowed").as_bool());
  EXPECT_NE(json::serialize(response.at("warnings")).find("maxNum is not applied"),
            std::string::npos);
}

TEST(WebhookProfileTest, LocalMaxNumDoesNotOverrideANodeSelectorThatExcludesVirtualNodes) {
  ProfileFixture f;
  f.addProfile("web", R"({"strategy":"auto","local":{"maxNum":0}})", "2026-01-01T00:00:00Z");
  json::value pod = webPod();
  pod.as_object()["spec"].as_object()["nodeSelector"] = json::object{{"type", "gpu"}};
  const auto response = f.admit(pod, "adm-1");
  EXPECT_TRUE(response.at("allowed").as_bool());
  EXPECT_NE(json::serialize(response.at("warnings")).find("excludes virtual nodes"),
            std::string::npos);
  EXPECT_EQ(json::serialize(patchOf(response)).find("/spec/nodeSelector/"), std::string::npos);
}

}  // namespace
}  // namespace burstlet::admission
