#include "network/sidecar.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "provider/provider.h"

namespace burstlet::network {
namespace {

namespace json = boost::json;

ProxySidecarOptions options() {
  ProxySidecarOptions o;
  o.image = "registry.example/burstlet:1.2";
  o.secretName = "burstlet-netproxy-0123456789";
  return o;
}

TEST(ProxySidecar, AddsTheContainerAndItsCredentials) {
  auto pod = json::parse(R"({"metadata":{"name":"web"},"spec":{"containers":[{"name":"app"}]}})");
  ASSERT_TRUE(injectProxySidecar(pod, options()).ok());
  const auto& containers = pod.at("spec").at("containers").as_array();
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[1].at("name").as_string(), "app");
  // First, with a hook that holds the pod's own containers until the rules are in place.
  const auto& c = containers[0];
  EXPECT_EQ(json::serialize(c.at("lifecycle").at("postStart").at("exec").at("command")),
            R"(["burstlet","netproxy","--wait-for-rules=60s"])");
  EXPECT_EQ(c.at("name").as_string(), "burstlet-netproxy");
  EXPECT_EQ(c.at("image").as_string(), "registry.example/burstlet:1.2");
  EXPECT_EQ(json::serialize(c.at("command")), R"(["burstlet"])");
  EXPECT_EQ(json::serialize(c.at("args")),
            R"(["--log-level=info","netproxy","--credentials=/var/run/burstlet/netproxy"])");
  EXPECT_EQ(json::serialize(c.at("securityContext").at("capabilities").at("add")),
            R"(["NET_ADMIN"])");
  EXPECT_EQ(c.at("resources").at("limits").at("cpu").as_string(), "100m");
  EXPECT_EQ(c.at("resources").at("requests").at("memory").as_string(), "64Mi");
  EXPECT_EQ(c.at("volumeMounts").at(0).at("mountPath").as_string(), "/var/run/burstlet/netproxy");
  const auto& volume = pod.at("spec").at("volumes").at(0);
  EXPECT_EQ(volume.at("name").as_string(), "burstlet-netproxy");
  EXPECT_EQ(volume.at("secret").at("secretName").as_string(), "burstlet-netproxy-0123456789");
  EXPECT_EQ(provider::injectedNames(pod, "containers"),
            (std::set<std::string>{"burstlet-netproxy"}));
  EXPECT_EQ(provider::injectedNames(pod, "volumes"), (std::set<std::string>{"burstlet-netproxy"}));
}

// A pod that runs to completion: the proxy must end with it, told through the downward API.
TEST(ProxySidecar, RunToCompletionPodsGetTheStopFile) {
  for (const char* policy : {"Never", "OnFailure"}) {
    auto pod = json::value{
        {"spec",
         {{"restartPolicy", policy}, {"containers", json::array{json::object{{"name", "job"}}}}}}};
    ASSERT_TRUE(injectProxySidecar(pod, options()).ok());
    const auto& c = pod.at("spec").at("containers").at(0);
    EXPECT_EQ(c.at("args").as_array().back().as_string(),
              "--stop-file=/var/run/burstlet/netproxy-pod/annotations")
        << policy;
    EXPECT_EQ(c.at("volumeMounts").at(1).at("name").as_string(), "burstlet-netproxy-pod");
    const auto& v = pod.at("spec").at("volumes").at(1);
    EXPECT_EQ(v.at("downwardAPI").at("items").at(0).at("fieldRef").at("fieldPath").as_string(),
              "metadata.annotations");
    EXPECT_EQ(provider::injectedNames(pod, "volumes"),
              (std::set<std::string>{"burstlet-netproxy", "burstlet-netproxy-pod"}));
  }
  auto always = json::value{
      {"spec",
       {{"restartPolicy", "Always"}, {"containers", json::array{json::object{{"name", "web"}}}}}}};
  ASSERT_TRUE(injectProxySidecar(always, options()).ok());
  EXPECT_EQ(always.at("spec").at("volumes").as_array().size(), 1u);
  EXPECT_EQ(always.at("spec").at("containers").at(0).at("args").as_array().size(), 3u);
}

TEST(ProxySidecar, TheNamesAreReserved) {
  for (const char* spec :
       {R"({"containers":[{"name":"burstlet-netproxy"}]})",
        R"({"containers":[{"name":"app"}],"initContainers":[{"name":"burstlet-netproxy"}]})",
        R"({"containers":[{"name":"app"}],"volumes":[{"name":"burstlet-netproxy"}]})",
        R"({"containers":[{"name":"app"}],"volumes":[{"name":"burstlet-netproxy-pod"}]})"}) {
    auto pod = json::value{{"spec", json::parse(spec)}};
    const auto before = pod;
    auto s = injectProxySidecar(pod, options());
    ASSERT_FALSE(s.ok()) << spec;
    EXPECT_EQ(s.error().reason, "ReservedName");
    EXPECT_NE(s.error().message.find("reserved for burstlet's network proxy"), std::string::npos);
    EXPECT_EQ(pod, before) << "nothing half-done";
  }
}

TEST(ProxySidecar, APodWithoutSpecIsInvalid) {
  auto pod = json::parse(R"({"metadata":{}})");
  EXPECT_EQ(injectProxySidecar(pod, options()).error().code, ErrorCode::kInvalid);
}

}  // namespace
}  // namespace burstlet::network
