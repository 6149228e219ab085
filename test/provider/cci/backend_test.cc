// validateBackend: the backend settings refused at start name the key at fault. (cleanupBackend,
// once here, has cleanup_test.cc.)
#include "provider/cci/backend.h"

#include <gtest/gtest.h>

namespace burstlet::provider::cci {
namespace {

BackendConfig kubeconfigBackend() {
  BackendConfig c;
  c.kubeconfig = "/etc/burstlet/backend.kubeconfig";
  c.clusterID = "c1";
  return c;
}

std::string refusal(const BackendConfig& c) {
  const Status s = validateBackend(c);
  return s.ok() ? "" : s.error().message;
}

TEST(BackendTest, AKubeconfigBackendWithAClusterIdIsValid) {
  EXPECT_EQ(refusal(kubeconfigBackend()), "");
}

TEST(BackendTest, TheClusterIdNamesTheNamespaceAndIsRequired) {
  BackendConfig c = kubeconfigBackend();
  c.clusterID = "";
  EXPECT_NE(refusal(c).find("clusterID is required"), std::string::npos);
  c.clusterID = "Not_A_Label";
  EXPECT_NE(refusal(c).find("cce-burst-Not_A_Label"), std::string::npos) << refusal(c);
}

TEST(BackendTest, ExactlyOneOfKubeconfigAndEndpoint) {
  BackendConfig c = kubeconfigBackend();
  c.endpoint = "https://cci.cn-north-4.myhuaweicloud.com";
  EXPECT_NE(refusal(c).find("exactly one of kubeconfig"), std::string::npos) << refusal(c);
  c.kubeconfig = "";
  c.endpoint = "http://cci.example";
  EXPECT_NE(refusal(c).find("must be an https:// URL"), std::string::npos) << refusal(c);
}

}  // namespace
}  // namespace burstlet::provider::cci
