// Logging: spdlog configured for key=value structured lines, with every message passed through
// redaction before any sink sees it. Secrets and tokens never reach a log line: known secret
// values are registered and scrubbed literally, and common secret shapes (bearer tokens, JWTs,
// PEM private keys, `token=`/`password:`-style fields) are masked by pattern.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace burstlet::log {

struct Options {
  // trace, debug, info, warn, error, critical, off.
  std::string level = "info";
  // Extra sink for tests; when null, lines go to stderr.
  std::shared_ptr<spdlog::sinks::sink> sink;
};

// Installs the default logger. Safe to call again (the last call wins).
Status init(const Options& options);

// Returns `text` with secret-looking content masked.
std::string redact(std::string_view text);

// Registers a secret value (a token read from a file, a key) so that every later log line has
// it masked wherever it appears. Values shorter than 8 characters are ignored: masking them
// would mangle ordinary words.
void registerSecret(std::string_view value);

// Wraps another sink and redacts each message before passing it on.
std::shared_ptr<spdlog::sinks::sink> makeRedactingSink(std::shared_ptr<spdlog::sinks::sink> inner);

}  // namespace burstlet::log
