#include "node/node_version.h"

namespace burstlet::node {

std::string kubeletVersionFor(std::string_view release, std::string_view burstletVersion) {
  std::string out(release);
  out.append("-burstlet.");
  out.append(burstletVersion);
  return out;
}

}  // namespace burstlet::node
