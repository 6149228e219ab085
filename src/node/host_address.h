// The address the virtual node reports when none is configured.
#pragma once

#include <string>

namespace burstlet::node {

// The first non-loopback IPv4 address of this host that is up, or 127.0.0.1.
std::string detectInternalIP();

}  // namespace burstlet::node
