// Copies (ConfigMaps and Secrets), through the provider: ensure before a create, refresh.
#include <gtest/gtest.h>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

// --- ensure ---------------------------------------------------------------------------------

TEST(CopiesTest, MissingConfigMapWaitsAndWakesThePod) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "x");
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "CreateContainerConfigError");
  EXPECT_EQ(s.error().message, "configmap \"x\" not found");
  EXPECT_TRUE(s.error().code == ErrorCode::kNotFound || isRetryable(s.error().code));
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
  EXPECT_EQ(copyPosts(h.api), 0);

  // Another object changing wakes nobody.
  h.provider->clusterObjectChanged(
      "ConfigMap", json::value{{"metadata", {{"namespace", "app"}, {"name", "y"}}}});
  h.provider->clusterObjectChanged(
      "Secret", json::value{{"metadata", {{"namespace", "app"}, {"name", "x"}}}});
  EXPECT_TRUE(h.notified.empty());

  h.objects.configMaps["app/x"] = configMap("x", "v1");
  h.provider->clusterObjectChanged(
      "ConfigMap", json::value{{"metadata", {{"namespace", "app"}, {"name", "x"}}}});
  ASSERT_EQ(h.notified.size(), 1u);
  EXPECT_EQ(h.notified[0].ns, "app");
  EXPECT_EQ(h.notified[0].name, "web");
  // Woken once: the pod is not waiting any more until it fails again.
  h.provider->clusterObjectChanged(
      "ConfigMap", json::value{{"metadata", {{"namespace", "app"}, {"name", "x"}}}});
  EXPECT_EQ(h.notified.size(), 1u);

  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_TRUE(h.copy("x").has_value());
  EXPECT_TRUE(h.backendPod("app", "web").has_value());
}

TEST(CopiesTest, MissingSecretVolumeIsReportedAsSecret) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  pod.as_object()["spec"].as_object()["volumes"] =
      json::array{json::object{{"name", "s"}, {"secret", {{"secretName", "token"}}}}};
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "CreateContainerConfigError");
  EXPECT_EQ(s.error().message, "secret \"token\" not found");
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
}

TEST(CopiesTest, MissingOptionalConfigMapDoesNotBlockCreate) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "maybe", true);
  auto s = h.createPod(pod);
  ASSERT_TRUE(s.ok()) << errorText(s);
  EXPECT_TRUE(h.backendPod("app", "web").has_value());
  EXPECT_EQ(copyPosts(h.api), 0);
}

TEST(CopiesTest, FailedCopyStopsTheCreate) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/cfg"] = configMap("cfg", "v1");
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  h.api.failNext(Verb::post, kConfigMaps, 1, 500);
  auto s = h.createPod(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 0);
  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_TRUE(h.copy("cfg").has_value());
}

// The cluster's ServiceAccount token volume does not go to the backend, nor the
// kube-root-ca.crt it projects.
TEST(CopiesTest, CreateIgnoresTheServiceAccountTokenVolume) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto pod = clusterPod("web", "u1");
  pod.as_object()["spec"].as_object()["volumes"] = json::array{json::object{
      {"name", "kube-api-access-x"},
      {"projected",
       {{"sources", json::array{json::object{{"serviceAccountToken", {{"path", "token"}}}},
                                json::object{{"configMap", {{"name", "kube-root-ca.crt"}}}}}}}}}};
  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_EQ(copyPosts(h.api), 0);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 1);
}

// Pods sharing a ConfigMap start together: a copy another create made a moment ago (not yet
// in the informer) is read, not written again.
TEST(CopiesTest, CopyMadeByAnotherCreateIsReadNotRewritten) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/shared"] = configMap("shared", "1");
  h.api.holdWatches(true);
  auto copy =
      toBackendConfigMap(h.objects.configMaps["app/shared"], TranslateOptions{kNs, kNode, ""});
  ASSERT_TRUE(copy.ok());
  h.api.put(kConfigMaps, *copy);
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "shared");
  ASSERT_TRUE(h.createPod(pod).ok());
  EXPECT_EQ(copyPosts(h.api), 1);  // answered 409 AlreadyExists
  EXPECT_EQ(h.api.count(Verb::put, kConfigMaps), 0);
  EXPECT_EQ(h.api.count(Verb::post, kPods), 1);
  h.api.holdWatches(false);
}

// An immutable copy made a moment ago (not in the informer yet) whose source was re-created:
// the copy is replaced, and the pod is not refused.
TEST(CopiesTest, ImmutableCopyNotYetListedIsReplaced) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto cm = configMap("cfg", "v1");
  cm.as_object()["immutable"] = true;
  h.objects.configMaps["app/cfg"] = cm;
  auto podA = clusterPod("pa", "ua");
  addConfigMapVolume(podA, "cfg");
  h.api.holdWatches(true);
  ASSERT_TRUE(h.createPod(podA).ok());
  auto again = configMap("cfg", "v2");
  again.as_object()["immutable"] = true;
  again.as_object()["metadata"].as_object()["uid"] = "cm-uid-cfg-2";
  h.objects.configMaps["app/cfg"] = again;
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "cfg");
  auto s = h.createPod(podB);
  h.api.holdWatches(false);
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"data", "key"}), "v2");
}

// An immutable ConfigMap changes only by being deleted and created again; its copy, immutable
// too, must then be replaced, not updated (which the API refuses with 422).
TEST(CopiesTest, RecreatedImmutableConfigMapReplacesCopyOnCreate) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto cm = configMap("cfg", "v1");
  cm.as_object()["immutable"] = true;
  h.objects.configMaps["app/cfg"] = cm;
  auto podA = clusterPod("pa", "ua");
  addConfigMapVolume(podA, "cfg");
  ASSERT_TRUE(h.createPod(podA).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_EQ(stringAt(*h.copy("cfg"), {"immutable"}), "true");

  auto again = configMap("cfg", "v2");
  again.as_object()["immutable"] = true;
  again.as_object()["metadata"].as_object()["uid"] = "cm-uid-cfg-2";
  h.objects.configMaps["app/cfg"] = again;
  auto podB = clusterPod("pb", "ub");
  addConfigMapVolume(podB, "cfg");
  auto s = h.createPod(podB);
  ASSERT_TRUE(s.ok()) << errorText(s);
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"data", "key"}), "v2");
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"metadata", "annotations", kSourceUidAnnotation}),
            "cm-uid-cfg-2");
  EXPECT_TRUE(h.backendPod("app", "pb").has_value());
}

// --- refresh --------------------------------------------------------------------------------

TEST(CopiesTest, ChangedConfigMapRefreshesItsCopy) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  h.objects.configMaps["app/cfg"] = configMap("cfg", "v1");
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_EQ(h.api.count(Verb::put), 0);

  h.objects.configMaps["app/cfg"] = configMap("cfg", "v2");
  h.provider->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/cfg"]);
  ASSERT_TRUE(h.runUntil([&] { return h.api.count(Verb::put, kConfigMaps) == 1; }));
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"data", "key"}), "v2");
  EXPECT_EQ(h.provider->stats().copyUpdates.load(), 1u);
  ASSERT_TRUE(h.settle());

  // Unchanged: read, compared, left alone.
  const int reads = h.objects.reads;
  h.provider->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/cfg"]);
  ASSERT_TRUE(h.runUntil([&] { return h.objects.reads > reads; }));
  h.runFor(std::chrono::milliseconds(100));
  EXPECT_EQ(h.api.count(Verb::put), 1);

  // A ConfigMap nobody copied is not even read.
  h.objects.configMaps["app/other"] = configMap("other", "v1");
  const int before = h.objects.reads;
  h.provider->clusterObjectChanged("ConfigMap", h.objects.configMaps["app/other"]);
  h.runFor(std::chrono::milliseconds(100));
  EXPECT_EQ(h.objects.reads, before);
  EXPECT_EQ(h.api.count(Verb::put), 1);
}

TEST(CopiesTest, RecreatedImmutableConfigMapReplacesCopyOnChange) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  auto cm = configMap("cfg", "v1");
  cm.as_object()["immutable"] = true;
  h.objects.configMaps["app/cfg"] = cm;
  auto pod = clusterPod("web", "u1");
  addConfigMapVolume(pod, "cfg");
  ASSERT_TRUE(h.createPod(pod).ok());
  ASSERT_TRUE(h.settle());

  auto again = configMap("cfg", "v2");
  again.as_object()["immutable"] = true;
  again.as_object()["metadata"].as_object()["uid"] = "cm-uid-cfg-2";
  h.objects.configMaps["app/cfg"] = again;
  h.provider->clusterObjectChanged("ConfigMap", again);
  ASSERT_TRUE(h.runUntil([&] {
    auto copy = h.copy("cfg");
    return copy && stringAt(*copy, {"data", "key"}) == "v2";
  }));
  EXPECT_EQ(stringAt(*h.copy("cfg"), {"immutable"}), "true");
}

}  // namespace
}  // namespace burstlet::provider::cci
