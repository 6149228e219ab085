#include "provider/cci/normalize.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

namespace burstlet::provider::cci {
namespace {

namespace json = boost::json;

// 0.2Gi (214748364.8 bytes) rounded up to a whole byte: the container memory floor.
constexpr const char* kFloor = "214748365";

// A container's `resources` with requests == limits, as normalization leaves it. An empty value
// is left out.
std::string same(const std::string& cpu, const std::string& memory) {
  std::string list;
  if (!cpu.empty()) {
    list += R"("cpu":")" + cpu + "\"";
  }
  if (!memory.empty()) {
    list += std::string(list.empty() ? "" : ",") + R"("memory":")" + memory + "\"";
  }
  return R"({"requests":{)" + list + R"(},"limits":{)" + list + "}}";
}

// A pod whose containers have the given `resources` (JSON; "" for none).
json::value makePod(const std::vector<std::string>& containers,
                    const std::vector<std::string>& inits) {
  const auto list = [](const std::vector<std::string>& resources, const char* prefix) {
    json::array out;
    for (size_t i = 0; i < resources.size(); ++i) {
      json::object c{{"name", prefix + std::to_string(i)}, {"image", "img:1"}};
      if (!resources[i].empty()) {
        c["resources"] = json::parse(resources[i]);
      }
      out.push_back(std::move(c));
    }
    return out;
  };
  json::object spec{{"containers", list(containers, "c")}};
  if (!inits.empty()) {
    spec["initContainers"] = list(inits, "i");
  }
  return json::object{{"metadata", {{"name", "p"}, {"namespace", "ns"}}}, {"spec", spec}};
}

// The resources of each container of `key`, "" standing for none.
void expectResources(const json::value& pod, const char* key,
                     const std::vector<std::string>& want) {
  const auto* list = pod.at("spec").as_object().if_contains(key);
  const size_t have = list != nullptr ? list->as_array().size() : 0;
  ASSERT_EQ(have, want.size()) << key;
  for (size_t i = 0; i < want.size(); ++i) {
    const auto* got = list->as_array()[i].as_object().if_contains("resources");
    if (want[i].empty()) {
      EXPECT_EQ(got, nullptr) << key << "[" << i << "] gained resources";
    } else {
      ASSERT_NE(got, nullptr) << key << "[" << i << "]";
      EXPECT_EQ(*got, json::parse(want[i]))
          << key << "[" << i << "]: " << json::serialize(*got) << " want " << want[i];
    }
  }
}

struct Case {
  std::string name;
  std::vector<std::string> containers;  // each container's resources before ("" = none)
  std::vector<std::string> inits;
  std::vector<std::string> wantContainers;  // and after
  std::vector<std::string> wantInits;
  std::string wantCpu;  // the annotations
  std::string wantMemory;
};

const std::vector<Case> kCases = {
    {"AlreadyConformingIsUnchanged", {same("1", "2Gi")}, {}, {same("1", "2Gi")}, {}, "1", "2Gi"},
    {"CpuRoundsUpTo250mAndPodMemoryToGi",
     {R"({"limits":{"cpu":"300m","memory":"512Mi"}})"},
     {},
     {same("500m", "1Gi")},
     {},
     "500m",
     "1Gi"},
    {"LimitsWinOverRequestsAndRequestsBecomeLimits",
     {R"({"requests":{"cpu":"100m","memory":"256Mi"},"limits":{"cpu":"1","memory":"1Gi"}})"},
     {},
     {same("1", "2Gi")},  // 1 core needs 2Gi (rule 3)
     {},
     "1",
     "2Gi"},
    {"RequestsUsedWithoutLimits",
     {R"({"requests":{"cpu":"750m","memory":"3Gi"}})"},
     {},
     {same("750m", "3Gi")},
     {},
     "750m",
     "3Gi"},
    {"LimitOfOneResourceRequestOfTheOther",
     {R"({"requests":{"memory":"1Gi"},"limits":{"cpu":"500m"}})"},
     {},
     {same("500m", "1Gi")},
     {},
     "500m",
     "1Gi"},
    {"IntegerQuantitiesAreAccepted",
     {R"({"limits":{"cpu":2,"memory":"4Gi"}})"},
     {},
     {same("2", "4Gi")},
     {},
     "2",
     "4Gi"},
    {"CanonicalForms",
     {R"({"limits":{"cpu":"1.5","memory":"1.5Gi"}})"},
     {},
     {same("1500m", "3Gi")},
     {},
     "1500m",
     "3Gi"},
    {"DecimalMemoryStaysDecimalInTheContainer",
     {R"({"limits":{"cpu":"500m","memory":"1G"}})"},
     {},
     {same("500m", "1073741824")},
     {},
     "500m",
     "1Gi"},
    // Memory is raised to the 0.2Gi floor, not rounded: only the pod total is rounded.
    {"MemoryFloorIsNotRounded",
     {same("1", "2Gi"), R"({"limits":{"cpu":"250m","memory":"100Mi"}})"},
     {},
     {same("1", "3006477107"), same("250m", kFloor)},  // c0: 3Gi - floor
     {},
     "1250m",
     "3Gi"},
    // admit() refuses a pod with no CPU anywhere before normalizing (validate.h NoCPURequest, the
    // product's rule on the pod as written); normalizePod alone still sizes it.
    {"MemoryOnlyContainerGetsCpuFromTheRatio",
     {R"({"limits":{"memory":"4Gi"}})"},
     {},
     {same("500m", "4Gi")},  // 4Gi / 8 = 0.5 core
     {},
     "500m",
     "4Gi"},
    {"MemoryOnlySecondContainerKeepsNoCpu",
     {same("1", "1Gi"), R"({"requests":{"memory":"1Gi"}})"},
     {},
     {same("1", "1Gi"), same("", "1Gi")},
     {},
     "1",
     "2Gi"},
    {"CpuOnlyContainerGetsTheMemoryFloorThenTheRatio",
     {R"({"requests":{"cpu":"2"}})"},
     {},
     {same("2", "4Gi")},
     {},
     "2",
     "4Gi"},
    {"RatioBelowTwoRaisesMemory", {same("4", "1Gi")}, {}, {same("4", "8Gi")}, {}, "4", "8Gi"},
    {"RatioBelowTwoRaisesMemoryToAWholeGi",
     {R"({"limits":{"cpu":"1.1","memory":"1Gi"}})"},
     {},
     {same("1250m", "3Gi")},  // 2 x 1.25 = 2.5Gi, rounded to 3Gi
     {},
     "1250m",
     "3Gi"},
    {"RatioExactlyEightIsKept", {same("1", "8Gi")}, {}, {same("1", "8Gi")}, {}, "1", "8Gi"},
    {"RatioExactlyTwoIsKept", {same("3", "6Gi")}, {}, {same("3", "6Gi")}, {}, "3", "6Gi"},
    {"RatioAboveEightRaisesCpu",
     {same("250m", "10Gi")},
     {},
     {same("1250m", "10Gi")},
     {},
     "1250m",
     "10Gi"},
    {"RatioAboveEightRaisesCpuToAWholeQuarter",
     {same("250m", "9Gi")},
     {},
     {same("1250m", "9Gi")},  // 9Gi / 8 = 1.125 core, rounded to 1.25
     {},
     "1250m",
     "9Gi"},
    {"IncrementsGoToTheFirstNonBestEffortContainer",
     {"", same("1", "1Gi"), R"({"requests":{"cpu":"500m","memory":"512Mi"}})"},
     {},
     {"", same("1", "2560Mi"), same("500m", "512Mi")},
     {},
     "1500m",
     "3Gi"},
    {"ZeroValuesMakeABestEffortContainer",
     {R"({"requests":{"cpu":"0"}})", same("1", "2Gi")},
     {},
     {R"({"requests":{"cpu":"0"}})", same("1", "2Gi")},
     {},
     "1",
     "2Gi"},
    {"InitContainersAreNormalizedToo",
     {same("1", "2Gi")},
     {R"({"requests":{"cpu":"100m"}})"},
     {same("1", "2Gi")},
     {same("250m", kFloor)},
     "1",
     "2Gi"},
    {"InitContainerDominatesCpu",
     {same("500m", "1Gi")},
     {same("2", "1Gi")},
     {same("500m", "4Gi")},  // the pod is 2 cores through the init container, needing 4Gi
     {same("2", "1Gi")},
     "2",
     "4Gi"},
    // The pod's memory (1.5Gi, from the init container) rounds up to 2Gi: the app container
    // must reach 2Gi, not gain only the 0.5Gi difference, or the pod would stay at 1.5Gi.
    {"InitContainerDominatesMemoryThatIsRaised",
     {same("250m", "256Mi")},
     {same("250m", "1536Mi")},
     {same("250m", "2Gi")},
     {same("250m", "1536Mi")},
     "250m",
     "2Gi"},
    {"BestEffortInitContainerIsLeftAlone",
     {same("1", "2Gi")},
     {""},
     {same("1", "2Gi")},
     {""},
     "1",
     "2Gi"},
    {"SumOfAppContainers",
     {same("250m", "1Gi"), same("250m", "1Gi"), same("250m", "1Gi")},
     {same("500m", "1Gi")},
     {same("250m", "1Gi"), same("250m", "1Gi"), same("250m", "1Gi")},
     {same("500m", "1Gi")},
     "750m",
     "3Gi"},
    {"ExactlyAtTheLimitIsAccepted",
     {same("32", "256Gi")},
     {},
     {same("32", "256Gi")},
     {},
     "32",
     "256Gi"},
    {"RoundingUpToTheLimitIsAccepted",
     {same("31.9", "255.5Gi")},
     {},
     {same("32", "256Gi")},
     {},
     "32",
     "256Gi"},
};

class NormalizeTest : public testing::TestWithParam<Case> {};

TEST_P(NormalizeTest, Normalizes) {
  const Case& c = GetParam();
  json::value pod = makePod(c.containers, c.inits);
  auto result = normalizePod(pod);
  ASSERT_TRUE(result.ok()) << result.error().toString();
  EXPECT_EQ(result->cpu.toString(), c.wantCpu);
  EXPECT_EQ(result->memory.toString(), c.wantMemory);
  const auto& annotations = pod.at("metadata").at("annotations").as_object();
  EXPECT_EQ(annotations.at(kBurstPodCpuAnnotation), c.wantCpu.c_str());
  EXPECT_EQ(annotations.at(kBurstPodMemoryAnnotation), c.wantMemory.c_str());
  expectResources(pod, "containers", c.wantContainers);
  expectResources(pod, "initContainers", c.wantInits);

  // Normalizing again changes nothing: the result already conforms.
  json::value again = pod;
  ASSERT_TRUE(normalizePod(again).ok());
  EXPECT_EQ(again, pod);
}

INSTANTIATE_TEST_SUITE_P(Normalize, NormalizeTest, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

struct ErrorCase {
  std::string name;
  std::vector<std::string> containers;
  std::vector<std::string> inits;
  std::string wantReason;
  std::string wantMessage;  // exact, or a prefix when it ends in "..."
};

const std::vector<ErrorCase> kErrorCases = {
    {"AboveThirtyTwoCores",
     {same("33", "66Gi")},
     {},
     "PodTooLarge",
     "pod needs 33 CPU after normalization, CCI allows at most 32"},
    {"RoundingPushesCpuOverTheLimit",
     {same("32.1", "128Gi")},
     {},
     "PodTooLarge",
     "pod needs 32250m CPU after normalization, CCI allows at most 32"},
    {"SumOfContainersOverTheLimit",
     {same("16.1", "64Gi"), same("16.1", "64Gi")},
     {},
     "PodTooLarge",
     "pod needs 32500m CPU after normalization, CCI allows at most 32"},
    {"InitContainerOverTheLimit",
     {same("1", "2Gi")},
     {same("40", "80Gi")},
     "PodTooLarge",
     "pod needs 40 CPU after normalization, CCI allows at most 32"},
    // Above 256Gi the ratio rule always lifts CPU above 32 cores too (256 / 32 = 8).
    {"MemoryRoundingPushesOverTheLimit",
     {same("32", "256.5Gi")},
     {},
     "PodTooLarge",
     "pod needs 32250m CPU after normalization, CCI allows at most 32; pod needs 257Gi memory "
     "after normalization, CCI allows at most 256Gi"},
    // Through admit() this pod is refused as NoCPURequest first (validate.h).
    {"MemoryOnlyPodTooLarge",
     {R"({"limits":{"memory":"300Gi"}})"},
     {},
     "PodTooLarge",
     "pod needs 37500m CPU after normalization, CCI allows at most 32; pod needs 300Gi memory "
     "after normalization, CCI allows at most 256Gi"},
    {"CpuOverTheLimitByAQuarter",
     {same("32", "1Gi"), same("250m", "1Gi")},
     {},
     "PodTooLarge",
     "pod needs 32250m CPU after normalization, CCI allows at most 32"},
    {"AllBestEffort",
     {"", R"({"requests":{"cpu":"0"}})"},
     {},
     "NoCPURequest",
     "spec.containers: every container is BestEffort (no cpu or memory requests or limits); CCI "
     "needs at least one container with CPU > 0"},
    {"OnlyInitContainerSized",
     {""},
     {same("1", "2Gi")},
     "NoCPURequest",
     "spec.containers: every container is BestEffort..."},
    {"MalformedAppQuantity",
     {same("1", "2Gi"), R"({"limits":{"cpu":"abc"}})"},
     {},
     "InvalidQuantity",
     "spec.containers[1].resources.limits.cpu: quantity \"abc\" is invalid..."},
    {"MalformedInitQuantity",
     {same("1", "2Gi")},
     {R"({"requests":{"memory":"1Qi"}})"},
     "InvalidQuantity",
     "spec.initContainers[0].resources.requests.memory: quantity \"1Qi\" is invalid..."},
    {"MalformedBestEffortLookingQuantity",
     {same("1", "2Gi"), R"({"requests":{"memory":""}})"},
     {},
     "InvalidQuantity",
     "spec.containers[1].resources.requests.memory: quantity \"\" is invalid..."},
    {"NegativeQuantity",
     {R"({"requests":{"cpu":"-1"}})"},
     {},
     "InvalidQuantity",
     "spec.containers[0].resources.requests.cpu: quantity \"-1\" must not be negative"},
    {"FractionalNumber",
     {R"({"limits":{"cpu":0.5}})"},
     {},
     "InvalidQuantity",
     "spec.containers[0].resources.limits.cpu: a quantity must be a string such as \"250m\" or "
     "\"1Gi\""},
};

class NormalizeErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(NormalizeErrorTest, RejectsAndLeavesThePodAlone) {
  const ErrorCase& c = GetParam();
  json::value pod = makePod(c.containers, c.inits);
  const json::value before = pod;
  auto result = normalizePod(pod);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(result.error().reason, c.wantReason);
  const std::string& want = c.wantMessage;
  if (want.size() > 3 && want.ends_with("...")) {
    EXPECT_TRUE(result.error().message.starts_with(want.substr(0, want.size() - 3)))
        << result.error().message;
  } else {
    EXPECT_EQ(result.error().message, want);
  }
  EXPECT_EQ(pod, before);
}

INSTANTIATE_TEST_SUITE_P(Normalize, NormalizeErrorTest, testing::ValuesIn(kErrorCases),
                         [](const testing::TestParamInfo<ErrorCase>& info) {
                           return info.param.name;
                         });

TEST(NormalizeOtherTest, OtherResourcesAndFieldsAreKept) {
  json::value pod = json::parse(R"({
    "metadata":{"name":"p","annotations":{"keep":"me"}},
    "spec":{"containers":[{"name":"c","image":"i","resources":{
      "requests":{"cpu":"1","memory":"2Gi","ephemeral-storage":"1Gi"},
      "limits":{"nvidia.com/gpu":"1"}}}]}})");
  ASSERT_TRUE(normalizePod(pod).ok());
  EXPECT_EQ(pod.at("spec").at("containers").at(0).at("resources"), json::parse(R"({
      "requests":{"cpu":"1","memory":"2Gi","ephemeral-storage":"1Gi"},
      "limits":{"cpu":"1","memory":"2Gi","nvidia.com/gpu":"1"}})"));
  EXPECT_EQ(pod.at("metadata").at("annotations"), json::parse(R"({"keep":"me",
      "virtual-kubelet.cci.io/burst-pod-cpu":"1","virtual-kubelet.cci.io/burst-pod-memory":"2Gi"})"));
}

TEST(NormalizeOtherTest, PodWithoutContainersIsRejected) {
  json::value pod = json::parse(R"({"metadata":{"name":"p"},"spec":{}})");
  auto result = normalizePod(pod);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, "NoCPURequest");
  json::value notAnObject = json::array();
  EXPECT_FALSE(normalizePod(notAnObject).ok());
}

}  // namespace
}  // namespace burstlet::provider::cci
