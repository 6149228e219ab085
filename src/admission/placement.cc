#include "admission/placement.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "kube/json_path.h"

namespace burstlet::admission {

namespace json = boost::json;

namespace {

// `key` as one JSON pointer token.
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

// Whether `pod` already tolerates taint `key` with `effect` whatever its value: a toleration
// with operator Exists for that key (or for every key) and that effect (or every effect).
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

// Appends to list `path` (a member of the object at `parent`, which exists) or adds it.
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

// The tolerations of `keys` (key, effect) that `pod` lacks, added in one go: the ops are computed
// against the pod as it is, so a missing list is added once, whole.
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

// A preferred node affinity term (weight 100) away from virtual nodes, the levels the pod lacks
// added whole.
void preferOrdinaryNodes(json::array& ops, const json::value& pod, const PlacementOptions& o) {
  json::value term = json::object{
      {"weight", 100},
      {"preference",
       json::object{{"matchExpressions",
                     json::array{json::object{{"key", o.nodeLabelKey},
                                              {"operator", "NotIn"},
                                              {"values", json::array{o.nodeLabelValue}}}}}}}};
  const auto* affinity = kube::at(pod, {"spec", "affinity"});
  if (affinity == nullptr || !affinity->is_object()) {
    ops.push_back(add("/spec/affinity",
                      json::object{{"nodeAffinity",
                                    json::object{{"preferredDuringSchedulingIgnoredDuringExecution",
                                                  json::array{std::move(term)}}}}}));
    return;
  }
  const auto* node = kube::at(*affinity, {"nodeAffinity"});
  if (node == nullptr || !node->is_object()) {
    ops.push_back(add("/spec/affinity/nodeAffinity",
                      json::object{{"preferredDuringSchedulingIgnoredDuringExecution",
                                    json::array{std::move(term)}}}));
    return;
  }
  appendTo(ops, node, "/spec/affinity/nodeAffinity",
           "preferredDuringSchedulingIgnoredDuringExecution", std::move(term));
}

void annotate(json::array& ops, const json::value& pod, const std::string& rule) {
  const auto* annotations = kube::at(pod, {"metadata", "annotations"});
  if (annotations == nullptr || !annotations->is_object()) {
    ops.push_back(add("/metadata/annotations", json::object{{kRuleAnnotation, rule}}));
    return;
  }
  ops.push_back(add("/metadata/annotations/" + pointerToken(kRuleAnnotation), json::string(rule)));
}

bool isDaemonSetPod(std::span<const Labelled> owners) {
  return !owners.empty() && owners.front().kind == "DaemonSet";
}

}  // namespace

json::array placementPatch(const json::value& pod, const Choice& choice,
                           const PlacementOptions& options) {
  json::array ops;
  if (choice.strategy == Strategy::kOff) {
    return ops;
  }
  if (choice.strategy == Strategy::kEnforce) {
    tolerate(ops, pod,
             {{options.taintKey, "NoSchedule"}, {options.preferenceTaintKey, "PreferNoSchedule"}});
  } else {
    tolerate(ops, pod, {{options.taintKey, "NoSchedule"}});
  }
  switch (choice.strategy) {
    case Strategy::kEnforce: {
      const auto* selector = kube::at(pod, {"spec", "nodeSelector"});
      if (selector == nullptr || !selector->is_object()) {
        ops.push_back(add("/spec/nodeSelector",
                          json::object{{options.nodeLabelKey, options.nodeLabelValue}}));
      } else if (!selector->get_object().contains(options.nodeLabelKey)) {
        ops.push_back(add("/spec/nodeSelector/" + pointerToken(options.nodeLabelKey),
                          json::string(options.nodeLabelValue)));
      }
      break;
    }
    case Strategy::kLocalPrefer:
      preferOrdinaryNodes(ops, pod, options);
      break;
    case Strategy::kAuto:
    case Strategy::kOff:
      break;
  }
  annotate(ops, pod, choice.rule);
  return ops;
}

json::array daemonSetPatch(const json::value& daemonSet, const PlacementOptions& options) {
  json::array ops;
  const json::value* podSpec = kube::at(daemonSet, {"spec", "template", "spec"});
  if (podSpec == nullptr || !podSpec->is_object()) {
    return ops;
  }
  const json::value pod = json::object{{"spec", *podSpec}};
  if (!tolerates(pod, options.taintKey, "NoSchedule")) {
    return ops;  // the taint keeps it away already
  }
  const json::value expression = json::object{{"key", options.nodeLabelKey},
                                              {"operator", "NotIn"},
                                              {"values", json::array{options.nodeLabelValue}}};
  const std::string base = "/spec/template/spec";
  const json::value term = json::object{{"matchExpressions", json::array{expression}}};
  const auto* affinity = kube::at(*podSpec, {"affinity"});
  if (affinity == nullptr || !affinity->is_object()) {
    ops.push_back(add(
        base + "/affinity",
        json::object{{"nodeAffinity",
                      json::object{{"requiredDuringSchedulingIgnoredDuringExecution",
                                    json::object{{"nodeSelectorTerms", json::array{term}}}}}}}));
    return ops;
  }
  const auto* node = kube::at(*affinity, {"nodeAffinity"});
  if (node == nullptr || !node->is_object()) {
    ops.push_back(add(base + "/affinity/nodeAffinity",
                      json::object{{"requiredDuringSchedulingIgnoredDuringExecution",
                                    json::object{{"nodeSelectorTerms", json::array{term}}}}}));
    return ops;
  }
  const auto* terms =
      kube::at(*node, {"requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"});
  if (terms == nullptr || !terms->is_array() || terms->get_array().empty()) {
    ops.push_back(
        add(base + "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution",
            json::object{{"nodeSelectorTerms", json::array{term}}}));
    return ops;
  }
  // Terms are alternatives: each must exclude virtual nodes.
  const auto& list = terms->get_array();
  for (size_t i = 0; i < list.size(); ++i) {
    const auto* expressions = kube::at(list[i], {"matchExpressions"});
    bool has = false;
    if (expressions != nullptr && expressions->is_array()) {
      for (const auto& e : expressions->get_array()) {
        has = has || e == expression;
      }
    }
    if (has) {
      continue;
    }
    const std::string at = fmt::format(
        "{}/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/"
        "{}/matchExpressions",
        base, i);
    if (expressions != nullptr && expressions->is_array()) {
      ops.push_back(add(at + "/-", expression));
    } else {
      ops.push_back(add(at, json::array{expression}));
    }
  }
  return ops;
}

Decision decide(const json::value& pod, std::span<const Labelled> owners,
                const std::optional<ProfileChoice>& profile, const PlacementOptions& options,
                const BackendCheck& check) {
  Decision d;
  const Labelled self{"Pod", kube::stringAt(pod, {"metadata", "name"}),
                      kube::at(pod, {"metadata", "labels"})};
  auto choice = choose(self, owners, profile);
  if (!choice.ok()) {
    d.allowed = false;
    d.message = choice.error().message;
    return d;
  }
  d.choice = std::move(*choice);
  const Strategy s = d.choice.strategy;
  if (s == Strategy::kOff) {
    return d;
  }
  if (isDaemonSetPod(owners)) {
    d.warnings.push_back(
        fmt::format("{}: DaemonSet pods never run on virtual nodes; left local", d.choice.rule));
    d.choice = Choice{Strategy::kOff, "none"};
    return d;
  }
  if (s == Strategy::kEnforce) {
    const std::string selected =
        kube::stringAt(pod, {"spec", "nodeSelector", options.nodeLabelKey});
    if (!selected.empty() && selected != options.nodeLabelValue) {
      d.allowed = false;
      d.message = fmt::format(
          "{} is enforce, but the pod's nodeSelector {}={} excludes virtual "
          "nodes",
          d.choice.rule, options.nodeLabelKey, selected);
      return d;
    }
  }
  if (const std::string why = check ? check(pod) : std::string(); !why.empty()) {
    if (s == Strategy::kEnforce) {
      d.allowed = false;
      d.message =
          fmt::format("{} is enforce, but the backend cannot run this pod: {}", d.choice.rule, why);
      return d;
    }
    d.warnings.push_back(
        fmt::format("{}: the backend cannot run this pod ({}); it stays on ordinary nodes",
                    d.choice.rule, why));
    d.choice.strategy = Strategy::kOff;
    return d;
  }
  d.patch = placementPatch(pod, d.choice, options);
  return d;
}

}  // namespace burstlet::admission
