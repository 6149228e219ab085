// BurstProfile parsing (every field, every refusal with the field named), label selectors,
// which profile a pod gets when several match, and the index the informer feeds.
#include "admission/profile.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <tuple>

namespace burstlet::admission {
namespace {

namespace json = boost::json;

json::value profile(std::string_view name, std::string_view spec,
                    std::string_view created = "2026-01-01T00:00:00Z") {
  return json::object{
      {"apiVersion", "burstlet.io/v1alpha1"},
      {"kind", "BurstProfile"},
      {"metadata",
       json::object{{"name", name}, {"namespace", "app"}, {"creationTimestamp", created}}},
      {"spec", json::parse(spec)}};
}

TEST(ProfileTest, ParsesEveryField) {
  auto p = parseProfile(profile("batch", R"({
      "selector": {"matchLabels": {"app": "web"},
                   "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
      "strategy": "localPrefer",
      "local": {"maxNum": 3, "scaleDownPriority": 1},
      "burst": {"maxNum": 2, "scaleDownPriority": 10}})"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->key(), "app/batch");
  EXPECT_EQ(p->strategy, Strategy::kLocalPrefer);
  EXPECT_EQ(p->localMax, 3);
  EXPECT_EQ(p->burstMax, 2);
  EXPECT_EQ(p->localScaleDownPriority, 1);
  EXPECT_EQ(p->burstScaleDownPriority, 10);
  ASSERT_EQ(p->selector.matchLabels.size(), 1U);
  ASSERT_EQ(p->selector.matchExpressions.size(), 1U);
  EXPECT_EQ(p->selector.matchExpressions[0].values.size(), 2U);
}

TEST(ProfileTest, OptionalFieldsMayBeAbsent) {
  auto p = parseProfile(profile("p", R"({"strategy": "auto"})"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_FALSE(p->localMax);
  EXPECT_FALSE(p->burstMax);
  EXPECT_FALSE(p->localScaleDownPriority);
  EXPECT_TRUE(p->selector.matchLabels.empty());
  EXPECT_TRUE(matches(p->selector, nullptr));  // an empty selector selects every pod
}

TEST(ProfileTest, RefusalsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"strategy": "sometimes"})", "spec.strategy \"sometimes\""},
      {R"({})", "spec.strategy \"\""},
      {R"({"strategy": "auto", "local": {"maxNum": -1}})", "spec.local.maxNum"},
      {R"({"strategy": "auto", "burst": {"maxNum": "2"}})", "spec.burst.maxNum"},
      {R"({"strategy": "auto", "burst": {"scaleDownPriority": 5000000}})",
       "spec.burst.scaleDownPriority"},
      {R"({"strategy": "auto", "selector": []})", "spec.selector is not an object"},
      {R"({"strategy": "auto", "selector": {"matchLabels": {"a": 1}}})",
       "spec.selector.matchLabels.a"},
      {R"({"strategy": "auto", "selector": {"matchExpressions": [{"key": "a", "operator": "Gt",
          "values": ["1"]}]}})",
       "operator \"Gt\""},
      {R"({"strategy": "auto", "selector": {"matchExpressions": [{"key": "a",
          "operator": "In"}]}})",
       "a In needs values"},
      {R"({"strategy": "auto", "selector": {"matchExpressions": [{"key": "a",
          "operator": "Exists", "values": ["x"]}]}})",
       "a Exists takes no values"},
  };
  for (const auto& [spec, expected] : cases) {
    auto p = parseProfile(profile("bad", spec));
    ASSERT_FALSE(p.ok()) << spec;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(p.error().reason, "InvalidBurstProfile");
    EXPECT_NE(p.error().message.find("BurstProfile app/bad"), std::string::npos)
        << p.error().message;
    EXPECT_NE(p.error().message.find(expected), std::string::npos)
        << spec << " -> " << p.error().message;
  }
  auto noSpec = parseProfile(json::parse(R"({"metadata": {"name": "x", "namespace": "app"}})"));
  ASSERT_FALSE(noSpec.ok());
  EXPECT_NE(noSpec.error().message.find("spec is missing"), std::string::npos);
}

TEST(ProfileTest, SelectorOperators) {
  auto p = parseProfile(profile("p", R"({"strategy": "auto", "selector": {
      "matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]},
                           {"key": "team", "operator": "Exists"},
                           {"key": "legacy", "operator": "DoesNotExist"}]}})"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto labels = [](std::string_view text) { return json::parse(text); };
  const json::value plain = labels(R"({"app":"web","team":"x"})");
  EXPECT_TRUE(matches(p->selector, &plain));
  const json::value ok = labels(R"({"app":"web","team":"x","tier":"front"})");
  EXPECT_TRUE(matches(p->selector, &ok));
  const json::value wrongApp = labels(R"({"app":"api","team":"x"})");
  EXPECT_FALSE(matches(p->selector, &wrongApp));
  const json::value db = labels(R"({"app":"web","team":"x","tier":"db"})");
  EXPECT_FALSE(matches(p->selector, &db));
  const json::value noTeam = labels(R"({"app":"web"})");
  EXPECT_FALSE(matches(p->selector, &noTeam));
  const json::value legacy = labels(R"({"app":"web","team":"x","legacy":""})");
  EXPECT_FALSE(matches(p->selector, &legacy));
  EXPECT_FALSE(matches(p->selector, nullptr));
}

TEST(ProfileTest, OldestMatchingProfileWinsAndTheOthersAreNamed) {
  std::vector<BurstProfile> list;
  for (const auto& [name, created, app] : {std::tuple{"young", "2026-03-01T00:00:00Z", "web"},
                                           std::tuple{"old", "2026-01-01T00:00:00Z", "web"},
                                           std::tuple{"older-other", "2025-01-01T00:00:00Z", "api"},
                                           std::tuple{"also-old", "2026-01-01T00:00:00Z", "web"}}) {
    auto p = parseProfile(profile(
        name,
        fmt::format(R"({{"strategy":"auto","selector":{{"matchLabels":{{"app":"{}"}}}}}})", app),
        created));
    ASSERT_TRUE(p.ok());
    list.push_back(*p);
  }
  const json::value web = json::parse(R"({"app":"web"})");
  std::vector<std::string> others;
  const auto* picked = pickProfile(list, &web, &others);
  ASSERT_NE(picked, nullptr);
  EXPECT_EQ(picked->name, "also-old");  // same time as "old": the name decides
  EXPECT_EQ(others, (std::vector<std::string>{"young", "old"}));
  const json::value db = json::parse(R"({"app":"db"})");
  EXPECT_EQ(pickProfile(list, &db), nullptr);
}

TEST(ProfileIndexTest, UpsertEraseFindAndInvalidProfilesDropped) {
  ProfileIndex index;
  EXPECT_TRUE(index.upsert(profile("a", R"({"strategy":"auto"})")).ok());
  EXPECT_TRUE(index.upsert(profile("b", R"({"strategy":"enforce"})")).ok());
  EXPECT_EQ(index.inNamespace("app").size(), 2U);
  EXPECT_TRUE(index.inNamespace("other").empty());
  ASSERT_TRUE(index.find("app/b"));
  EXPECT_EQ(index.find("app/b")->strategy, Strategy::kEnforce);
  EXPECT_FALSE(index.find("app/c"));
  EXPECT_FALSE(index.find("no-slash"));

  // An update that no longer parses removes the profile rather than keeping the old one.
  auto bad = index.upsert(profile("b", R"({"strategy":"never"})"));
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(index.find("app/b"));
  EXPECT_EQ(index.inNamespace("app").size(), 1U);

  index.erase(profile("a", R"({"strategy":"auto"})"));
  EXPECT_TRUE(index.inNamespace("app").empty());
}

}  // namespace
}  // namespace burstlet::admission
