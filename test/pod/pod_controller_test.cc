#include "pod/pod_controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <mutex>
#include <set>

#include "mocks/fake_clock.h"
#include "mocks/fake_transport.h"

namespace burstlet::pod {
namespace {

namespace json = boost::json;
using burstlet::testing::FakeTransport;
using burstlet::testing::jsonResponse;
using burstlet::testing::ScriptedStream;
using provider::PodRef;

// A provider whose pods' status the test sets, and whose notifications the test fires.
class ScriptedProvider final : public provider::Provider {
 public:
  std::string_view name() const override { return "scripted"; }
  asio::awaitable<Status> createPod(json::value pod) override {
    std::lock_guard lock(mu);
    ++creates;
    if (failCreates > 0) {
      --failCreates;
      co_return Error::make(ErrorCode::kUnavailable, "Down", "backend down");
    }
    if (rejectNames.count(provider::podRefOf(pod).name) != 0) {
      co_return Error::make(ErrorCode::kInvalid, "HostNetwork", "hostNetwork is not supported");
    }
    pods[provider::podRefOf(pod).key()] = pod;
    co_return okStatus();
  }
  asio::awaitable<Status> updatePod(json::value) override { co_return okStatus(); }
  asio::awaitable<Status> deletePod(PodRef ref, int64_t) override {
    std::lock_guard lock(mu);
    ++deletes;
    pods.erase(ref.key());
    co_return okStatus();
  }
  asio::awaitable<Result<json::value>> getPod(PodRef ref) override {
    std::lock_guard lock(mu);
    auto it = pods.find(ref.key());
    if (it == pods.end()) {
      co_return Error::make(ErrorCode::kNotFound, "NotFound", "no pod");
    }
    json::value out = it->second;
    out.as_object()["status"] = status;
    co_return out;
  }
  asio::awaitable<Result<std::vector<json::value>>> listPods() override {
    std::lock_guard lock(mu);
    std::vector<json::value> out;
    for (const auto& [k, p] : pods) {
      out.push_back(p);
    }
    co_return out;
  }
  void onPodStatusChange(std::function<void(const PodRef&)> cb) override {
    std::lock_guard lock(mu);
    callback = std::move(cb);
  }
  provider::NodeCapacity capacity() const override { return {}; }
  asio::awaitable<Status> ping() override { co_return okStatus(); }

  void notify(const std::string& name) {
    std::function<void(const PodRef&)> cb;
    {
      std::lock_guard lock(mu);
      cb = callback;
    }
    cb(PodRef{"ns", name, "u-" + name});
  }
  void setStatus(json::value s) {
    std::lock_guard lock(mu);
    status = std::move(s);
  }

  std::mutex mu;
  std::map<std::string, json::value> pods;
  json::value status = json::parse(R"({"phase":"Running","podIP":"10.0.0.9"})");
  std::function<void(const PodRef&)> callback;
  int creates = 0;
  int deletes = 0;
  int failCreates = 0;
  std::set<std::string> rejectNames;
};

std::string pod(const std::string& name) {
  return json::serialize(json::object{
      {"metadata",
       json::object{
           {"namespace", "ns"}, {"name", name}, {"uid", "u-" + name}, {"resourceVersion", "10"}}},
      {"spec",
       json::object{{"nodeName", "vk"},
                    {"containers", json::array{json::object{{"name", "c"}, {"image", "img"}}}}}},
      {"status", json::object{{"phase", "Pending"}}}});
}

bool runUntil(boost::asio::io_context& io, const std::function<bool()>& pred,
              std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred() && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// The cluster side: one list answer, a quiet watch, and recorded status patches.
struct Cluster {
  std::mutex mu;
  std::vector<std::string> pods;
  std::vector<std::string> statusPatches;
  std::vector<std::string> finalDeletes;
  int version = 100;

  Result<kube::HttpResponse> answer(const kube::HttpRequest& r) {
    std::lock_guard lock(mu);
    if (r.method == kube::Verb::get && r.target.rfind("/api/v1/pods?", 0) == 0) {
      std::string body = R"({"kind":"PodList","metadata":{"resourceVersion":"10"},"items":[)";
      for (size_t i = 0; i < pods.size(); ++i) {
        body += (i ? "," : "") + pods[i];
      }
      return jsonResponse(200, body + "]}");
    }
    if (r.method == kube::Verb::patch && r.target.find("/status") != std::string::npos) {
      statusPatches.push_back(r.body);
      json::value answered = json::parse(pods.at(0));
      answered.at("metadata").as_object()["resourceVersion"] = std::to_string(++version);
      answered.as_object()["status"] = json::parse(r.body).at("status");
      return jsonResponse(200, json::serialize(answered));
    }
    if (r.method == kube::Verb::delete_) {
      finalDeletes.push_back(r.target + " " + r.body);
      return jsonResponse(200, "{}");
    }
    return jsonResponse(201, "{}");  // events
  }
  size_t patches() {
    std::lock_guard lock(mu);
    return statusPatches.size();
  }
};

struct Harness {
  boost::asio::io_context io;
  burstlet::testing::FakeClock clock;
  Cluster cluster;
  ScriptedProvider provider;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<kube::EventRecorder> events;
  std::unique_ptr<PodController> controller;
  std::atomic<bool> done{false};

  explicit Harness(std::vector<std::string> pods) {
    cluster.pods = std::move(pods);
    auto t = std::make_unique<FakeTransport>(
        [this](const kube::HttpRequest& r) { return cluster.answer(r); },
        [](const kube::HttpRequest&) {
          return Result<std::unique_ptr<kube::ResponseStream>>(
              std::make_unique<ScriptedStream>(200, std::vector<std::string>{}, false));
        });
    client = std::make_unique<kube::RestClient>(io.get_executor(), std::move(t),
                                                kube::ClientConfig{}, kube::RestOptions{});
    events = std::make_unique<kube::EventRecorder>(*client, clock, kube::EventRecorderOptions{});
    PodControllerOptions o;
    o.nodeName = "vk";
    o.workers = 4;
    o.backoff = WorkQueueOptions{std::chrono::milliseconds(1), std::chrono::milliseconds(5)};
    // Retry delays are real (a few ms): the queue's timers run on the io_context.
    controller = std::make_unique<PodController>(io.get_executor(), *client, provider, *events, o,
                                                 realClock());
  }
  void start() {
    boost::asio::co_spawn(io, controller->run(),
                          [this](const std::exception_ptr&) { done = true; });
  }
  void stop() {
    controller->stop();
    EXPECT_TRUE(runUntil(io, [this] { return done.load(); }));
  }
  // Also after a failed assertion: no coroutine may outlive the controller.
  ~Harness() {
    if (controller && !done) {
      stop();
    }
  }
};

TEST(PodControllerTest, CreatesThenWritesStatusOnceAndCoalescesNotifications) {
  Harness h({pod("a")});
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patches() >= 1; }));
  EXPECT_EQ(h.provider.creates, 1);
  EXPECT_NE(h.cluster.statusPatches[0].find(R"("phase":"Running")"), std::string::npos);
  // Notifications with nothing new: no write, although the informer never saw our patch.
  for (int i = 0; i < 5; ++i) {
    h.provider.notify("a");
  }
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(h.cluster.patches(), 1U);
  // A burst of changes: the last state is written, at most once per sync, not once per event.
  for (int i = 0; i < 20; ++i) {
    h.provider.setStatus(
        json::parse(R"({"phase":"Running","podIP":"10.0.0.)" + std::to_string(i) + R"("})"));
    h.provider.notify("a");
  }
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    return h.cluster.statusPatches.back().find("10.0.0.19") != std::string::npos;
  }));
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_LE(h.cluster.patches(), 3U);  // the first write, then at most two for 20 events
  EXPECT_EQ(h.provider.creates, 1);
  h.stop();
}

TEST(PodControllerTest, TransientFailuresRetryAndPermanentOnesAreShownOnce) {
  Harness h({pod("flaky"), pod("bad")});
  h.provider.failCreates = 2;
  h.provider.rejectNames = {"bad"};
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.provider.pods.count("ns/flaky") == 1; }));
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.cluster.mu);
    for (const auto& p : h.cluster.statusPatches) {
      if (p.find("HostNetwork") != std::string::npos) {
        return true;
      }
    }
    return false;
  }));
  const int createsAfterReject = h.provider.creates;
  runUntil(
      h.io, [] { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(h.provider.creates, createsAfterReject);
  std::lock_guard lock(h.cluster.mu);
  bool failedPhase = false;
  bool providerFailed = false;
  for (const auto& p : h.cluster.statusPatches) {
    failedPhase |= p.find(R"("phase":"Failed")") != std::string::npos &&
                   p.find("HostNetwork") != std::string::npos;
    providerFailed |= p.find("ProviderFailed") != std::string::npos;
  }
  EXPECT_TRUE(failedPhase);
  EXPECT_TRUE(providerFailed);  // the transient failures were shown too
  EXPECT_GE(h.controller->stats().syncErrors.load(), 1U);
  EXPECT_EQ(h.provider.pods.count("ns/bad"), 0U);
}

TEST(PodControllerTest, RestartAdoptsMatchesAndDeletesOrphans) {
  Harness h({pod("kept"), pod("renamed")});
  // Left on the provider by an earlier process: "kept" still exists in the cluster, "gone"
  // does not, and "renamed" belongs to a pod of that name with another UID now.
  h.provider.pods["ns/kept"] = json::parse(pod("kept"));
  h.provider.pods["ns/gone"] = json::parse(pod("gone"));
  json::value old = json::parse(pod("renamed"));
  old.at("metadata").as_object()["uid"] = "u-old";
  h.provider.pods["ns/renamed"] = old;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.controller->ready(); }));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.cluster.patches() >= 2; }));
  std::lock_guard lock(h.provider.mu);
  EXPECT_EQ(h.provider.pods.count("ns/gone"), 0U);
  EXPECT_EQ(h.provider.pods.count("ns/kept"), 1U);
  ASSERT_EQ(h.provider.pods.count("ns/renamed"), 1U);
  EXPECT_EQ(provider::podRefOf(h.provider.pods["ns/renamed"]).uid, "u-renamed");
  EXPECT_EQ(h.provider.creates, 1);  // only the replaced pod; "kept" was adopted
  EXPECT_EQ(h.controller->stats().orphansDeleted.load(), 2U);
  EXPECT_EQ(h.controller->stats().adopted.load(), 1U);
}

}  // namespace
}  // namespace burstlet::pod
