#include "provider/cci/translate.h"

#include <algorithm>
#include <boost/json.hpp>
#include <iterator>
#include <vector>

#include "kube/json_path.h"
#include "provider/cci/translate_internal.h"

namespace burstlet::provider::cci {

namespace json = boost::json;
using kube::child;
using kube::path;
using kube::stringAt;
using kube::stringOf;
using namespace internal;  // NOLINT(google-build-using-namespace): this area's own helpers

namespace {

// --- references -------------------------------------------------------------------------------

enum class RefKind { kConfigMap, kSecret, kClaim };

constexpr const char* kContainerLists[] = {"initContainers", "containers", "ephemeralContainers"};

// Names of projected volumes that carry a service account token. The token is the cluster's:
// the backend cannot use it, and the volume's other sources (kube-root-ca.crt, namespace) only
// make sense with it.
std::set<std::string> tokenVolumes(const json::value* spec) {
  std::set<std::string> out;
  const auto* volumes = child(spec, "volumes");
  if (volumes == nullptr || !volumes->is_array()) {
    return out;
  }
  for (const auto& v : volumes->as_array()) {
    const auto* sources = path(&v, {"projected", "sources"});
    if (sources == nullptr || !sources->is_array()) {
      continue;
    }
    for (const auto& s : sources->as_array()) {
      if (child(&s, "serviceAccountToken") != nullptr) {
        out.insert(stringAt(v, {"name"}));
        break;
      }
    }
  }
  return out;
}

// Calls f(kind, nameValue) for every reference of a pod spec to a ConfigMap, Secret or claim in
// its namespace, skipping the volumes in `skip`. One walker serves both collecting (const) and
// rewriting, so the two can never disagree on where references live.
template <typename V, typename F>
void visitRefs(V* spec, const std::set<std::string>& skip, F&& f) {
  auto visit = [&f](RefKind kind, V* name) {
    if (name != nullptr && name->is_string() && !name->as_string().empty()) {
      f(kind, *name);
    }
  };
  if (auto* volumes = child(spec, "volumes"); volumes != nullptr && volumes->is_array()) {
    for (auto& v : volumes->as_array()) {
      if (skip.contains(stringAt(v, {"name"}))) {
        continue;
      }
      visit(RefKind::kConfigMap, path(&v, {"configMap", "name"}));
      visit(RefKind::kSecret, path(&v, {"secret", "secretName"}));
      visit(RefKind::kClaim, path(&v, {"persistentVolumeClaim", "claimName"}));
      if (auto* sources = path(&v, {"projected", "sources"});
          sources != nullptr && sources->is_array()) {
        for (auto& s : sources->as_array()) {
          visit(RefKind::kConfigMap, path(&s, {"configMap", "name"}));
          visit(RefKind::kSecret, path(&s, {"secret", "name"}));
        }
      }
    }
  }
  if (auto* pulls = child(spec, "imagePullSecrets"); pulls != nullptr && pulls->is_array()) {
    for (auto& p : pulls->as_array()) {
      visit(RefKind::kSecret, child(&p, "name"));
    }
  }
  for (const char* list : kContainerLists) {
    auto* containers = child(spec, list);
    if (containers == nullptr || !containers->is_array()) {
      continue;
    }
    for (auto& c : containers->as_array()) {
      if (auto* env = child(&c, "env"); env != nullptr && env->is_array()) {
        for (auto& e : env->as_array()) {
          visit(RefKind::kConfigMap, path(&e, {"valueFrom", "configMapKeyRef", "name"}));
          visit(RefKind::kSecret, path(&e, {"valueFrom", "secretKeyRef", "name"}));
        }
      }
      if (auto* from = child(&c, "envFrom"); from != nullptr && from->is_array()) {
        for (auto& e : from->as_array()) {
          visit(RefKind::kConfigMap, path(&e, {"configMapRef", "name"}));
          visit(RefKind::kSecret, path(&e, {"secretRef", "name"}));
        }
      }
    }
  }
}

// --- pods -------------------------------------------------------------------------------------

// Spec fields that describe how the workload runs. Anything else (scheduling, service account,
// runtime class, readiness gates, resource claims, and fields newer than this list) belongs to
// the cluster: an unknown field is more likely to name a cluster object than to matter to the
// containers.
constexpr std::string_view kKeptSpecFields[] = {
    "containers",
    "initContainers",
    "volumes",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "dnsConfig",
    "hostname",
    "subdomain",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "os",
    "hostAliases",
    "resources",
    // Kept so the backend's own policy decides, rather than silently running the pod otherwise
    // (validation refuses hostNetwork before a pod gets here).
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "hostUsers",
};

}  // namespace

bool keptSpecField(std::string_view key) {
  return std::find(std::begin(kKeptSpecFields), std::end(kKeptSpecFields), key) !=
         std::end(kKeptSpecFields);
}

namespace {

// The hostname the kubelet would give the pod: its name, cut to 63 characters. spec.hostname
// must be a DNS label, so a dotted name has its dots turned into dashes.
std::string defaultHostname(std::string_view podName) { return sanitize(podName, kLabelMax); }

json::array containerNames(const json::value* list) {
  json::array names;
  if (list != nullptr && list->is_array()) {
    for (const auto& c : list->as_array()) {
      names.push_back(json::string(stringOf(child(&c, "name"))));
    }
  }
  return names;
}

bool ownLabelKey(std::string_view key) {
  return key == kManagedByLabel || key == kNodeLabel || key == kSourceUidLabel ||
         key.starts_with(kBurstPodAnnotationPrefix);
}

bool ownAnnotationKey(std::string_view key) {
  return key == kSourceNamespaceAnnotation || key == kSourceNameAnnotation ||
         key == kSourceUidAnnotation || key == kSourceKindAnnotation ||
         key == kContainersAnnotation || key == kSourceKeysAnnotation ||
         key == kInjectedStopAnnotation || key == kInjectedContainersAnnotation ||
         key.starts_with(kBurstPodAnnotationPrefix);
}

json::object withoutKeys(const json::value* map, bool (*drop)(std::string_view)) {
  json::object out;
  if (map != nullptr && map->is_object()) {
    for (const auto& [k, v] : map->as_object()) {
      if (!drop(k)) {
        out[k] = v;
      }
    }
  }
  return out;
}

void keepOnly(json::object& map, const std::set<std::string>& keys) {
  for (auto it = map.begin(); it != map.end();) {
    it = keys.count(std::string(it->key())) != 0 ? std::next(it) : map.erase(it);
  }
}

// The source's container names per list, in the source's order; nullopt when unknown (then every
// backend container is shown).
struct SourceNames {
  std::optional<std::vector<std::string>> init;
  std::optional<std::vector<std::string>> app;
  std::optional<std::vector<std::string>> ephemeral;
};

std::optional<std::vector<std::string>> namesOf(const json::value* list) {
  if (list == nullptr || !list->is_array()) {
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& c : list->as_array()) {
    out.emplace_back(c.is_string() ? std::string_view(c.as_string()) : stringOf(child(&c, "name")));
  }
  return out;
}

SourceNames sourceNames(const json::value& backendPod, const json::value* clusterSpec) {
  SourceNames names;
  if (clusterSpec != nullptr && child(clusterSpec, "spec") != nullptr) {
    clusterSpec = child(clusterSpec, "spec");  // the whole source pod was given
  }
  const auto recorded = stringOf(
      path(&backendPod, {"metadata", "annotations", std::string_view(kContainersAnnotation)}));
  if (!recorded.empty()) {
    boost::system::error_code ec;
    const json::value parsed = json::parse(recorded, ec);
    if (!ec && parsed.is_object()) {
      names.init = namesOf(child(&parsed, "initContainers"));
      names.app = namesOf(child(&parsed, "containers"));
      if (!names.init) {
        names.init.emplace();  // recorded without init containers: the source had none
      }
    }
  }
  if (!names.app && clusterSpec != nullptr) {
    names.app = namesOf(child(clusterSpec, "containers"));
    names.init = namesOf(child(clusterSpec, "initContainers"));
    if (names.app && !names.init) {
      names.init.emplace();
    }
  }
  // Ephemeral containers are added after creation, so only the source's spec (or, without it,
  // the backend's own list) knows them.
  if (clusterSpec != nullptr) {
    names.ephemeral = namesOf(child(clusterSpec, "ephemeralContainers"));
    if (!names.ephemeral) {
      names.ephemeral.emplace();
    }
  }
  return names;
}

bool listed(const std::optional<std::vector<std::string>>& names, std::string_view name) {
  if (!names) {
    return true;
  }
  for (const auto& n : *names) {
    if (n == name) {
      return true;
    }
  }
  return false;
}

json::value containerView(const json::value& c) {
  json::object out;
  out["name"] = json::string(stringOf(child(&c, "name")));
  if (const auto* image = child(&c, "image"); image != nullptr) {
    out["image"] = *image;
  }
  return out;
}

// The source's containers (name, image) as the backend runs them, in the source's order.
json::array sourceContainers(const json::value* backendList,
                             const std::optional<std::vector<std::string>>& names) {
  json::array out;
  const json::array* list =
      backendList != nullptr && backendList->is_array() ? &backendList->as_array() : nullptr;
  if (!names) {
    if (list != nullptr) {
      for (const auto& c : *list) {
        out.push_back(containerView(c));
      }
    }
    return out;
  }
  for (const auto& name : *names) {
    const json::value* found = nullptr;
    if (list != nullptr) {
      for (const auto& c : *list) {
        if (stringOf(child(&c, "name")) == name) {
          found = &c;
          break;
        }
      }
    }
    out.push_back(found != nullptr ? containerView(*found)
                                   : json::value(json::object{{"name", name}}));
  }
  return out;
}

// What a container status passes on as the backend reports it. Not `resources` nor
// `allocatedResources`: they are the normalized backend pod's sizes (normalize.h), and the
// cluster's scheduler and quota count a pod as the larger of its spec and these (toSourcePod).
constexpr std::string_view kContainerStatusFields[] = {
    "name",      "state",   "lastState",   "restartCount", "ready", "started",
    "image",     "imageID", "containerID", "volumeMounts", "user",  "allocatedResourcesStatus",
    "stopSignal"};

json::array containerStatuses(const json::value* statuses,
                              const std::optional<std::vector<std::string>>& names) {
  json::array out;
  if (statuses == nullptr || !statuses->is_array()) {
    return out;
  }
  for (const auto& s : statuses->as_array()) {
    if (!listed(names, stringOf(child(&s, "name")))) {
      continue;  // injected by the backend
    }
    json::object view;
    for (auto key : kContainerStatusFields) {
      if (const auto* v = child(&s, key); v != nullptr) {
        view[key] = *v;
      }
    }
    out.push_back(std::move(view));
  }
  return out;
}

}  // namespace

// --- pods -------------------------------------------------------------------------------------

namespace {

// The container lists of a backend `spec` (a whole pod spec, or only some lists): mounts of the
// `dropped` volumes removed, and every reference to a ConfigMap, Secret or claim (in volumes,
// image pull secrets, env) named as this node's copy in the backend namespace, except in the
// `injected` volumes (burstlet's own, naming the node secret already).
void translateContainers(json::value& spec, const std::set<std::string>& dropped,
                         std::string_view ns, const TranslateOptions& options,
                         const std::set<std::string>& injected = {}) {
  for (const char* listName : kContainerLists) {
    auto* containers = child(&spec, listName);
    if (containers == nullptr || !containers->is_array()) {
      continue;
    }
    for (auto& c : containers->as_array()) {
      auto* mounts = child(&c, "volumeMounts");
      if (mounts == nullptr || !mounts->is_array()) {
        continue;
      }
      auto& list = mounts->as_array();
      for (auto it = list.begin(); it != list.end();) {
        it = dropped.contains(stringAt(*it, {"name"})) ? list.erase(it) : it + 1;
      }
      if (list.empty()) {
        c.as_object().erase("volumeMounts");
      }
    }
  }
  visitRefs(&spec, injected, [&ns, &options](RefKind /*kind*/, json::value& ref) {
    ref = json::string(copyName(options.nodeName, ns, ref.as_string()));
  });
}

}  // namespace

json::array toBackendEphemeralContainers(const json::value& clusterPod,
                                         const TranslateOptions& options) {
  const json::value* source = child(&clusterPod, "spec");
  const json::value* list = child(source, "ephemeralContainers");
  if (list == nullptr || !list->is_array()) {
    return {};
  }
  json::value spec = json::object{{"ephemeralContainers", *list}};
  translateContainers(spec, tokenVolumes(source), stringAt(clusterPod, {"metadata", "namespace"}),
                      options);
  json::array out = std::move(spec.as_object()["ephemeralContainers"].as_array());
  for (auto& c : out) {
    if (auto* o = c.if_object()) {
      // The API refuses resources on ephemeral containers: they share the pod's.
      o->erase("resources");
      o->erase("resizePolicy");
    }
  }
  return out;
}

Result<json::value> toBackendPod(const json::value& clusterPod, const TranslateOptions& options) {
  const std::string ns = stringAt(clusterPod, {"metadata", "namespace"});
  const std::string name = stringAt(clusterPod, {"metadata", "name"});
  if (ns.empty() || name.empty()) {
    return invalid("Pod", "without namespace or name");
  }
  const std::string uid = stringAt(clusterPod, {"metadata", "uid"});
  const json::value* source = child(&clusterPod, "spec");

  json::object labels;
  json::array labelKeys;
  if (const auto* l = path(&clusterPod, {"metadata", "labels"}); l != nullptr && l->is_object()) {
    labels = l->as_object();
    for (const auto& [k, v] : labels) {
      labelKeys.emplace_back(k);
    }
  }
  for (auto& [k, v] : ownLabels(options, uid)) {
    labels[k] = v;
  }
  json::object annotations;
  json::array annotationKeys;
  if (const auto* a = path(&clusterPod, {"metadata", "annotations"});
      a != nullptr && a->is_object()) {
    annotations = a->as_object();
    for (const auto& [k, v] : annotations) {
      if (!ownAnnotationKey(k)) {
        annotationKeys.emplace_back(k);
      }
    }
  }
  // burstlet's own word to the injected containers, never the user's.
  annotations.erase(kInjectedStopAnnotation);
  annotations[kSourceKeysAnnotation] = json::serialize(
      json::object{{"labels", std::move(labelKeys)}, {"annotations", std::move(annotationKeys)}});
  for (auto& [k, v] : sourceAnnotations("", ns, name, uid)) {
    annotations[k] = v;
  }
  // The source's own containers: those burstlet injected stay out of what the cluster sees.
  const std::set<std::string> injectedContainers = injectedNames(clusterPod, "containers");
  json::array appNames = containerNames(child(source, "containers"));
  for (auto it = appNames.begin(); it != appNames.end();) {
    const bool own = it->is_string() && injectedContainers.contains(std::string(it->as_string()));
    it = own ? appNames.erase(it) : std::next(it);
  }
  if (!injectedContainers.empty()) {
    std::string list;
    for (const auto& n : injectedContainers) {
      list += (list.empty() ? "" : ",") + n;
    }
    annotations[kInjectedContainersAnnotation] = list;
  }
  annotations[kContainersAnnotation] = json::serialize(
      json::object{{"initContainers", containerNames(child(source, "initContainers"))},
                   {"containers", std::move(appNames)}});

  json::value spec = json::object();
  auto& out = spec.as_object();
  for (auto key : kKeptSpecFields) {
    if (const auto* v = child(source, key); v != nullptr) {
      out[key] = *v;
    }
  }
  const std::set<std::string> dropped = tokenVolumes(source);
  if (auto* volumes = out.if_contains("volumes"); volumes != nullptr && volumes->is_array()) {
    auto& list = volumes->as_array();
    for (auto it = list.begin(); it != list.end();) {
      it = dropped.contains(stringAt(*it, {"name"})) ? list.erase(it) : it + 1;
    }
    if (list.empty()) {
      out.erase("volumes");
    }
  }
  translateContainers(spec, dropped, ns, options, injectedNames(clusterPod, "volumes"));
  if (stringOf(out.if_contains("hostname")).empty()) {
    out["hostname"] = defaultHostname(name);
  }
  // The environment is resolved already (the cluster's Services, not the backend's), and the
  // backend must not mount a token of its own service account into a pod that expects the
  // cluster's.
  out["enableServiceLinks"] = false;
  out["automountServiceAccountToken"] = false;

  return json::value(json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", backendName(ns, name)},
                                {"namespace", options.backendNamespace},
                                {"labels", std::move(labels)},
                                {"annotations", std::move(annotations)}}},
      {"spec", std::move(spec)},
  });
}

Dependencies dependenciesOf(const json::value& pod) {
  Dependencies deps;
  const json::value* spec = child(&pod, "spec");
  std::set<std::string> skip = tokenVolumes(spec);
  skip.merge(injectedNames(pod, "volumes"));
  visitRefs(spec, skip, [&deps](RefKind kind, const json::value& ref) {
    std::string name(ref.as_string());
    switch (kind) {
      case RefKind::kConfigMap:
        deps.configMaps.insert(std::move(name));
        break;
      case RefKind::kSecret:
        deps.secrets.insert(std::move(name));
        break;
      case RefKind::kClaim:
        deps.claims.insert(std::move(name));
        break;
    }
  });
  return deps;
}

std::optional<PodRef> sourceRefOf(const json::value& backendPod) {
  const json::value* meta = child(&backendPod, "metadata");
  if (stringOf(path(meta, {"labels", std::string_view(kManagedByLabel)})) != kManagedByValue) {
    return std::nullopt;
  }
  const json::value* annotations = child(meta, "annotations");
  const auto kind = stringOf(child(annotations, kSourceKindAnnotation));
  PodRef ref{std::string(stringOf(child(annotations, kSourceNamespaceAnnotation))),
             std::string(stringOf(child(annotations, kSourceNameAnnotation))),
             std::string(stringOf(child(annotations, kSourceUidAnnotation)))};
  if ((!kind.empty() && kind != "Pod") || ref.ns.empty() || ref.name.empty()) {
    return std::nullopt;
  }
  if (ref.uid.empty()) {
    ref.uid = stringOf(path(meta, {"labels", std::string_view(kSourceUidLabel)}));
  }
  return ref;
}

json::value toSourcePod(const json::value& backendPod, const json::value* clusterSpec,
                        const TranslateOptions& options) {
  const json::value* meta = child(&backendPod, "metadata");
  PodRef ref = sourceRefOf(backendPod).value_or(podRefOf(backendPod));
  json::object metadata{{"namespace", ref.ns}, {"name", ref.name}, {"uid", ref.uid}};
  auto labels = withoutKeys(child(meta, "labels"), ownLabelKey);
  auto annotations = withoutKeys(child(meta, "annotations"), ownAnnotationKey);
  // Only the source's keys: what the backend added is not the user's.
  if (auto keys = sourceKeysOf(backendPod)) {
    keepOnly(labels, keys->labels);
    keepOnly(annotations, keys->annotations);
  }
  if (!labels.empty()) {
    metadata["labels"] = std::move(labels);
  }
  if (!annotations.empty()) {
    metadata["annotations"] = std::move(annotations);
  }
  // A backend pod shutting down says so: the controller must not delete it again, harder.
  for (const char* key : {"deletionTimestamp", "deletionGracePeriodSeconds"}) {
    if (const json::value* v = child(meta, key)) {
      metadata[key] = *v;
    }
  }

  SourceNames names = sourceNames(backendPod, clusterSpec);
  const json::value* backendSpec = child(&backendPod, "spec");
  if (!names.ephemeral) {
    names.ephemeral = namesOf(child(backendSpec, "ephemeralContainers"));
  }
  json::object spec;
  if (!options.nodeName.empty()) {
    spec["nodeName"] = options.nodeName;
  }
  // Absent rather than empty, as the API server writes them: the controller compares the lists.
  if (auto init = sourceContainers(child(backendSpec, "initContainers"), names.init);
      !init.empty()) {
    spec["initContainers"] = std::move(init);
  }
  if (auto app = sourceContainers(child(backendSpec, "containers"), names.app); !app.empty()) {
    spec["containers"] = std::move(app);
  }
  // Only those the backend runs: one the source has and the backend lacks is still to be added.
  if (const auto* eph = child(backendSpec, "ephemeralContainers");
      eph != nullptr && eph->is_array()) {
    json::array list;
    for (const auto& c : eph->as_array()) {
      if (listed(names.ephemeral, stringOf(child(&c, "name")))) {
        list.push_back(containerView(c));
      }
    }
    if (!list.empty()) {
      spec["ephemeralContainers"] = std::move(list);
    }
  }

  const json::value* backendStatus = child(&backendPod, "status");
  json::object status;
  if (backendStatus != nullptr) {
    copyIfPresent(*backendStatus, status,
                  {"phase", "message", "reason", "startTime", "podIP", "podIPs"});
  }
  if (const auto* conditions = child(backendStatus, "conditions");
      conditions != nullptr && conditions->is_array()) {
    json::array out;
    for (const auto& c : conditions->as_array()) {
      json::value copy = c;
      if (copy.is_object()) {
        copy.as_object().erase("observedGeneration");  // the backend object's generation
      }
      out.push_back(std::move(copy));
    }
    status["conditions"] = std::move(out);
  }
  const std::pair<const char*, const std::optional<std::vector<std::string>>*> lists[] = {
      {"initContainerStatuses", &names.init},
      {"containerStatuses", &names.app},
      {"ephemeralContainerStatuses", &names.ephemeral},
  };
  for (const auto& [key, listNames] : lists) {
    if (const auto* statuses = child(backendStatus, key); statuses != nullptr) {
      status[key] = containerStatuses(statuses, *listNames);
    }
  }
  // The pod runs on the virtual node as far as the cluster knows; the backend's host addresses
  // mean nothing there.
  if (!options.nodeIP.empty()) {
    status["hostIP"] = options.nodeIP;
    status["hostIPs"] = json::array{json::object{{"ip", options.nodeIP}}};
  }

  return json::value(json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", std::move(metadata)},
      {"spec", std::move(spec)},
      {"status", std::move(status)},
  });
}

bool isInjectedContainer(const json::value& backendPod, std::string_view name) {
  const std::string_view list = stringOf(path(
      &backendPod, {"metadata", "annotations", std::string_view(kInjectedContainersAnnotation)}));
  for (size_t start = 0; start < list.size();) {
    const size_t comma = std::min(list.find(',', start), list.size());
    if (list.substr(start, comma - start) == name) {
      return true;
    }
    start = comma + 1;
  }
  return false;
}

bool isSourceContainer(const json::value& backendPod, std::string_view list,
                       std::string_view name) {
  const SourceNames names = sourceNames(backendPod, nullptr);
  const std::optional<std::vector<std::string>>* known = list == "initContainers" ? &names.init
                                                         : list == "containers"   ? &names.app
                                                         : list == "ephemeralContainers"
                                                             ? &names.ephemeral
                                                             : nullptr;
  return known == nullptr || listed(*known, name);
}

std::optional<SourceKeys> sourceKeysOf(const json::value& backendPod) {
  const std::string text = stringAt(backendPod, {"metadata", "annotations", kSourceKeysAnnotation});
  if (text.empty()) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_object()) {
    return std::nullopt;
  }
  SourceKeys out;
  for (const auto& [field, into] :
       {std::pair{"labels", &out.labels}, std::pair{"annotations", &out.annotations}}) {
    if (const auto* list = child(&parsed, field); list != nullptr && list->is_array()) {
      for (const auto& k : list->as_array()) {
        if (k.is_string()) {
          into->insert(std::string(k.as_string()));
        }
      }
    }
  }
  return out;
}

}  // namespace burstlet::provider::cci
