// The MutatingWebhookConfiguration burstlet registers, and its create-or-replace.
#include "admission/registration.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "common/base64.h"
#include "kube/json_path.h"
#include "mocks/memory_api.h"
#include "mocks/run_sync.h"

namespace burstlet::admission {
namespace {

namespace json = boost::json;
using kube::stringAt;

Registration example() {
  return Registration{"burstlet-vk",
                      "https://10.0.0.5:8443/mutate-pods",
                      "-----BEGIN CERT-----",
                      {"kube-system", "burstlet"},
                      5};
}

TEST(RegistrationTest, PodsOnCreateIgnoredWhenDownSkippingNamespaces) {
  const json::value c = webhookConfiguration(example());
  EXPECT_EQ(stringAt(c, {"metadata", "name"}), "burstlet-vk");
  const json::value& w = c.at("webhooks").at(0);
  EXPECT_EQ(stringAt(w, {"failurePolicy"}), "Ignore");
  EXPECT_EQ(stringAt(w, {"sideEffects"}), "None");
  EXPECT_EQ(w.at("timeoutSeconds").as_int64(), 5);
  EXPECT_EQ(stringAt(w, {"clientConfig", "url"}), "https://10.0.0.5:8443/mutate-pods");
  EXPECT_EQ(base64Decode(stringAt(w, {"clientConfig", "caBundle"})), "-----BEGIN CERT-----");
  EXPECT_EQ(json::serialize(w.at("rules")),
            R"([{"apiGroups":[""],"apiVersions":["v1"],"operations":["CREATE"],)"
            R"("resources":["pods"],"scope":"Namespaced"},)"
            R"({"apiGroups":["apps"],"apiVersions":["v1"],"operations":["CREATE","UPDATE"],)"
            R"("resources":["daemonsets"],"scope":"Namespaced"}])");
  EXPECT_EQ(json::serialize(w.at("namespaceSelector")),
            R"({"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn",)"
            R"("values":["kube-system","burstlet"]}]})");
}

struct Fixture {
  boost::asio::io_context io;
  testing::MemoryApi api;
  std::unique_ptr<kube::RestClient> client = std::make_unique<kube::RestClient>(
      io.get_executor(), api.transport(), kube::ClientConfig{}, kube::RestOptions{});
  const std::string path = kMutatingWebhookConfigurations.path("");

  Status ensure(Registration r) {
    return testing::runSync(io, ensureRegistration(*client, std::move(r)));
  }
};

TEST(RegistrationTest, CreatedThenLeftAloneThenReplacedWhenTheCaChanges) {
  Fixture f;
  ASSERT_TRUE(f.ensure(example()).ok());
  EXPECT_EQ(f.api.count(kube::Verb::post, f.path), 1);
  ASSERT_TRUE(f.ensure(example()).ok());
  EXPECT_EQ(f.api.count(kube::Verb::put, f.path), 0);
  Registration rotated = example();
  rotated.caBundlePem = "-----BEGIN OTHER-----";
  ASSERT_TRUE(f.ensure(rotated).ok());
  EXPECT_EQ(f.api.count(kube::Verb::put, f.path), 1);
  const auto stored = f.api.get(f.path, "burstlet-vk");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(base64Decode(stringAt(stored->at("webhooks").at(0), {"clientConfig", "caBundle"})),
            "-----BEGIN OTHER-----");
}

TEST(RegistrationTest, RefusalIsReported) {
  Fixture f;
  f.api.failNext(kube::Verb::get, f.path, 1, 403, "Forbidden");
  const Status s = f.ensure(example());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kForbidden);
}

}  // namespace
}  // namespace burstlet::admission
