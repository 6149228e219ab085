// BackendNamespace: the one backend namespace the node's pods and copies live in. It is created
// with ownership labels (the cluster id; in CCI mode also the flavor annotation CCI requires),
// or, when it exists, used only if it carries them: burstlet never writes into a namespace it
// does not own. While `burstlet cleanup` (or an operator) deletes it, ensure() waits until it is
// gone and makes it again; a new namespace CCI keeps Pending is waited for until it is Active.
// CCI's refusals stop ensure() with their reason (cci_errors.h): the namespace quota used up
// (NamespaceQuotaExceeded), a name another account holds (NamespaceNameTaken).
//
// Several virtual nodes share the namespace: ensure() also puts this node's marker there
// (translate.h nodeMarkerName), so that another node's `burstlet cleanup` sees this one uses the
// namespace even while it runs no pod (cleanup.h).
//
// Owns nothing that changes: its settings are fixed at construction. Thread-safe; any number of
// calls may run at once, each a coroutine on a strand (its sleeps are on the clock, wait.h).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "kube/rest.h"
#include "provider/cci/cci_options.h"

namespace burstlet::provider::cci {

class BackendNamespace {
 public:
  // `backend` must outlive this.
  BackendNamespace(kube::RestClient& backend, const CciOptions& options, const Clock& clock);

  const std::string& name() const { return name_; }

  // Returns once the namespace exists and is ours, with this node's marker in it. While the
  // backend does not answer, tries again (200 ms, doubling up to 10 s apart, on the clock); ends
  // at once with kForbidden NamespaceNotOwned (and on kInvalid, kUnauthorized). A marker the
  // backend keeps refusing is logged and left out: it must not keep the node from working.
  // kCancelled when `stop` is set first.
  boost::asio::awaitable<Status> ensure(const Latch& stop);

  // Reads the namespace: whether the backend answers for it (the provider's ping).
  boost::asio::awaitable<Status> check();

 private:
  // One attempt: create, or check the one there (waiting while it terminates).
  boost::asio::awaitable<Status> ensureOnce(const Latch& stop);
  // Creates this node's marker; one that exists is fine (its content never changes).
  boost::asio::awaitable<Status> ensureMarker();
  // kForbidden NamespaceNotOwned unless `ns` carries our labels.
  Status checkOwned(const boost::json::value& ns) const;
  boost::json::value object() const;

  kube::RestClient& backend_;
  const std::string name_;
  const std::string clusterID_;
  const std::string nodeName_;
  const bool cci_;
  const std::string flavor_;
  const Clock& clock_;
};

}  // namespace burstlet::provider::cci
