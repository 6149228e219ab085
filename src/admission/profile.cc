#include "admission/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "kube/json_path.h"

namespace burstlet::admission {

namespace json = boost::json;

namespace {

Error invalid(const std::string& key, std::string_view what) {
  return Error::make(ErrorCode::kInvalid, "InvalidBurstProfile",
                     fmt::format("BurstProfile {}: {}", key, what));
}

const json::string* labelValue(const json::value* labels, std::string_view key) {
  const auto* object = labels != nullptr ? labels->if_object() : nullptr;
  const auto* v = object != nullptr ? object->if_contains(key) : nullptr;
  return v != nullptr ? v->if_string() : nullptr;
}

// A non-negative integer field of `parent` (absent: nullopt).
Result<std::optional<int64_t>> count(const json::value* parent, std::string_view field,
                                     const std::string& key, std::string_view path) {
  const auto* object = parent != nullptr ? parent->if_object() : nullptr;
  const auto* v = object != nullptr ? object->if_contains(field) : nullptr;
  if (v == nullptr || v->is_null()) {
    return std::optional<int64_t>{};
  }
  if (v->is_int64() && v->get_int64() >= 0) {
    return std::optional<int64_t>{v->get_int64()};
  }
  if (v->is_uint64() && v->get_uint64() <= INT64_MAX) {
    return std::optional<int64_t>{static_cast<int64_t>(v->get_uint64())};
  }
  return invalid(key, fmt::format("{} is not a non-negative integer", path));
}

Result<std::optional<int64_t>> priority(const json::value* parent, const std::string& key,
                                        std::string_view path) {
  const auto* object = parent != nullptr ? parent->if_object() : nullptr;
  const auto* v = object != nullptr ? object->if_contains("scaleDownPriority") : nullptr;
  if (v == nullptr || v->is_null()) {
    return std::optional<int64_t>{};
  }
  // Deletion costs are int32; keep the priority inside it.
  if (v->is_int64() && v->get_int64() >= -1000000 && v->get_int64() <= 1000000) {
    return std::optional<int64_t>{v->get_int64()};
  }
  if (v->is_uint64() && v->get_uint64() <= 1000000) {
    return std::optional<int64_t>{static_cast<int64_t>(v->get_uint64())};
  }
  return invalid(
      key, fmt::format("{}.scaleDownPriority is not an integer in [-1000000, 1000000]", path));
}

Result<LabelSelector> parseSelector(const json::value* v, const std::string& key) {
  LabelSelector s;
  if (v == nullptr || v->is_null()) {
    return s;
  }
  if (!v->is_object()) {
    return invalid(key, "spec.selector is not an object");
  }
  if (const auto* ml = v->get_object().if_contains("matchLabels"); ml != nullptr) {
    if (!ml->is_object()) {
      return invalid(key, "spec.selector.matchLabels is not an object");
    }
    for (const auto& [k, value] : ml->get_object()) {
      if (!value.is_string()) {
        return invalid(key, fmt::format("spec.selector.matchLabels.{} is not a string", k));
      }
      s.matchLabels.emplace_back(std::string(k), std::string(value.get_string()));
    }
  }
  if (const auto* me = v->get_object().if_contains("matchExpressions"); me != nullptr) {
    if (!me->is_array()) {
      return invalid(key, "spec.selector.matchExpressions is not a list");
    }
    for (const auto& e : me->get_array()) {
      LabelSelector::Requirement r;
      r.key = kube::stringAt(e, {"key"});
      r.op = kube::stringAt(e, {"operator"});
      if (r.key.empty()) {
        return invalid(key, "a spec.selector.matchExpressions entry has no key");
      }
      if (const auto* values = kube::at(e, {"values"}); values != nullptr && values->is_array()) {
        for (const auto& x : values->get_array()) {
          if (!x.is_string()) {
            return invalid(key, fmt::format("spec.selector values of {} are not strings", r.key));
          }
          r.values.emplace_back(x.get_string());
        }
      }
      const bool set = r.op == "In" || r.op == "NotIn";
      const bool exists = r.op == "Exists" || r.op == "DoesNotExist";
      if (!set && !exists) {
        return invalid(key, fmt::format("spec.selector operator \"{}\" of {} is not In, NotIn, "
                                        "Exists or DoesNotExist",
                                        r.op, r.key));
      }
      if (set && r.values.empty()) {
        return invalid(key, fmt::format("spec.selector {} {} needs values", r.key, r.op));
      }
      if (exists && !r.values.empty()) {
        return invalid(key, fmt::format("spec.selector {} {} takes no values", r.key, r.op));
      }
      s.matchExpressions.push_back(std::move(r));
    }
  }
  return s;
}

}  // namespace

bool matches(const LabelSelector& selector, const json::value* labels) {
  for (const auto& [k, v] : selector.matchLabels) {
    const auto* value = labelValue(labels, k);
    if (value == nullptr || *value != v) {
      return false;
    }
  }
  for (const auto& r : selector.matchExpressions) {
    const auto* value = labelValue(labels, r.key);
    const bool in = value != nullptr && std::find(r.values.begin(), r.values.end(),
                                                  std::string_view(*value)) != r.values.end();
    if ((r.op == "In" && !in) || (r.op == "NotIn" && in) ||
        (r.op == "Exists" && value == nullptr) || (r.op == "DoesNotExist" && value != nullptr)) {
      return false;
    }
  }
  return true;
}

Result<BurstProfile> parseProfile(const json::value& object) {
  BurstProfile p;
  p.ns = kube::stringAt(object, {"metadata", "namespace"});
  p.name = kube::stringAt(object, {"metadata", "name"});
  p.created = kube::stringAt(object, {"metadata", "creationTimestamp"});
  const std::string key = p.key();
  if (p.name.empty()) {
    return invalid(key, "metadata.name is missing");
  }
  const auto* spec = kube::at(object, {"spec"});
  if (spec == nullptr || !spec->is_object()) {
    return invalid(key, "spec is missing");
  }
  auto selector = parseSelector(kube::at(*spec, {"selector"}), key);
  if (!selector.ok()) {
    return std::move(selector).error();
  }
  p.selector = std::move(*selector);
  const std::string strategy = kube::stringAt(*spec, {"strategy"});
  const auto s = parseStrategy(strategy);
  if (!s) {
    return invalid(key, fmt::format("spec.strategy \"{}\" is not one of auto, localPrefer, "
                                    "enforce, off",
                                    strategy));
  }
  p.strategy = *s;
  const auto* local = kube::at(*spec, {"local"});
  const auto* burst = kube::at(*spec, {"burst"});
  auto localMax = count(local, "maxNum", key, "spec.local.maxNum");
  auto burstMax = count(burst, "maxNum", key, "spec.burst.maxNum");
  auto localPriority = priority(local, key, "spec.local");
  auto burstPriority = priority(burst, key, "spec.burst");
  for (const auto* r : {&localMax, &burstMax, &localPriority, &burstPriority}) {
    if (!r->ok()) {
      return r->error();
    }
  }
  p.localMax = *localMax;
  p.burstMax = *burstMax;
  p.localScaleDownPriority = *localPriority;
  p.burstScaleDownPriority = *burstPriority;
  return p;
}

const BurstProfile* pickProfile(std::span<const BurstProfile> profiles, const json::value* labels,
                                std::vector<std::string>* others) {
  const BurstProfile* best = nullptr;
  std::vector<const BurstProfile*> all;
  for (const auto& p : profiles) {
    if (!matches(p.selector, labels)) {
      continue;
    }
    all.push_back(&p);
    if (best == nullptr || std::tie(p.created, p.name) < std::tie(best->created, best->name)) {
      best = &p;
    }
  }
  if (others != nullptr) {
    for (const auto* p : all) {
      if (p != best) {
        others->push_back(p->name);
      }
    }
  }
  return best;
}

}  // namespace burstlet::admission

namespace burstlet::admission {

Status ProfileIndex::upsert(const json::value& object) {
  auto p = parseProfile(object);
  std::lock_guard lock(mu_);
  const std::string ns = kube::stringAt(object, {"metadata", "namespace"});
  const std::string name = kube::stringAt(object, {"metadata", "name"});
  if (!p.ok()) {
    byNamespace_[ns].erase(name);
    return std::move(p).error();
  }
  byNamespace_[ns][name] = std::move(*p);
  return okStatus();
}

void ProfileIndex::erase(const json::value& object) {
  std::lock_guard lock(mu_);
  const std::string ns = kube::stringAt(object, {"metadata", "namespace"});
  auto it = byNamespace_.find(ns);
  if (it == byNamespace_.end()) {
    return;
  }
  it->second.erase(kube::stringAt(object, {"metadata", "name"}));
  if (it->second.empty()) {
    byNamespace_.erase(it);
  }
}

std::vector<BurstProfile> ProfileIndex::inNamespace(const std::string& ns) const {
  std::lock_guard lock(mu_);
  std::vector<BurstProfile> out;
  if (auto it = byNamespace_.find(ns); it != byNamespace_.end()) {
    for (const auto& [name, p] : it->second) {
      out.push_back(p);
    }
  }
  return out;
}

std::optional<BurstProfile> ProfileIndex::find(const std::string& key) const {
  const auto slash = key.find('/');
  if (slash == std::string::npos) {
    return std::nullopt;
  }
  std::lock_guard lock(mu_);
  auto it = byNamespace_.find(key.substr(0, slash));
  if (it == byNamespace_.end()) {
    return std::nullopt;
  }
  auto p = it->second.find(key.substr(slash + 1));
  if (p == it->second.end()) {
    return std::nullopt;
  }
  return p->second;
}

}  // namespace burstlet::admission
