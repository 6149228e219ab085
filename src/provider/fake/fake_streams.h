// The fake provider's kubelet API streams, enough for unit tests of the kubelet API: a log handed
// out whole, and an exec/attach session that echoes what it is sent.
#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "provider/provider.h"

namespace burstlet::provider {

// `text` in one read, then the end.
std::unique_ptr<ByteStream> makeTextStream(std::string text);

// A session that first writes `banner` on stdout (when not empty), then echoes every stdin write
// on stdout and every resize as "resize <w>x<h>\n" on stderr, until stdin closes ("" written;
// at once when `stdinOpen` is false); then it ends with `exitCode`. Waits on `clock`, which must
// outlive the session.
std::unique_ptr<ExecSession> makeEchoSession(const Clock& clock, std::string banner, bool stdinOpen,
                                             int exitCode);

}  // namespace burstlet::provider
