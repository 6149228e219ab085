// choose(): every label value on every owner kind, the pod's own label first, then the nearest
// owner, then a profile; invalid values and disagreeing keys refused with the allowed values.
#include "admission/burst_policy.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <vector>

namespace burstlet::admission {
namespace {

namespace json = boost::json;

json::value labels(std::string_view key, std::string_view value) {
  return json::object{{key, value}};
}

TEST(BurstPolicyTest, EveryValueParsesAndNothingElse) {
  EXPECT_EQ(parseStrategy("auto"), Strategy::kAuto);
  EXPECT_EQ(parseStrategy("localPrefer"), Strategy::kLocalPrefer);
  EXPECT_EQ(parseStrategy("enforce"), Strategy::kEnforce);
  EXPECT_EQ(parseStrategy("off"), Strategy::kOff);
  for (const char* bad : {"", "Auto", "localprefer", "on", "true", "enforce "}) {
    EXPECT_FALSE(parseStrategy(bad).has_value()) << bad;
  }
  for (auto s : {Strategy::kAuto, Strategy::kLocalPrefer, Strategy::kEnforce, Strategy::kOff}) {
    EXPECT_EQ(parseStrategy(nameOf(s)), s);
  }
}

// Each value under each key, on the pod and on each owner kind, is found and named in the rule.
TEST(BurstPolicyTest, LabelOnPodOrAnyOwnerKind) {
  const json::value none = json::object{};
  for (const auto key : {kBurstLabel, kBurstLabelCci2}) {
    for (const char* value : {"auto", "localPrefer", "enforce", "off"}) {
      const json::value l = labels(key, value);
      // On the pod itself.
      auto c = choose({"Pod", "p", &l}, {}, std::nullopt);
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(c->strategy, *parseStrategy(value));
      EXPECT_EQ(c->rule, fmt::format("label {}={} on Pod p", key, value));
      // On an owner of each kind (the pod unlabelled).
      for (const char* kind : {"ReplicaSet", "Deployment", "StatefulSet", "Job", "CronJob"}) {
        std::vector<Labelled> owners{{kind, "w", &l}};
        c = choose({"Pod", "p", &none}, owners, std::nullopt);
        ASSERT_TRUE(c.ok());
        EXPECT_EQ(c->strategy, *parseStrategy(value)) << kind;
        EXPECT_EQ(c->rule, fmt::format("label {}={} on {} w", key, value, kind));
      }
    }
  }
}

TEST(BurstPolicyTest, PodBeforeNearestOwnerBeforeFartherBeforeProfile) {
  const json::value podOff = labels(kBurstLabel, "off");
  const json::value rsAuto = labels(kBurstLabel, "auto");
  const json::value depEnforce = labels(kBurstLabelCci2, "enforce");
  const json::value none = json::object{};
  const std::optional<ProfileChoice> profile = ProfileChoice{"batch", Strategy::kLocalPrefer};
  std::vector<Labelled> owners{{"ReplicaSet", "web-1", &rsAuto},
                               {"Deployment", "web", &depEnforce}};

  auto c = choose({"Pod", "p", &podOff}, owners, profile);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->strategy, Strategy::kOff);  // the pod's own label, even off

  c = choose({"Pod", "p", &none}, owners, profile);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->strategy, Strategy::kAuto);

  owners[0].labels = nullptr;  // only the Deployment is labelled (not its template)
  c = choose({"Pod", "p", nullptr}, owners, profile);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->strategy, Strategy::kEnforce);
  EXPECT_EQ(c->rule, "label bursting.cci.io/burst-to-cci=enforce on Deployment web");

  owners[1].labels = &none;
  c = choose({"Pod", "p", nullptr}, owners, profile);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->strategy, Strategy::kLocalPrefer);
  EXPECT_EQ(c->rule, "profile batch");

  c = choose({"Pod", "p", nullptr}, owners, std::nullopt);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->strategy, Strategy::kOff);
  EXPECT_EQ(c->rule, "none");
}

TEST(BurstPolicyTest, UnknownValueIsRefusedWithTheAllowedOnes) {
  const json::value bad = labels(kBurstLabel, "always");
  const json::value none = json::object{};
  std::vector<Labelled> owners{{"Deployment", "web", &bad}};
  auto c = choose({"Pod", "p", &none}, owners, std::nullopt);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(c.error().reason, "InvalidBurstLabel");
  EXPECT_EQ(c.error().message,
            "Deployment web: label virtual-kubelet.io/burst-to-cci=\"always\" is not one of "
            "auto, localPrefer, enforce, off");
}

TEST(BurstPolicyTest, BothKeysMustAgree) {
  json::value both = json::object{{kBurstLabel, "auto"}, {kBurstLabelCci2, "enforce"}};
  auto c = choose({"Pod", "p", &both}, {}, std::nullopt);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("disagree (auto and enforce)"), std::string::npos)
      << c.error().message;
  both.as_object()[kBurstLabelCci2] = "auto";
  c = choose({"Pod", "p", &both}, {}, std::nullopt);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->strategy, Strategy::kAuto);
}

TEST(BurstPolicyTest, NonStringLabelsAreIgnored) {
  const json::value odd = json::object{{kBurstLabel, 1}};
  auto c = choose({"Pod", "p", &odd}, {}, std::nullopt);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->strategy, Strategy::kOff);
}

}  // namespace
}  // namespace burstlet::admission
