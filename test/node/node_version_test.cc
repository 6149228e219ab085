#include "node/node_version.h"

#include <gtest/gtest.h>

namespace burstlet::node {
namespace {

TEST(NodeVersionTest, KubernetesReleaseCutsPrereleaseAndBuild) {
  EXPECT_EQ(kubernetesRelease("v1.36.3"), "v1.36.3");
  EXPECT_EQ(kubernetesRelease("v1.36.3-rc.1"), "v1.36.3");
  EXPECT_EQ(kubernetesRelease("v1.36.3+k3s1"), "v1.36.3");
  EXPECT_EQ(kubernetesRelease("v1.36.3-eks-4c5b1f2"), "v1.36.3");
  EXPECT_EQ(kubernetesRelease("v1.36.0-alpha.2.105+0123456789abcd"), "v1.36.0");
  EXPECT_EQ(kubernetesRelease("1.37.10"), "v1.37.10");
}

TEST(NodeVersionTest, KubernetesReleaseRefusesWhatIsNoVersion) {
  for (const char* bad : {"", "v", "devel", "v1", "v1.36", "v1.36.", "v1.x.3", "v1.36.3.4",
                          "v01.36.3", "v1.36.3rc1", "vv1.36.3", " v1.36.3"}) {
    EXPECT_EQ(kubernetesRelease(bad), std::nullopt) << bad;
  }
}

TEST(NodeVersionTest, KubeletVersionMarksTheReleaseAsBurstlets) {
  EXPECT_EQ(kubeletVersionFor("v1.36.3", "0.1.0"), "v1.36.3-burstlet.0.1.0");
  EXPECT_EQ(kubeletVersionFor(kDefaultKubernetesRelease, "0.1.0"), "v1.36.0-burstlet.0.1.0");
}

}  // namespace
}  // namespace burstlet::node
