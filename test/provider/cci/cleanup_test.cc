// cleanupBackend (`burstlet cleanup`): one virtual node's objects go and the backend namespace
// stays while another node (same cluster id) uses it, by its objects or its marker; the last
// node's cleanup, or --all-nodes, deletes the namespace (our Networks first); a namespace that is
// not ours is left alone.
#include "provider/cci/cleanup.h"

#include <gtest/gtest.h>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

inline const std::string kNetworkPath = kNetworks.path(kNs);
inline const std::string kSecrets = resources::kSecrets.path(kNs);
constexpr const char* kNodeB = "node-b";

json::value network(const std::string& name, const json::object& labels) {
  return json::value{{"apiVersion", "networking.cci.io/v1beta1"},
                     {"kind", "Network"},
                     {"metadata", {{"name", name}, {"namespace", kNs}, {"labels", labels}}}};
}

const json::object kOurs{{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, kClusterId}};

CleanupOptions cleanupOf(const std::string& node, bool allNodes = false, bool cci = false) {
  CleanupOptions o;
  o.ns = kNs;
  o.clusterID = kClusterId;
  o.nodeName = node;
  o.allNodes = allNodes;
  o.cciApi = cci;
  o.timeout = std::chrono::seconds(5);
  return o;
}

Result<CleanupReport> cleanup(Harness& h, const CleanupOptions& o) {
  return h.call(cleanupBackend(*h.backend, o, h.clock));
}

std::string errorText(const Result<CleanupReport>& r) {
  return r.ok() ? "ok" : r.error().toString();
}

json::value secret(const std::string& name) {
  return json::value{{"apiVersion", "v1"},
                     {"kind", "Secret"},
                     {"metadata", {{"namespace", "app"}, {"name", name}, {"uid", "s-uid-" + name}}},
                     {"data", {{"key", "dmFsdWU="}}}};
}

// A pod of virtual node `node` that mounts ConfigMap "shared-cm" and Secret "shared-secret".
json::value sharedPod(const std::string& name, const std::string& node) {
  auto pod = clusterPod(name, "uid-" + name);
  auto& spec = pod.as_object()["spec"].as_object();
  spec["nodeName"] = node;
  addConfigMapVolume(pod, "shared-cm");
  spec["volumes"].as_array().push_back(
      json::object{{"name", "s"}, {"secret", json::object{{"secretName", "shared-secret"}}}});
  return pod;
}

// Names of the objects in `collection` labelled `key`=safeLabelValue(node).
std::vector<std::string> labelled(const MemoryApi& api, const std::string& collection,
                                  const std::string& node, const char* key = kNodeLabel) {
  std::vector<std::string> out;
  for (const auto& name : api.names(collection)) {
    auto o = api.get(collection, name);
    if (o && stringAt(*o, {"metadata", "labels", key}) == safeLabelValue(node)) {
      out.push_back(name);
    }
  }
  return out;
}

std::map<std::string, std::string> uidsOf(const MemoryApi& api, const std::string& node) {
  std::map<std::string, std::string> out;
  for (const auto& name : labelled(api, kPods, node)) {
    out[name] = stringAt(*api.get(kPods, name), {"metadata", "uid"});
  }
  return out;
}

bool namespaceDeleteRequested(const MemoryApi& api) {
  for (const auto& r : api.requests()) {
    if (r.method == Verb::delete_ && r.path == kNamespaces + "/" + kNs) {
      return true;
    }
  }
  return false;
}

// Two nodes on one namespace, three pods each mounting the same ConfigMap and Secret (so each
// node has a copy of each), and each node's network-proxy secret.
::testing::AssertionResult twoNodesRunning(Harness& h) {
  if (auto s = h.startAndSettle(); !s) {
    return s;
  }
  if (auto s = h.addNode(kNodeB); !s) {
    return s;
  }
  h.objects.configMaps["app/shared-cm"] = configMap("shared-cm", "v1");
  h.objects.secrets["app/shared-secret"] = secret("shared-secret");
  for (int i = 0; i < 3; ++i) {
    const std::string a = fmt::format("a-{}", i);
    const std::string b = fmt::format("b-{}", i);
    if (auto s = h.createPod(sharedPod(a, kNode)); !s.ok()) {
      return ::testing::AssertionFailure() << a << ": " << test::errorText(s);
    }
    if (auto s = h.call(h.other->createPod(sharedPod(b, kNodeB))); !s.ok()) {
      return ::testing::AssertionFailure() << b << ": " << test::errorText(s);
    }
  }
  for (auto* p : {h.provider.get(), h.other.get()}) {
    if (auto s = h.call(p->putNodeSecret("netproxy", {{"token", "t"}})); !s.ok()) {
      return ::testing::AssertionFailure() << "node secret: " << test::errorText(s);
    }
  }
  return h.settle();
}

TEST(CleanupTest, OneNodeGoesTheOtherNodesPodsCopiesAndTheNamespaceStay) {
  Harness h;
  ASSERT_TRUE(twoNodesRunning(h));
  const auto podsB = uidsOf(h.api, kNodeB);
  ASSERT_EQ(podsB.size(), 3u);
  ASSERT_EQ(labelled(h.api, kPods, kNode).size(), 3u);
  ASSERT_EQ(labelled(h.api, kConfigMaps, kNodeB).size(), 1u);
  ASSERT_EQ(labelled(h.api, kSecrets, kNodeB).size(), 1u);
  ASSERT_TRUE(h.api.get(kConfigMaps, nodeMarkerName(kNode)).has_value());
  ASSERT_TRUE(h.api.get(kConfigMaps, nodeMarkerName(kNodeB)).has_value());

  const auto r = cleanup(h, cleanupOf(kNode));
  ASSERT_TRUE(r.ok()) << errorText(r);
  EXPECT_TRUE(r->namespaceFound);
  EXPECT_FALSE(r->namespaceDeleted);
  EXPECT_EQ(r->otherNodes, std::vector<std::string>{kNodeB});
  const std::map<std::string, int> removed{{"pods", 3},
                                           {"ConfigMap copies", 1},
                                           {"Secret copies", 1},
                                           {"node secrets", 1},
                                           {"node marker", 1}};
  EXPECT_EQ(r->removed, removed);
  // Node A's objects are gone.
  EXPECT_TRUE(labelled(h.api, kPods, kNode).empty());
  EXPECT_TRUE(labelled(h.api, kConfigMaps, kNode).empty());
  EXPECT_TRUE(labelled(h.api, kSecrets, kNode).empty());
  EXPECT_TRUE(labelled(h.api, kSecrets, kNode, kNodeSecretLabel).empty());
  EXPECT_FALSE(h.api.get(kConfigMaps, nodeMarkerName(kNode)).has_value());
  // Node B's are as they were: the same pods, its copies, its secret and marker, the namespace.
  EXPECT_EQ(uidsOf(h.api, kNodeB), podsB);
  EXPECT_EQ(labelled(h.api, kConfigMaps, kNodeB).size(), 1u);
  EXPECT_EQ(labelled(h.api, kSecrets, kNodeB).size(), 1u);
  EXPECT_EQ(labelled(h.api, kSecrets, kNodeB, kNodeSecretLabel).size(), 1u);
  EXPECT_TRUE(h.api.get(kConfigMaps, nodeMarkerName(kNodeB)).has_value());
  EXPECT_TRUE(h.api.get(kNamespaces, kNs).has_value());
  EXPECT_FALSE(namespaceDeleteRequested(h.api));
  const auto lines = describeCleanup(*r, cleanupOf(kNode));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            "removed for virtual node burst-node from backend namespace cce-burst-c1: 3 pods, 1 "
            "ConfigMap copy, 1 Secret copy, 1 node secret, 1 node marker");
  EXPECT_NE(lines[1].find("cce-burst-c1 stays: virtual nodes node-b still use it"),
            std::string::npos)
      << lines[1];

  // The last node's cleanup deletes the namespace, which takes the node's objects along.
  const int podDeletes = h.api.count(Verb::delete_, kPods);
  const auto last = cleanup(h, cleanupOf(kNodeB));
  ASSERT_TRUE(last.ok()) << errorText(last);
  EXPECT_TRUE(last->namespaceDeleted);
  EXPECT_TRUE(last->otherNodes.empty());
  EXPECT_TRUE(last->removed.empty());
  EXPECT_EQ(h.api.count(Verb::delete_, kPods), podDeletes);
  EXPECT_FALSE(h.api.get(kNamespaces, kNs).has_value());
  EXPECT_EQ(describeCleanup(*last, cleanupOf(kNodeB)),
            std::vector<std::string>{"backend namespace cce-burst-c1 is gone, with everything in "
                                     "it: no other virtual node used it"});
}

// Node A's burstlet still runs and makes its pod again (the delete meets a pod of a new uid):
// cleanup says so at once instead of waiting for ever, and the namespace stays.
TEST(CleanupTest, ANodeStillRunningAmongOthersIsReported) {
  Harness h;
  ASSERT_TRUE(twoNodesRunning(h));
  h.api.failNext(Verb::delete_, kPods + "/" + backendName("app", "a-0"), 1, 409, "Conflict");
  const auto r = cleanup(h, cleanupOf(kNode));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "NodeStillRunning");
  EXPECT_NE(r.error().message.find("burstlet still runs"), std::string::npos) << r.error().message;
  EXPECT_TRUE(h.api.get(kNamespaces, kNs).has_value());
  EXPECT_TRUE(h.api.get(kConfigMaps, nodeMarkerName(kNode)).has_value());
  EXPECT_EQ(uidsOf(h.api, kNodeB).size(), 3u);
}

TEST(CleanupTest, AllNodesDeletesTheNamespaceWithEveryNodesObjects) {
  Harness h;
  ASSERT_TRUE(twoNodesRunning(h));
  const auto r = cleanup(h, cleanupOf(kNode, true));
  ASSERT_TRUE(r.ok()) << errorText(r);
  EXPECT_TRUE(r->namespaceDeleted);
  EXPECT_EQ(r->otherNodes, std::vector<std::string>{kNodeB});
  EXPECT_TRUE(namespaceDeleteRequested(h.api));
  EXPECT_FALSE(h.api.get(kNamespaces, kNs).has_value());
  // Nothing deleted one by one: the namespace takes it all.
  EXPECT_EQ(h.api.count(Verb::delete_, kPods), 0);
  EXPECT_EQ(describeCleanup(*r, cleanupOf(kNode, true)),
            std::vector<std::string>{"backend namespace cce-burst-c1 is gone, with everything in "
                                     "it, also of virtual nodes node-b (--all-nodes)"});
}

// A node running no pod still keeps the namespace: its marker says it uses it. The marker names
// the node in full even when its label value is a shortened one.
TEST(CleanupTest, AnotherNodesMarkerAloneKeepsTheNamespace) {
  const std::string longNode =
      "node-b.with-a-rather-long-dns-subdomain-name-past-the-label-limit.example";
  ASSERT_NE(safeLabelValue(longNode), longNode);
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  ASSERT_TRUE(h.addNode(longNode));
  const auto r = cleanup(h, cleanupOf(kNode));
  ASSERT_TRUE(r.ok()) << errorText(r);
  EXPECT_EQ(r->otherNodes, std::vector<std::string>{longNode});
  EXPECT_EQ(r->removed, (std::map<std::string, int>{{"node marker", 1}}));
  EXPECT_TRUE(h.api.get(kNamespaces, kNs).has_value());
  EXPECT_TRUE(h.api.get(kConfigMaps, nodeMarkerName(longNode)).has_value());
}

// The marker each provider writes at start: ours by its labels, not a copy (no node label), so
// the copy sweep never deletes it while it sweeps the copies no pod uses.
TEST(CleanupTest, TheMarkerIsWrittenAtStartAndSurvivesTheSweep) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  const auto marker = h.api.get(kConfigMaps, nodeMarkerName(kNode));
  ASSERT_TRUE(marker.has_value());
  EXPECT_EQ(stringAt(*marker, {"metadata", "labels", kManagedByLabel}), kManagedByValue);
  EXPECT_EQ(stringAt(*marker, {"metadata", "labels", kNodeMarkerLabel}), kNode);
  EXPECT_EQ(stringAt(*marker, {"metadata", "labels", kClusterIdLabel}), kClusterId);
  EXPECT_EQ(stringAt(*marker, {"metadata", "labels", kNodeLabel}), "");
  EXPECT_EQ(stringAt(*marker, {"data", "node"}), kNode);
  ASSERT_TRUE(leaveUnreferencedCopy(h, "old"));
  for (int pass = 1; pass <= 3; ++pass) {
    ASSERT_TRUE(h.sweepPass(pass));
    ASSERT_TRUE(h.settle());
  }
  EXPECT_FALSE(h.copy("old").has_value()) << "the sweep did not run";
  EXPECT_TRUE(h.api.get(kConfigMaps, nodeMarkerName(kNode)).has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps + "/" + nodeMarkerName(kNode)), 0);
}

// A marker there already (an earlier run's, or another replica's of the node) is fine.
TEST(CleanupTest, AMarkerThereAlreadyIsKept) {
  Harness h;
  putOwnedNamespace(h.api);
  h.api.put(
      kConfigMaps,
      json::value{{"metadata",
                   {{"name", nodeMarkerName(kNode)},
                    {"labels", {{kManagedByLabel, kManagedByValue}, {kNodeMarkerLabel, kNode}}}}},
                  {"data", {{"node", kNode}}}});
  ASSERT_TRUE(h.startAndSettle());
  EXPECT_EQ(h.api.count(Verb::post, kConfigMaps), 1);
  EXPECT_EQ(h.api.count(Verb::delete_, kConfigMaps), 0);
}

// A backend that keeps refusing the marker does not keep the node from working: it is tried a
// few times (a refusal may pass, as a terminating namespace's does), then left out.
TEST(CleanupTest, AMarkerRefusedForGoodLeavesTheNodeWorking) {
  Harness h;
  h.api.failNext(Verb::post, kConfigMaps, 100, 403, "Forbidden");
  ASSERT_TRUE(h.startAndSettle(std::chrono::seconds(1)));
  EXPECT_EQ(h.api.count(Verb::post, kConfigMaps), 3);
  EXPECT_FALSE(h.api.get(kConfigMaps, nodeMarkerName(kNode)).has_value());
}

// Outside CCI mode each node's claim copies and their volumes are its own: they go with it.
TEST(CleanupTest, KubernetesBackendVolumesAndClaimsGoPerNode) {
  Harness h;
  putOwnedNamespace(h.api);
  for (const char* node : {kNode, kNodeB}) {
    json::object labels{
        {kManagedByLabel, kManagedByValue}, {kNodeLabel, node}, {kClusterIdLabel, kClusterId}};
    h.api.put(
        claims(),
        json::value{{"metadata", {{"name", std::string("claim-") + node}, {"labels", labels}}}});
    h.api.put(volumes(),
              json::value{{"metadata", {{"name", std::string("pv-") + node}, {"labels", labels}}}});
  }
  const auto r = cleanup(h, cleanupOf(kNode));
  ASSERT_TRUE(r.ok()) << errorText(r);
  EXPECT_EQ(r->removed, (std::map<std::string, int>{{"claim copies", 1}, {"volumes", 1}}));
  EXPECT_EQ(h.api.names(claims()), std::vector<std::string>{"claim-node-b"});
  EXPECT_EQ(h.api.names(volumes()), std::vector<std::string>{"pv-node-b"});
  EXPECT_EQ(r->otherNodes, std::vector<std::string>{kNodeB});

  const auto last = cleanup(h, cleanupOf(kNodeB));
  ASSERT_TRUE(last.ok()) << errorText(last);
  EXPECT_TRUE(last->namespaceDeleted);
  EXPECT_TRUE(h.api.names(volumes()).empty());
}

// CCI mode: a node's imported claims are unbound (never deleted plainly), the other node's stay;
// the Network goes only with the namespace.
TEST(CleanupTest, CciModeUnbindsOnlyTheNodesClaims) {
  Harness h(cciModeOptions());
  putCciBackend(h.api);
  for (const char* node : {kNode, kNodeB}) {
    h.api.put(
        claims(),
        json::value{{"metadata",
                     {{"name", std::string("claim-") + node},
                      {"labels", {{kManagedByLabel, kManagedByValue}, {kNodeLabel, node}}}}}});
  }
  const auto r = cleanup(h, cleanupOf(kNode, false, true));
  ASSERT_TRUE(r.ok()) << errorText(r);
  EXPECT_EQ(r->removed, (std::map<std::string, int>{{"claim copies", 1}}));
  EXPECT_EQ(h.api.names(claims()), std::vector<std::string>{"claim-node-b"});
  EXPECT_EQ(plainClaimDeletes(h.api), 0);
  EXPECT_EQ(h.api.count(Verb::delete_, kNetworkPath), 0);
  EXPECT_EQ(h.api.count(Verb::get, volumes()), 0);  // CCI has no volume API
  EXPECT_TRUE(h.api.get(kNamespaces, kNs).has_value());

  const auto last = cleanup(h, cleanupOf(kNodeB, false, true));
  ASSERT_TRUE(last.ok()) << errorText(last);
  EXPECT_TRUE(last->namespaceDeleted);
  EXPECT_EQ(h.api.count(Verb::delete_, kNetworkPath), 1);
  EXPECT_EQ(plainClaimDeletes(h.api), 0);
  EXPECT_FALSE(h.api.get(kNamespaces, kNs).has_value());
}

TEST(CleanupTest, TheLastNodeDeletesOurNetworksThenTheNamespace) {
  Harness h;
  h.api.put(kNamespaces, json::value{{"metadata", {{"name", kNs}, {"labels", kOurs}}}});
  h.api.put(kNetworkPath, network("burstlet-network", kOurs));
  h.api.put(kNetworkPath, network("hand-made", json::object{{"team", "x"}}));
  const auto r = cleanup(h, cleanupOf(kNode));
  ASSERT_TRUE(r.ok()) << errorText(r);
  EXPECT_TRUE(r->namespaceDeleted);
  EXPECT_FALSE(h.api.get(kNetworkPath, "burstlet-network").has_value());
  EXPECT_FALSE(h.api.get(kNamespaces, kNs).has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kNetworks.path(kNs, "burstlet-network")), 1);
  EXPECT_EQ(h.api.count(Verb::delete_, kNetworks.path(kNs, "hand-made")), 0);
  EXPECT_LT(firstRequest(h.api, Verb::delete_, kNetworkPath),
            firstRequest(h.api, Verb::delete_, kNamespaces));
  EXPECT_TRUE(r->removed.empty());
}

TEST(CleanupTest, LeavesAForeignNamespaceAndItsNetwork) {
  Harness h;
  h.api.put(kNamespaces, json::value{{"metadata", {{"name", kNs}}}});
  h.api.put(kNetworkPath, network("burstlet-network", kOurs));
  for (bool all : {false, true}) {
    const auto r = cleanup(h, cleanupOf(kNode, all));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().reason, "NamespaceNotOwned");
  }
  EXPECT_EQ(h.api.writes(), 0);
}

TEST(CleanupTest, OfNothingIsSuccess) {
  Harness h;
  const auto r = cleanup(h, cleanupOf(kNode));
  ASSERT_TRUE(r.ok()) << errorText(r);
  EXPECT_FALSE(r->namespaceFound);
  EXPECT_EQ(describeCleanup(*r, cleanupOf(kNode)),
            std::vector<std::string>{"backend namespace cce-burst-c1 is gone (it did not exist)"});
}

}  // namespace
}  // namespace burstlet::provider::cci
