// RecordingRuleApplier: the netproxy's kernel seam (network/netproxy/nftables.h) as a test
// double: it records every ruleset, and refuses them as a process without CAP_NET_ADMIN is
// refused when `refuse` is set.
#pragma once

#include <string>
#include <vector>

#include "network/netproxy/nftables.h"

namespace burstlet::testing {

class RecordingRuleApplier final : public network::RuleApplier {
 public:
  Status apply(const std::string& script) override {
    scripts.push_back(script);
    if (refuse) {
      return Error::make(ErrorCode::kForbidden, "NoNetAdmin", "nftables: Operation not permitted");
    }
    return okStatus();
  }
  std::vector<std::string> scripts;
  bool refuse = false;
};

}  // namespace burstlet::testing
