// Helpers shared by the translation files (translate.cc, translate_names.cc,
// translate_objects.cc); not part of the provider's interface.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/result.h"
#include "provider/cci/translate.h"

namespace burstlet::provider::cci::internal {

// Room left for the readable part of a generated name: 63 - "-" - 10 hex digits.
constexpr size_t kReadableMax = 52;
constexpr size_t kHashDigits = 10;
constexpr size_t kLabelMax = 63;
// A long namespace is cut to this much so the name, the more telling half, keeps some room.
constexpr size_t kNamespaceShare = 20;

// `s` as DNS-1123 label material: lower case, anything else than [a-z0-9] becomes one '-', no
// '-' at either end, at most `max` characters.
std::string sanitize(std::string_view s, size_t max);

// Absent, null, {} or [].
bool emptyOrNull(const boost::json::value* v);
// Equal, where absent and empty count as the same.
bool sameOptional(const boost::json::value* a, const boost::json::value* b);

// The labels every backend object of this node carries (managed-by, node, source UID).
boost::json::object ownLabels(const TranslateOptions& options, std::string_view sourceUid);
// The annotations naming an object's source in the cluster.
boost::json::object sourceAnnotations(std::string_view kind, std::string_view ns,
                                      std::string_view name, std::string_view uid);
// kInvalid "Invalid<kind>": "<kind> <what>".
Error invalid(std::string_view kind, std::string_view what);
// A ConfigMap or Secret copy's metadata; kInvalid without a namespace or name.
Result<boost::json::object> copyMetadata(std::string_view kind, const boost::json::value& source,
                                         const TranslateOptions& options);
// Shared by a claim's backend copy and its CCI import: kInvalid when `pvc` or `pv` has no
// namespace or name, kUnavailable "ClaimNotBound" when `pvc` is not bound to `pv`.
Status checkBound(const boost::json::value& pvc, const boost::json::value& pv);
// Into `spec`: the access modes (the claim's, else the volume's; left out when neither has any)
// and the storage request (the claim's, else the volume's capacity). False when neither gives a
// size.
bool copyModesAndSize(const boost::json::value& pvc, const boost::json::value& pv,
                      boost::json::object& spec);
// Copies the members `keys` of `from` that are present and not null into `to`.
void copyIfPresent(const boost::json::value& from, boost::json::object& to,
                   std::initializer_list<std::string_view> keys);

}  // namespace burstlet::provider::cci::internal
