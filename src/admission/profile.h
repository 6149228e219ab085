// BurstProfile (burstlet.io/v1alpha1, namespaced; CRD in deploy/crds/): finer control than the
// burst-to-cci label for the pods it selects in its namespace:
//
//   spec:
//     selector: {matchLabels: {...}, matchExpressions: [...]}   # the pods' labels
//     strategy: auto | localPrefer | enforce | off
//     local: {maxNum: 3, scaleDownPriority: 0}   # pods kept on ordinary nodes; beyond: burst
//     burst: {maxNum: 2, scaleDownPriority: 10}  # pods on virtual nodes; beyond: wait
//
// A label on the pod or its workload wins over any profile. Parsing and matching are pure; the
// counting behind maxNum is profile_ledger.h.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "admission/burst_policy.h"
#include "common/result.h"

namespace burstlet::admission {

inline constexpr std::string_view kProfileGroup = "burstlet.io";
inline constexpr std::string_view kProfileVersion = "v1alpha1";

// A Kubernetes LabelSelector (matchLabels and matchExpressions; In, NotIn, Exists,
// DoesNotExist). An empty selector selects every pod.
struct LabelSelector {
  struct Requirement {
    std::string key;
    std::string op;  // In, NotIn, Exists, DoesNotExist
    std::vector<std::string> values;
  };
  std::vector<std::pair<std::string, std::string>> matchLabels;
  std::vector<Requirement> matchExpressions;
};

// Whether `labels` (metadata.labels; null = none) satisfy `selector`.
bool matches(const LabelSelector& selector, const boost::json::value* labels);

struct BurstProfile {
  std::string ns;
  std::string name;
  std::string created;  // metadata.creationTimestamp (RFC 3339: orders as text)
  LabelSelector selector;
  Strategy strategy = Strategy::kOff;
  std::optional<int64_t> localMax;  // local.maxNum
  std::optional<int64_t> burstMax;  // burst.maxNum
  // scaleDownPriority: the higher, the earlier pods there go when the workload scales in.
  std::optional<int64_t> localScaleDownPriority;
  std::optional<int64_t> burstScaleDownPriority;

  std::string key() const { return ns + "/" + name; }
};

// The profile in `object`. kInvalid "InvalidBurstProfile" naming the field (the CRD's schema
// refuses most of these; a profile stored before a schema change may still carry them).
Result<BurstProfile> parseProfile(const boost::json::value& object);

// The profile for a pod with `labels`: of those whose selector matches, the oldest (then by
// name); null when none does. `others` (optional) receives the names of the other matches.
const BurstProfile* pickProfile(std::span<const BurstProfile> profiles,
                                const boost::json::value* labels,
                                std::vector<std::string>* others = nullptr);

}  // namespace burstlet::admission

namespace burstlet::admission {

// The cluster's profiles by namespace, fed by an informer. Thread-safe.
class ProfileIndex {
 public:
  // A profile that does not parse is dropped (and its error returned, for the log).
  Status upsert(const boost::json::value& object);
  void erase(const boost::json::value& object);
  std::vector<BurstProfile> inNamespace(const std::string& ns) const;
  // By namespace/name.
  std::optional<BurstProfile> find(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, BurstProfile>> byNamespace_;
};

}  // namespace burstlet::admission
