// cleanupBackend (`burstlet cleanup`): the namespace's Networks of ours go first, then the
// namespace; a namespace that is not ours is left alone.
#include "provider/cci/backend.h"

#include <gtest/gtest.h>

#include "provider/cci/cci_harness.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

inline const std::string kNetworkPath = kNetworks.path(kNs);

json::value network(const std::string& name, const json::object& labels) {
  return json::value{{"apiVersion", "networking.cci.io/v1beta1"},
                     {"kind", "Network"},
                     {"metadata", {{"name", name}, {"namespace", kNs}, {"labels", labels}}}};
}

Status cleanup(Harness& h) {
  return h.call(
      cleanupBackend(*h.backend, kNs, kClusterId, false, std::chrono::seconds(5), h.clock));
}

const json::object kOurs{{kManagedByLabel, kManagedByValue}, {kClusterIdLabel, kClusterId}};

TEST(BackendTest, CleanupDeletesOurNetworksThenTheNamespace) {
  Harness h;
  h.api.put(kNamespaces, json::value{{"metadata", {{"name", kNs}, {"labels", kOurs}}}});
  h.api.put(kNetworkPath, network("burstlet-network", kOurs));
  h.api.put(kNetworkPath, network("hand-made", json::object{{"team", "x"}}));
  const Status s = cleanup(h);
  ASSERT_TRUE(s.ok()) << errorText(s);
  EXPECT_FALSE(h.api.get(kNetworkPath, "burstlet-network").has_value());
  EXPECT_FALSE(h.api.get(kNamespaces, kNs).has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, kNetworks.path(kNs, "burstlet-network")), 1);
  EXPECT_EQ(h.api.count(Verb::delete_, kNetworks.path(kNs, "hand-made")), 0);
  EXPECT_LT(firstRequest(h.api, Verb::delete_, kNetworkPath),
            firstRequest(h.api, Verb::delete_, kNamespaces));
}

TEST(BackendTest, CleanupLeavesForeignNamespaceAndItsNetwork) {
  Harness h;
  h.api.put(kNamespaces, json::value{{"metadata", {{"name", kNs}}}});
  h.api.put(kNetworkPath, network("burstlet-network", kOurs));
  const Status s = cleanup(h);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "NamespaceNotOwned");
  EXPECT_EQ(h.api.writes(), 0);
}

TEST(BackendTest, CleanupOfNothingIsSuccess) {
  Harness h;
  EXPECT_TRUE(cleanup(h).ok());
}

}  // namespace
}  // namespace burstlet::provider::cci
