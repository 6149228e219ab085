#include "provider/provider.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::provider {
namespace {

namespace json = boost::json;

// A pod as the cluster has it; the status does not matter here.
json::value clusterPod(std::string_view /*status*/) {
  static const char* kPod = R"({"metadata":{"namespace":"ns","name":"p","uid":"u1",
      "labels":{"app":"a"}},"spec":{"containers":[{"name":"c","image":"img:1"}]}})";
  return json::parse(kPod);
}

TEST(ProviderTest, PodRefOfReadsTheMetadata) {
  EXPECT_EQ(podRefOf(clusterPod("{}")), (PodRef{"ns", "p", "u1"}));
  EXPECT_EQ(podRefOf(json::parse("{}")), PodRef{});
}

TEST(ProviderTest, ProviderUpdateOnLabelsAnnotationsOrImages) {
  auto pod = clusterPod(R"({})");
  EXPECT_FALSE(needsUpdate(pod, clusterPod(R"({})")));
  auto relabeled = pod;
  relabeled.at("metadata").as_object()["labels"] = json::object{{"app", "b"}};
  EXPECT_TRUE(needsUpdate(pod, relabeled));
  auto annotated = pod;
  annotated.at("metadata").as_object()["annotations"] = json::object{{"k", "v"}};
  EXPECT_TRUE(needsUpdate(pod, annotated));
  auto emptyAnnotations = pod;
  emptyAnnotations.at("metadata").as_object()["annotations"] = json::object{};
  EXPECT_FALSE(needsUpdate(pod, emptyAnnotations));
  auto reimaged = pod;
  reimaged.at("spec").at("containers").at(0).as_object()["image"] = "img:2";
  EXPECT_TRUE(needsUpdate(pod, reimaged));
  auto otherField = pod;
  otherField.at("spec").at("containers").at(0).as_object()["args"] = json::array{"x"};
  EXPECT_FALSE(needsUpdate(pod, otherField));
}

TEST(ProviderTest, ProviderUpdateForANewEphemeralContainer) {
  auto pod = clusterPod(R"({})");
  auto provider = pod;
  pod.at("spec").as_object()["ephemeralContainers"] =
      json::parse(R"([{"name":"debugger","image":"busybox"}])");
  EXPECT_TRUE(needsUpdate(pod, provider));
  provider.at("spec").as_object()["ephemeralContainers"] =
      json::parse(R"([{"name":"debugger","image":"busybox"}])");
  EXPECT_FALSE(needsUpdate(pod, provider));
}

}  // namespace
}  // namespace burstlet::provider
