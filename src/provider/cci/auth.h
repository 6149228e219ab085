// How burstlet authenticates to CCI: an IAM token sent as X-Auth-Token (read from a file that
// something else keeps fresh: IAM tokens expire after 24 hours), or AK/SK request signing
// (signer.h) with keys given directly or read from a file. Both are kube::CredentialSources,
// so the ordinary transport talks to CCI. Files are re-read when they change; nothing here
// ever puts a token or a secret key in a log line or an error message.
#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "kube/credentials.h"
#include "provider/cci/signer.h"

namespace burstlet::provider::cci {

struct CciAuthOptions {
  // Sent as X-Project-Id with every request when non-empty.
  std::string projectID;
  // Exactly one of the following three.
  // A file holding an IAM token: X-Auth-Token mode.
  std::string tokenFile;
  // A file with `accessKey: ...` and `secretKey: ...` (or `ak:` / `sk:`), YAML or JSON.
  std::string akskFile;
  // Keys given directly, e.g. read from a Secret by the caller (akskFromSecretData).
  std::optional<AkSk> aksk;
};

// The credential source for `options`: kInvalid when not exactly one of tokenFile, akskFile
// and aksk is set, or when a value cannot be a header. Files are not read here but on the first
// current(), and again when they change (checked at most once a second) or after invalidate();
// an unreadable, empty or incomplete file makes current() fail with kUnauthorized, naming the
// file and the missing key. `clock` must outlive the source.
Result<std::unique_ptr<kube::CredentialSource>> makeCciCredentialSource(
    CciAuthOptions options, const Clock& clock = realClock());

// Keys from the `data` map of a Secret: base64 values under accessKey and secretKey (or ak and
// sk), surrounding whitespace dropped. kInvalid naming the key that is missing, not base64 or
// empty.
Result<AkSk> akskFromSecretData(const boost::json::object& secretData);

}  // namespace burstlet::provider::cci
