// The kubelet API's serving certificate through the CSR API: the request burstlet files (signer,
// usages, subject and names of a node), the certificate taken once the signer wrote it, a
// denied or deleted request reported, and self-approval asked for only when configured.
#include "daemon/kubelet_certs.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "common/base64.h"
#include "kube/json_path.h"
#include "mocks/memory_api.h"
#include "mocks/run_sync.h"
#include "server/certificates.h"

namespace burstlet::daemon {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

const std::string kCsrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

struct Fixture {
  asio::io_context io;
  testing::MemoryApi api;
  std::unique_ptr<kube::RestClient> client = std::make_unique<kube::RestClient>(
      io.get_executor(), api.transport(), kube::ClientConfig{}, kube::RestOptions{});
  std::unique_ptr<server::TlsContext> tls;
  Latch stop;
  std::optional<Result<server::PemPair>> result;
  std::unique_ptr<KubeletServingCertificates> certs;

  explicit Fixture(bool approve = false) {
    server::TlsOptions o;
    o.selfSignedHosts = {"10.250.0.1", "vk-1"};
    auto created = server::TlsContext::create(o);
    tls = std::move(created.value());
    KubeletCertOptions options;
    options.nodeName = "vk-1";
    options.hosts = {"10.250.0.1", "vk-1"};
    options.approve = approve;
    options.pollInterval = 10ms;
    certs = std::make_unique<KubeletServingCertificates>(*client, *tls, options);
    asio::co_spawn(io, requestOnce(), asio::detached);
  }
  asio::awaitable<void> requestOnce() { result.emplace(co_await certs->requestOnce(stop)); }
  // The one CSR filed so far.
  std::optional<json::value> filed() {
    auto names = api.names(kCsrs);
    if (names.size() != 1) {
      return std::nullopt;
    }
    return api.get(kCsrs, names[0]);
  }
};

std::string subjectOf(const std::string& requestPem) {
  BIO* bio = BIO_new_mem_buf(requestPem.data(), static_cast<int>(requestPem.size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (req == nullptr) {
    return "unparsable";
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req);
  const bool signedByKey = X509_REQ_verify(req, key) == 1;
  char buf[256];
  X509_NAME_oneline(X509_REQ_get_subject_name(req), buf, sizeof(buf));
  X509_REQ_free(req);
  return signedByKey ? std::string(buf) : "bad signature";
}

TEST(KubeletCerts, FilesANodeServingRequestAndTakesTheIssuedCertificate) {
  Fixture f;
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.filed().has_value(); }));
  auto csr = *f.filed();
  EXPECT_EQ(kube::stringAt(csr, {"spec", "signerName"}), "kubernetes.io/kubelet-serving");
  EXPECT_EQ(json::serialize(csr.at("spec").at("usages")), R"(["digital signature","server auth"])");
  auto pem = base64Decode(kube::stringAt(csr, {"spec", "request"}));
  ASSERT_TRUE(pem.has_value());
  EXPECT_EQ(subjectOf(*pem), "/CN=system:node:vk-1/O=system:nodes");
  EXPECT_FALSE(f.result.has_value());  // waiting for the signer
  // The signer writes the certificate.
  server::CertificateSpec spec;
  spec.commonName = "system:node:vk-1";
  auto issued = server::generateCertificate(spec, realClock());
  ASSERT_TRUE(issued.ok());
  csr.as_object()["status"] = json::object{{"certificate", base64Encode(issued->certificate)}};
  f.api.put(kCsrs, csr);
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.result.has_value(); }));
  ASSERT_TRUE(f.result->ok()) << f.result->error().toString();
  EXPECT_EQ((*f.result)->certificate, issued->certificate);
  EXPECT_NE((*f.result)->key.find("PRIVATE KEY"), std::string::npos);
  // Not asked to approve: no approval was sent.
  EXPECT_EQ(f.api.count(kube::Verb::put), 0);
}

TEST(KubeletCerts, DeniedRequestIsReported) {
  Fixture f;
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.filed().has_value(); }));
  auto csr = *f.filed();
  csr.as_object()["status"] = json::object{
      {"conditions", json::array{json::object{
                         {"type", "Denied"}, {"status", "True"}, {"message", "not a node"}}}}};
  f.api.put(kCsrs, csr);
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.result.has_value(); }));
  ASSERT_FALSE(f.result->ok());
  EXPECT_EQ(f.result->error().reason, "CertificateRequestRefused");
  EXPECT_NE(f.result->error().message.find("not a node"), std::string::npos);
}

TEST(KubeletCerts, DeletedRequestIsReported) {
  Fixture f;
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.filed().has_value(); }));
  f.api.remove(kCsrs, kube::stringAt(*f.filed(), {"metadata", "name"}));
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.result.has_value(); }));
  ASSERT_FALSE(f.result->ok());
  EXPECT_EQ(f.result->error().reason, "CertificateRequestGone");
}

TEST(KubeletCerts, SelfApprovalIsAskedWhenConfigured) {
  Fixture f(true);
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.api.count(kube::Verb::put) > 0; }));
  bool sawApproval = false;
  for (const auto& r : f.api.requests()) {
    if (r.method == kube::Verb::put && r.path.ends_with("/approval")) {
      sawApproval = r.body.find("\"Approved\"") != std::string::npos;
    }
  }
  EXPECT_TRUE(sawApproval);
  f.stop.set();
  ASSERT_TRUE(testing::runUntil(f.io, [&] { return f.result.has_value(); }));
  EXPECT_EQ(f.result->error().code, ErrorCode::kCancelled);
}

}  // namespace
}  // namespace burstlet::daemon
