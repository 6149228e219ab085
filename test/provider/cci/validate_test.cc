#include "provider/cci/validate.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <string>
#include <vector>

#include "provider/cci/normalize.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

// The cluster's claims, as the provider's lookup would report them.
std::optional<ClaimInfo> lookupClaim(const std::string& name) {
  static const std::map<std::string, ClaimInfo> kClaims = {
      {"sfs", {"csi-nas", "nas.csi.everest.io"}},
      {"turbo", {"csi-sfsturbo", "sfsturbo.csi.everest.io"}},
      {"disk", {"csi-disk", "disk.csi.everest.io"}},
      {"custom", {"my-sfs", "example.com/sfs"}},
      {"legacy", {"nfs", ""}},  // bound to a PV that is not a CSI volume
      {"deleted", {"", "", false}},
      // CCI mode: bound to a volume CCI cannot import (storage_import.h says why).
      {"noshare", {"csi-nas", "nas.csi.everest.io", true, "no share path"}},
  };
  auto it = kClaims.find(name);
  if (it == kClaims.end()) {
    return std::nullopt;
  }
  return it->second;
}

// A pod CCI can run, with `spec` merged over its spec and `metadata` over its metadata.
json::value makePod(const std::string& spec, const std::string& metadata = "{}") {
  json::value pod = json::parse(R"({"metadata":{"name":"p","namespace":"ns"},
      "spec":{"containers":[{"name":"app","image":"i",
                             "resources":{"requests":{"cpu":"250m"}}}]}})");
  for (const auto& [key, extra] : {std::pair{"spec", spec}, std::pair{"metadata", metadata}}) {
    auto& target = pod.at(key).as_object();
    const json::value parsed = json::parse(extra);
    for (const auto& kv : parsed.as_object()) {
      target[kv.key()] = kv.value();
    }
  }
  return pod;
}

struct Case {
  std::string name;
  std::string spec;  // merged into a valid pod's spec
  std::string metadata;
  ErrorCode wantCode;
  std::string wantReason;  // "" when the pod is fine
  std::string wantMessage;
};

const std::vector<Case> kCases = {
    {"ValidPod", "{}", "{}", ErrorCode::kInvalid, "", ""},
    {"AllAllowedVolumes",
     R"({"volumes":[{"name":"a","configMap":{"name":"cm"}},{"name":"b","secret":{"secretName":"s"}},
        {"name":"c","emptyDir":{"medium":"Memory"}},{"name":"d","downwardAPI":{"items":[]}},
        {"name":"e","projected":{"sources":[]}},
        {"name":"f","persistentVolumeClaim":{"claimName":"sfs"}},
        {"name":"g","persistentVolumeClaim":{"claimName":"turbo","readOnly":true}}],
        "containers":[{"name":"app","image":"i","resources":{"limits":{"cpu":"1"}},
          "volumeMounts":[{"name":"a","mountPath":"/a","subPath":"x"},
                          {"name":"c","mountPath":"/c","subPath":""}]}]})",
     "{}", ErrorCode::kInvalid, "", ""},
    {"DaemonSetPod", "{}",
     R"({"ownerReferences":[{"kind":"ReplicaSet","name":"rs"},
                            {"apiVersion":"apps/v1","kind":"DaemonSet","name":"fluentd"}]})",
     ErrorCode::kInvalid, "DaemonSetPod",
     "metadata.ownerReferences[1]: the pod belongs to DaemonSet \"fluentd\"; DaemonSet pods do not "
     "run on CCI"},
    {"HostNetwork", R"({"hostNetwork":true})", "{}", ErrorCode::kInvalid, "HostNetwork",
     "spec.hostNetwork: CCI pods cannot use the host network; CCI runs each pod in its own "
     "sandbox"},
    {"HostNetworkFalseIsFine", R"({"hostNetwork":false})", "{}", ErrorCode::kInvalid, "", ""},
    {"HostPID", R"({"hostPID":true})", "{}", ErrorCode::kInvalid, "HostPID",
     "spec.hostPID: CCI pods cannot share the host's process namespace; CCI runs each pod in its "
     "own sandbox"},
    {"HostIPC", R"({"hostIPC":true})", "{}", ErrorCode::kInvalid, "HostIPC",
     "spec.hostIPC: CCI pods cannot share the host's IPC namespace; CCI runs each pod in its own "
     "sandbox"},
    {"NoCPURequest",
     R"({"containers":[{"name":"a","image":"i","resources":{"limits":{"memory":"1Gi"}}},
                       {"name":"b","image":"i","resources":{"requests":{"cpu":"0"}}}],
        "initContainers":[{"name":"init","image":"i","resources":{"limits":{"cpu":"1"}}}]})",
     "{}", ErrorCode::kInvalid, "NoCPURequest",
     "spec.containers: no container sets resources.requests.cpu or resources.limits.cpu above 0; "
     "CCI needs at least one container with CPU > 0"},
    {"NoResourcesAtAll", R"({"containers":[{"name":"a","image":"i"}]})", "{}", ErrorCode::kInvalid,
     "NoCPURequest",
     "spec.containers: no container sets resources.requests.cpu or resources.limits.cpu above 0; "
     "CCI needs at least one container with CPU > 0"},
    {"CpuLimitOnASecondContainerIsEnough",
     R"({"containers":[{"name":"a","image":"i"},
                       {"name":"b","image":"i","resources":{"limits":{"cpu":"100m"}}}]})",
     "{}", ErrorCode::kInvalid, "", ""},
    {"MalformedCpu",
     R"({"containers":[{"name":"a","image":"i","resources":{"requests":{"cpu":"lots"}}}]})", "{}",
     ErrorCode::kInvalid, "InvalidQuantity",
     "spec.containers[0].resources.requests.cpu: quantity \"lots\" is invalid..."},
    {"HostPathVolume",
     R"({"volumes":[{"name":"a","configMap":{"name":"cm"}},{"name":"b","emptyDir":{}},
                    {"name":"data","hostPath":{"path":"/var/data"}}]})",
     "{}", ErrorCode::kInvalid, "UnsupportedVolume",
     "spec.volumes[2] \"data\": hostPath volumes are not supported on CCI; allowed: configMap, "
     "secret, emptyDir, downwardAPI, projected, persistentVolumeClaim of SFS/SFS Turbo"},
    {"EphemeralVolume",
     R"({"volumes":[{"name":"scratch","ephemeral":{"volumeClaimTemplate":{}}}]})", "{}",
     ErrorCode::kInvalid, "UnsupportedVolume",
     "spec.volumes[0] \"scratch\": ephemeral volumes are not supported on CCI; allowed: "
     "configMap, secret, emptyDir, downwardAPI, projected, persistentVolumeClaim of SFS/SFS "
     "Turbo"},
    {"ClaimWithoutName", R"({"volumes":[{"name":"data","persistentVolumeClaim":{}}]})", "{}",
     ErrorCode::kInvalid, "UnsupportedVolume",
     "spec.volumes[0] \"data\": persistentVolumeClaim without claimName"},
    {"EmptyDirSubPath",
     R"({"volumes":[{"name":"cfg","configMap":{"name":"cm"}},{"name":"cache","emptyDir":{}}],
        "containers":[{"name":"app","image":"i","resources":{"limits":{"cpu":"1"}},
          "volumeMounts":[{"name":"cfg","mountPath":"/etc/x","subPath":"x"},
                          {"name":"cache","mountPath":"/cache","subPath":"app"}]}]})",
     "{}", ErrorCode::kInvalid, "EmptyDirSubPath",
     "spec.containers[0] \"app\" volumeMounts[1] \"cache\": subPath is not supported on emptyDir "
     "volumes on CCI"},
    {"EmptyDirSubPathExprInInitContainer",
     R"json({"volumes":[{"name":"cache","emptyDir":{}}],
        "initContainers":[{"name":"warm","image":"i",
          "volumeMounts":[{"name":"cache","mountPath":"/c","subPathExpr":"$(POD_NAME)"}]}]})json",
     "{}", ErrorCode::kInvalid, "EmptyDirSubPath",
     "spec.initContainers[0] \"warm\" volumeMounts[0] \"cache\": subPathExpr is not supported on "
     "emptyDir volumes on CCI"},
    {"VolumeWithoutSourceIsAnEmptyDir",
     R"({"volumes":[{"name":"v"}],
        "containers":[{"name":"app","image":"i","resources":{"limits":{"cpu":"1"}},
          "volumeMounts":[{"name":"v","mountPath":"/v","subPath":"s"}]}]})",
     "{}", ErrorCode::kInvalid, "EmptyDirSubPath",
     "spec.containers[0] \"app\" volumeMounts[0] \"v\": subPath is not supported on emptyDir "
     "volumes on CCI"},
    {"DiskClaim", R"({"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"disk"}}]})",
     "{}", ErrorCode::kInvalid, "UnsupportedStorageClass",
     "spec.volumes[0] \"data\": claim \"disk\" uses StorageClass \"csi-disk\" (driver "
     "\"disk.csi.everest.io\"); CCI mounts only SFS/SFS Turbo volumes: CSI drivers "
     "nas.csi.everest.io, sfsturbo.csi.everest.io"},
    {"NonCsiClaim",
     R"({"volumes":[{"name":"old","persistentVolumeClaim":{"claimName":"legacy"}}]})", "{}",
     ErrorCode::kInvalid, "UnsupportedStorageClass",
     "spec.volumes[0] \"old\": claim \"legacy\" uses StorageClass \"nfs\" (driver none: not a CSI "
     "volume); CCI mounts only SFS/SFS Turbo volumes: CSI drivers nas.csi.everest.io, "
     "sfsturbo.csi.everest.io"},
    {"ClaimCciCannotImport",
     R"({"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"noshare"}}]})", "{}",
     ErrorCode::kInvalid, "VolumeNotImportable",
     "spec.volumes[0] \"data\": claim \"noshare\": no share path"},
    {"MissingClaimIsRetryable",
     R"({"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data-web-0"}}]})", "{}",
     ErrorCode::kNotFound, "ClaimNotFound",
     "spec.volumes[0] \"data\": PersistentVolumeClaim \"data-web-0\" does not exist (yet)"},
    {"ClaimReportedNotFound",
     R"({"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"deleted"}}]})", "{}",
     ErrorCode::kNotFound, "ClaimNotFound",
     "spec.volumes[0] \"data\": PersistentVolumeClaim \"deleted\" does not exist (yet)"},
    // A permanent violation wins over a missing claim, even one met earlier.
    {"PermanentBeforeRetryable",
     R"({"volumes":[{"name":"a","persistentVolumeClaim":{"claimName":"nope"}},
                    {"name":"b","persistentVolumeClaim":{"claimName":"disk"}}]})",
     "{}", ErrorCode::kInvalid, "UnsupportedStorageClass",
     "spec.volumes[1] \"b\": claim \"disk\" uses StorageClass..."},
    // Rule order: DaemonSet first, whatever else is wrong.
    {"FirstRuleWins", R"({"hostNetwork":true,"volumes":[{"name":"h","hostPath":{"path":"/"}}]})",
     R"({"ownerReferences":[{"kind":"DaemonSet","name":"ds"}]})", ErrorCode::kInvalid,
     "DaemonSetPod", "metadata.ownerReferences[0]: the pod belongs to DaemonSet \"ds\"..."},
    {"HostNetworkBeforeVolumes",
     R"({"hostNetwork":true,"volumes":[{"name":"h","hostPath":{"path":"/"}}]})", "{}",
     ErrorCode::kInvalid, "HostNetwork", "spec.hostNetwork: ..."},
};

bool matches(const std::string& message, const std::string& want) {
  if (want.size() > 3 && want.ends_with("...")) {
    return message.starts_with(want.substr(0, want.size() - 3));
  }
  return message == want;
}

class ValidateTest : public testing::TestWithParam<Case> {};

TEST_P(ValidateTest, Validates) {
  const Case& c = GetParam();
  const json::value pod = makePod(c.spec, c.metadata);
  const Status status = validatePod(pod, ValidateOptions{}, lookupClaim);
  if (c.wantReason.empty()) {
    EXPECT_TRUE(status.ok()) << status.error().toString();
    EXPECT_TRUE(allViolations(pod, ValidateOptions{}, lookupClaim).empty());
    return;
  }
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, c.wantCode);
  EXPECT_EQ(status.error().reason, c.wantReason);
  EXPECT_TRUE(matches(status.error().message, c.wantMessage)) << status.error().message;
  // validatePod reports the first of allViolations.
  const auto all = allViolations(pod, ValidateOptions{}, lookupClaim);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front().reason, c.wantReason);
}

INSTANTIATE_TEST_SUITE_P(Validate, ValidateTest, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(ValidateOptionsTest, StorageClassNamesAndDriversFromOptions) {
  const json::value pod =
      makePod(R"({"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"custom"}}]})");
  const Status byDefault = validatePod(pod, ValidateOptions{}, lookupClaim);
  ASSERT_FALSE(byDefault.ok());
  EXPECT_EQ(byDefault.error().reason, "UnsupportedStorageClass");

  ValidateOptions byClass;
  byClass.storageClasses = {"my-sfs"};
  EXPECT_TRUE(validatePod(pod, byClass, lookupClaim).ok());

  ValidateOptions byDriver;
  byDriver.storageDrivers = {"example.com/sfs"};
  EXPECT_TRUE(validatePod(pod, byDriver, lookupClaim).ok());
  // The default SFS drivers are no longer allowed once the list is replaced.
  const json::value sfs =
      makePod(R"({"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"sfs"}}]})");
  const Status replaced = validatePod(sfs, byDriver, lookupClaim);
  ASSERT_FALSE(replaced.ok());
  EXPECT_EQ(replaced.error().message,
            "spec.volumes[0] \"d\": claim \"sfs\" uses StorageClass \"csi-nas\" (driver "
            "\"nas.csi.everest.io\"); CCI mounts only SFS/SFS Turbo volumes: CSI drivers "
            "example.com/sfs");

  ValidateOptions both;
  both.storageDrivers = {"a"};
  both.storageClasses = {"b", "c"};
  const Status listed = validatePod(sfs, both, lookupClaim);
  ASSERT_FALSE(listed.ok());
  EXPECT_TRUE(listed.error().message.ends_with("CSI drivers a or StorageClasses b, c"))
      << listed.error().message;
}

TEST(ValidateOptionsTest, WithoutLookupEveryClaimIsMissing) {
  const json::value pod =
      makePod(R"({"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"sfs"}}]})");
  const Status status = validatePod(pod, ValidateOptions{}, ClaimLookup{});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(status.error().reason, "ClaimNotFound");
}

TEST(ValidateAllViolationsTest, ListsEveryViolationInRuleOrder) {
  const json::value pod = makePod(
      R"({"hostNetwork":true,"hostIPC":true,
          "volumes":[{"name":"h","hostPath":{"path":"/"}},{"name":"e","emptyDir":{}},
                     {"name":"m","persistentVolumeClaim":{"claimName":"missing"}},
                     {"name":"d","persistentVolumeClaim":{"claimName":"disk"}},
                     {"name":"n","nfs":{"server":"s","path":"/"}}],
          "containers":[{"name":"app","image":"i",
            "volumeMounts":[{"name":"e","mountPath":"/e","subPath":"a","subPathExpr":"b"}]}]})",
      R"({"ownerReferences":[{"kind":"DaemonSet","name":"ds"}]})");
  std::vector<std::string> reasons;
  for (const auto& e : allViolations(pod, ValidateOptions{}, lookupClaim)) {
    reasons.push_back(e.reason);
  }
  EXPECT_EQ(reasons, (std::vector<std::string>{
                         "DaemonSetPod", "HostNetwork", "HostIPC", "NoCPURequest",
                         "UnsupportedVolume", "UnsupportedVolume", "EmptyDirSubPath",
                         "EmptyDirSubPath", "UnsupportedStorageClass", "ClaimNotFound"}));
}

TEST(ValidateAdmitTest, ValidatesThenNormalizes) {
  json::value pod = makePod(R"({"containers":[{"name":"app","image":"i",
      "resources":{"requests":{"cpu":"300m","memory":"100Mi"}}}]})");
  ASSERT_TRUE(admit(pod, ValidateOptions{}, lookupClaim).ok());
  EXPECT_EQ(pod.at("spec").at("containers").at(0).at("resources"),
            json::parse(R"({"requests":{"cpu":"500m","memory":"1Gi"},
                            "limits":{"cpu":"500m","memory":"1Gi"}})"));
  EXPECT_EQ(pod.at("metadata").at("annotations").at(kBurstPodCpuAnnotation), "500m");
  EXPECT_EQ(pod.at("metadata").at("annotations").at(kBurstPodMemoryAnnotation), "1Gi");
}

TEST(ValidateAdmitTest, ValidationFailureLeavesThePodAlone) {
  json::value pod = makePod(R"({"hostNetwork":true})");
  const json::value before = pod;
  const Status status = admit(pod, ValidateOptions{}, lookupClaim);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().reason, "HostNetwork");
  EXPECT_EQ(pod, before);
}

TEST(ValidateAdmitTest, TooLargeAfterNormalization) {
  json::value pod = makePod(R"({"containers":[{"name":"app","image":"i",
      "resources":{"limits":{"cpu":"40","memory":"80Gi"}}}]})");
  const json::value before = pod;
  const Status status = admit(pod, ValidateOptions{}, lookupClaim);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(status.error().reason, "PodTooLarge");
  EXPECT_EQ(status.error().message, "pod needs 40 CPU after normalization, CCI allows at most 32");
  EXPECT_EQ(pod, before);
}

}  // namespace
}  // namespace burstlet::provider::cci
