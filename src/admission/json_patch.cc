#include "admission/json_patch.h"

#include <boost/json.hpp>

#include "kube/json_path.h"

namespace burstlet::admission {

namespace json = boost::json;

std::string pointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

json::object add(std::string path, json::value value) {
  return json::object{{"op", "add"}, {"path", std::move(path)}, {"value", std::move(value)}};
}

bool tolerates(const json::value& pod, std::string_view key, std::string_view effect) {
  const auto* list = kube::at(pod, {"spec", "tolerations"});
  if (list == nullptr || !list->is_array()) {
    return false;
  }
  for (const auto& t : list->get_array()) {
    const std::string k = kube::stringAt(t, {"key"});
    const std::string e = kube::stringAt(t, {"effect"});
    if (kube::stringAt(t, {"operator"}) == "Exists" && (k.empty() || k == key) &&
        (e.empty() || e == effect)) {
      return true;
    }
  }
  return false;
}

void appendTo(json::array& ops, const json::value* parentValue, const std::string& parent,
              std::string_view member, json::value item) {
  const auto* obj = parentValue != nullptr ? parentValue->if_object() : nullptr;
  const auto* list = obj != nullptr ? obj->if_contains(member) : nullptr;
  const std::string path = parent + "/" + pointerToken(member);
  if (list != nullptr && list->is_array()) {
    ops.push_back(add(path + "/-", std::move(item)));
  } else {
    ops.push_back(add(path, json::array{std::move(item)}));
  }
}

void tolerate(json::array& ops, const json::value& pod,
              std::initializer_list<std::pair<std::string_view, std::string_view>> taints) {
  json::array missing;
  for (const auto& [key, effect] : taints) {
    if (!tolerates(pod, key, effect)) {
      missing.push_back(json::object{{"key", key}, {"operator", "Exists"}, {"effect", effect}});
    }
  }
  if (missing.empty()) {
    return;
  }
  const auto* list = kube::at(pod, {"spec", "tolerations"});
  if (list != nullptr && list->is_array()) {
    for (auto& t : missing) {
      ops.push_back(add("/spec/tolerations/-", std::move(t)));
    }
  } else {
    ops.push_back(add("/spec/tolerations", std::move(missing)));
  }
}

void setMetadata(json::array& ops, std::string_view map, bool& present, std::string_view key,
                 std::string_view value) {
  const std::string path = "/metadata/" + std::string(map);
  if (!present) {
    ops.push_back(add(path, json::object{{key, value}}));
    present = true;
    return;
  }
  ops.push_back(add(path + "/" + pointerToken(key), json::string(value)));
}

}  // namespace burstlet::admission
