#include "admission/burst_policy.h"

#include <fmt/format.h>

#include <array>
#include <boost/json.hpp>

namespace burstlet::admission {

namespace json = boost::json;

namespace {

constexpr std::array<std::pair<std::string_view, Strategy>, 4> kNames{{
    {"auto", Strategy::kAuto},
    {"localPrefer", Strategy::kLocalPrefer},
    {"enforce", Strategy::kEnforce},
    {"off", Strategy::kOff},
}};

const json::string* labelOf(const Labelled& o, std::string_view key) {
  const auto* labels = o.labels != nullptr ? o.labels->if_object() : nullptr;
  const auto* v = labels != nullptr ? labels->if_contains(key) : nullptr;
  return v != nullptr ? v->if_string() : nullptr;
}

Error invalidLabel(const Labelled& o, std::string_view key, std::string_view value) {
  return Error::make(ErrorCode::kInvalid, "InvalidBurstLabel",
                     fmt::format("{} {}: label {}=\"{}\" is not one of auto, localPrefer, enforce, "
                                 "off",
                                 o.kind, o.name, key, value));
}

// The strategy `o`'s labels set, if any.
Result<std::optional<Choice>> labelChoice(const Labelled& o) {
  std::optional<Choice> found;
  for (const auto key : {kBurstLabel, kBurstLabelCci2}) {
    const auto* value = labelOf(o, key);
    if (value == nullptr) {
      continue;
    }
    const auto s = parseStrategy(*value);
    if (!s) {
      return invalidLabel(o, key, *value);
    }
    if (found && found->strategy != *s) {
      return Error::make(
          ErrorCode::kInvalid, "InvalidBurstLabel",
          fmt::format("{} {}: labels {} and {} disagree ({} and {}); set one", o.kind, o.name,
                      kBurstLabel, kBurstLabelCci2, nameOf(found->strategy), nameOf(*s)));
    }
    if (!found) {
      found = Choice{*s, fmt::format("label {}={} on {} {}", key, nameOf(*s), o.kind, o.name)};
    }
  }
  return found;
}

}  // namespace

std::optional<Strategy> parseStrategy(std::string_view value) {
  for (const auto& [name, s] : kNames) {
    if (name == value) {
      return s;
    }
  }
  return std::nullopt;
}

std::string_view nameOf(Strategy s) {
  for (const auto& [name, strategy] : kNames) {
    if (strategy == s) {
      return name;
    }
  }
  return "off";
}

Result<Choice> choose(const Labelled& pod, std::span<const Labelled> owners,
                      const std::optional<ProfileChoice>& profile) {
  auto own = labelChoice(pod);
  if (!own.ok()) {
    return std::move(own).error();
  }
  if (*own) {
    return **own;
  }
  for (const auto& o : owners) {
    auto c = labelChoice(o);
    if (!c.ok()) {
      return std::move(c).error();
    }
    if (*c) {
      return **c;
    }
  }
  if (profile) {
    return Choice{profile->strategy, fmt::format("profile {}", profile->name), true};
  }
  return Choice{Strategy::kOff, "none"};
}

}  // namespace burstlet::admission
