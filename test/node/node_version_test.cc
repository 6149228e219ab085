#include "node/node_version.h"

#include <gtest/gtest.h>

namespace burstlet::node {
namespace {

TEST(NodeVersionTest, KubeletVersionMarksTheReleaseAsBurstlets) {
  EXPECT_EQ(kubeletVersionFor("v1.36.3", "0.1.0"), "v1.36.3-burstlet.0.1.0");
  EXPECT_EQ(kubeletVersionFor(kDefaultKubernetesRelease, "0.1.0"), "v1.36.0-burstlet.0.1.0");
}

}  // namespace
}  // namespace burstlet::node
