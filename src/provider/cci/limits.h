// CCI's limits beyond DESIGN.md section 7, as its documentation gives them (docs/cci.md "CCI's
// limits"): a pod has at most 5 containers, no privileged container, only the probes CCI 1.0
// runs (liveness and readiness by HTTP GET or exec: no startup probe, no TCP or gRPC check), and
// at most 20Gi of ephemeral storage. Each is its own rule, with its reason:
//   "TooManyContainers", "PrivilegedContainer", "UnsupportedProbe", "EphemeralStorageTooLarge".
// All are kInvalid (the same pod never passes). A plain Kubernetes backend checks none of them
// (CciLimits::none()).
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <vector>

#include "common/quantity.h"
#include "common/result.h"

namespace burstlet::provider::cci {

struct CciLimits {
  int maxContainers = 5;            // app containers per pod; 0: any number
  bool allowPrivileged = false;     // securityContext.privileged: true
  bool allowStartupProbes = false;  // startupProbe
  bool allowTcpProbes = false;      // a probe's tcpSocket handler (gRPC: api_fields.h)
  std::optional<Quantity> maxEphemeralStorage =
      Quantity::fromValue(20LL << 30, Quantity::Format::kBinarySI);  // pod level

  // No limit: what a plain Kubernetes backend checks.
  static CciLimits none() { return CciLimits{0, true, true, true, std::nullopt}; }
};

// Appends to `out` every limit `spec` (a pod's spec) breaks.
void checkLimits(const boost::json::value* spec, const CciLimits& limits, std::vector<Error>& out);

}  // namespace burstlet::provider::cci
