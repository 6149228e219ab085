// applyJsonPatch: applies RFC 6902 operations (add, remove, replace, test) to a copy of a
// document, so admission tests check the object a patch produces rather than its operations.
// Strict where a sloppy patch would hide a bug: "add" onto an object member that exists is
// refused (the webhook must not overwrite what the pod has), and a failed "test" fails the
// whole patch, as the API server does.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace burstlet::testing {

struct PatchResult {
  boost::json::value doc;
  std::string error;  // empty when every operation applied
};

inline std::vector<std::string> jsonPointerTokens(const std::string& path) {
  std::vector<std::string> tokens;
  for (size_t start = 1; start <= path.size();) {
    const size_t slash = std::min(path.find('/', start), path.size());
    std::string t = path.substr(start, slash - start);
    for (size_t i; (i = t.find("~1")) != std::string::npos;) {
      t.replace(i, 2, "/");
    }
    for (size_t i; (i = t.find("~0")) != std::string::npos;) {
      t.replace(i, 2, "~");
    }
    tokens.push_back(t);
    start = slash + 1;
  }
  return tokens;
}

inline PatchResult applyJsonPatch(boost::json::value doc, const boost::json::array& ops) {
  namespace json = boost::json;
  for (const auto& opValue : ops) {
    const auto& op = opValue.as_object();
    const std::string kind(op.at("op").as_string());
    const std::string path(op.at("path").as_string());
    const auto tokens = jsonPointerTokens(path);
    if (tokens.empty()) {
      return {doc, "empty path"};
    }
    json::value* parent = &doc;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      json::value* next = nullptr;
      if (parent->is_array()) {
        const size_t index = std::stoul(tokens[i]);
        next = index < parent->as_array().size() ? &parent->as_array()[index] : nullptr;
      } else if (parent->is_object()) {
        next = parent->as_object().if_contains(tokens[i]);
      }
      if (next == nullptr) {
        return {doc, "no parent for " + path};
      }
      parent = next;
    }
    const std::string& last = tokens.back();
    json::value* target = nullptr;
    if (parent->is_array() && last != "-") {
      const size_t index = std::stoul(last);
      target = index < parent->as_array().size() ? &parent->as_array()[index] : nullptr;
    } else if (parent->is_object()) {
      target = parent->as_object().if_contains(last);
    }
    if (kind == "test") {
      if (target == nullptr || *target != op.at("value")) {
        return {doc, "test failed at " + path};
      }
    } else if (kind == "add") {
      if (parent->is_array()) {
        auto& a = parent->as_array();
        if (last == "-") {
          a.push_back(op.at("value"));
        } else {
          a.insert(a.begin() + static_cast<std::ptrdiff_t>(std::stoul(last)), op.at("value"));
        }
      } else {
        if (target != nullptr) {
          return {doc, "add over existing " + path};
        }
        parent->as_object()[last] = op.at("value");
      }
    } else if (kind == "remove" || kind == "replace") {
      if (target == nullptr) {
        return {doc, kind + " of missing " + path};
      }
      if (kind == "replace") {
        *target = op.at("value");
      } else if (parent->is_array()) {
        auto& a = parent->as_array();
        a.erase(a.begin() + static_cast<std::ptrdiff_t>(std::stoul(last)));
      } else {
        parent->as_object().erase(last);
      }
    } else {
      return {doc, "unsupported op " + kind};
    }
  }
  return {std::move(doc), ""};
}

}  // namespace burstlet::testing
