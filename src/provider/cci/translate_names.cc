// Backend names: deterministic, hashed, valid DNS-1123 labels of at most 63 characters.
#include <openssl/sha.h>

#include <array>
#include <cctype>

#include "provider/cci/translate.h"
#include "provider/cci/translate_internal.h"

namespace burstlet::provider::cci {

using namespace internal;  // NOLINT(google-build-using-namespace): this area's own helpers

namespace {

std::string hashPrefix(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; out.size() < kHashDigits; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  out.resize(kHashDigits);
  return out;
}

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isAlnum(char c) { return isLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

}  // namespace

std::string internal::sanitize(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (isLowerAlnum(lower)) {
      out.push_back(lower);
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  if (out.size() > max) {
    out.resize(max);
  }
  while (!out.empty() && out.back() == '-') {
    out.pop_back();
  }
  return out;
}

namespace {

bool isValidLabelValue(std::string_view v) {
  if (v.empty()) {
    return true;
  }
  if (v.size() > kLabelMax || !isAlnum(v.front()) || !isAlnum(v.back())) {
    return false;
  }
  for (char c : v) {
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

// --- names ------------------------------------------------------------------------------------

namespace {

// "<ns>-<name>" as DNS-1123 label material of at most kReadableMax characters, "-" and the
// hash of `key`.
std::string hashedName(std::string_view ns, std::string_view name, std::string_view key) {
  std::string nsPart = sanitize(ns, kReadableMax);
  const std::string namePart = sanitize(name, kReadableMax);
  if (!nsPart.empty() && nsPart.size() + 1 + namePart.size() > kReadableMax) {
    nsPart = sanitize(nsPart, kNamespaceShare);
  }
  std::string readable = nsPart;
  if (!namePart.empty()) {
    readable += (readable.empty() ? "" : "-") + namePart;
  }
  readable = sanitize(readable, kReadableMax);
  const std::string hash = hashPrefix(key);
  return readable.empty() ? hash : readable + "-" + hash;
}

}  // namespace

std::string backendName(std::string_view ns, std::string_view name) {
  // '/' can appear in neither a namespace nor a name, so "ns/name" identifies the pair.
  std::string key(ns);
  key += '/';
  key += name;
  return hashedName(ns, name, key);
}

std::string copyName(std::string_view node, std::string_view ns, std::string_view name) {
  // Node names are DNS subdomains: no '/' either, so "node/ns/name" identifies the triple.
  std::string key(node);
  key += '/';
  key += ns;
  key += '/';
  key += name;
  return hashedName(ns, name, key);
}

std::string nodeSecretName(std::string_view node, std::string_view purpose) {
  // '#' is in no node name, namespace or object name: no copy's key can be this one.
  std::string key = "#node-secret/";
  key += node;
  key += '/';
  key += purpose;
  return hashedName("burstlet", purpose, key);
}

std::string nodeMarkerName(std::string_view node) {
  // As nodeSecretName: '#' keeps the key apart from every copy's.
  std::string key = "#node-marker/";
  key += node;
  return hashedName("burstlet-node", node, key);
}

std::string backendPersistentVolumeName(std::string_view backendNamespace, std::string_view node,
                                        std::string_view clusterPvName) {
  return std::string(backendNamespace) + "-" + copyName(node, "", clusterPvName);
}

std::string safeLabelValue(std::string_view value) {
  if (isValidLabelValue(value)) {
    return std::string(value);
  }
  const std::string readable = sanitize(value, kReadableMax);
  const std::string hash = hashPrefix(value);
  return readable.empty() ? hash : readable + "-" + hash;
}

}  // namespace burstlet::provider::cci
