// The seam to the kernel's packet filter: an nftables script applied in one transaction.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace burstlet::network {

class RuleApplier {
 public:
  virtual ~RuleApplier() = default;
  // Applies `script` (nft syntax) atomically. kInvalid with nft's message when it is refused
  // (kPermissionDenied-like kForbidden without CAP_NET_ADMIN).
  virtual Status apply(const std::string& script) = 0;
};

// libnftables, in the calling process's network namespace.
Result<std::unique_ptr<RuleApplier>> makeNftablesApplier();

// Whether table `ip <name>` exists in the calling process's network namespace (kForbidden
// without CAP_NET_ADMIN).
Result<bool> nftablesTableExists(std::string_view name);

}  // namespace burstlet::network
