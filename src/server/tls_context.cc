#include "server/tls_context.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include "server/openssl_util.h"

namespace burstlet::server {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3 keeps OpenSSL's defaults, all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// The PEM a context is built from: what was loaded, to tell a change from a re-read.
struct Material {
  std::string certificate;
  std::string key;
  std::string clientCa;

  bool operator==(const Material&) const = default;
};

Error invalidOptions(std::string_view why) {
  return Error::make(ErrorCode::kInvalid, "InvalidTlsOptions", std::string(why));
}

Result<std::string> readFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error::make(ErrorCode::kInvalid, "UnreadableFile",
                       fmt::format("{} \"{}\": {}", what, path, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<std::shared_ptr<ssl::context>> buildContext(const Material& m, bool requireClientCert) {
  std::shared_ptr<ssl::context> ctx;
  try {
    ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  } catch (const std::exception& e) {
    return Error::make(ErrorCode::kInternal, "OpenSsl", e.what());
  }
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(
      native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Connections are long-lived (API server clients keep them); resumption is not worth a
  // session cache, and without tickets a TLS 1.3 handshake writes nothing after it is done.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(native, 0);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return Error::make(ErrorCode::kInternal, "OpenSsl", detail::takeOpenSslError());
  }
  // Parsed first to tell a damaged file from a key that belongs to another certificate.
  auto chain = detail::parseCertificates(m.certificate, "serving certificate");
  if (!chain.ok()) {
    return std::move(chain).error();
  }
  auto key = detail::parsePrivateKey(m.key, "serving key");
  if (!key.ok()) {
    return std::move(key).error();
  }
  if (X509_check_private_key(chain->front().get(), key->get()) != 1) {
    ERR_clear_error();
    return Error::make(ErrorCode::kInvalid, "KeyMismatch",
                       "serving key does not match the certificate");
  }
  boost::system::error_code ec;
  ctx->use_certificate_chain(boost::asio::buffer(m.certificate), ec);
  if (!ec) {
    ctx->use_private_key(boost::asio::buffer(m.key), ssl::context::pem, ec);
  }
  if (ec) {
    return Error::make(ErrorCode::kInvalid, "InvalidCertificate",
                       fmt::format("serving certificate and key: {}", ec.message()));
  }
  if (!m.clientCa.empty()) {
    auto cas = detail::parseCertificates(m.clientCa, "client CA bundle");
    if (!cas.ok()) {
      return std::move(cas).error();
    }
    X509_STORE* store = SSL_CTX_get_cert_store(native);
    for (const auto& ca : *cas) {
      // The list of acceptable CAs a client sees in the CertificateRequest.
      if (X509_STORE_add_cert(store, ca.get()) != 1 ||
          SSL_CTX_add_client_CA(native, ca.get()) != 1) {
        return Error::make(ErrorCode::kInternal, "OpenSsl", detail::takeOpenSslError());
      }
    }
    SSL_CTX_set_verify(native,
                       SSL_VERIFY_PEER | (requireClientCert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       nullptr);
  }
  ERR_clear_error();
  return ctx;
}

}  // namespace

struct TlsContext::State {
  State(TlsOptions o, const Clock& c) : options(std::move(o)), clock(c) {}

  bool fromFiles() const { return !options.certFile.empty(); }

  // The files' current content; the generated pair stands in for missing files.
  Result<Material> readMaterial() const {
    Material m;
    if (fromFiles()) {
      auto cert = readFile(options.certFile, "certificate file");
      if (!cert.ok()) {
        return std::move(cert).error();
      }
      auto key = readFile(options.keyFile, "key file");
      if (!key.ok()) {
        return std::move(key).error();
      }
      m.certificate = std::move(*cert);
      m.key = std::move(*key);
    } else {
      m.certificate = generated.certificate;
      m.key = generated.key;
    }
    if (!options.clientCaFile.empty()) {
      auto ca = readFile(options.clientCaFile, "client CA file");
      if (!ca.ok()) {
        return std::move(ca).error();
      }
      m.clientCa = std::move(*ca);
    }
    return m;
  }

  // Under mu.
  Result<bool> reloadLocked() {
    lastCheck = clock.steadyNow();
    auto m = readMaterial();
    if (m.ok() && *m == loaded) {
      return false;
    }
    auto ctx = m.ok() ? buildContext(*m, options.requireClientCertificate)
                      : Result<std::shared_ptr<ssl::context>>(m.error());
    if (!ctx.ok()) {
      // Log a failed set once, not at every check until someone fixes it.
      if (ctx.error().message != lastFailure) {
        lastFailure = ctx.error().message;
        spdlog::warn(
            "msg=\"tls certificate reload failed, keeping the previous one\" cert={} "
            "error=\"{}\"",
            options.certFile, ctx.error().toString());
      }
      return std::move(ctx).error();
    }
    loaded = std::move(*m);
    context = std::move(*ctx);
    lastFailure.clear();
    spdlog::info("msg=\"tls certificate loaded\" cert={} client_ca={}", options.certFile,
                 options.clientCaFile);
    return true;
  }

  const TlsOptions options;
  const Clock& clock;

  std::mutex mu;      // guards the members below
  PemPair generated;  // when not from files: made by create(), replaced by useCertificate()
  Material loaded;
  std::shared_ptr<ssl::context> context;
  Clock::SteadyTime lastCheck{};
  std::string lastFailure;
};

TlsContext::TlsContext(std::unique_ptr<State> state) : state_(std::move(state)) {}

TlsContext::~TlsContext() = default;

Result<std::unique_ptr<TlsContext>> TlsContext::create(TlsOptions options, const Clock& clock) {
  if (options.certFile.empty() != options.keyFile.empty()) {
    return invalidOptions("certFile and keyFile go together");
  }
  if (options.certFile.empty() && options.selfSignedHosts.empty()) {
    return invalidOptions("neither certificate files nor hosts for a self-signed certificate");
  }
  if (!options.certFile.empty() && !options.selfSignedHosts.empty()) {
    return invalidOptions("certificate files and self-signed hosts exclude each other");
  }
  if (options.requireClientCertificate && options.clientCaFile.empty()) {
    return invalidOptions("requireClientCertificate needs clientCaFile");
  }
  auto state = std::make_unique<State>(std::move(options), clock);
  if (!state->fromFiles()) {
    CertificateSpec spec;
    spec.hosts = state->options.selfSignedHosts;
    spec.keyType = state->options.selfSignedKeyType;
    auto pair = generateCertificate(spec, clock);
    if (!pair.ok()) {
      return std::move(pair).error();
    }
    state->generated = std::move(*pair);
  }
  {
    std::lock_guard lock(state->mu);
    auto loaded = state->reloadLocked();
    if (!loaded.ok()) {
      return std::move(loaded).error();
    }
  }
  return std::make_unique<TlsContext>(std::move(state));
}

std::shared_ptr<ssl::context> TlsContext::forNewConnection() {
  std::lock_guard lock(state_->mu);
  if (state_->clock.steadyNow() - state_->lastCheck >= state_->options.reloadInterval) {
    (void)state_->reloadLocked();  // a failure was logged; the previous context serves
  }
  return state_->context;
}

Result<bool> TlsContext::reload() {
  std::lock_guard lock(state_->mu);
  return state_->reloadLocked();
}

Status TlsContext::useCertificate(PemPair pair) {
  std::lock_guard lock(state_->mu);
  if (state_->fromFiles()) {
    return invalidOptions("the certificate comes from files");
  }
  Material m{pair.certificate, pair.key, state_->loaded.clientCa};
  if (m == state_->loaded) {
    return okStatus();
  }
  auto ctx = buildContext(m, state_->options.requireClientCertificate);
  if (!ctx.ok()) {
    return std::move(ctx).error();
  }
  state_->generated = std::move(pair);
  state_->loaded = std::move(m);
  state_->context = std::move(*ctx);
  return okStatus();
}

std::string TlsContext::certificatePem() const {
  std::lock_guard lock(state_->mu);
  return state_->loaded.certificate;
}

}  // namespace burstlet::server
