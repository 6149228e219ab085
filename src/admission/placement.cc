#include "admission/placement.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "admission/json_patch.h"
#include "kube/json_path.h"

namespace burstlet::admission {

namespace json = boost::json;

namespace {

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
