#include "server/certificates.h"

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <climits>

#include "server/openssl_util.h"

namespace burstlet::server {

namespace {

using detail::EvpPkeyPtr;
using detail::OpenSslFree;
using detail::X509Ptr;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslFree<BN_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslFree<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OpenSslFree<GENERAL_NAME_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslFree<X509_EXTENSION_free>>;

constexpr auto kBackdate = std::chrono::hours(1);

Error openSslError(std::string_view step) {
  return Error::make(
      ErrorCode::kInternal, "OpenSsl",
      fmt::format("generating a certificate: {}: {}", step, detail::takeOpenSslError()));
}

EvpPkeyPtr newKey(KeyType type) {
  if (type == KeyType::kRsa2048) {
    return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  }
  return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

bool addNameEntry(X509_NAME* name, int nid, const std::string& value) {
  if (value.size() > static_cast<size_t>(INT_MAX)) {
    return false;
  }
  return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), -1, 0) == 1;
}

// One extension from OpenSSL's configuration syntax; `value` is always a constant here, so
// nothing from the caller is parsed as configuration.
bool addExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

// subjectAltName built as structures (not configuration text), so a host cannot inject
// further names. Null on failure.
GeneralNamesPtr generalNames(const std::vector<std::string>& hosts) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) {
    return nullptr;
  }
  for (const auto& host : hosts) {
    GeneralNamePtr name(GENERAL_NAME_new());
    if (!name) {
      return nullptr;
    }
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (!ec) {
      ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
      if (ip == nullptr) {
        return nullptr;
      }
      GENERAL_NAME_set0_value(name.get(), GEN_IPADD, ip);
    } else {
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (dns == nullptr || host.size() > static_cast<size_t>(INT_MAX) ||
          ASN1_STRING_set(dns, host.data(), static_cast<int>(host.size())) != 1) {
        ASN1_IA5STRING_free(dns);
        return nullptr;
      }
      GENERAL_NAME_set0_value(name.get(), GEN_DNS, dns);
    }
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) {
      return nullptr;
    }
    (void)name.release();  // owned by `names` now
  }
  return names;
}

bool addSubjectAltNames(X509* cert, const std::vector<std::string>& hosts) {
  auto names = generalNames(hosts);
  return names &&
         (sk_GENERAL_NAME_num(names.get()) == 0 ||
          X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) == 1);
}

Result<std::string> toPem(X509* cert, EVP_PKEY* key, X509_REQ* request = nullptr) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  const bool ok = bio && (cert == nullptr || PEM_write_bio_X509(bio.get(), cert) == 1) &&
                  (request == nullptr || PEM_write_bio_X509_REQ(bio.get(), request) == 1) &&
                  (key == nullptr || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                                              nullptr, nullptr) == 1);
  if (!ok) {
    return openSslError("PEM encoding");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

Result<PemPair> generateCertificate(const CertificateSpec& spec, const Clock& clock,
                                    const PemPair* issuer) {
  const std::string commonName = !spec.commonName.empty()
                                     ? spec.commonName
                                     : (spec.hosts.empty() ? std::string() : spec.hosts.front());
  if (commonName.empty()) {
    return Error::make(ErrorCode::kInvalid, "InvalidCertificateSpec",
                       "a certificate needs a common name or a host");
  }
  for (const auto& host : spec.hosts) {
    if (host.empty()) {
      return Error::make(ErrorCode::kInvalid, "InvalidCertificateSpec", "empty host name");
    }
  }
  X509Ptr issuerCert;
  EvpPkeyPtr issuerKey;
  if (issuer != nullptr) {
    auto certs = detail::parseCertificates(issuer->certificate, "issuer certificate");
    auto key = detail::parsePrivateKey(issuer->key, "issuer key");
    if (!certs.ok() || !key.ok()) {
      return Error::make(ErrorCode::kInvalid, "InvalidIssuer",
                         certs.ok() ? key.error().message : certs.error().message);
    }
    issuerCert = std::move(certs->front());
    issuerKey = std::move(*key);
    if (X509_check_private_key(issuerCert.get(), issuerKey.get()) != 1) {
      return Error::make(ErrorCode::kInvalid, "InvalidIssuer",
                         "issuer key does not match its certificate");
    }
  }

  EvpPkeyPtr key = newKey(spec.keyType);
  X509Ptr cert(X509_new());
  if (!key || !cert) {
    return openSslError("new key");
  }
  BignumPtr serial(BN_new());
  const auto now = clock.now();
  const time_t notBefore = Clock::WallTime::clock::to_time_t(now - kBackdate);
  const time_t notAfter = Clock::WallTime::clock::to_time_t(now + spec.validity);
  // Serial: 128 random bits, positive, as RFC 5280 asks of CAs.
  if (!serial || BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()), notBefore) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), notAfter) == nullptr ||
      X509_set_pubkey(cert.get(), key.get()) != 1) {
    return openSslError("certificate fields");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  bool named = addNameEntry(subject, NID_commonName, commonName);
  for (const auto& org : spec.organizations) {
    named = named && addNameEntry(subject, NID_organizationName, org);
  }
  X509* signer = issuerCert ? issuerCert.get() : cert.get();
  if (!named || X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1) {
    return openSslError("subject");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, signer, cert.get(), nullptr, nullptr, 0);
  const bool rsa = spec.keyType == KeyType::kRsa2048;
  const char* keyUsage = spec.isCa ? "critical,digitalSignature,keyCertSign,cRLSign"
                         : rsa     ? "critical,digitalSignature,keyEncipherment"
                                   : "critical,digitalSignature";
  bool extended =
      addExtension(cert.get(), &ctx, NID_basic_constraints,
                   spec.isCa ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
      addExtension(cert.get(), &ctx, NID_key_usage, keyUsage) &&
      addExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash") &&
      (spec.isCa || addExtension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth")) &&
      addSubjectAltNames(cert.get(), spec.hosts);
  if (extended && issuerCert) {
    extended = addExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  }
  if (!extended) {
    return openSslError("extensions");
  }
  EVP_PKEY* signingKey = issuerKey ? issuerKey.get() : key.get();
  if (X509_sign(cert.get(), signingKey, EVP_sha256()) <= 0) {
    return openSslError("signing");
  }
  auto certPem = toPem(cert.get(), nullptr);
  auto keyPem = toPem(nullptr, key.get());
  if (!certPem.ok()) {
    return std::move(certPem).error();
  }
  if (!keyPem.ok()) {
    return std::move(keyPem).error();
  }
  return PemPair{std::move(*certPem), std::move(*keyPem)};
}

Result<CertificateRequest> generateCertificateRequest(const CertificateSpec& spec) {
  if (spec.commonName.empty() || spec.isCa) {
    return Error::make(ErrorCode::kInvalid, "InvalidCertificateSpec",
                       "a certificate request needs a common name and cannot be for a CA");
  }
  for (const auto& host : spec.hosts) {
    if (host.empty()) {
      return Error::make(ErrorCode::kInvalid, "InvalidCertificateSpec", "empty host name");
    }
  }
  using RequestPtr = std::unique_ptr<X509_REQ, OpenSslFree<X509_REQ_free>>;
  struct FreeExtensions {
    void operator()(STACK_OF(X509_EXTENSION) * s) const {
      sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
    }
  };
  using ExtensionsPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), FreeExtensions>;
  EvpPkeyPtr key = newKey(spec.keyType);
  RequestPtr request(X509_REQ_new());
  if (!key || !request || X509_REQ_set_version(request.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_pubkey(request.get(), key.get()) != 1) {
    return openSslError("certificate request");
  }
  X509_NAME* subject = X509_REQ_get_subject_name(request.get());
  bool named = addNameEntry(subject, NID_commonName, spec.commonName);
  for (const auto& org : spec.organizations) {
    named = named && addNameEntry(subject, NID_organizationName, org);
  }
  if (!named) {
    return openSslError("subject");
  }
  if (!spec.hosts.empty()) {
    auto names = generalNames(spec.hosts);
    ExtensionsPtr extensions(sk_X509_EXTENSION_new_null());
    ExtensionPtr san(names ? X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()) : nullptr);
    if (!extensions || !san || sk_X509_EXTENSION_push(extensions.get(), san.get()) == 0) {
      return openSslError("subjectAltName");
    }
    (void)san.release();  // owned by `extensions` now
    if (X509_REQ_add_extensions(request.get(), extensions.get()) != 1) {
      return openSslError("subjectAltName");
    }
  }
  if (X509_REQ_sign(request.get(), key.get(), EVP_sha256()) <= 0) {
    return openSslError("signing the request");
  }
  auto requestPem = toPem(nullptr, nullptr, request.get());
  auto keyPem = toPem(nullptr, key.get());
  if (!requestPem.ok()) {
    return std::move(requestPem).error();
  }
  if (!keyPem.ok()) {
    return std::move(keyPem).error();
  }
  return CertificateRequest{std::move(*requestPem), std::move(*keyPem)};
}

}  // namespace burstlet::server
