// JSON patch (RFC 6902) pieces the admission patches share. Paths are JSON pointers into the
// object as it is: a list or map it lacks is added whole.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace burstlet::admission {

// `key` as one JSON pointer token (~ and / escaped).
std::string pointerToken(std::string_view key);

// {"op": "add", "path": path, "value": value}.
boost::json::object add(std::string path, boost::json::value value);

// Whether `pod` already tolerates taint `key` with `effect` whatever its value: a toleration
// with operator Exists for that key (or for every key) and that effect (or every effect).
bool tolerates(const boost::json::value& pod, std::string_view key, std::string_view effect);

// Appends `item` to list `member` of the object at `parent` (JSON pointer; the object exists),
// or adds the list with it.
void appendTo(boost::json::array& ops, const boost::json::value* parentValue,
              const std::string& parent, std::string_view member, boost::json::value item);

// The tolerations of `taints` (key, effect) that `pod` lacks, added in one go.
void tolerate(boost::json::array& ops, const boost::json::value& pod,
              std::initializer_list<std::pair<std::string_view, std::string_view>> taints);

// Sets metadata.<map>[key] = value (map: "labels" or "annotations"). `present` says whether the
// map exists at this point of the patch (the pod's own, or added by an earlier op); it is true
// afterwards.
void setMetadata(boost::json::array& ops, std::string_view map, bool& present, std::string_view key,
                 std::string_view value);

}  // namespace burstlet::admission
