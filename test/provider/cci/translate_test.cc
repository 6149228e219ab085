#include "provider/cci/translate.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>
#include <set>

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

const TranslateOptions kOptions{"cce-burst-c1", "burst-node", "10.1.2.3"};

bool isLabelValue(const std::string& s) {
  static const std::regex kValue("^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$");
  return s.size() <= 63 && std::regex_match(s, kValue);
}

// The controller's comparison, ephemeral containers aside: the source pod below has a debug
// container its backend pods lack, which alone calls for an update (checked on its own).
bool needsUpdateApartFromDebug(const json::value& cluster, const json::value& providerPod) {
  json::value withoutDebug = cluster;
  if (auto* spec = withoutDebug.as_object().if_contains("spec"); spec && spec->is_object()) {
    spec->as_object().erase("ephemeralContainers");
  }
  return provider::needsUpdate(withoutDebug, providerPod);
}

// --- pods -------------------------------------------------------------------------------------

const char* kPod = R"({
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {
    "namespace": "shop", "name": "web-0", "uid": "11111111-2222-3333-4444-555555555555",
    "generateName": "web-", "resourceVersion": "42", "creationTimestamp": "2026-01-01T00:00:00Z",
    "labels": {"app": "web"},
    "annotations": {"team": "a"},
    "ownerReferences": [{"kind": "StatefulSet", "name": "web", "uid": "x"}],
    "finalizers": ["f"],
    "managedFields": [{"manager": "kubectl"}]
  },
  "spec": {
    "nodeName": "burst-node",
    "nodeSelector": {"type": "virtual-kubelet"},
    "affinity": {"nodeAffinity": {}},
    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
    "priority": 0, "priorityClassName": "low", "schedulerName": "default-scheduler",
    "preemptionPolicy": "PreemptLowerPriority", "topologySpreadConstraints": [{}],
    "serviceAccountName": "default", "serviceAccount": "default", "runtimeClassName": "kata",
    "overhead": {"cpu": "10m"}, "schedulingGates": [{"name": "g"}], "resourceClaims": [{}],
    "readinessGates": [{"conditionType": "x/ready"}], "enableServiceLinks": true,
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "activeDeadlineSeconds": 600,
    "dnsPolicy": "ClusterFirst", "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
    "subdomain": "web", "shareProcessNamespace": true,
    "securityContext": {"runAsUser": 1000},
    "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["db"]}],
    "os": {"name": "linux"},
    "imagePullSecrets": [{"name": "regcred"}],
    "volumes": [
      {"name": "kube-api-access-abcde", "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
      {"name": "conf", "configMap": {"name": "app.conf"}},
      {"name": "certs", "secret": {"secretName": "tls-certs"}},
      {"name": "bundle", "projected": {"sources": [
        {"configMap": {"name": "bundle-cm"}}, {"secret": {"name": "bundle-secret"}}]}},
      {"name": "data", "persistentVolumeClaim": {"claimName": "sfs-data"}},
      {"name": "scratch", "emptyDir": {}}
    ],
    "initContainers": [{
      "name": "init", "image": "busybox:1",
      "volumeMounts": [{"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/x"}],
      "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "init-secret", "key": "k"}}}]
    }],
    "containers": [{
      "name": "app", "image": "shop/web:2",
      "command": ["/web"], "args": ["--port=8080"],
      "ports": [{"containerPort": 8080}],
      "env": [{"name": "A", "value": "1"},
              {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
              {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "left-cm", "key": "c"}}}],
      "envFrom": [{"configMapRef": {"name": "from-cm"}}, {"secretRef": {"name": "from-secret"}}],
      "resources": {"requests": {"cpu": "500m"}},
      "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
      "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
      "securityContext": {"readOnlyRootFilesystem": true},
      "volumeMounts": [{"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/y"},
                       {"name": "conf", "mountPath": "/etc/conf"},
                       {"name": "data", "mountPath": "/data"}]
    }],
    "ephemeralContainers": [{"name": "debug", "image": "busybox",
      "envFrom": [{"secretRef": {"name": "debug-secret"}}]}]
  },
  "status": {"phase": "Pending"}
})";

json::value translated() {
  auto r = toBackendPod(json::parse(kPod), kOptions);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().toString());
  return r.ok() ? *r : json::value();
}

json::value ref(std::string_view name) { return json::value(copyName("burst-node", "shop", name)); }

TEST(TranslatePodTest, MetadataNamesTheSource) {
  const auto pod = translated();
  EXPECT_EQ(pod.at("apiVersion"), "v1");
  EXPECT_EQ(pod.at("kind"), "Pod");
  const auto& md = pod.at("metadata").as_object();
  EXPECT_EQ(md.at("name"), json::value(backendName("shop", "web-0")));
  EXPECT_EQ(md.at("namespace"), "cce-burst-c1");
  EXPECT_EQ(md.size(), 4U) << json::serialize(md);  // name, namespace, labels, annotations
  const auto& labels = md.at("labels").as_object();
  EXPECT_EQ(labels.at("app"), "web");
  EXPECT_EQ(labels.at(kManagedByLabel), kManagedByValue);
  EXPECT_EQ(labels.at(kNodeLabel), "burst-node");
  EXPECT_EQ(labels.at(kSourceUidLabel), "11111111-2222-3333-4444-555555555555");
  const auto& annotations = md.at("annotations").as_object();
  EXPECT_EQ(annotations.at("team"), "a");
  EXPECT_EQ(annotations.at(kSourceNamespaceAnnotation), "shop");
  EXPECT_EQ(annotations.at(kSourceNameAnnotation), "web-0");
  EXPECT_EQ(annotations.at(kSourceUidAnnotation), "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(json::parse(annotations.at(kContainersAnnotation).as_string()),
            json::parse(R"({"initContainers":["init"],"containers":["app"]})"));
  EXPECT_FALSE(pod.as_object().contains("status"));
}

TEST(TranslatePodTest, KeepsTheWorkloadDropsTheCluster) {
  const auto pod = translated();
  const auto& spec = pod.at("spec").as_object();
  for (const char* kept :
       {"restartPolicy", "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy",
        "dnsConfig", "subdomain", "shareProcessNamespace", "securityContext", "hostAliases", "os",
        "imagePullSecrets", "volumes", "initContainers", "containers"}) {
    EXPECT_TRUE(spec.contains(kept)) << kept;
  }
  for (const char* dropped :
       {"nodeName", "nodeSelector", "affinity", "tolerations", "priority", "priorityClassName",
        "schedulerName", "preemptionPolicy", "topologySpreadConstraints", "serviceAccountName",
        "serviceAccount", "runtimeClassName", "overhead", "schedulingGates", "resourceClaims",
        "readinessGates", "ephemeralContainers"}) {
    EXPECT_FALSE(spec.contains(dropped)) << dropped;
  }
  EXPECT_EQ(spec.at("enableServiceLinks"), false);
  EXPECT_EQ(spec.at("automountServiceAccountToken"), false);
  EXPECT_EQ(spec.at("hostname"), "web-0");
  EXPECT_EQ(spec.at("dnsPolicy"), "ClusterFirst");
  const auto& app = spec.at("containers").at(0).as_object();
  for (const char* kept : {"command", "args", "ports", "resources", "readinessProbe", "lifecycle",
                           "securityContext", "image"}) {
    EXPECT_TRUE(app.contains(kept)) << kept;
  }
  EXPECT_EQ(app.at("env").at(1).at("valueFrom").at("fieldRef").at("fieldPath"), "status.podIP");
}

TEST(TranslatePodTest, ServiceAccountTokenVolumeGoesWithItsMounts) {
  const auto pod = translated();
  const auto& spec = pod.at("spec");
  for (const auto& v : spec.at("volumes").as_array()) {
    EXPECT_NE(v.at("name"), "kube-api-access-abcde");
  }
  EXPECT_EQ(spec.at("volumes").as_array().size(), 5U);
  // The init container mounted only the token: no volumeMounts left at all.
  EXPECT_FALSE(spec.at("initContainers").at(0).as_object().contains("volumeMounts"));
  const auto& mounts = spec.at("containers").at(0).at("volumeMounts").as_array();
  ASSERT_EQ(mounts.size(), 2U);
  EXPECT_EQ(mounts[0].at("name"), "conf");
  EXPECT_EQ(mounts[1].at("name"), "data");
}

TEST(TranslatePodTest, EveryReferencePointsAtTheCopy) {
  const auto pod = translated();
  const auto& spec = pod.at("spec");
  const auto& volumes = spec.at("volumes").as_array();
  auto volume = [&](std::string_view name) -> const json::value& {
    for (const auto& v : volumes) {
      if (v.at("name").as_string() == name) {
        return v;
      }
    }
    ADD_FAILURE() << "no volume " << name;
    static const json::value kNone;
    return kNone;
  };
  EXPECT_EQ(volume("conf").at("configMap").at("name"), ref("app.conf"));
  EXPECT_EQ(volume("certs").at("secret").at("secretName"), ref("tls-certs"));
  EXPECT_EQ(volume("bundle").at("projected").at("sources").at(0).at("configMap").at("name"),
            ref("bundle-cm"));
  EXPECT_EQ(volume("bundle").at("projected").at("sources").at(1).at("secret").at("name"),
            ref("bundle-secret"));
  EXPECT_EQ(volume("data").at("persistentVolumeClaim").at("claimName"), ref("sfs-data"));
  EXPECT_EQ(spec.at("imagePullSecrets").at(0).at("name"), ref("regcred"));
  EXPECT_EQ(
      spec.at("initContainers").at(0).at("env").at(0).at("valueFrom").at("secretKeyRef").at("name"),
      ref("init-secret"));
  const auto& app = spec.at("containers").at(0);
  EXPECT_EQ(app.at("env").at(2).at("valueFrom").at("configMapKeyRef").at("name"), ref("left-cm"));
  EXPECT_EQ(app.at("env").at(2).at("valueFrom").at("configMapKeyRef").at("key"), "c");
  EXPECT_EQ(app.at("envFrom").at(0).at("configMapRef").at("name"), ref("from-cm"));
  EXPECT_EQ(app.at("envFrom").at(1).at("secretRef").at("name"), ref("from-secret"));
}

TEST(TranslatePodTest, HostnameKeptWhenSetAndCutWhenLong) {
  auto pod = json::parse(kPod);
  pod.at("spec").as_object()["hostname"] = "custom";
  EXPECT_EQ(toBackendPod(pod, kOptions)->at("spec").at("hostname"), "custom");
  pod.at("spec").as_object().erase("hostname");
  pod.at("metadata").as_object()["name"] = std::string(70, 'w') + ".v1";
  const auto hostname =
      std::string(toBackendPod(pod, kOptions)->at("spec").at("hostname").as_string());
  EXPECT_EQ(hostname, std::string(63, 'w'));
  pod.at("metadata").as_object()["name"] = "web.v1";
  EXPECT_EQ(toBackendPod(pod, kOptions)->at("spec").at("hostname"), "web-v1");
}

TEST(TranslatePodTest, PodWithoutNameIsInvalid) {
  auto r = toBackendPod(json::parse(R"({"metadata":{"namespace":"a"},"spec":{}})"), kOptions);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  EXPECT_FALSE(toBackendPod(json::value(nullptr), kOptions).ok());
}

TEST(TranslatePodTest, LongNodeNameGivesAValidLabel) {
  TranslateOptions options = kOptions;
  options.nodeName = std::string(80, 'n') + ".cluster.local";
  const auto pod = toBackendPod(json::parse(kPod), options);
  ASSERT_TRUE(pod.ok());
  const std::string v(pod->at("metadata").at("labels").at(kNodeLabel).as_string());
  EXPECT_TRUE(isLabelValue(v)) << v;
  EXPECT_EQ(v, safeLabelValue(options.nodeName));
}

// --- dependencies -----------------------------------------------------------------------------

TEST(TranslateDependenciesTest, EveryPlaceIsRead) {
  const auto deps = dependenciesOf(json::parse(kPod));
  EXPECT_EQ(deps.configMaps,
            (std::set<std::string>{"app.conf", "bundle-cm", "left-cm", "from-cm"}));
  EXPECT_EQ(deps.secrets, (std::set<std::string>{"tls-certs", "bundle-secret", "regcred",
                                                 "init-secret", "from-secret", "debug-secret"}));
  EXPECT_EQ(deps.claims, (std::set<std::string>{"sfs-data"}));
}

TEST(TranslateDependenciesTest, RootCaCountsOutsideTheTokenVolume) {
  auto pod = json::parse(kPod);
  pod.at("spec").at("volumes").as_array().push_back(
      json::parse(R"({"name":"ca","configMap":{"name":"kube-root-ca.crt"}})"));
  EXPECT_TRUE(dependenciesOf(pod).configMaps.contains("kube-root-ca.crt"));
  EXPECT_FALSE(dependenciesOf(json::parse(kPod)).configMaps.contains("kube-root-ca.crt"));
}

TEST(TranslateDependenciesTest, BackendPodGivesBackendNames) {
  const auto deps = dependenciesOf(translated());
  EXPECT_TRUE(deps.configMaps.contains(copyName("burst-node", "shop", "app.conf")));
  EXPECT_TRUE(deps.claims.contains(copyName("burst-node", "shop", "sfs-data")));
  EXPECT_FALSE(deps.secrets.contains(
      copyName("burst-node", "shop", "debug-secret")));  // ephemeral: not created
  EXPECT_TRUE(dependenciesOf(json::value(nullptr)).configMaps.empty());
}

// --- back to the cluster's shape --------------------------------------------------------------

TEST(TranslateSourceTest, SourceRefOfOurPodsOnly) {
  const auto ref = sourceRefOf(translated());
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(*ref, (PodRef{"shop", "web-0", "11111111-2222-3333-4444-555555555555"}));
  EXPECT_FALSE(sourceRefOf(json::parse(R"({"metadata":{"name":"other","annotations":{
      "burstlet.io/source-namespace":"a","burstlet.io/source-name":"b"}}})"))
                   .has_value());
  EXPECT_FALSE(sourceRefOf(json::parse(R"({"metadata":{"name":"x","labels":{
      "burstlet.io/managed-by":"burstlet"}}})"))
                   .has_value());
  // A copy is ours but is no pod.
  auto copy = toBackendConfigMap(
      json::parse(R"({"metadata":{"namespace":"a","name":"b","uid":"u"}})"), kOptions);
  ASSERT_TRUE(copy.ok());
  EXPECT_FALSE(sourceRefOf(*copy).has_value());
  EXPECT_FALSE(sourceRefOf(json::value(nullptr)).has_value());
}

// The backend pod as the backend shows it once running: defaults filled in, a networking sidecar
// injected, its own node address, the normalization's annotations.
json::value runningBackendPod() {
  auto pod = translated();
  auto& md = pod.at("metadata").as_object();
  md["uid"] = "backend-uid";
  md["resourceVersion"] = "99";
  md["annotations"].as_object()["virtual-kubelet.cci.io/burst-pod-cpu"] = "1";
  md["annotations"].as_object()["virtual-kubelet.cci.io/burst-pod-memory"] = "2Gi";
  auto& spec = pod.at("spec").as_object();
  spec["nodeName"] = "backend-node-7";
  spec["containers"].as_array().push_back(
      json::parse(R"({"name":"net-sidecar","image":"mesh:1"})"));
  spec["initContainers"].as_array().push_back(
      json::parse(R"({"name":"net-init","image":"mesh-init:1"})"));
  pod.as_object()["status"] = json::parse(R"({
    "phase": "Running", "qosClass": "Guaranteed", "observedGeneration": 3,
    "hostIP": "192.168.0.9", "hostIPs": [{"ip": "192.168.0.9"}],
    "podIP": "172.16.0.5", "podIPs": [{"ip": "172.16.0.5"}],
    "startTime": "2026-01-01T00:00:05Z",
    "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 3,
                    "lastTransitionTime": "2026-01-01T00:00:09Z"}],
    "initContainerStatuses": [
      {"name": "init", "ready": true, "restartCount": 0, "image": "busybox:1",
       "imageID": "sha256:1", "containerID": "containerd://i1",
       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
      {"name": "net-init", "ready": true, "restartCount": 0,
       "state": {"terminated": {"exitCode": 0}}}],
    "containerStatuses": [
      {"name": "app", "ready": true, "started": true, "restartCount": 1, "image": "shop/web:2",
       "imageID": "sha256:2", "containerID": "containerd://a1",
       "state": {"running": {"startedAt": "2026-01-01T00:00:08Z"}},
       "lastState": {"terminated": {"exitCode": 1}},
       "resources": {"limits": {"cpu": "1"}}, "allocatedResources": {"cpu": "1"}},
      {"name": "net-sidecar", "ready": true, "state": {"running": {}}}]
  })");
  return pod;
}

TEST(TranslateSourceTest, ToSourcePodShowsTheSource) {
  const auto backend = runningBackendPod();
  const auto pod = toSourcePod(backend, nullptr, kOptions);
  const auto& md = pod.at("metadata").as_object();
  EXPECT_EQ(md.at("namespace"), "shop");
  EXPECT_EQ(md.at("name"), "web-0");
  EXPECT_EQ(md.at("uid"), "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(md.at("labels"), json::parse(R"({"app":"web"})"));
  EXPECT_EQ(md.at("annotations"), json::parse(R"({"team":"a"})"));

  const auto& spec = pod.at("spec").as_object();
  EXPECT_EQ(spec.at("nodeName"), "burst-node");
  EXPECT_EQ(spec.at("containers"), json::parse(R"([{"name":"app","image":"shop/web:2"}])"));
  EXPECT_EQ(spec.at("initContainers"), json::parse(R"([{"name":"init","image":"busybox:1"}])"));

  const auto& st = pod.at("status").as_object();
  EXPECT_EQ(st.at("phase"), "Running");
  EXPECT_EQ(st.at("hostIP"), "10.1.2.3");
  EXPECT_EQ(st.at("hostIPs"), json::parse(R"([{"ip":"10.1.2.3"}])"));
  EXPECT_EQ(st.at("podIP"), "172.16.0.5");
  EXPECT_EQ(st.at("startTime"), "2026-01-01T00:00:05Z");
  EXPECT_FALSE(st.contains("qosClass"));
  EXPECT_FALSE(st.contains("observedGeneration"));
  EXPECT_FALSE(st.at("conditions").at(0).as_object().contains("observedGeneration"));
  EXPECT_EQ(st.at("conditions").at(0).at("status"), "True");
  ASSERT_EQ(st.at("containerStatuses").as_array().size(), 1U);
  const auto& app = st.at("containerStatuses").at(0).as_object();
  EXPECT_EQ(app.at("name"), "app");
  EXPECT_EQ(app.at("restartCount"), 1);
  EXPECT_EQ(app.at("containerID"), "containerd://a1");
  EXPECT_EQ(app.at("lastState").at("terminated").at("exitCode"), 1);
  EXPECT_FALSE(app.contains("resources"));
  ASSERT_EQ(st.at("initContainerStatuses").as_array().size(), 1U);
  EXPECT_EQ(st.at("initContainerStatuses").at(0).at("name"), "init");
}

// What a kubelet reports of a running container passes on, in every status list; the sizes
// describe the normalized backend pod and do not.
TEST(TranslateSourceTest, ContainerStatusesKeepWhatTheKubeletReports) {
  const auto reported = json::parse(R"({
    "volumeMounts": [{"name": "conf", "mountPath": "/etc/conf", "readOnly": true,
                      "recursiveReadOnly": "Disabled"}],
    "user": {"linux": {"uid": 1000, "gid": 1000, "supplementalGroups": [1000, 4]}},
    "allocatedResourcesStatus": [{"name": "nvidia.com/gpu",
                                  "resources": [{"resourceID": "gpu-0", "health": "Healthy"}]}],
    "stopSignal": "SIGTERM"
  })");
  auto backend = runningBackendPod();
  auto& st = backend.at("status").as_object();
  st["ephemeralContainerStatuses"] = json::parse(R"([{"name":"debug","state":{"running":{}}}])");
  for (const char* list :
       {"initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"}) {
    auto& first = st.at(list).at(0).as_object();
    for (const auto& [k, v] : reported.as_object()) {
      first[k] = v;
    }
    first["resources"] = json::parse(R"({"requests":{"cpu":"250m","memory":"2Gi"}})");
    first["allocatedResources"] = json::parse(R"({"cpu":"250m","memory":"2Gi"})");
  }
  const auto source = json::parse(kPod);
  const auto pod = toSourcePod(backend, &source, kOptions);
  for (const char* list :
       {"initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"}) {
    SCOPED_TRACE(list);
    const auto& statuses = pod.at("status").at(list).as_array();
    ASSERT_EQ(statuses.size(), 1U);
    const auto& s = statuses[0].as_object();
    for (const auto& [k, v] : reported.as_object()) {
      ASSERT_TRUE(s.contains(k)) << k;
      EXPECT_EQ(s.at(k), v) << k;
    }
    EXPECT_FALSE(s.contains("resources"));
    EXPECT_FALSE(s.contains("allocatedResources"));
  }
}

TEST(TranslateSourceTest, ComparesEqualToTheSource) {
  const auto source = json::parse(kPod);
  const auto pod = toSourcePod(runningBackendPod(), nullptr, kOptions);
  EXPECT_FALSE(needsUpdateApartFromDebug(source, pod));
  EXPECT_TRUE(provider::needsUpdate(source, pod));  // the debug container is to be added
  // ... and the comparison still sees real changes.
  auto relabelled = source;
  relabelled.at("metadata").at("labels").as_object()["app"] = "web2";
  EXPECT_TRUE(needsUpdateApartFromDebug(relabelled, pod));
  auto newImage = source;
  newImage.at("spec").at("containers").at(0).as_object()["image"] = "shop/web:3";
  EXPECT_TRUE(needsUpdateApartFromDebug(newImage, pod));
}

TEST(TranslateSourceTest, ClusterSpecNamesContainersWhenNotRecorded) {
  auto backend = runningBackendPod();
  backend.at("metadata").at("annotations").as_object().erase(kContainersAnnotation);
  // Without the record and without the cluster's spec, nothing tells the sidecar apart.
  auto blind = toSourcePod(backend, nullptr, kOptions);
  EXPECT_EQ(blind.at("status").at("containerStatuses").as_array().size(), 2U);
  const auto source = json::parse(kPod);
  for (const json::value* given : {&source, &source.at("spec")}) {
    const auto pod = toSourcePod(backend, given, kOptions);
    EXPECT_EQ(pod.at("spec").at("containers"),
              json::parse(R"([{"name":"app","image":"shop/web:2"}])"));
    EXPECT_EQ(pod.at("status").at("containerStatuses").as_array().size(), 1U);
    EXPECT_EQ(pod.at("status").at("initContainerStatuses").as_array().size(), 1U);
    EXPECT_FALSE(needsUpdateApartFromDebug(source, pod));
  }
}

TEST(TranslateSourceTest, EphemeralStatusesFollowTheClusterSpec) {
  auto backend = runningBackendPod();
  backend.at("status").as_object()["ephemeralContainerStatuses"] = json::parse(
      R"([{"name":"debug","state":{"running":{}}},{"name":"backend-debug","state":{}}])");
  const auto source = json::parse(kPod);
  const auto pod = toSourcePod(backend, &source, kOptions);
  const auto& eph = pod.at("status").at("ephemeralContainerStatuses").as_array();
  ASSERT_EQ(eph.size(), 1U);
  EXPECT_EQ(eph[0].at("name"), "debug");
}

// kubectl debug's containers go to the backend translated like the pod's containers.
TEST(TranslatePodTest, EphemeralContainersAreTranslatedLikeContainers) {
  auto pod = json::parse(kPod);
  auto& debug = pod.at("spec").at("ephemeralContainers").at(0).as_object();
  debug["volumeMounts"] = json::parse(R"([{"name":"kube-api-access-abcde","mountPath":"/sa"},
      {"name":"conf","mountPath":"/etc/conf"}])");
  debug["env"] = json::parse(
      R"([{"name":"K","valueFrom":{"secretKeyRef":{"name":"debug-secret","key":"k"}}}])");
  debug["resources"] = json::object{};
  const auto out = toBackendEphemeralContainers(pod, kOptions);
  ASSERT_EQ(out.size(), 1U);
  const auto& c = out[0].as_object();
  EXPECT_EQ(c.at("name"), "debug");
  EXPECT_EQ(c.at("image"), "busybox");
  EXPECT_EQ(c.at("volumeMounts"), json::parse(R"([{"name":"conf","mountPath":"/etc/conf"}])"));
  EXPECT_EQ(c.at("envFrom").at(0).at("secretRef").at("name"), ref("debug-secret"));
  EXPECT_EQ(c.at("env").at(0).at("valueFrom").at("secretKeyRef").at("name"), ref("debug-secret"));
  EXPECT_FALSE(c.contains("resources"));
  // Not in the created pod: the API refuses them on create.
  EXPECT_FALSE(translated().at("spec").as_object().contains("ephemeralContainers"));
  EXPECT_TRUE(toBackendEphemeralContainers(json::parse(R"({"spec":{}})"), kOptions).empty());
}

// The ephemeral containers the backend runs are shown (name, image), those it lacks are not.
TEST(TranslateSourceTest, EphemeralContainersTheBackendRuns) {
  auto backend = runningBackendPod();
  backend.at("spec").as_object()["ephemeralContainers"] =
      json::parse(R"([{"name":"debug","image":"busybox","stdin":true}])");
  const auto shown = toSourcePod(backend, nullptr, kOptions);
  EXPECT_EQ(shown.at("spec").at("ephemeralContainers"),
            json::parse(R"([{"name":"debug","image":"busybox"}])"));
  auto source = json::parse(kPod);
  source.at("spec")
      .at("ephemeralContainers")
      .as_array()
      .push_back(json::parse(R"({"name":"later","image":"alpine"})"));
  const auto known = toSourcePod(backend, &source, kOptions);
  EXPECT_EQ(known.at("spec").at("ephemeralContainers").as_array().size(), 1U);
  EXPECT_FALSE(toSourcePod(runningBackendPod(), nullptr, kOptions)
                   .at("spec")
                   .as_object()
                   .contains("ephemeralContainers"));
}

TEST(TranslateSourceTest, PendingPodWithoutStatusAndWithoutInitContainers) {
  auto source = json::parse(kPod);
  source.at("spec").as_object().erase("initContainers");
  auto backend = toBackendPod(source, kOptions);
  ASSERT_TRUE(backend.ok());
  const auto pod = toSourcePod(*backend, nullptr, kOptions);
  EXPECT_FALSE(pod.at("spec").as_object().contains("initContainers"));
  EXPECT_FALSE(pod.at("status").as_object().contains("phase"));
  EXPECT_EQ(pod.at("status").at("hostIP"), "10.1.2.3");
  EXPECT_FALSE(needsUpdateApartFromDebug(source, pod));
}

// What burstlet injects (the network proxy sidecar): run on the backend with the node secret as
// it is, never shown back to the cluster, never a copy.
TEST(TranslatePodTest, InjectedContainerAndVolumeStayBurstletsOwn) {
  auto source = json::parse(R"({
    "metadata": {"namespace": "shop", "name": "web-0", "uid": "u1"},
    "spec": {
      "containers": [{"name": "app", "image": "web:1"},
                     {"name": "burstlet-netproxy", "image": "burstlet:1",
                      "volumeMounts": [{"name": "burstlet-netproxy", "mountPath": "/c"}]}],
      "volumes": [{"name": "conf", "configMap": {"name": "app.conf"}},
                  {"name": "burstlet-netproxy", "secret": {"secretName": "burstlet-netproxy-abc"}}]
    },
    "burstletInjected": {"containers": ["burstlet-netproxy"], "volumes": ["burstlet-netproxy"]}
  })");
  auto backend = toBackendPod(source, kOptions);
  ASSERT_TRUE(backend.ok());
  const auto& spec = backend->at("spec");
  ASSERT_EQ(spec.at("containers").as_array().size(), 2u);
  EXPECT_EQ(spec.at("volumes").at(1).at("secret").at("secretName"), "burstlet-netproxy-abc");
  EXPECT_EQ(spec.at("volumes").at(0).at("configMap").at("name"),
            json::value(copyName("burst-node", "shop", "app.conf")));
  EXPECT_EQ(backend->as_object().if_contains("burstletInjected"), nullptr);
  EXPECT_TRUE(isInjectedContainer(*backend, "burstlet-netproxy"));
  EXPECT_FALSE(isInjectedContainer(*backend, "app"));
  // Only the ConfigMap is a dependency (a copy to make).
  const auto deps = dependenciesOf(source);
  EXPECT_EQ(deps.configMaps, (std::set<std::string>{"app.conf"}));
  EXPECT_TRUE(deps.secrets.empty());
  // The cluster sees its own container only, in the spec and the statuses.
  json::value running = *backend;
  running.as_object()["status"] = json::parse(R"({"phase": "Running", "containerStatuses": [
      {"name": "app", "ready": true, "restartCount": 0},
      {"name": "burstlet-netproxy", "ready": true, "restartCount": 0}]})");
  const auto shown = toSourcePod(running, nullptr, kOptions);
  ASSERT_EQ(shown.at("spec").at("containers").as_array().size(), 1u);
  EXPECT_EQ(shown.at("spec").at("containers").at(0).at("name"), "app");
  ASSERT_EQ(shown.at("status").at("containerStatuses").as_array().size(), 1u);
  EXPECT_EQ(shown.at("status").at("containerStatuses").at(0).at("name"), "app");
}

TEST(TranslateNamesTest, NodeSecretNamesAreNoCopyNames) {
  const std::string a = nodeSecretName("burst-node", "netproxy");
  EXPECT_EQ(a.rfind("burstlet-netproxy-", 0), 0u) << a;
  EXPECT_LE(a.size(), 63u);
  EXPECT_NE(a, nodeSecretName("other-node", "netproxy"));
  EXPECT_NE(a, copyName("burst-node", "burstlet", "netproxy"));
}

}  // namespace
}  // namespace burstlet::provider::cci
