#include "provider/cci/normalize.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kube/json_path.h"

namespace burstlet::provider::cci {

namespace json = boost::json;

namespace {

constexpr int64_t kGiBytes = int64_t{1} << 30;

Quantity cpuStep() { return Quantity::fromMilli(250); }
Quantity gibibytes(int64_t n) {
  return Quantity::fromValue(n * kGiBytes, Quantity::Format::kBinarySI);
}
// The doc raises container memory to "at least 0.2Gi" and, unlike CPU, does not round it to a
// step (only the pod total is rounded, to 1Gi, by rule 2). 0.2Gi is 214748364.8 bytes; memory
// is counted in whole bytes, so the floor is the next byte up.
Quantity minContainerMemory() {
  return Quantity::fromValue(214748365, Quantity::Format::kBinarySI);
}
Quantity maxPodCpu() { return Quantity::fromValue(32); }
Quantity maxPodMemory() { return gibibytes(256); }

// One container's cpu/memory as rule 1 leaves it, and where to write it back.
struct ContainerPlan {
  json::object* container = nullptr;
  bool bestEffort = true;
  Quantity cpu;
  Quantity memory;
};

Error invalidQuantity(const std::string& path, std::string_view why) {
  return Error::make(ErrorCode::kInvalid, "InvalidQuantity", fmt::format("{}: {}", path, why));
}

// Rule 1 for one container. BestEffort follows the Kubernetes QoS definition: no positive cpu or
// memory in requests or limits (a "0" counts as unset, as it does for the kubelet).
Result<ContainerPlan> planContainer(json::object& container, const std::string& path) {
  ContainerPlan plan;
  plan.container = &container;
  std::optional<Quantity> values[2][2];  // [requests, limits][cpu, memory]
  const char* kinds[2] = {"requests", "limits"};
  const char* names[2] = {"cpu", "memory"};
  for (int k = 0; k < 2; ++k) {
    for (int n = 0; n < 2; ++n) {
      auto q = resourceQuantity(kube::path(&container, {"resources", kinds[k], names[n]}),
                                fmt::format("{}.resources.{}.{}", path, kinds[k], names[n]));
      if (!q.ok()) {
        return std::move(q).error();
      }
      values[k][n] = *q;
      if (values[k][n] && values[k][n]->sign() > 0) {
        plan.bestEffort = false;
      }
    }
  }
  if (plan.bestEffort) {
    return plan;
  }
  // The limit wins over the request (the product doc: "若配置了Limits，则以Limits为准，没有配
  // Limits，则以Requests为准").
  const auto pick = [&values](int n) {
    return values[1][n] ? *values[1][n] : values[0][n].value_or(Quantity());
  };
  // A container that sets only memory keeps CPU 0: zero is a multiple of 250m, and CCI asks for
  // CPU > 0 only from one container of the pod (validate.h), not from each.
  plan.cpu = pick(0).roundUpTo(cpuStep()).withFormat(Quantity::Format::kDecimalSI);
  // A container that sets only CPU gets the memory floor: rule 1 applies to every
  // non-BestEffort container.
  plan.memory = pick(1);
  if (plan.memory < minContainerMemory()) {
    plan.memory = minContainerMemory();
  }
  return plan;
}

Result<std::vector<ContainerPlan>> planContainers(json::object& spec, std::string_view key) {
  std::vector<ContainerPlan> plans;
  auto* list = spec.if_contains(key);
  if (list == nullptr || !list->is_array()) {
    return plans;
  }
  auto& array = list->as_array();
  for (size_t i = 0; i < array.size(); ++i) {
    auto* container = array[i].if_object();
    if (container == nullptr) {
      continue;
    }
    auto plan = planContainer(*container, fmt::format("spec.{}[{}]", key, i));
    if (!plan.ok()) {
      return std::move(plan).error();
    }
    plans.push_back(*plan);
  }
  return plans;
}

json::object& objectField(json::object& o, std::string_view key) {
  json::value& v = o[key];
  if (!v.is_object()) {
    v = json::object();
  }
  return v.as_object();
}

// requests := limits := the normalized value. A zero CPU is written as no CPU at all, so the
// two stay equal without claiming a zero limit.
void writeBack(const ContainerPlan& plan) {
  json::object& resources = objectField(*plan.container, "resources");
  for (const char* kind : {"requests", "limits"}) {
    json::object& list = objectField(resources, kind);
    if (plan.cpu.isZero()) {
      list.erase("cpu");
    } else {
      list["cpu"] = plan.cpu.toString();
    }
    list["memory"] = plan.memory.toString();
  }
}

// The pod-level value of one resource, and the app containers' share of it.
struct PodLevel {
  Quantity appSum;
  Quantity initMax;
  Quantity value() const { return appSum < initMax ? initMax : appSum; }
};

template <typename Get>
PodLevel podLevel(const std::vector<ContainerPlan>& apps, const std::vector<ContainerPlan>& inits,
                  Get get) {
  PodLevel level;
  for (const auto& c : apps) {
    level.appSum += get(c);
  }
  for (const auto& c : inits) {
    if (level.initMax < get(c)) {
      level.initMax = get(c);
    }
  }
  return level;
}

// What the first app container must gain for the pod to reach `target`. Usually target minus
// the pod-level value; when an init container dominates, the app containers start below the
// pod-level value, and adding only the difference would leave the pod short of `target` (and
// of its own annotation), so the app sum is brought up to `target` instead.
Quantity increment(const PodLevel& level, const Quantity& target) {
  if (!(level.initMax < target)) {
    return Quantity();  // the pod already reaches target through its init container
  }
  return target - level.appSum;
}

}  // namespace

Result<std::optional<Quantity>> resourceQuantity(const json::value* v, const std::string& path) {
  if (v == nullptr || v->is_null()) {
    return std::optional<Quantity>();
  }
  std::string text;
  if (const auto* s = v->if_string()) {
    text = std::string(*s);
  } else if (const auto* i = v->if_int64()) {
    text = std::to_string(*i);
  } else if (const auto* u = v->if_uint64()) {
    text = std::to_string(*u);
  } else {
    return invalidQuantity(path, "a quantity must be a string such as \"250m\" or \"1Gi\"");
  }
  auto q = Quantity::parse(text);
  if (!q.ok()) {
    return invalidQuantity(path, q.error().message);
  }
  if (q->sign() < 0) {
    return invalidQuantity(path, fmt::format("quantity \"{}\" must not be negative", text));
  }
  return std::optional<Quantity>(*q);
}

Result<NormalizeResult> normalizePod(json::value& pod) {
  // Plan everything before writing anything, so that an error leaves the pod unchanged.
  json::object empty;
  json::object* spec = &empty;
  if (auto* o = pod.if_object()) {
    if (auto* s = o->if_contains("spec"); s != nullptr && s->is_object()) {
      spec = &s->as_object();
    }
  }
  auto apps = planContainers(*spec, "containers");
  if (!apps.ok()) {
    return std::move(apps).error();
  }
  auto inits = planContainers(*spec, "initContainers");
  if (!inits.ok()) {
    return std::move(inits).error();
  }
  ContainerPlan* first = nullptr;
  for (auto& c : *apps) {
    if (!c.bestEffort) {
      first = &c;
      break;
    }
  }
  if (first == nullptr) {
    // Rule 5 has nowhere to put the pod's size and rule 3 has no ratio to work from. CCI does
    // not run such a pod: it needs at least one container with CPU > 0.
    return Error::make(ErrorCode::kInvalid, "NoCPURequest",
                       "spec.containers: every container is BestEffort (no cpu or memory "
                       "requests or limits); CCI needs at least one container with CPU > 0");
  }

  const PodLevel cpuLevel = podLevel(*apps, *inits, [](const ContainerPlan& c) { return c.cpu; });
  const PodLevel memoryLevel =
      podLevel(*apps, *inits, [](const ContainerPlan& c) { return c.memory; });

  // Rule 1 made every CPU a multiple of 250m, so sums and maxima are too.
  Quantity cpu = cpuLevel.value().withFormat(Quantity::Format::kDecimalSI);
  // Rule 2.
  Quantity memory =
      memoryLevel.value().roundUpTo(gibibytes(1)).withFormat(Quantity::Format::kBinarySI);
  // Rule 3 in whole steps, no division of quantities: with cpu = q x 250m, a ratio of 2 Gi per
  // core is 0.5Gi per quarter core and a ratio of 8 is 2Gi per quarter core.
  const int64_t quarters = cpu.milliValue() / 250;
  const Quantity halfGi = Quantity::fromValue(kGiBytes / 2, Quantity::Format::kBinarySI);
  if (memory < halfGi * quarters) {
    memory = (halfGi * quarters).roundUpTo(gibibytes(1));
  } else if (memory > gibibytes(2) * quarters) {
    // memory is a whole number of Gi here; the CPU needed is ceil(memory / 2Gi) quarters.
    const int64_t bytes = memory.value();
    const int64_t need = bytes / (2 * kGiBytes) + (bytes % (2 * kGiBytes) != 0 ? 1 : 0);
    cpu = Quantity::fromMilli(need * 250);
  }

  // Rule 4.
  std::string tooLarge;
  if (cpu > maxPodCpu()) {
    tooLarge = fmt::format("pod needs {} CPU after normalization, CCI allows at most {}",
                           cpu.toString(), maxPodCpu().toString());
  }
  if (memory > maxPodMemory()) {
    tooLarge +=
        fmt::format("{}pod needs {} memory after normalization, CCI allows at most {}",
                    tooLarge.empty() ? "" : "; ", memory.toString(), maxPodMemory().toString());
  }
  if (!tooLarge.empty()) {
    return Error::make(ErrorCode::kInvalid, "PodTooLarge", std::move(tooLarge));
  }

  // Rule 5.
  first->cpu += increment(cpuLevel, cpu);
  first->memory += increment(memoryLevel, memory);

  for (const auto* plans : {&*apps, &*inits}) {
    for (const auto& c : *plans) {
      if (!c.bestEffort) {
        writeBack(c);
      }
    }
  }
  json::object& metadata = objectField(pod.as_object(), "metadata");
  json::object& annotations = objectField(metadata, "annotations");
  annotations[kBurstPodCpuAnnotation] = cpu.toString();
  annotations[kBurstPodMemoryAnnotation] = memory.toString();
  return NormalizeResult{cpu, memory};
}

}  // namespace burstlet::provider::cci
