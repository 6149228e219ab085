#include "server/openssl_util.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <array>
#include <climits>

namespace burstlet::server::detail {

namespace {

using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free>>;

BioPtr memoryBio(std::string_view pem) {
  if (pem.size() > static_cast<size_t>(INT_MAX)) {
    return nullptr;
  }
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// All entries of `nid` in `name`, as UTF-8.
std::vector<std::string> nameEntries(X509_NAME* name, int nid) {
  std::vector<std::string> out;
  if (name == nullptr) {
    return out;
  }
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len >= 0 && utf8 != nullptr) {
      out.emplace_back(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
    }
    OPENSSL_free(utf8);
  }
  return out;
}

}  // namespace

std::string takeOpenSslError(std::string_view fallback) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) {
    return std::string(fallback);
  }
  std::array<char, 256> text{};
  ERR_error_string_n(code, text.data(), text.size());
  return text.data();
}

Result<std::vector<X509Ptr>> parseCertificates(std::string_view pem, std::string_view what) {
  ERR_clear_error();
  auto bio = memoryBio(pem);
  std::vector<X509Ptr> out;
  while (bio) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      break;
    }
    out.push_back(std::move(cert));
  }
  // Running out of certificates leaves "no start line" on the queue; anything else is a
  // damaged block.
  const unsigned long last = ERR_peek_last_error();
  const bool cleanEnd = last == 0 || (ERR_GET_LIB(last) == ERR_LIB_PEM &&
                                      ERR_GET_REASON(last) == PEM_R_NO_START_LINE);
  if (out.empty() || !cleanEnd) {
    std::string why = takeOpenSslError("no certificate found");
    return Error::make(
        ErrorCode::kInvalid, "InvalidCertificate",
        fmt::format("{}: {}", what, out.empty() && cleanEnd ? "no PEM certificate" : why));
  }
  ERR_clear_error();
  return out;
}

Result<EvpPkeyPtr> parsePrivateKey(std::string_view pem, std::string_view what) {
  ERR_clear_error();
  auto bio = memoryBio(pem);
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    return Error::make(ErrorCode::kInvalid, "InvalidKey",
                       fmt::format("{}: {}", what, takeOpenSslError("no PEM private key")));
  }
  return key;
}

std::string subjectCommonName(X509* cert) {
  auto names = nameEntries(X509_get_subject_name(cert), NID_commonName);
  return names.empty() ? std::string() : std::move(names.front());
}

std::vector<std::string> subjectOrganizations(X509* cert) {
  return nameEntries(X509_get_subject_name(cert), NID_organizationName);
}

}  // namespace burstlet::server::detail
