// Pod fields the backend's Kubernetes release does not know (api_fields.h): one test per row of
// the table, the walk through lists, and provider.cci.backendVersion.
#include "provider/cci/api_fields.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

// A pod that sets exactly `path` (a table path, every list with one element) to a value.
json::value podWith(std::string_view path) {
  json::value pod = json::object{};
  json::value* at = &pod;
  while (!path.empty()) {
    const auto dot = path.find('.');
    std::string_view segment = path.substr(0, dot);
    path = dot == std::string_view::npos ? "" : path.substr(dot + 1);
    const bool list = segment.size() > 2 && segment.substr(segment.size() - 2) == "[]";
    if (list) {
      segment.remove_suffix(2);
    }
    json::value& child = at->as_object()[segment];
    if (path.empty() && !list) {
      child = "set";
      break;
    }
    if (list) {
      child = json::array{json::object{}};
      at = &child.as_array()[0];
      if (path.empty()) {
        break;
      }
    } else {
      child = json::object{};
      at = &child;
    }
  }
  return pod;
}

class NewerFieldTest : public ::testing::TestWithParam<NewerField> {};

TEST_P(NewerFieldTest, RefusedBelowItsReleaseAcceptedFromIt) {
  const NewerField& f = GetParam();
  const json::value pod = podWith(f.path);
  if (!reachesBackend(f.path)) {
    // Under a spec field translation leaves in the cluster: never sent, never refused.
    EXPECT_TRUE(fieldsUnknownTo(pod, 19).empty()) << f.path;
    EXPECT_TRUE(checkBackendFields(pod, 19).ok()) << f.path;
    return;
  }
  const auto below = fieldsUnknownTo(pod, f.minor - 1);
  ASSERT_EQ(below.size(), 1U) << f.path << " in " << json::serialize(pod);
  EXPECT_EQ(below[0].minor, f.minor);
  EXPECT_TRUE(fieldsUnknownTo(pod, f.minor).empty()) << f.path;
  const Status s = checkBackendFields(pod, f.minor - 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().reason, "FieldNotSupportedByBackend");
  EXPECT_NE(s.error().message.find(below[0].path), std::string::npos) << s.error().message;
}

INSTANTIATE_TEST_SUITE_P(Fields, NewerFieldTest,
                         ::testing::ValuesIn(newerPodFields().begin(), newerPodFields().end()),
                         [](const ::testing::TestParamInfo<NewerField>& info) {
                           std::string name;
                           for (char c : info.param.path) {
                             name += std::isalnum(static_cast<unsigned char>(c)) != 0 ? c : '_';
                           }
                           return name;
                         });

TEST(ApiFieldsTest, TableIsOrderedAndAfter119) {
  int last = 0;
  for (const auto& f : newerPodFields()) {
    EXPECT_GT(f.minor, 19) << f.path;
    EXPECT_GE(f.minor, last) << f.path << " is out of order";
    last = f.minor;
  }
}

TEST(ApiFieldsTest, NamesEveryOffendingElementAndItsRelease) {
  const json::value pod = json::parse(R"({"spec":{
      "initContainers":[{"name":"a"},{"name":"sidecar","restartPolicy":"Always"},
                        {"name":"b","restartPolicy":"Always"}],
      "containers":[{"name":"app"}]}})");
  const auto unknown = fieldsUnknownTo(pod, 19);
  ASSERT_EQ(unknown.size(), 2U);
  EXPECT_EQ(unknown[0].path, "spec.initContainers[1].restartPolicy");
  EXPECT_EQ(unknown[1].path, "spec.initContainers[2].restartPolicy");
  const Status s = checkBackendFields(pod, 19);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "the backend's API is Kubernetes 1.19, which would drop these fields without a word "
            "and run the pod otherwise than written: spec.initContainers[1].restartPolicy "
            "(Kubernetes 1.28), spec.initContainers[2].restartPolicy (Kubernetes 1.28)");
}

TEST(ApiFieldsTest, FieldsTheClusterKeepsAreNotChecked) {
  // A Deployment's spreading with matchLabelKeys (1.25) and a scheduling gate (1.26) stay in the
  // cluster; a sidecar goes to the backend.
  EXPECT_FALSE(reachesBackend("spec.topologySpreadConstraints[].matchLabelKeys"));
  EXPECT_FALSE(reachesBackend("spec.schedulingGates"));
  EXPECT_FALSE(
      reachesBackend("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[]."
                     "namespaceSelector"));
  EXPECT_TRUE(reachesBackend("spec.initContainers[].restartPolicy"));
  EXPECT_TRUE(reachesBackend("spec.hostUsers"));
  const json::value pod = json::parse(R"({"spec":{"containers":[{"name":"app"}],
      "topologySpreadConstraints":[{"maxSkew":1,"matchLabelKeys":["pod-template-hash"],
                                    "minDomains":2}],
      "schedulingGates":[{"name":"g"}]}})");
  EXPECT_TRUE(checkBackendFields(pod, 19).ok());
}

TEST(ApiFieldsTest, APodOfOldFieldsAndNullsPasses) {
  const json::value pod = json::parse(R"({"spec":{
      "initContainers":[{"name":"a","restartPolicy":null}],
      "containers":[{"name":"app","image":"i","livenessProbe":{"httpGet":{"port":80}}}],
      "volumes":"not a list"}})");
  EXPECT_TRUE(fieldsUnknownTo(pod, 19).empty());
  EXPECT_TRUE(checkBackendFields(pod, 19).ok());
  EXPECT_TRUE(
      checkBackendFields(podWith("spec.initContainers[].restartPolicy"), std::nullopt).ok());
}

TEST(ApiFieldsTest, BackendVersionSetting) {
  EXPECT_EQ(*backendMinor("", std::nullopt, true), std::optional<int>(19));
  EXPECT_EQ(*backendMinor("", std::nullopt, false), std::nullopt);
  EXPECT_EQ(*backendMinor("", 36, true), std::optional<int>(36));
  EXPECT_EQ(*backendMinor("1.25", 36, true), std::optional<int>(25));
  EXPECT_EQ(*backendMinor("v1.30", std::nullopt, false), std::optional<int>(30));
  EXPECT_EQ(*backendMinor("off", 19, true), std::nullopt);
  for (const char* bad : {"19", "2.1", "1.", "1.x", "v", "1.19.3", "latest"}) {
    auto r = backendMinor(bad, std::nullopt, true);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("provider.cci.backendVersion"), std::string::npos);
  }
}

}  // namespace
}  // namespace burstlet::provider::cci
