#include "server/certificate_check.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <ctime>

#include "server/openssl_util.h"

namespace burstlet::server {

namespace {

using detail::OpenSslFree;
using detail::X509Ptr;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free>>;

Result<Clock::WallTime> toWallTime(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return Error::make(ErrorCode::kInvalid, "InvalidCertificate",
                       "certificate: unreadable validity time");
  }
  return Clock::WallTime::clock::from_time_t(timegm(&tm));
}

X509Ptr firstCertificate(std::string_view pem) {
  auto certs = detail::parseCertificates(pem, "certificate");
  return certs.ok() ? std::move(certs->front()) : X509Ptr();
}

}  // namespace

Result<CertificateFacts> inspectCertificate(std::string_view pem) {
  auto certs = detail::parseCertificates(pem, "certificate");
  if (!certs.ok()) {
    return std::move(certs).error();
  }
  X509* cert = certs->front().get();
  auto notBefore = toWallTime(X509_get0_notBefore(cert));
  auto notAfter = toWallTime(X509_get0_notAfter(cert));
  if (!notBefore.ok()) {
    return std::move(notBefore).error();
  }
  if (!notAfter.ok()) {
    return std::move(notAfter).error();
  }
  // X509_check_ca answers 1 for a CA:TRUE basicConstraints (other values: older forms).
  const bool isCa = X509_check_ca(cert) == 1;
  ERR_clear_error();
  return CertificateFacts{*notBefore, *notAfter, isCa};
}

Result<std::vector<std::string>> splitCertificates(std::string_view pem) {
  auto certs = detail::parseCertificates(pem, "certificate bundle");
  if (!certs.ok()) {
    return std::move(certs).error();
  }
  std::vector<std::string> out;
  for (const auto& cert : *certs) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert.get()) != 1) {
      return Error::make(ErrorCode::kInternal, "OpenSsl",
                         "certificate bundle: " + detail::takeOpenSslError());
    }
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    out.emplace_back(data, static_cast<size_t>(len));
  }
  return out;
}

bool keyMatches(const PemPair& pair) {
  X509Ptr cert = firstCertificate(pair.certificate);
  auto key = detail::parsePrivateKey(pair.key, "key");
  const bool ok = cert && key.ok() && X509_check_private_key(cert.get(), key->get()) == 1;
  ERR_clear_error();
  return ok;
}

bool coversHosts(std::string_view pem, const std::vector<std::string>& hosts) {
  X509Ptr cert = firstCertificate(pem);
  if (!cert) {
    return false;
  }
  bool ok = true;
  for (const auto& host : hosts) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    ok = ok && (!ec ? X509_check_ip_asc(cert.get(), host.c_str(), 0) == 1
                    : X509_check_host(cert.get(), host.data(), host.size(),
                                      X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1);
  }
  ERR_clear_error();
  return ok;
}

bool issuedBy(std::string_view pem, std::string_view caPem) {
  X509Ptr cert = firstCertificate(pem);
  X509Ptr ca = firstCertificate(caPem);
  if (!cert || !ca) {
    return false;
  }
  EVP_PKEY* caKey = X509_get0_pubkey(ca.get());
  const bool ok = X509_check_issued(ca.get(), cert.get()) == X509_V_OK && caKey != nullptr &&
                  X509_verify(cert.get(), caKey) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace burstlet::server
