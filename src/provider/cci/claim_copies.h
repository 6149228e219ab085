// ClaimCopies: SFS claims of the cluster made available on the backend. A claim a pod mounts is
// read (with its volume or storage class) for validation. On a Kubernetes backend its copy is a
// pair: a PersistentVolume pre-bound to a claim copy in the backend namespace, both pointing at
// the same file system; a volume of that name the backend has already is used, handed over from
// an earlier copy of the claim, or refused (claims.h). In CCI mode, which has no volume API, the
// file system is imported as the claim copy (storage_import.h) and never deleted plainly.
//
// Owns no state of its own: what the sweep deleted is in the CopyLedger, the claim copies the
// backend has in the claims informer's store (both owned by Copies). Thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <string>

#include "common/result.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/cluster_objects.h"
#include "provider/cci/copy_ledger.h"
#include "provider/cci/pod_copies.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci {

class ClaimCopies {
 public:
  // All must outlive this. `copies`: the claim copies the backend has (an informer's store).
  ClaimCopies(kube::RestClient& backend, ClusterObjects& cluster, const kube::Store& copies,
              CopyLedger& ledger, const CciOptions& options, CciStats& stats);

  // PodCopies::readClaims.
  boost::asio::awaitable<Result<PodClaims>> read(const boost::json::value& pod);
  // Makes the backend pair of claim `claim` of namespace `ns`, as `read` found it.
  boost::asio::awaitable<Status> ensure(const std::string& ns, const std::string& claim,
                                        const ReadClaim& read);

 private:
  boost::asio::awaitable<Result<ReadClaim>> readOne(const std::string& ns,
                                                    const std::string& claim);
  // What `read.info` needs besides the claim: the volume's driver, or the storage class's.
  boost::asio::awaitable<Status> readVolume(const std::string& claim, const std::string& volume,
                                            ReadClaim& read);
  boost::asio::awaitable<Status> readStorageClass(const std::string& claim, ReadClaim& read);
  // The backend volume of the pair; an existing one goes through reuseVolume.
  boost::asio::awaitable<Status> ensureVolume(const boost::json::value& pvc,
                                              const boost::json::value& pv);
  // The backend volume `wanted` names exists already: fine when it is ours and free for wanted's
  // claim, handed over when an earlier claim copy's binding holds it (claims.h), else an error.
  boost::asio::awaitable<Status> reuseVolume(const boost::json::value& wanted);
  // CCI mode: imports the file system as claim copy `name`. An import CCI says exists already
  // is ours when the claim copy of that name is this claim's (an answer lost); otherwise the
  // file system is imported by another claim, and the pod waits (retried).
  boost::asio::awaitable<Status> importClaim(const std::string& ns, const std::string& claim,
                                             const std::string& name, const ReadClaim& read);

  kube::RestClient& backend_;
  ClusterObjects& cluster_;
  const kube::Store& copies_;
  CopyLedger& ledger_;
  const std::string backendNamespace_;
  const std::string nodeName_;
  const std::string clusterID_;
  const TranslateOptions translate_;
  const bool cci_;
  CciStats& stats_;
};

}  // namespace burstlet::provider::cci
