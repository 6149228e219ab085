// placementPatch() and decide(): the JSON patch per strategy and pod shape (applied here to check
// the result, not only the operations), DaemonSet pods, pods the backend cannot run, conflicts.
#include "admission/placement.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <vector>

#include "kube/json_path.h"
#include "mocks/json_patch_apply.h"

namespace burstlet::admission {
namespace {

namespace json = boost::json;

// Applies the operations (all "add", as placementPatch makes) to a copy of `doc`.
json::value apply(json::value doc, const json::array& ops) {
  for (const auto& op : ops) {
    EXPECT_EQ(kube::stringAt(op, {"op"}), "add");
  }
  auto r = testing::applyJsonPatch(std::move(doc), ops);
  EXPECT_EQ(r.error, "");
  return std::move(r.doc);
}

json::value pod(json::object spec = {}) {
  return json::object{{"metadata", json::object{{"name", "p"}}}, {"spec", std::move(spec)}};
}

const PlacementOptions kOptions;

int tolerationsFor(const json::value& p, std::string_view key) {
  int n = 0;
  if (const auto* list = kube::at(p, {"spec", "tolerations"})) {
    for (const auto& t : list->as_array()) {
      n += kube::stringAt(t, {"key"}) == key ? 1 : 0;
    }
  }
  return n;
}

// Every strategy on a bare pod and on a pod that already has every list and map it touches.
TEST(PlacementTest, EachStrategyOnEachPodShape) {
  const json::value bare = pod();
  const json::value full = json::value{
      {"metadata", {{"name", "p"}, {"annotations", {{"team", "a"}}}}},
      {"spec",
       {{"tolerations", json::array{json::object{{"key", "gpu"}, {"operator", "Exists"}}}},
        {"nodeSelector", {{"disk", "ssd"}}},
        {"affinity",
         {{"nodeAffinity",
           {{"preferredDuringSchedulingIgnoredDuringExecution",
             json::array{json::object{
                 {"weight", 5},
                 {"preference",
                  {{"matchExpressions",
                    json::array{json::object{{"key", "zone"},
                                             {"operator", "In"},
                                             {"values", json::array{"a"}}}}}}}}}}}}}}}}};
  for (const auto& p : {bare, full}) {
    for (auto s : {Strategy::kAuto, Strategy::kLocalPrefer, Strategy::kEnforce}) {
      const Choice c{s, "label x"};
      const json::value out = apply(p, placementPatch(p, c, kOptions));
      EXPECT_EQ(tolerationsFor(out, kOptions.taintKey), 1);
      EXPECT_EQ(tolerationsFor(out, kOptions.preferenceTaintKey), s == Strategy::kEnforce ? 1 : 0);
      EXPECT_EQ(kube::stringAt(out, {"spec", "nodeSelector", "type"}),
                s == Strategy::kEnforce ? "virtual-kubelet" : "");
      const auto* preferred = kube::at(out, {"spec", "affinity", "nodeAffinity",
                                             "preferredDuringSchedulingIgnoredDuringExecution"});
      const size_t had = p == full ? 1 : 0;
      const size_t terms = preferred != nullptr ? preferred->as_array().size() : 0;
      EXPECT_EQ(terms, had + (s == Strategy::kLocalPrefer ? 1 : 0));
      if (s == Strategy::kLocalPrefer) {
        const auto& ours = preferred->as_array().back();
        EXPECT_EQ(kube::at(ours, {"weight"})->as_int64(), 100);
        EXPECT_EQ(json::serialize(*kube::at(ours, {"preference", "matchExpressions"})),
                  R"([{"key":"type","operator":"NotIn","values":["virtual-kubelet"]}])");
      }
      EXPECT_EQ(kube::stringAt(out, {"metadata", "annotations", "burstlet.io/burst-rule"}),
                "label x");
      if (p == full) {  // what was there stays
        EXPECT_EQ(tolerationsFor(out, "gpu"), 1);
        EXPECT_EQ(kube::stringAt(out, {"spec", "nodeSelector", "disk"}), "ssd");
        EXPECT_EQ(kube::stringAt(out, {"metadata", "annotations", "team"}), "a");
      }
    }
  }
}

TEST(PlacementTest, OffChangesNothing) {
  EXPECT_TRUE(placementPatch(pod(), Choice{Strategy::kOff, "none"}, kOptions).empty());
}

// A pod that tolerates every taint already (operator Exists without a key) gets no toleration.
TEST(PlacementTest, ExistingTolerationIsNotRepeated) {
  const json::value p = pod({{"tolerations", json::array{json::object{{"operator", "Exists"}}}}});
  const auto ops = placementPatch(p, Choice{Strategy::kEnforce, "r"}, kOptions);
  const json::value out = apply(p, ops);
  EXPECT_EQ(kube::at(out, {"spec", "tolerations"})->as_array().size(), 1U);
}

TEST(PlacementTest, ExistingAffinityWithoutNodeAffinityGetsOne) {
  const json::value p = pod({{"affinity", {{"podAntiAffinity", json::object{}}}}});
  const json::value out =
      apply(p, placementPatch(p, Choice{Strategy::kLocalPrefer, "r"}, kOptions));
  EXPECT_NE(kube::at(out, {"spec", "affinity", "podAntiAffinity"}), nullptr);
  EXPECT_EQ(kube::at(out, {"spec", "affinity", "nodeAffinity",
                           "preferredDuringSchedulingIgnoredDuringExecution"})
                ->as_array()
                .size(),
            1U);
}

json::value daemonSet(json::object podSpec) {
  return json::object{{"metadata", {{"name", "agent"}}},
                      {"spec", {{"template", {{"spec", std::move(podSpec)}}}}}};
}

const char* kExclusion = R"({"key":"type","operator":"NotIn","values":["virtual-kubelet"]})";

// A DaemonSet that tolerates every taint is kept off virtual nodes; in each of its node
// selector terms, once.
TEST(DaemonSetPatchTest, TolerateAllGetsTheExclusionInEveryTerm) {
  const json::array tolerateAll{json::object{{"operator", "Exists"}}};
  // No affinity at all.
  json::value ds = daemonSet({{"tolerations", tolerateAll}});
  json::value out = apply(ds, daemonSetPatch(ds, kOptions));
  const auto* terms =
      kube::at(out, {"spec", "template", "spec", "affinity", "nodeAffinity",
                     "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"});
  ASSERT_NE(terms, nullptr);
  EXPECT_EQ(json::serialize(*terms), std::string("[{\"matchExpressions\":[") + kExclusion + "]}]");
  EXPECT_TRUE(daemonSetPatch(out, kOptions).empty());  // idempotent: an update adds nothing
  // Two terms, one without expressions: both get it.
  ds = daemonSet(
      {{"tolerations", tolerateAll},
       {"affinity",
        {{"nodeAffinity",
          {{"requiredDuringSchedulingIgnoredDuringExecution",
            {{"nodeSelectorTerms",
              json::array{
                  json::object{
                      {"matchExpressions",
                       json::array{json::object{
                           {"key", "os"}, {"operator", "In"}, {"values", json::array{"linux"}}}}}},
                  json::object{{"matchFields", json::array{}}}}}}}}}}}});
  out = apply(ds, daemonSetPatch(ds, kOptions));
  terms = kube::at(out, {"spec", "template", "spec", "affinity", "nodeAffinity",
                         "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"});
  ASSERT_EQ(terms->as_array().size(), 2U);
  for (const auto& t : terms->as_array()) {
    EXPECT_NE(json::serialize(t).find(kExclusion), std::string::npos) << t;
  }
  EXPECT_TRUE(daemonSetPatch(out, kOptions).empty());
}

TEST(DaemonSetPatchTest, DaemonSetWithoutTheTolerationIsLeftAlone) {
  const json::value ds = daemonSet(
      {{"tolerations", json::array{json::object{{"key", "gpu"}, {"operator", "Exists"}}}}});
  EXPECT_TRUE(daemonSetPatch(ds, kOptions).empty());
  EXPECT_TRUE(daemonSetPatch(json::value{{"spec", json::object{}}}, kOptions).empty());
}

json::value labelled(std::string_view value) {
  json::value p = pod();
  p.as_object()["metadata"].as_object()["labels"] = json::object{{kBurstLabel, value}};
  return p;
}

TEST(DecideTest, AllowedWithThePatchAndTheRule) {
  const auto d = decide(labelled("auto"), {}, std::nullopt, kOptions, nullptr);
  EXPECT_TRUE(d.allowed);
  EXPECT_FALSE(d.patch.empty());
  EXPECT_EQ(d.choice.rule, "label virtual-kubelet.io/burst-to-cci=auto on Pod p");
}

TEST(DecideTest, InvalidLabelIsDenied) {
  const auto d = decide(labelled("yes"), {}, std::nullopt, kOptions, nullptr);
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.message.find("is not one of auto, localPrefer, enforce, off"), std::string::npos);
  EXPECT_TRUE(d.patch.empty());
}

TEST(DecideTest, DaemonSetPodsAreNeverEligible) {
  const json::value dsLabels = json::object{{kBurstLabel, "enforce"}};
  std::vector<Labelled> owners{{"DaemonSet", "agent", &dsLabels}};
  const auto d = decide(pod(), owners, std::nullopt, kOptions, nullptr);
  EXPECT_TRUE(d.allowed);
  EXPECT_TRUE(d.patch.empty());
  ASSERT_EQ(d.warnings.size(), 1U);
  EXPECT_NE(d.warnings[0].find("DaemonSet pods never run on virtual nodes"), std::string::npos);
}

TEST(DecideTest, WhatTheBackendCannotRun) {
  const BackendCheck hostNetwork = [](const json::value&) {
    return std::string("hostNetwork is not supported on CCI");
  };
  // enforce: denied, naming the rule and the reason.
  auto d = decide(labelled("enforce"), {}, std::nullopt, kOptions, hostNetwork);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.message,
            "label virtual-kubelet.io/burst-to-cci=enforce on Pod p is enforce, but the backend "
            "cannot run this pod: hostNetwork is not supported on CCI");
  // auto and localPrefer: local, with a warning.
  for (const char* v : {"auto", "localPrefer"}) {
    d = decide(labelled(v), {}, std::nullopt, kOptions, hostNetwork);
    EXPECT_TRUE(d.allowed) << v;
    EXPECT_TRUE(d.patch.empty()) << v;
    ASSERT_EQ(d.warnings.size(), 1U) << v;
    EXPECT_NE(d.warnings[0].find("stays on ordinary nodes"), std::string::npos);
  }
}

TEST(DecideTest, EnforceAgainstAnotherNodeSelectorIsDenied) {
  json::value p = labelled("enforce");
  p.as_object()["spec"].as_object()["nodeSelector"] = json::object{{"type", "gpu"}};
  const auto d = decide(p, {}, std::nullopt, kOptions, nullptr);
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.message.find("nodeSelector type=gpu excludes virtual nodes"), std::string::npos);
}

TEST(DecideTest, ProfileAppliesWithoutLabels) {
  const auto d = decide(pod(), {}, ProfileChoice{"batch", Strategy::kEnforce}, kOptions, nullptr);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.choice.rule, "profile batch");
  const json::value out = apply(pod(), d.patch);
  EXPECT_EQ(kube::stringAt(out, {"spec", "nodeSelector", "type"}), "virtual-kubelet");
}

}  // namespace
}  // namespace burstlet::admission
