// CCI's storage import: the mapping of CCE's SFS / SFS Turbo volumes to CCI's import (a row per
// class), and through the provider in CCI mode: a claim copy is an import, never a volume, and
// leaves only by CCI's unbind (the sweep, cleanup), so no file system is ever deleted.
#include "provider/cci/storage_import.h"

#include <gtest/gtest.h>

#include "kube/json_path.h"
#include "provider/cci/cci_harness.h"
#include "provider/cci/cleanup.h"

namespace burstlet::provider::cci {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the harness of these tests

const TranslateOptions kTranslate{kNs, kNode, ""};

json::value sfsClaim() {
  return json::value{{"metadata", {{"namespace", "app"}, {"name", "data"}, {"uid", "pvc-1"}}},
                     {"spec",
                      {{"volumeName", "pv1"},
                       {"accessModes", json::array{"ReadWriteMany"}},
                       {"resources", {{"requests", {{"storage", "10Gi"}}}}}}}};
}

json::value volume(const std::string& driver, const json::object& attributes,
                   const std::string& handle = "fs-1") {
  json::object csi{{"driver", driver}, {"volumeAttributes", attributes}};
  if (!handle.empty()) {
    csi["volumeHandle"] = handle;
  }
  return json::value{{"metadata", {{"name", "pv1"}, {"uid", "pv-uid-1"}}},
                     {"spec",
                      {{"capacity", {{"storage", "500Gi"}}},
                       {"accessModes", json::array{"ReadWriteMany"}},
                       {"csi", std::move(csi)}}}};
}

const json::object kSfsLocation{
    {std::string(kExportLocationAttribute), "sfs-nas01.example:/share-1"}};

// One row per import class: CCE's driver and SFS Turbo type give CCI's class; the file system's
// ID and share path travel in CCI's annotations.
TEST(StorageImportTest, EachClassMapsToCcisImport) {
  struct Row {
    std::string driver;
    std::string turboType;  // "" : attribute absent
    std::string cciClass;
  };
  const std::vector<Row> rows = {
      {"nas.csi.everest.io", "", "nfs-rw"},
      {"sfsturbo.csi.everest.io", "", "efs-standard"},
      {"sfsturbo.csi.everest.io", "STANDARD", "efs-standard"},
      {"sfsturbo.csi.everest.io", "PERFORMANCE", "efs-performance"},
  };
  ASSERT_EQ(rows.size(), importClasses().size());
  for (const auto& row : rows) {
    json::object attrs = kSfsLocation;
    if (!row.turboType.empty()) {
      attrs[std::string(kTurboTypeAttribute)] = row.turboType;
    }
    auto r = toImportedClaim(sfsClaim(), volume(row.driver, attrs), kTranslate);
    ASSERT_TRUE(r.ok()) << row.driver << " " << r.error().toString();
    const json::value& b = *r;
    EXPECT_EQ(stringAt(b, {"spec", "storageClassName"}), row.cciClass) << row.driver;
    EXPECT_EQ(stringAt(b, {"kind"}), "PersistentVolumeClaim");
    EXPECT_EQ(stringAt(b, {"apiVersion"}), "v1");
    EXPECT_EQ(stringAt(b, {"metadata", "annotations", "fsType"}), "nfs");
    EXPECT_EQ(stringAt(b, {"metadata", "annotations", "volumeID"}), "fs-1");
    EXPECT_EQ(stringAt(b, {"metadata", "annotations", "deviceMountPath"}),
              "sfs-nas01.example:/share-1");
    EXPECT_EQ(stringAt(b, {"metadata", "name"}), copyName(kNode, "app", "data"));
    EXPECT_EQ(stringAt(b, {"metadata", "namespace"}), kNs);
    EXPECT_EQ(stringAt(b, {"metadata", "labels", kManagedByLabel}), kManagedByValue);
    EXPECT_EQ(stringAt(b, {"metadata", "annotations", kSourceUidAnnotation}), "pvc-1");
    EXPECT_EQ(stringAt(b, {"spec", "resources", "requests", "storage"}), "10Gi");
    EXPECT_EQ(json::serialize(*kube::at(b, {"spec", "accessModes"})), R"(["ReadWriteMany"])");
    EXPECT_EQ(kube::at(b, {"spec", "volumeName"}), nullptr);
  }
}

// What CCI cannot import is refused naming why; nothing is guessed.
TEST(StorageImportTest, WhatHasNoCciClassIsRefusedWithItsReason) {
  struct Row {
    json::value pv;
    std::string says;
  };
  json::object hp = kSfsLocation;
  hp[std::string(kTurboTypeAttribute)] = "HP";
  const std::vector<Row> rows = {
      {volume("disk.csi.everest.io", kSfsLocation), "not driver \"disk.csi.everest.io\""},
      {volume("sfsturbo.csi.everest.io", hp), "STANDARD or PERFORMANCE only, not"},
      {volume("nas.csi.everest.io", kSfsLocation, ""), "no spec.csi.volumeHandle"},
      {volume("nas.csi.everest.io", {}), "everest.io/share-export-location"},
      {json::value{{"metadata", {{"name", "pv1"}}}, {"spec", json::object{}}}, "not driver none"},
  };
  for (const auto& row : rows) {
    EXPECT_NE(notImportable(row.pv).find(row.says), std::string::npos) << notImportable(row.pv);
    auto r = toImportedClaim(sfsClaim(), row.pv, kTranslate);
    ASSERT_FALSE(r.ok()) << row.says;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(r.error().reason, "VolumeNotImportable");
    EXPECT_NE(r.error().message.find("volume pv1: "), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(notImportable(volume("nas.csi.everest.io", kSfsLocation)), "");
}

TEST(StorageImportTest, ClaimNotBoundToTheVolumeWaits) {
  json::value claim = sfsClaim();
  claim.as_object()["spec"].as_object()["volumeName"] = "pv2";
  auto r = toImportedClaim(claim, volume("nas.csi.everest.io", kSfsLocation), kTranslate);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "ClaimNotBound");
}

TEST(StorageImportTest, SizeFromTheClaimElseTheVolumeElseOneGi) {
  json::value claim = sfsClaim();
  claim.as_object()["spec"].as_object().erase("resources");
  json::value pv = volume("nas.csi.everest.io", kSfsLocation);
  auto r = toImportedClaim(claim, pv, kTranslate);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(stringAt(*r, {"spec", "resources", "requests", "storage"}), "500Gi");
  pv.as_object()["spec"].as_object().erase("capacity");
  r = toImportedClaim(claim, pv, kTranslate);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(stringAt(*r, {"spec", "resources", "requests", "storage"}), "1Gi");
}

TEST(StorageImportTest, UnbindKeepsTheFileSystem) {
  const auto o = unbindOptions();
  EXPECT_EQ(o.query, "deleteVolume=false&storageType=nfs");
  EXPECT_EQ(kExtendedPersistentVolumeClaims.path(kNs),
            "/api/v1/namespaces/" + std::string(kNs) + "/extended-persistentvolumeclaims");
}

// --- through the provider in CCI mode ---------------------------------------------------------

std::string imports() { return kExtendedPersistentVolumeClaims.path(kNs); }

// Claim app/data bound to an SFS volume CCI can import.
void addImportableClaim(FakeClusterObjects& objects) {
  addSfsClaim(objects);
  auto& csi = objects.volumes["pv1"].as_object()["spec"].as_object()["csi"].as_object();
  csi["volumeAttributes"] = kSfsLocation;
}

struct CciHarness : Harness {
  CciHarness() : Harness(cciModeOptions()) { putCciBackend(api); }
};

// Deletes of claims that are not CCI's unbind: each would delete a file system.
TEST(StorageImportProviderTest, ClaimIsImportedNeverAVolume) {
  CciHarness h;
  ASSERT_TRUE(h.startAndSettle());
  addImportableClaim(h.objects);
  const auto s = h.createPod(claimPod("web", "u1"));
  ASSERT_TRUE(s.ok()) << errorText(s);
  EXPECT_EQ(h.api.count(Verb::post, imports()), 1);
  EXPECT_EQ(h.api.count(Verb::post, claims()), 0);
  EXPECT_EQ(h.api.count(Verb::post, volumes()), 0);
  EXPECT_EQ(h.api.count(Verb::get, volumes()), 0);
  const auto copy = h.api.get(claims(), copyName(kNode, "app", "data"));
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(stringAt(*copy, {"metadata", "annotations", "volumeID"}), "h1");
  EXPECT_EQ(stringAt(*copy, {"spec", "storageClassName"}), "nfs-rw");
  EXPECT_TRUE(h.backendPod("app", "web").has_value());
  // A second pod on the same claim uses the same import.
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.createPod(claimPod("web2", "u2")).ok());
  EXPECT_EQ(h.api.count(Verb::post, imports()), 1);
}

// The sweep removes an import no pod mounts by CCI's unbind; no volume is listed or deleted.
TEST(StorageImportProviderTest, SweepUnbindsAndNeverDeletesPlainly) {
  CciHarness h;
  ASSERT_TRUE(h.startAndSettle());
  addImportableClaim(h.objects);
  ASSERT_TRUE(h.createPod(claimPod("web", "u1")).ok());
  ASSERT_TRUE(h.settle());
  ASSERT_TRUE(h.deletePod(PodRef{"app", "web", "u1"}, 0).ok());
  ASSERT_TRUE(h.settle());
  const std::string copy = copyName(kNode, "app", "data");
  for (int i = 0; i < 3 && h.api.get(claims(), copy).has_value(); ++i) {
    h.clock.advance(std::chrono::seconds(31));
    h.runFor(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(h.api.get(claims(), copy).has_value());
  EXPECT_EQ(h.api.count(Verb::delete_, claims()), 1);
  EXPECT_EQ(plainClaimDeletes(h.api), 0);
  EXPECT_EQ(h.api.count(Verb::get, volumes()), 0);
  EXPECT_EQ(h.api.count(Verb::delete_, volumes()), 0);
}

// An import whose answer was lost: asked again, CCI says it exists; the claim copy of that name
// is this claim's, so it is used.
TEST(StorageImportProviderTest, LostImportAnswerIsAdopted) {
  CciHarness h;
  ASSERT_TRUE(h.startAndSettle());
  addImportableClaim(h.objects);
  h.api.holdWatches(true);  // the informer does not show the import yet
  h.api.loseAnswerNext(Verb::post, imports());
  EXPECT_FALSE(h.createPod(claimPod("web", "u1")).ok());
  const auto s = h.createPod(claimPod("web", "u1"));
  h.api.holdWatches(false);
  ASSERT_TRUE(s.ok()) << errorText(s);
  EXPECT_EQ(h.api.count(Verb::post, imports()), 2);
  EXPECT_TRUE(h.backendPod("app", "web").has_value());
}

// CCI imports a file system once: imported by another claim, the pod waits (retried).
TEST(StorageImportProviderTest, FileSystemImportedElsewhereWaits) {
  CciHarness h;
  ASSERT_TRUE(h.startAndSettle());
  addImportableClaim(h.objects);
  h.api.failNextWithBody(
      Verb::post, imports(), 1, 400,
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":400,)"
      R"("message":"storage volume already provisioned","errorCode":"CCI.01.400309"})");
  const auto s = h.createPod(claimPod("web", "u1"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().toString();
  EXPECT_EQ(s.error().reason, kVolumeAlreadyImported);
  EXPECT_NE(s.error().message.find("file system h1"), std::string::npos) << s.error().message;
  EXPECT_FALSE(h.backendPod("app", "web").has_value());
}

// A file system CCI does not know: the pod is refused once with CCI's word, not retried.
TEST(StorageImportProviderTest, FileSystemUnknownToCciIsRefused) {
  CciHarness h;
  ASSERT_TRUE(h.startAndSettle());
  addImportableClaim(h.objects);
  h.api.failNextWithBody(Verb::post, imports(), 1, 400,
                         R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":400,)"
                         R"("message":"storage volume is not found","errorCode":"CCI.01.400306"})");
  const auto s = h.createPod(claimPod("web", "u1"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid) << s.error().toString();
  EXPECT_EQ(s.error().reason, kVolumeNotFound);
  EXPECT_NE(s.error().message.find("storage volume is not found"), std::string::npos)
      << s.error().message;
}

// A volume CCI cannot import is refused by validation: nothing is written.
TEST(StorageImportProviderTest, VolumeWithoutSharePathIsRefusedBeforeAnyWrite) {
  CciHarness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);  // no export location
  const auto writes = h.api.writes();
  const auto s = h.createPod(claimPod("web", "u1"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().reason, "VolumeNotImportable") << s.error().toString();
  EXPECT_NE(s.error().message.find("share path"), std::string::npos) << s.error().message;
  EXPECT_EQ(h.api.writes(), writes);
}

// Outside CCI mode nothing changes: the pair of volume and claim copy.
TEST(StorageImportProviderTest, KubernetesBackendKeepsVolumePairs) {
  Harness h;
  ASSERT_TRUE(h.startAndSettle());
  addSfsClaim(h.objects);
  ASSERT_TRUE(h.createPod(claimPod("web", "u1")).ok());
  EXPECT_EQ(h.api.count(Verb::post, imports()), 0);
  EXPECT_EQ(h.api.count(Verb::post, volumes()), 1);
}

// `burstlet cleanup` in CCI mode unbinds every claim before it deletes the namespace, and leaves
// the namespace when one cannot be unbound.
CleanupOptions lastNodeCleanup() {
  CleanupOptions o;
  o.ns = kNs;
  o.clusterID = kClusterId;
  o.nodeName = kNode;
  o.cciApi = true;
  o.timeout = std::chrono::seconds(5);
  return o;
}

TEST(StorageImportCleanupTest, ClaimsAreUnboundBeforeTheNamespaceGoes) {
  Harness h(cciModeOptions());
  putOwnedNamespace(h.api);
  h.api.put(claims(), json::value{{"metadata", {{"name", "a"}}}});
  h.api.put(claims(), json::value{{"metadata", {{"name", "b"}}}});
  const auto s = h.call(cleanupBackend(*h.backend, lastNodeCleanup(), h.clock));
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_EQ(h.api.count(Verb::delete_, claims()), 2);
  EXPECT_EQ(plainClaimDeletes(h.api), 0);
  EXPECT_EQ(h.api.count(Verb::get, volumes()), 0);
  EXPECT_FALSE(h.api.get(kNamespaces, kNs).has_value());
  int lastUnbind = -1;
  int namespaceDelete = -1;
  const auto requests = h.api.requests();
  for (int i = 0; i < static_cast<int>(requests.size()); ++i) {
    if (requests[i].method == Verb::delete_) {
      (requests[i].path.find("persistentvolumeclaims") != std::string::npos ? lastUnbind
                                                                            : namespaceDelete) = i;
    }
  }
  EXPECT_LT(lastUnbind, namespaceDelete);
}

TEST(StorageImportCleanupTest, NamespaceStaysWhenAClaimCannotBeUnbound) {
  Harness h(cciModeOptions());
  putOwnedNamespace(h.api);
  h.api.put(claims(), json::value{{"metadata", {{"name", "a"}}}});
  h.api.failNext(Verb::delete_, claims(), 10, 403, "Forbidden");
  const auto s = h.call(cleanupBackend(*h.backend, lastNodeCleanup(), h.clock));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("left in place"), std::string::npos) << s.error().message;
  EXPECT_TRUE(h.api.get(kNamespaces, kNs).has_value());
  for (const auto& r : h.api.requests()) {
    EXPECT_FALSE(r.method == Verb::delete_ && r.path == kNamespaces + "/" + kNs);
  }
}

}  // namespace
}  // namespace burstlet::provider::cci
