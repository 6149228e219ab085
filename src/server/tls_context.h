// TlsContext: the serving certificate of a TLS listener, from PEM files (re-read when they
// change), or generated self-signed in memory (and replaced in memory later by its owner), plus
// optional verification of client certificates against a CA bundle. TLS 1.2 and 1.3 only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "server/certificates.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace burstlet::server {

struct TlsOptions {
  // The serving certificate (chain, leaf first) and its key, PEM files. Both or neither.
  std::string certFile;
  std::string keyFile;
  // Without files: a self-signed certificate generated at start for these DNS names and IP
  // addresses (the first is the CN). It lives in memory only.
  std::vector<std::string> selfSignedHosts;
  KeyType selfSignedKeyType = KeyType::kEcdsaP256;
  // PEM bundle of CAs whose client certificates are accepted. Empty: clients are not asked for
  // a certificate. Otherwise a client may present one (refused during the handshake unless
  // valid) and handlers see its subject in Request::clientCertificate.
  std::string clientCaFile;
  // With clientCaFile: refuse clients that present no certificate.
  bool requireClientCertificate = false;
  // How often the files are checked for a change (when a connection arrives; 0: at every new
  // connection). A changed set that loads is used for new connections; one that does not
  // (a half-written rotation, a key not matching) is logged once and the old one kept.
  std::chrono::milliseconds reloadInterval{std::chrono::minutes(1)};
};

// Thread-safe.
class TlsContext {
 public:
  // Errors: kInvalid "InvalidTlsOptions" (see TlsOptions), "UnreadableFile",
  // "InvalidCertificate", "InvalidKey", "KeyMismatch"; kInternal "OpenSsl".
  static Result<std::unique_ptr<TlsContext>> create(TlsOptions options,
                                                    const Clock& clock = realClock());
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // The context for a new connection's handshake, after checking the files if reloadInterval
  // has passed since the last check. Connections keep the context they started with.
  std::shared_ptr<boost::asio::ssl::context> forNewConnection();
  // Checks the files now: true when they changed and the new set is in use, false when
  // unchanged (or nothing is read from files). An error leaves the old set in use.
  Result<bool> reload();
  // Serves `pair` (certificate chain, leaf first, and key, PEM in memory) to new connections
  // from now on, in place of the generated one; connections keep what they started with. For
  // a context made without files. A pair that does not load leaves the previous one in use.
  // Errors: kInvalid "InvalidTlsOptions" (a context reading files), and create()'s for the pair.
  Status useCertificate(PemPair pair);
  // The serving certificate in use (PEM), e.g. for a client to trust the generated one.
  std::string certificatePem() const;

  struct State;  // defined in tls_context.cc
  explicit TlsContext(std::unique_ptr<State> state);

 private:
  std::unique_ptr<State> state_;
};

}  // namespace burstlet::server
