#include "pod/env.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/base64.h"

namespace burstlet::pod {
namespace {

namespace json = boost::json;

// ConfigMaps, Secrets and Services by namespace, counting lookups.
class FakeSources : public EnvSources {
 public:
  std::optional<json::object> configMap(const std::string& ns, const std::string& name) override {
    ++configMapLookups;
    auto it = configMaps_.find(ns + "/" + name);
    return it != configMaps_.end() ? std::optional<json::object>(it->second) : std::nullopt;
  }
  std::optional<json::object> secret(const std::string& ns, const std::string& name) override {
    ++secretLookups;
    auto it = secrets_.find(ns + "/" + name);
    return it != secrets_.end() ? std::optional<json::object>(it->second) : std::nullopt;
  }
  std::vector<json::value> services(const std::string& ns) override {
    serviceLookups.push_back(ns);
    auto it = services_.find(ns);
    return it != services_.end() ? it->second : std::vector<json::value>{};
  }

  void addConfigMap(const std::string& ns, const std::string& name, std::string_view data,
                    std::string_view binaryData = "{}") {
    json::object cm = meta("ConfigMap", ns, name);
    cm["data"] = json::parse(data);
    cm["binaryData"] = json::parse(binaryData);
    configMaps_[ns + "/" + name] = cm;
  }
  void addSecret(const std::string& ns, const std::string& name,
                 const std::map<std::string, std::string>& plain) {
    json::object data;
    for (const auto& [k, v] : plain) {
      data[k] = base64Encode(v);
    }
    addRawSecret(ns, name, data);
  }
  void addRawSecret(const std::string& ns, const std::string& name, json::object data) {
    json::object s = meta("Secret", ns, name);
    s["type"] = "Opaque";
    s["data"] = std::move(data);
    secrets_[ns + "/" + name] = s;
  }
  void addService(const std::string& ns, const std::string& name, const std::string& clusterIP,
                  std::string_view ports) {
    json::object svc = meta("Service", ns, name);
    json::object spec;
    spec["type"] = clusterIP.empty() ? "ExternalName" : "ClusterIP";
    if (!clusterIP.empty()) {
      spec["clusterIP"] = clusterIP;
    }
    spec["ports"] = json::parse(ports);
    svc["spec"] = std::move(spec);
    services_[ns].emplace_back(std::move(svc));
  }

  int configMapLookups = 0;
  int secretLookups = 0;
  std::vector<std::string> serviceLookups;

 private:
  static json::object meta(std::string_view kind, const std::string& ns, const std::string& name) {
    json::object o;
    o["apiVersion"] = "v1";
    o["kind"] = kind;
    o["metadata"] = json::object{{"name", name}, {"namespace", ns}, {"resourceVersion", "4711"}};
    return o;
  }
  std::map<std::string, json::object> configMaps_;
  std::map<std::string, json::object> secrets_;
  std::map<std::string, std::vector<json::value>> services_;
};

// A pod of namespace "shop" scheduled on the virtual node. `app` is the JSON of the app
// container's fields besides name and image; `spec` extra fields of the pod spec.
json::value makePod(std::string_view app, std::string_view spec = "") {
  std::string text = R"js({
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
      "name": "web-7d9c5b6f4-x2x9k",
      "namespace": "shop",
      "uid": "6f1c2d3e-1111-4a5b-9c8d-0123456789ab",
      "labels": {"app": "web", "pod-template-hash": "7d9c5b6f4"},
      "annotations": {"team": "payments", "example.com/owner": "alice"}
    },
    "spec": {
      "nodeName": "burstlet-cci",
      "serviceAccountName": "web",
      "containers": [
        {"name": "app", "image": "registry.example.com/shop/web:1.4.2" APP},
        {"name": "sidecar", "image": "envoyproxy/envoy:v1.29.0"}
      ],
      "initContainers": [
        {"name": "migrate", "image": "registry.example.com/shop/migrate:1.4.2",
         "env": [{"name": "STAGE", "value": "init"}]}
      ],
      "ephemeralContainers": [
        {"name": "debugger", "image": "busybox:1.36",
         "env": [{"name": "TARGET", "value": "$(HOSTNAME_HINT)"}]}
      ] SPEC
    },
    "status": {
      "phase": "Pending",
      "hostIP": "192.168.10.21",
      "hostIPs": [{"ip": "192.168.10.21"}],
      "podIP": "10.244.3.17",
      "podIPs": [{"ip": "10.244.3.17"}, {"ip": "fd00:10:244::17"}]
    }
  })js";
  const auto replace = [&](std::string_view marker, std::string_view with) {
    const size_t at = text.find(marker);
    const std::string insert = with.empty() ? "" : ", " + std::string(with);
    text.replace(at, marker.size(), insert);
  };
  replace("APP", app);
  replace("SPEC", spec);
  return json::parse(text);
}

std::optional<std::string> valueOf(const std::vector<EnvVar>& vars, std::string_view name) {
  for (const auto& v : vars) {
    if (v.name == name) {
      return v.value;
    }
  }
  return std::nullopt;
}

std::vector<std::string> namesOf(const std::vector<EnvVar>& vars) {
  std::vector<std::string> names;
  names.reserve(vars.size());
  for (const auto& v : vars) {
    names.push_back(v.name);
  }
  return names;
}

class EnvTest : public ::testing::Test {
 protected:
  Result<EnvResult> resolve(const json::value& pod, std::string_view container = "app") {
    return resolveEnvironment(pod, container, sources_, options_);
  }
  // The resolved variables of the app container, failing the test on an error.
  std::vector<EnvVar> vars(std::string_view app, std::string_view spec = "") {
    auto r = resolve(makePod(app, spec));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().toString());
    return r.ok() ? r->vars : std::vector<EnvVar>{};
  }
  Error failure(std::string_view app, std::string_view container = "app") {
    auto r = resolve(makePod(app), container);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Error{} : r.error();
  }

  FakeSources sources_;
  EnvOptions options_;
};

TEST_F(EnvTest, EnvFromThenEnvKeepFirstPositionAndLastValue) {
  sources_.addConfigMap("shop", "app-config", R"({"MODE": "prod", "LOG_LEVEL": "info",
                                                  "CACHE_TTL": "60"})");
  sources_.addConfigMap("shop", "feature-flags", R"({"MODE": "canary", "NEW_CHECKOUT": "on"})");
  sources_.addSecret("shop", "db-creds", {{"USER", "shop"}, {"PASSWORD", "s3cr3t!"}});
  const auto got = vars(R"("envFrom": [
      {"configMapRef": {"name": "app-config"}},
      {"prefix": "DB_", "secretRef": {"name": "db-creds"}},
      {"configMapRef": {"name": "feature-flags"}}
    ],
    "env": [
      {"name": "GREETING", "value": "hello"},
      {"name": "LOG_LEVEL", "value": "debug"},
      {"name": "DB_USER", "value": "admin"}
    ])");
  const std::vector<EnvVar> want = {
      {"CACHE_TTL", "60"},         // app-config, keys sorted
      {"LOG_LEVEL", "debug"},      // overridden by env, position kept
      {"MODE", "canary"},          // overridden by the later envFrom source
      {"DB_PASSWORD", "s3cr3t!"},  // secret, prefixed and decoded
      {"DB_USER", "admin"},       {"NEW_CHECKOUT", "on"}, {"GREETING", "hello"},
  };
  EXPECT_EQ(got, want);
}

TEST_F(EnvTest, PlainValuesAndEmptyValues) {
  const auto got = vars(R"("env": [
      {"name": "A", "value": "1"},
      {"name": "EMPTY"},
      {"name": "ALSO_EMPTY", "value": ""},
      {"name": "A", "value": "2"}
    ])");
  const std::vector<EnvVar> want = {{"A", "2"}, {"EMPTY", ""}, {"ALSO_EMPTY", ""}};
  EXPECT_EQ(got, want);
}

TEST(EnvExpansionTest, FollowsTheKubeletSyntax) {
  const std::map<std::string, std::string, std::less<>> defined = {
      {"A", "a"}, {"B", "b"}, {"EMPTY", ""}, {"NESTED", "$(A)"}};
  const auto lookup = [&](std::string_view name) -> const std::string* {
    auto it = defined.find(name);
    return it != defined.end() ? &it->second : nullptr;
  };
  struct Case {
    std::string input;
    std::string output;
  };
  const std::vector<Case> cases = {
      {"", ""},
      {"plain", "plain"},
      {"$(A)", "a"},
      {"x$(A)y", "xay"},
      {"$(A)$(B)", "ab"},
      {"$(A)-$(MISSING)-$(B)", "a-$(MISSING)-b"},
      {"$(EMPTY)", ""},
      {"$(NESTED)", "$(A)"},  // values are not expanded again
      {"$$(A)", "$(A)"},
      {"$$$(A)", "$a"},
      {"$$$$(A)", "$$(A)"},
      {"$$", "$"},
      {"100$$", "100$"},
      {"$", "$"},
      {"a$", "a$"},
      {"$(A)$", "a$"},
      {"$x", "$x"},
      {"${A}", "${A}"},
      {"$A", "$A"},
      {"$(A", "$(A"},
      {"$(A $(B)", "$(A $(B)"},  // the name runs to the first ')': "A $(B"
      {"$()", "$()"},
      {"$((A))", "$((A))"},
      {"$(", "$("},
      {"$($(A))", "$($(A))"},
      {"price: 5$ or $é", "price: 5$ or $é"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expandVariables(c.input, lookup), c.output) << c.input;
  }
}

TEST_F(EnvTest, ExpandsAgainstVariablesDefinedBeforeAndServices) {
  sources_.addConfigMap("shop", "paths", R"({"PATH": "/usr/bin", "HOST": "cm-host"})");
  sources_.addService("shop", "redis", "10.96.0.20", R"([{"name": "redis", "port": 6379}])");
  const auto got = vars(R"js("envFrom": [{"configMapRef": {"name": "paths"}}],
    "env": [
      {"name": "EARLY_URL", "value": "http://$(HOST):$(PORT)/"},
      {"name": "HOST", "value": "db.shop.svc"},
      {"name": "PORT", "value": "5432"},
      {"name": "LATE_URL", "value": "http://$(HOST):$(PORT)/"},
      {"name": "PATH", "value": "$(PATH):/opt/shop/bin"},
      {"name": "LITERAL", "value": "$$(HOST) costs $$5"},
      {"name": "CACHE", "value": "$(REDIS_SERVICE_HOST):$(REDIS_SERVICE_PORT_REDIS)"},
      {"name": "SELF", "value": "[$(SELF)]"}
    ])js");
  EXPECT_EQ(valueOf(got, "EARLY_URL"), "http://cm-host:$(PORT)/");
  EXPECT_EQ(valueOf(got, "LATE_URL"), "http://db.shop.svc:5432/");
  EXPECT_EQ(valueOf(got, "PATH"), "/usr/bin:/opt/shop/bin");
  EXPECT_EQ(valueOf(got, "LITERAL"), "$(HOST) costs $5");
  EXPECT_EQ(valueOf(got, "CACHE"), "10.96.0.20:6379");
  EXPECT_EQ(valueOf(got, "SELF"), "[$(SELF)]");
}

TEST_F(EnvTest, ConfigMapAndSecretKeys) {
  sources_.addConfigMap("shop", "app-config", R"({"mode": "fast", "log.level": "info"})");
  sources_.addSecret("shop", "db-creds", {{"password", "p@ss word\n"}});
  const auto got = vars(R"("env": [
      {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode"}}},
      {"name": "LOG_LEVEL",
       "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "log.level"}}},
      {"name": "DB_PASSWORD",
       "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}
    ])");
  const std::vector<EnvVar> want = {
      {"MODE", "fast"}, {"LOG_LEVEL", "info"}, {"DB_PASSWORD", "p@ss word\n"}};
  EXPECT_EQ(got, want);
  // Each object is read once however often it is referenced.
  EXPECT_EQ(sources_.configMapLookups, 1);
  EXPECT_EQ(sources_.secretLookups, 1);
}

TEST_F(EnvTest, MissingMandatoryReferencesFailLikeTheKubelet) {
  sources_.addConfigMap("shop", "app-config", R"({"mode": "fast"})", R"({"blob": "AAEC"})");
  sources_.addSecret("shop", "db-creds", {{"password", "hunter2"}});
  struct Case {
    std::string app;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"("env": [{"name": "X",
                   "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}])",
       R"(configmap "absent" not found)"},
      {R"("env": [{"name": "X",
                   "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "retries"}}}])",
       "couldn't find key retries in ConfigMap shop/app-config"},
      // binaryData is not read into the environment.
      {R"("env": [{"name": "X",
                   "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "blob"}}}])",
       "couldn't find key blob in ConfigMap shop/app-config"},
      {R"("env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}])",
       R"(secret "absent" not found)"},
      {R"("env": [{"name": "X",
                   "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "token"}}}])",
       "couldn't find key token in Secret shop/db-creds"},
      {R"("envFrom": [{"configMapRef": {"name": "absent"}}])", R"(configmap "absent" not found)"},
      {R"("envFrom": [{"secretRef": {"name": "absent", "optional": false}}])",
       R"(secret "absent" not found)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.app);
    const Error e = failure(c.app);
    EXPECT_EQ(e.code, ErrorCode::kNotFound);
    EXPECT_EQ(e.reason, "CreateContainerConfigError");
    EXPECT_EQ(e.message, c.message);
    EXPECT_EQ(e.message.find("hunter2"), std::string::npos);
  }
}

TEST_F(EnvTest, OptionalReferencesAreSkippedSilently) {
  sources_.addConfigMap("shop", "app-config", R"({"MODE": "from-envfrom"})");
  sources_.addSecret("shop", "db-creds", {{"password", "hunter2"}});
  auto r = resolve(makePod(R"("envFrom": [
      {"configMapRef": {"name": "app-config"}},
      {"configMapRef": {"name": "absent", "optional": true}},
      {"secretRef": {"name": "absent-secret", "optional": true}}
    ],
    "env": [
      {"name": "MODE",
       "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode", "optional": true}}},
      {"name": "MISSING_CM",
       "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": true}}},
      {"name": "MISSING_KEY",
       "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "token", "optional": true}}},
      {"name": "MISSING_SECRET",
       "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}},
      {"name": "AFTER", "value": "[$(MISSING_CM)]"}
    ])"));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  // An optional reference that resolves to nothing leaves the earlier definition alone.
  const std::vector<EnvVar> want = {{"MODE", "from-envfrom"}, {"AFTER", "[$(MISSING_CM)]"}};
  EXPECT_EQ(r->vars, want);
  EXPECT_TRUE(r->events.empty());
}

TEST_F(EnvTest, InvalidEnvFromKeysAreSkippedWithAnEvent) {
  sources_.addConfigMap("shop", "app-config",
                        R"({"GOOD": "1", "1badkey": "x", "2alsobad": "y", "app.mode": "z"})");
  sources_.addSecret("shop", "api-keys", {{"stripe-key", "sk_live_123"}, {"9lives", "hunter2"}});
  auto r = resolve(makePod(R"("envFrom": [
      {"configMapRef": {"name": "app-config"}},
      {"secretRef": {"name": "api-keys"}},
      {"prefix": "CFG_", "configMapRef": {"name": "app-config"}}
    ])"));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(namesOf(r->vars),
            (std::vector<std::string>{"GOOD", "app.mode", "stripe-key", "CFG_1badkey",
                                      "CFG_2alsobad", "CFG_GOOD", "CFG_app.mode"}));
  const std::vector<EnvEvent> want = {
      {kube::EventType::kWarning, "InvalidEnvironmentVariableNames",
       "Keys [1badkey, 2alsobad] from the EnvFrom configMap shop/app-config were skipped "
       "since "
       "they are considered invalid environment variable names."},
      {kube::EventType::kWarning, "InvalidEnvironmentVariableNames",
       "Keys [9lives] from the EnvFrom secret shop/api-keys were skipped since they are "
       "considered invalid environment variable names."},
  };
  EXPECT_EQ(r->events, want);
  for (const auto& e : r->events) {
    EXPECT_EQ(e.message.find("hunter2"), std::string::npos);
  }
}

TEST_F(EnvTest, RelaxedNamesAcceptPrintableAsciiWithoutEquals) {
  sources_.addConfigMap("shop", "app-config", R"({"1abc": "1", "a=b": "2", "with space": "3"})");
  options_.relaxedNames = true;
  auto r = resolve(makePod(R"("envFrom": [{"configMapRef": {"name": "app-config"}}])"));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(namesOf(r->vars), (std::vector<std::string>{"1abc", "with space"}));
  ASSERT_EQ(r->events.size(), 1U);
  EXPECT_NE(r->events[0].message.find("Keys [a=b]"), std::string::npos);
}

TEST_F(EnvTest, SecretValuesNeverAppearInErrors) {
  json::object data;
  data["token"] = "not base64: hunter2!";
  sources_.addRawSecret("shop", "broken", data);
  const std::vector<std::string> apps = {
      R"("env": [{"name": "T",
                  "valueFrom": {"secretKeyRef": {"name": "broken", "key": "token"}}}])",
      R"("envFrom": [{"secretRef": {"name": "broken"}}])",
  };
  for (const auto& app : apps) {
    SCOPED_TRACE(app);
    const Error e = failure(app);
    EXPECT_EQ(e.reason, "CreateContainerConfigError");
    EXPECT_EQ(e.message, "couldn't decode key token in Secret shop/broken");
    EXPECT_EQ(e.toString().find("hunter2"), std::string::npos);
  }
}

TEST_F(EnvTest, FieldRefs) {
  struct Case {
    std::string fieldPath;
    std::string value;
  };
  const std::vector<Case> cases = {
      {"metadata.name", "web-7d9c5b6f4-x2x9k"},
      {"metadata.namespace", "shop"},
      {"metadata.uid", "6f1c2d3e-1111-4a5b-9c8d-0123456789ab"},
      {"metadata.labels['app']", "web"},
      {"metadata.labels['missing']", ""},
      {"metadata.annotations['example.com/owner']", "alice"},
      {"spec.nodeName", "burstlet-cci"},
      {"spec.host", "burstlet-cci"},
      {"spec.serviceAccountName", "web"},
      {"status.hostIP", "192.168.10.21"},
      {"status.hostIPs", "192.168.10.21"},
      {"status.podIP", "10.244.3.17"},
      {"status.podIPs", "10.244.3.17,fd00:10:244::17"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.fieldPath);
    const auto got = vars(R"("env": [{"name": "V", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                      "fieldPath": ")" +
                          c.fieldPath + R"("}}}])");
    EXPECT_EQ(valueOf(got, "V"), c.value);
  }
}

TEST_F(EnvTest, AddressesComeFromOptionsInTheNodesFamilyOrder) {
  options_.hostIPs = {"fd00:192:168::21", "192.168.10.21"};
  options_.podIPs = {"10.244.9.1", "10.244.9.2", "fd00:10:244::9"};
  const auto got = vars(R"("env": [
      {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
      {"name": "HOST_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}},
      {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
      {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}}
    ])");
  const std::vector<EnvVar> want = {{"HOST_IP", "fd00:192:168::21"},
                                    {"HOST_IPS", "fd00:192:168::21,192.168.10.21"},
                                    {"POD_IP", "fd00:10:244::9"},
                                    {"POD_IPS", "fd00:10:244::9,10.244.9.1"}};
  EXPECT_EQ(got, want);
}

TEST_F(EnvTest, UnknownHostIPIsUnavailable) {
  auto pod = makePod(
      R"("env": [{"name": "H", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}])");
  pod.as_object()["status"] = json::object{{"phase", "Pending"}};
  auto r = resolve(pod);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "CreateContainerConfigError");
  // No pod IP yet is an empty value, not an error.
  auto ip = resolve(makePod(R"("env": [{"name": "P",
      "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])"));
  ASSERT_TRUE(ip.ok());
  pod = makePod(
      R"("env": [{"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])");
  pod.as_object()["status"] = json::object{{"phase", "Pending"}};
  auto none = resolve(pod);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(valueOf(none->vars, "P"), "");
}

TEST_F(EnvTest, UnsupportedFieldRefsAreConfigErrors) {
  struct Case {
    std::string ref;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"fieldPath": "status.phase"})", "unsupported fieldPath: status.phase"},
      {R"({"fieldPath": "metadata.labels"})", "unsupported fieldPath: metadata.labels"},
      {R"({"fieldPath": "spec.containers"})", "field label not supported: spec.containers"},
      {R"({"fieldPath": "metadata.name['x']"})",
       "field label does not support subscript: metadata.name['x']"},
      {R"({"apiVersion": "v2", "fieldPath": "metadata.name"})", "unsupported pod version: v2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.ref);
    const Error e = failure(R"("env": [{"name": "V", "valueFrom": {"fieldRef": )" + c.ref + "}}]");
    EXPECT_EQ(e.code, ErrorCode::kInvalid);
    EXPECT_EQ(e.reason, "CreateContainerConfigError");
    EXPECT_EQ(e.message, c.message);
  }
}

class EnvResourceTest : public EnvTest {
 protected:
  void SetUp() override {
    options_.nodeAllocatable = json::parse(R"({"cpu": "4", "memory": "16Gi",
        "ephemeral-storage": "100Gi", "pods": "110"})")
                                   .as_object();
  }
  // Resolves one resourceFieldRef in the pod built from `app` (+ `spec`) for `container`.
  std::string value(std::string_view ref, std::string_view container = "app",
                    std::string_view spec = "") {
    const std::string app = std::string(kResources) +
                            R"(, "env": [{"name": "V", "valueFrom": {"resourceFieldRef": )" +
                            std::string(ref) + "}}]";
    auto pod = makePod(app, spec);
    // The same reference, in whichever container is asked for.
    json::value& target = findContainer(pod, container);
    target.as_object()["env"] = pod.at("spec").at("containers").at(0).at("env");
    auto r = resolve(pod, container);
    EXPECT_TRUE(r.ok()) << ref << ": " << (r.ok() ? "" : r.error().toString());
    return r.ok() ? valueOf(r->vars, "V").value_or("<unset>") : "<error>";
  }
  static json::value& findContainer(json::value& pod, std::string_view name) {
    for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
      for (auto& c : pod.at("spec").at(list).as_array()) {
        if (c.at("name").as_string() == name) {
          return c;
        }
      }
    }
    throw std::runtime_error("no such container");
  }
  static constexpr std::string_view kResources = R"("resources": {
      "limits": {"cpu": "500m", "memory": "512Mi", "hugepages-2Mi": "128Mi"},
      "requests": {"cpu": "250m", "memory": "256Mi"}})";
};

TEST_F(EnvResourceTest, ReadsLimitsAndRequestsWithCeilingDivision) {
  struct Case {
    std::string ref;
    std::string value;
  };
  const std::vector<Case> cases = {
      {R"({"resource": "limits.cpu"})", "1"},
      {R"({"resource": "limits.cpu", "divisor": "1m"})", "500"},
      {R"({"resource": "limits.cpu", "divisor": "0"})", "1"},
      {R"({"resource": "limits.cpu", "divisor": "100m"})", "5"},
      {R"({"resource": "limits.cpu", "divisor": "300m"})", "2"},
      {R"({"resource": "requests.cpu", "divisor": "1m"})", "250"},
      {R"({"resource": "requests.cpu"})", "1"},
      {R"({"resource": "limits.memory"})", "536870912"},
      {R"({"resource": "limits.memory", "divisor": "1Mi"})", "512"},
      {R"({"resource": "limits.memory", "divisor": "1G"})", "1"},
      {R"({"resource": "limits.memory", "divisor": 1024})", "524288"},
      {R"({"resource": "requests.memory", "divisor": "1Mi"})", "256"},
      {R"({"resource": "limits.hugepages-2Mi", "divisor": "1Mi"})", "128"},
      {R"({"resource": "requests.hugepages-2Mi"})", "0"},
      // No limit: the node's allocatable amount; no request: zero.
      {R"({"resource": "limits.ephemeral-storage", "divisor": "1Gi"})", "100"},
      {R"({"resource": "requests.ephemeral-storage"})", "0"},
      // Another container by name.
      {R"({"containerName": "sidecar", "resource": "limits.cpu"})", "4"},
      {R"({"containerName": "sidecar", "resource": "limits.memory", "divisor": "1Gi"})", "16"},
      {R"({"containerName": "sidecar", "resource": "requests.cpu", "divisor": "1m"})", "0"},
      // An init container named in a reference keeps its own (absent) limits, as in the
      // kubelet.
      {R"({"containerName": "migrate", "resource": "limits.cpu"})", "0"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(value(c.ref), c.value) << c.ref;
  }
}

TEST_F(EnvResourceTest, ContainerWithoutLimitsFallsBackToNodeThenPodLevelLimits) {
  // The container being resolved is defaulted whatever its kind.
  EXPECT_EQ(value(R"({"resource": "limits.cpu"})", "migrate"), "4");
  EXPECT_EQ(value(R"({"resource": "limits.memory", "divisor": "1Gi"})", "debugger"), "16");
  EXPECT_EQ(value(R"({"resource": "limits.cpu", "divisor": "1m"})", "sidecar"), "4000");
  // Pod-level limits replace node allocatable for cpu and memory only.
  const std::string podLimits = R"("resources": {"limits": {"cpu": "2", "memory": "3Gi",
                                                            "ephemeral-storage": "1Gi"}})";
  EXPECT_EQ(value(R"({"resource": "limits.cpu", "divisor": "1m"})", "sidecar", podLimits), "2000");
  EXPECT_EQ(value(R"({"resource": "limits.memory", "divisor": "1Gi"})", "sidecar", podLimits), "3");
  EXPECT_EQ(
      value(R"({"resource": "limits.ephemeral-storage", "divisor": "1Gi"})", "sidecar", podLimits),
      "100");
  // A container's own limit wins over both.
  EXPECT_EQ(value(R"({"resource": "limits.cpu", "divisor": "1m"})", "app", podLimits), "500");
  // Without allocatable there is nothing to fall back to.
  options_.nodeAllocatable = {};
  EXPECT_EQ(value(R"({"resource": "limits.cpu"})", "sidecar", podLimits), "0");
}

TEST_F(EnvResourceTest, BadReferencesAreConfigErrors) {
  struct Case {
    std::string ref;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"resource": "limits.nvidia.com/gpu"})",
       "unsupported container resource : limits.nvidia.com/gpu"},
      {R"({"resource": "cpu"})", "unsupported container resource : cpu"},
      {R"({"resource": "spec.cpu"})", "unsupported container resource : spec.cpu"},
      {R"({"containerName": "nope", "resource": "limits.cpu"})", "container nope not found"},
      {R"({"resource": "limits.cpu", "divisor": "1 core"})",
       R"(quantity "1 core" is invalid: unknown suffix " core")"},
      {R"({"resource": "limits.cpu", "divisor": "-1"})", "invalid divisor -1 for limits.cpu"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.ref);
    const Error e =
        failure(std::string(kResources) +
                R"(, "env": [{"name": "V", "valueFrom": {"resourceFieldRef": )" + c.ref + "}}]");
    EXPECT_EQ(e.code, ErrorCode::kInvalid);
    EXPECT_EQ(e.reason, "CreateContainerConfigError");
    EXPECT_EQ(e.message, c.message);
  }
}

TEST_F(EnvResourceTest, MalformedResourceQuantityIsAConfigError) {
  const Error e = failure(R"("resources": {"limits": {"cpu": "lots"}},
      "env": [{"name": "V", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}])");
  EXPECT_EQ(e.code, ErrorCode::kInvalid);
  EXPECT_EQ(e.message, R"(quantity "lots" is invalid: expected a number such as 100, 0.5 or 250m)");
}

class EnvServiceTest : public EnvTest {
 protected:
  void SetUp() override {
    sources_.addService("default", "kubernetes", "10.96.0.1",
                        R"([{"name": "https", "port": 443, "protocol": "TCP"}])");
    sources_.addService("default", "registry", "10.96.0.5", R"([{"port": 5000}])");
    sources_.addService("shop", "redis", "10.96.0.20",
                        R"([{"name": "redis", "port": 6379, "protocol": "TCP"}])");
    sources_.addService("shop", "api-gateway", "10.96.0.30", R"([
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "grpc-tls", "port": 443},
        {"name": "dns", "port": 53, "protocol": "UDP"}])");
    sources_.addService("shop", "db-headless", "None", R"([{"port": 5432}])");
    sources_.addService("shop", "payments-external", "", R"([{"port": 443}])");
  }
  static const std::vector<EnvVar>& kubernetesVars() {
    static const std::vector<EnvVar> vars = {
        {"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
        {"KUBERNETES_SERVICE_PORT", "443"},
        {"KUBERNETES_SERVICE_PORT_HTTPS", "443"},
        {"KUBERNETES_PORT", "tcp://10.96.0.1:443"},
        {"KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"},
        {"KUBERNETES_PORT_443_TCP_PROTO", "tcp"},
        {"KUBERNETES_PORT_443_TCP_PORT", "443"},
        {"KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"},
    };
    return vars;
  }
};

TEST_F(EnvServiceTest, LinkVariablesOfOneService) {
  const auto got = serviceLinkVariables(sources_.services("shop"));
  const std::vector<EnvVar> redis = {
      {"REDIS_SERVICE_HOST", "10.96.0.20"},
      {"REDIS_SERVICE_PORT", "6379"},
      {"REDIS_SERVICE_PORT_REDIS", "6379"},
      {"REDIS_PORT", "tcp://10.96.0.20:6379"},
      {"REDIS_PORT_6379_TCP", "tcp://10.96.0.20:6379"},
      {"REDIS_PORT_6379_TCP_PROTO", "tcp"},
      {"REDIS_PORT_6379_TCP_PORT", "6379"},
      {"REDIS_PORT_6379_TCP_ADDR", "10.96.0.20"},
  };
  const std::vector<EnvVar> gateway = {
      {"API_GATEWAY_SERVICE_HOST", "10.96.0.30"},
      {"API_GATEWAY_SERVICE_PORT", "80"},
      {"API_GATEWAY_SERVICE_PORT_HTTP", "80"},
      {"API_GATEWAY_SERVICE_PORT_GRPC_TLS", "443"},
      {"API_GATEWAY_SERVICE_PORT_DNS", "53"},
      {"API_GATEWAY_PORT", "tcp://10.96.0.30:80"},
      {"API_GATEWAY_PORT_80_TCP", "tcp://10.96.0.30:80"},
      {"API_GATEWAY_PORT_80_TCP_PROTO", "tcp"},
      {"API_GATEWAY_PORT_80_TCP_PORT", "80"},
      {"API_GATEWAY_PORT_80_TCP_ADDR", "10.96.0.30"},
      {"API_GATEWAY_PORT_443_TCP", "tcp://10.96.0.30:443"},
      {"API_GATEWAY_PORT_443_TCP_PROTO", "tcp"},
      {"API_GATEWAY_PORT_443_TCP_PORT", "443"},
      {"API_GATEWAY_PORT_443_TCP_ADDR", "10.96.0.30"},
      {"API_GATEWAY_PORT_53_UDP", "udp://10.96.0.30:53"},
      {"API_GATEWAY_PORT_53_UDP_PROTO", "udp"},
      {"API_GATEWAY_PORT_53_UDP_PORT", "53"},
      {"API_GATEWAY_PORT_53_UDP_ADDR", "10.96.0.30"},
  };
  std::vector<EnvVar> want = redis;
  want.insert(want.end(), gateway.begin(), gateway.end());
  EXPECT_EQ(got, want);  // headless and ExternalName services give nothing
}

TEST_F(EnvServiceTest, IPv6ClusterIPsAreBracketedInUrls) {
  FakeSources other;
  other.addService("shop", "web", "fd00:96::10", R"([{"port": 8080}])");
  const auto got = serviceLinkVariables(other.services("shop"));
  EXPECT_EQ(valueOf(got, "WEB_SERVICE_HOST"), "fd00:96::10");
  EXPECT_EQ(valueOf(got, "WEB_PORT"), "tcp://[fd00:96::10]:8080");
  EXPECT_EQ(valueOf(got, "WEB_PORT_8080_TCP_ADDR"), "fd00:96::10");
}

TEST_F(EnvServiceTest, NamespaceServicesAndTheMasterFollowTheContainersVariables) {
  const auto got = vars(R"("env": [{"name": "APP_ENV", "value": "production"}])");
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front(), (EnvVar{"APP_ENV", "production"}));
  // By service name: api-gateway, kubernetes, redis; nothing from other default services.
  const auto names = namesOf(got);
  EXPECT_EQ(names.size(), 35U);  // 1 + api-gateway 18 + kubernetes 8 + redis 8
  EXPECT_EQ(names[1], "API_GATEWAY_SERVICE_HOST");
  EXPECT_EQ(names[19], "KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(names[27], "REDIS_SERVICE_HOST");
  EXPECT_EQ(valueOf(got, "REGISTRY_SERVICE_HOST"), std::nullopt);
  EXPECT_EQ(valueOf(got, "DB_HEADLESS_SERVICE_HOST"), std::nullopt);
  EXPECT_EQ(valueOf(got, "PAYMENTS_EXTERNAL_SERVICE_HOST"), std::nullopt);
}

TEST_F(EnvServiceTest, DisabledServiceLinksKeepOnlyTheMaster) {
  const auto got = vars(R"("env": [{"name": "APP_ENV", "value": "production"}])",
                        R"("enableServiceLinks": false)");
  std::vector<EnvVar> want = {{"APP_ENV", "production"}};
  want.insert(want.end(), kubernetesVars().begin(), kubernetesVars().end());
  EXPECT_EQ(got, want);
}

TEST_F(EnvServiceTest, ContainerVariablesWinOverServiceVariables) {
  sources_.addConfigMap("shop", "endpoints", R"({"REDIS_PORT": "tcp://cache:6379"})");
  const auto got = vars(R"("envFrom": [{"configMapRef": {"name": "endpoints"}}],
    "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "api.internal"}])");
  EXPECT_EQ(got[0], (EnvVar{"REDIS_PORT", "tcp://cache:6379"}));
  EXPECT_EQ(got[1], (EnvVar{"KUBERNETES_SERVICE_HOST", "api.internal"}));
  int hosts = 0;
  int ports = 0;
  for (const auto& v : got) {
    hosts += v.name == "KUBERNETES_SERVICE_HOST" ? 1 : 0;
    ports += v.name == "REDIS_PORT" ? 1 : 0;
  }
  EXPECT_EQ(hosts, 1);
  EXPECT_EQ(ports, 1);
  EXPECT_EQ(valueOf(got, "KUBERNETES_SERVICE_PORT"), "443");  // the rest still comes
}

TEST_F(EnvServiceTest, PodsInDefaultSeeEveryDefaultService) {
  auto pod = makePod(R"("env": [])");
  pod.as_object()["metadata"].as_object()["namespace"] = "default";
  auto r = resolve(pod);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(valueOf(r->vars, "REGISTRY_SERVICE_HOST"), "10.96.0.5");
  EXPECT_EQ(valueOf(r->vars, "KUBERNETES_SERVICE_HOST"), "10.96.0.1");
  EXPECT_EQ(valueOf(r->vars, "REDIS_SERVICE_HOST"), std::nullopt);
}

TEST_F(EnvServiceTest, ANamespaceServiceNamedKubernetesShadowsTheMaster) {
  sources_.addService("shop", "kubernetes", "10.96.7.7", R"([{"port": 8443}])");
  EXPECT_EQ(valueOf(vars(""), "KUBERNETES_SERVICE_HOST"), "10.96.7.7");
  // Not with service links off, and a headless one never does.
  EXPECT_EQ(valueOf(vars("", R"("enableServiceLinks": false)"), "KUBERNETES_SERVICE_HOST"),
            "10.96.0.1");
  FakeSources headless;
  headless.addService("default", "kubernetes", "10.96.0.1", R"([{"port": 443}])");
  headless.addService("shop", "kubernetes", "None", R"([{"port": 443}])");
  auto r = resolveEnvironment(makePod(""), "app", headless, options_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(valueOf(r->vars, "KUBERNETES_SERVICE_HOST"), "10.96.0.1");
}

TEST_F(EnvTest, ResolvesInitAndEphemeralContainers) {
  sources_.addService("default", "kubernetes", "10.96.0.1", R"([{"port": 443}])");
  auto init = resolve(makePod(""), "migrate");
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->vars.front(), (EnvVar{"STAGE", "init"}));
  auto debug = resolve(makePod(""), "debugger");
  ASSERT_TRUE(debug.ok());
  EXPECT_EQ(debug->vars.front(), (EnvVar{"TARGET", "$(HOSTNAME_HINT)"}));
  EXPECT_EQ(valueOf(debug->vars, "KUBERNETES_SERVICE_HOST"), "10.96.0.1");
}

TEST_F(EnvTest, UnknownContainerAndUnsupportedSourcesAreErrors) {
  Error e = failure("", "nginx");
  EXPECT_EQ(e.code, ErrorCode::kInvalid);
  EXPECT_EQ(e.reason, "CreateContainerConfigError");
  EXPECT_EQ(e.message, R"(container "nginx" not found in pod shop/web-7d9c5b6f4-x2x9k)");

  e = failure(R"("env": [{"name": "F", "valueFrom": {"fileKeyRef": {"volumeName": "cfg",
      "path": "app.env", "key": "MODE"}}}])");
  EXPECT_EQ(e.code, ErrorCode::kInvalid);
  EXPECT_NE(e.message.find("fileKeyRef"), std::string::npos);

  auto r = resolveEnvironment(json::value("not a pod"), "app", sources_, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
}

TEST_F(EnvTest, FirstErrorStopsResolution) {
  sources_.addSecret("shop", "db-creds", {{"password", "hunter2"}});
  auto r = resolve(makePod(R"("env": [
      {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}},
      {"name": "B", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}
    ])"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, R"(configmap "absent" not found)");
  EXPECT_EQ(sources_.secretLookups, 0);
}

}  // namespace
}  // namespace burstlet::pod
