#include "daemon/kubelet_certs.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "common/base64.h"
#include "kube/json_path.h"
#include "server/certificate_check.h"
#include "server/certificates.h"

namespace burstlet::daemon {

namespace json = boost::json;

namespace {

const kube::ResourceRef kCsrs{"certificates.k8s.io", "v1", "certificatesigningrequests", false,
                              "CertificateSigningRequest"};

// "Approved", "Denied" or "Failed" when the request has that condition (status True).
std::string verdictOf(const json::value& csr) {
  if (const auto* conditions = kube::arrayAt(csr, {"status", "conditions"})) {
    for (const auto& c : *conditions) {
      const auto type = kube::stringAt(c, {"type"});
      if ((type == "Denied" || type == "Failed") && kube::stringAt(c, {"status"}) != "False") {
        return type + ": " + kube::stringAt(c, {"message"});
      }
    }
  }
  return {};
}

bool approved(const json::value& csr) {
  if (const auto* conditions = kube::arrayAt(csr, {"status", "conditions"})) {
    for (const auto& c : *conditions) {
      if (kube::stringAt(c, {"type"}) == "Approved" && kube::stringAt(c, {"status"}) != "False") {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

json::value signingRequestObject(const std::string& name, const std::string& requestPem) {
  return json::object{
      {"apiVersion", "certificates.k8s.io/v1"},
      {"kind", "CertificateSigningRequest"},
      {"metadata",
       json::object{{"name", name},
                    {"labels", json::object{{"app.kubernetes.io/managed-by", "burstlet"}}}}},
      {"spec", json::object{{"request", base64Encode(requestPem)},
                            {"signerName", kKubeletServingSigner},
                            // ECDSA keys: no key encipherment.
                            {"usages", json::array{"digital signature", "server auth"}}}},
  };
}

KubeletServingCertificates::KubeletServingCertificates(kube::RestClient& cluster,
                                                       server::TlsContext& tls,
                                                       KubeletCertOptions options,
                                                       const Clock& clock)
    : cluster_(cluster), tls_(tls), options_(std::move(options)), clock_(clock) {}

boost::asio::awaitable<Result<server::PemPair>> KubeletServingCertificates::requestOnce(
    const Latch& stop) {
  server::CertificateSpec spec;
  spec.commonName = "system:node:" + options_.nodeName;
  spec.organizations = {"system:nodes"};
  spec.hosts = options_.hosts;
  auto request = server::generateCertificateRequest(spec);
  if (!request.ok()) {
    co_return request.error();
  }
  const auto stamp =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  const std::string name =
      fmt::format("burstlet-serving-{}-{}-{}", options_.nodeName, stamp, sequence_++);
  const std::string noNamespace;
  auto object = signingRequestObject(name, request->request);
  auto created = co_await cluster_.create(kCsrs, noNamespace, std::move(object));
  if (!created.ok()) {
    co_return created.error();
  }
  if (options_.approve) {
    json::value approval = *created;
    approval.as_object()["status"] = json::object{
        {"conditions",
         json::array{json::object{{"type", "Approved"},
                                  {"status", "True"},
                                  {"reason", "BurstletSelfApproved"},
                                  {"message", "approved by burstlet for its virtual node"}}}}};
    const std::string subresource = "approval";
    auto done =
        co_await cluster_.update(kCsrs, noNamespace, name, std::move(approval), subresource);
    if (!done.ok()) {
      spdlog::warn(
          "msg=\"could not approve the kubelet serving certificate request; an operator must\" "
          "csr={} error=\"{}\"",
          name, done.error().toString());
    }
  }
  bool told = false;
  for (;;) {
    auto csr = co_await cluster_.get(kCsrs, noNamespace, name);
    if (csr.ok()) {
      const auto certificate = kube::stringAt(*csr, {"status", "certificate"});
      if (!certificate.empty()) {
        auto pem = base64Decode(certificate);
        if (!pem) {
          co_return Error::make(ErrorCode::kInvalid, "InvalidCertificate",
                                fmt::format("CSR {}: status.certificate is not base64", name));
        }
        co_return server::PemPair{*pem, request->key};
      }
      if (auto verdict = verdictOf(*csr); !verdict.empty()) {
        co_return Error::make(ErrorCode::kForbidden, "CertificateRequestRefused",
                              fmt::format("CSR {}: {}", name, verdict));
      }
      if (!told && !approved(*csr)) {
        told = true;
        spdlog::info(
            "msg=\"waiting for the kubelet serving certificate; approve it with: kubectl "
            "certificate approve {}\"",
            name);
      }
    } else if (csr.error().code == ErrorCode::kNotFound) {
      co_return Error::make(ErrorCode::kNotFound, "CertificateRequestGone",
                            fmt::format("CSR {} was deleted before it was issued", name));
    }
    if (!co_await sleepFor(clock_, options_.pollInterval, &stop)) {
      co_return Error::make(ErrorCode::kCancelled, "Stopped", "stopped");
    }
  }
}

boost::asio::awaitable<void> KubeletServingCertificates::run(const Latch& stop) {
  while (!stop.isSet()) {
    auto pair = co_await requestOnce(stop);
    if (stop.isSet()) {
      break;
    }
    std::chrono::nanoseconds wait = options_.retryAfter;
    if (!pair.ok()) {
      spdlog::warn(
          "msg=\"no kubelet serving certificate from the cluster; serving the "
          "self-signed one\" error=\"{}\" retry_in={}s",
          pair.error().toString(), std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    } else if (auto used = tls_.useCertificate(*pair); !used.ok()) {
      spdlog::warn("msg=\"the issued kubelet serving certificate does not load\" error=\"{}\"",
                   used.error().toString());
    } else {
      issued_ = true;
      auto facts = server::inspectCertificate(pair->certificate);
      if (facts.ok()) {
        // Renew with a third of the validity left.
        const auto lifetime = facts->notAfter - facts->notBefore;
        const auto renewAt = facts->notBefore + lifetime * 2 / 3;
        wait = std::max<std::chrono::nanoseconds>(renewAt - clock_.now(), options_.retryAfter);
        spdlog::info("msg=\"kubelet serving certificate issued by the cluster\" renew_in={}s",
                     std::chrono::duration_cast<std::chrono::seconds>(wait).count());
      }
    }
    if (!co_await sleepFor(clock_, wait, &stop)) {
      break;
    }
  }
}

}  // namespace burstlet::daemon
