#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "provider/cci/translate.h"

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

const TranslateOptions kOptions{"cce-burst-c1", "burst-node", "10.1.2.3"};

// --- ConfigMaps and Secrets -------------------------------------------------------------------

TEST(TranslateCopyTest, ConfigMapCopy) {
  const auto cm = json::parse(R"({"metadata":{"namespace":"shop","name":"app.conf","uid":"u-cm",
      "labels":{"x":"y"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"},
      "resourceVersion":"7"},
      "data":{"a":"1"},"binaryData":{"b":"AAE="},"immutable":true})");
  auto copy = toBackendConfigMap(cm, kOptions);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->at("kind"), "ConfigMap");
  const auto& md = copy->at("metadata").as_object();
  EXPECT_EQ(md.at("name"), json::value(copyName("burst-node", "shop", "app.conf")));
  EXPECT_EQ(md.at("namespace"), "cce-burst-c1");
  EXPECT_EQ(md.at("labels"), json::parse(R"({"burstlet.io/managed-by":"burstlet",
      "burstlet.io/node":"burst-node","burstlet.io/source-uid":"u-cm"})"));
  EXPECT_EQ(md.at("annotations"), json::parse(R"({"burstlet.io/source-kind":"ConfigMap",
      "burstlet.io/source-namespace":"shop","burstlet.io/source-name":"app.conf",
      "burstlet.io/source-uid":"u-cm"})"));
  EXPECT_EQ(copy->at("data"), cm.at("data"));
  EXPECT_EQ(copy->at("binaryData"), cm.at("binaryData"));
  EXPECT_EQ(copy->at("immutable"), true);
  EXPECT_TRUE(sameContent(*copy, cm));

  auto changed = cm;
  changed.at("data").as_object()["a"] = "2";
  EXPECT_FALSE(sameContent(*copy, changed));
  changed = cm;
  changed.as_object().erase("binaryData");
  EXPECT_FALSE(sameContent(*copy, changed));
  changed = cm;
  changed.as_object()["immutable"] = false;
  EXPECT_FALSE(sameContent(*copy, changed));
  changed = cm;
  changed.at("metadata").as_object()["uid"] = "u-cm-2";  // deleted and created again
  EXPECT_FALSE(sameContent(*copy, changed));
  // Labels and annotations of the source are not copied, so they do not matter.
  changed = cm;
  changed.at("metadata").as_object()["labels"] = json::object{{"other", "z"}};
  EXPECT_TRUE(sameContent(*copy, changed));
}

TEST(TranslateCopyTest, EmptyDataEqualsAbsentData) {
  const auto cm = json::parse(R"({"metadata":{"namespace":"a","name":"b","uid":"u"}})");
  auto copy = toBackendConfigMap(cm, kOptions);
  ASSERT_TRUE(copy.ok());
  copy->as_object()["data"] = json::object();
  EXPECT_TRUE(sameContent(*copy, cm));
}

TEST(TranslateCopyTest, SecretCopyAndTypes) {
  const auto secret = json::parse(R"({"metadata":{"namespace":"shop","name":"regcred",
      "uid":"u-s"},"type":"kubernetes.io/dockerconfigjson",
      "data":{".dockerconfigjson":"e30="}})");
  auto copy = toBackendSecret(secret, kOptions);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->at("kind"), "Secret");
  EXPECT_EQ(copy->at("type"), "kubernetes.io/dockerconfigjson");
  EXPECT_EQ(copy->at("data"), secret.at("data"));
  EXPECT_EQ(copy->at("metadata").at("name"),
            json::value(copyName("burst-node", "shop", "regcred")));
  EXPECT_EQ(copy->at("metadata").at("annotations").at(kSourceKindAnnotation), "Secret");
  EXPECT_TRUE(sameContent(*copy, secret));

  auto token = json::parse(R"({"metadata":{"namespace":"shop","name":"sa-token","uid":"u-t",
      "annotations":{"kubernetes.io/service-account.name":"default"}},
      "type":"kubernetes.io/service-account-token","data":{"token":"dA=="}})");
  auto tokenCopy = toBackendSecret(token, kOptions);
  ASSERT_TRUE(tokenCopy.ok());
  EXPECT_EQ(tokenCopy->at("type"), "Opaque");
  EXPECT_FALSE(tokenCopy->at("metadata")
                   .at("annotations")
                   .as_object()
                   .contains("kubernetes.io/service-account.name"));
  EXPECT_TRUE(sameContent(*tokenCopy, token));

  for (const char* kept : {"Opaque", "kubernetes.io/dockercfg", "kubernetes.io/tls",
                           "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth"}) {
    EXPECT_EQ(backendSecretType(kept), kept);
  }
  EXPECT_EQ(backendSecretType(""), "Opaque");
  EXPECT_EQ(backendSecretType("bootstrap.kubernetes.io/token"), "Opaque");
  EXPECT_EQ(backendSecretType("example.com/custom"), "Opaque");

  // A type change of the source (Opaque -> tls) needs an update; a copy without type is Opaque.
  auto tls = secret;
  tls.as_object()["type"] = "kubernetes.io/tls";
  EXPECT_FALSE(sameContent(*copy, tls));
  auto untyped = *tokenCopy;
  untyped.as_object().erase("type");
  EXPECT_TRUE(sameContent(untyped, token));
}

TEST(TranslateCopyTest, CopyWithoutNameIsInvalid) {
  EXPECT_FALSE(toBackendConfigMap(json::parse(R"({"metadata":{"name":"x"}})"), kOptions).ok());
  auto r = toBackendSecret(json::parse(R"({"data":{}})"), kOptions);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
}

// --- SFS volumes ------------------------------------------------------------------------------

const char* kClaim = R"({"metadata":{"namespace":"shop","name":"sfs-data","uid":"u-pvc"},
  "spec":{"accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"10Gi"}},
          "storageClassName":"csi-nas","volumeName":"pvc-1234","volumeMode":"Filesystem"},
  "status":{"phase":"Bound"}})";
const char* kVolume = R"({"metadata":{"name":"pvc-1234","uid":"u-pv"},
  "spec":{"capacity":{"storage":"10Gi"},"accessModes":["ReadWriteMany"],
          "mountOptions":["vers=3"],"persistentVolumeReclaimPolicy":"Delete",
          "storageClassName":"csi-nas","volumeMode":"Filesystem",
          "nodeAffinity":{"required":{}},
          "claimRef":{"namespace":"shop","name":"sfs-data","uid":"u-pvc"},
          "csi":{"driver":"nas.csi.everest.io","volumeHandle":"fs-1",
                 "volumeAttributes":{"everest.io/share-export-location":"sfs.example:/share"}}}})";

TEST(TranslateVolumeTest, PersistentVolumePair) {
  const auto pvc = json::parse(kClaim);
  const auto pv = json::parse(kVolume);
  auto backendPv = toBackendPersistentVolume(pvc, pv, kOptions);
  auto backendPvc = toBackendPersistentVolumeClaim(pvc, pv, kOptions);
  ASSERT_TRUE(backendPv.ok()) << backendPv.error().toString();
  ASSERT_TRUE(backendPvc.ok()) << backendPvc.error().toString();

  const std::string pvName = backendPersistentVolumeName("cce-burst-c1", "burst-node", "pvc-1234");
  EXPECT_EQ(backendPv->at("kind"), "PersistentVolume");
  EXPECT_EQ(backendPv->at("metadata").at("name"), json::value(pvName));
  EXPECT_FALSE(backendPv->at("metadata").as_object().contains("namespace"));
  EXPECT_EQ(backendPv->at("metadata").at("labels").at(kManagedByLabel), kManagedByValue);
  EXPECT_EQ(backendPv->at("metadata").at("annotations").at(kSourceKindAnnotation),
            "PersistentVolume");
  const auto& pvSpec = backendPv->at("spec").as_object();
  EXPECT_EQ(pvSpec.at("csi"), pv.at("spec").at("csi"));
  EXPECT_EQ(pvSpec.at("capacity"), pv.at("spec").at("capacity"));
  EXPECT_EQ(pvSpec.at("accessModes"), pv.at("spec").at("accessModes"));
  EXPECT_EQ(pvSpec.at("mountOptions"), pv.at("spec").at("mountOptions"));
  EXPECT_EQ(pvSpec.at("persistentVolumeReclaimPolicy"), "Retain");
  EXPECT_FALSE(pvSpec.contains("nodeAffinity"));
  EXPECT_EQ(pvSpec.at("claimRef"), json::parse(R"({"apiVersion":"v1",
      "kind":"PersistentVolumeClaim","namespace":"cce-burst-c1","name":")" +
                                               copyName("burst-node", "shop", "sfs-data") + "\"}"));

  EXPECT_EQ(backendPvc->at("kind"), "PersistentVolumeClaim");
  const auto& md = backendPvc->at("metadata").as_object();
  EXPECT_EQ(md.at("name"), json::value(copyName("burst-node", "shop", "sfs-data")));
  EXPECT_EQ(md.at("namespace"), "cce-burst-c1");
  EXPECT_EQ(md.at("labels").at(kSourceUidLabel), "u-pvc");
  EXPECT_EQ(md.at("annotations").at(kSourceNameAnnotation), "sfs-data");
  const auto& spec = backendPvc->at("spec").as_object();
  EXPECT_EQ(spec.at("volumeName"), json::value(pvName));
  EXPECT_EQ(spec.at("storageClassName"), "csi-nas");
  EXPECT_EQ(spec.at("resources").at("requests").at("storage"), "10Gi");
  EXPECT_EQ(spec.at("accessModes"), pvc.at("spec").at("accessModes"));
  // The name a pod's claim reference is given (TranslatePodTest) is this claim's.
  EXPECT_EQ(md.at("name"), json::value(copyName(kOptions.nodeName, "shop", "sfs-data")));
}

TEST(TranslateVolumeTest, ClassIsExplicitEvenWhenEmpty) {
  auto pvc = json::parse(kClaim);
  auto pv = json::parse(kVolume);
  pv.at("spec").as_object().erase("storageClassName");
  pvc.at("spec").as_object().erase("storageClassName");
  auto backendPvc = toBackendPersistentVolumeClaim(pvc, pv, kOptions);
  ASSERT_TRUE(backendPvc.ok());
  EXPECT_EQ(backendPvc->at("spec").at("storageClassName"), "");
}

TEST(TranslateVolumeTest, UnboundOrNonCsiIsRefused) {
  auto pvc = json::parse(kClaim);
  auto pv = json::parse(kVolume);
  auto pending = pvc;
  pending.at("spec").as_object().erase("volumeName");
  auto r = toBackendPersistentVolumeClaim(pending, pv, kOptions);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "ClaimNotBound");
  auto hostPath = pv;
  hostPath.at("spec").as_object().erase("csi");
  hostPath.at("spec").as_object()["hostPath"] = json::object{{"path", "/x"}};
  auto r2 = toBackendPersistentVolume(pvc, hostPath, kOptions);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(r2.error().reason, "UnsupportedVolume");
}

}  // namespace
}  // namespace burstlet::provider::cci
