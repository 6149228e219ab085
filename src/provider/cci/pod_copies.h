// The seam between BackendPods and Copies: what creating and deleting a pod needs of the copies
// of its ConfigMaps, Secrets and claims. Copies implements it; BackendPods holds a reference.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/result.h"
#include "provider/cci/validate.h"

namespace burstlet::provider::cci {

// A pod's claim as read from the cluster for validation: what validation needs, and the objects
// themselves (the volume only when the claim is bound), reused to make the backend's pair.
struct ReadClaim {
  ClaimInfo info;
  boost::json::value pvc;
  std::optional<boost::json::value> pv;
};
// By claim name.
using PodClaims = std::map<std::string, ReadClaim>;

// Keeps the copies a create needs out of the sweep's reach until release() or destruction.
// Move-only.
class CopyHold {
 public:
  CopyHold() = default;
  explicit CopyHold(std::function<void()> release) : release_(std::move(release)) {}
  CopyHold(CopyHold&& other) noexcept : release_(std::exchange(other.release_, nullptr)) {}
  CopyHold& operator=(CopyHold&& other) noexcept {
    if (this != &other) {
      release();
      release_ = std::exchange(other.release_, nullptr);
    }
    return *this;
  }
  CopyHold(const CopyHold&) = delete;
  CopyHold& operator=(const CopyHold&) = delete;
  ~CopyHold() { release(); }

  // Idempotent.
  void release() {
    if (auto r = std::exchange(release_, nullptr)) {
      r();
    }
  }

 private:
  std::function<void()> release_;
};

class PodCopies {
 public:
  virtual ~PodCopies() = default;
  // The claims `pod` mounts, read from the cluster. A claim that does not exist is left out
  // (validation answers ClaimNotFound); one bound to a volume or of a storage class not there
  // yet is kUnavailable.
  virtual boost::asio::awaitable<Result<PodClaims>> readClaims(const boost::json::value& pod) = 0;
  // Makes every copy `pod` references (ConfigMaps, Secrets, claims and their volumes) exist on
  // the backend as its source is now. The copies stay held until the returned hold goes. A
  // required ConfigMap or Secret that is missing is kNotFound kCreateContainerConfigError, and
  // the pod is woken (onPodStatusChange) when it appears.
  virtual boost::asio::awaitable<Result<CopyHold>> ensure(const boost::json::value& pod,
                                                          const PodClaims& claims) = 0;
  // Pod `podKey` ("ns/name") waits for no source any more.
  virtual void forget(const std::string& podKey) = 0;
};

}  // namespace burstlet::provider::cci
