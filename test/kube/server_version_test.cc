#include "kube/server_version.h"

#include <gtest/gtest.h>

namespace burstlet::kube {
namespace {

TEST(ServerVersionTest, KubernetesReleaseCutsPrereleaseAndBuild) {
  EXPECT_EQ(kubernetesRelease("v1.36.3"), "v1.36.3");
  EXPECT_EQ(kubernetesRelease("v1.36.3-rc.1"), "v1.36.3");
  EXPECT_EQ(kubernetesRelease("v1.36.3+k3s1"), "v1.36.3");
  EXPECT_EQ(kubernetesRelease("v1.36.3-eks-4c5b1f2"), "v1.36.3");
  EXPECT_EQ(kubernetesRelease("v1.36.0-alpha.2.105+0123456789abcd"), "v1.36.0");
  EXPECT_EQ(kubernetesRelease("1.37.10"), "v1.37.10");
}

TEST(ServerVersionTest, KubernetesReleaseRefusesWhatIsNoVersion) {
  for (const char* bad : {"", "v", "devel", "v1", "v1.36", "v1.36.", "v1.x.3", "v1.36.3.4",
                          "v01.36.3", "v1.36.3rc1", "vv1.36.3", " v1.36.3"}) {
    EXPECT_EQ(kubernetesRelease(bad), std::nullopt) << bad;
  }
}

TEST(ServerVersionTest, MinorOfARelease) {
  EXPECT_EQ(minorOf("v1.19.16"), 19);
  EXPECT_EQ(minorOf("v1.36.3"), 36);
  for (const char* bad : {"", "v2.1.0", "1.19.0", "v1..3", "v1.x.3", "v1"}) {
    EXPECT_EQ(minorOf(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace burstlet::kube
