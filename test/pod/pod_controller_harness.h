// The pod controller's test harness: a PodController on a fake cluster API (a pod list, a quiet
// watch whose events the test releases, recorded status patches, metadata patches and events)
// and a ScriptedProvider, on real time or on a FakeClock. Shared by test/pod's controller tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mocks/fake_clock.h"
#include "mocks/fake_transport.h"
#include "mocks/run_sync.h"
#include "mocks/scripted_provider.h"
#include "pod/pod_controller.h"

namespace burstlet::pod::test {

namespace json = boost::json;
using burstlet::testing::FakeTransport;
using burstlet::testing::jsonResponse;
using burstlet::testing::runUntil;
using burstlet::testing::ScriptedProvider;

// A watch that stays quiet until the test releases its events.
class GatedStream final : public kube::ResponseStream {
 public:
  GatedStream(std::shared_ptr<std::atomic<bool>> open, std::vector<std::string> events)
      : open_(std::move(open)), events_(std::move(events)) {}
  unsigned status() const override { return 200; }
  asio::awaitable<Result<std::optional<std::string>>> read() override {
    while (!cancelled_ && !open_->load()) {
      boost::asio::steady_timer t(co_await boost::asio::this_coro::executor,
                                  std::chrono::milliseconds(5));
      co_await t.async_wait(boost::asio::use_awaitable);
    }
    while (!cancelled_ && next_ >= events_.size()) {  // then quiet, like a watch
      boost::asio::steady_timer t(co_await boost::asio::this_coro::executor,
                                  std::chrono::milliseconds(5));
      co_await t.async_wait(boost::asio::use_awaitable);
    }
    if (cancelled_) {
      co_return Error::make(ErrorCode::kCancelled, "Cancelled", "stream cancelled");
    }
    co_return std::optional<std::string>(events_[next_++] + "\n");
  }
  void cancel() override { cancelled_ = true; }

 private:
  std::shared_ptr<std::atomic<bool>> open_;
  std::vector<std::string> events_;
  size_t next_ = 0;
  std::atomic<bool> cancelled_{false};
};

inline std::string pod(const std::string& name) {
  return json::serialize(json::object{
      {"metadata",
       json::object{
           {"namespace", "ns"}, {"name", name}, {"uid", "u-" + name}, {"resourceVersion", "10"}}},
      {"spec",
       json::object{{"nodeName", "vk"},
                    {"containers", json::array{json::object{{"name", "c"}, {"image", "img"}}}}}},
      {"status", json::object{{"phase", "Pending"}}}});
}

// The cluster side: one list answer, a quiet watch, and recorded status patches.
struct Cluster {
  std::mutex mu;
  std::vector<std::string> pods;
  std::vector<std::string> statusPatches;
  std::vector<std::string> finalDeletes;
  std::vector<std::string> metadataPatches;
  std::vector<std::string> events;
  int version = 100;
  std::map<std::string, json::object> statuses;  // status path -> the pod's status so far
  bool refuseStatus = false;  // answer status patches 422, as for an invalid status
  int refused = 0;

  Result<kube::HttpResponse> answer(const kube::HttpRequest& r) {
    std::lock_guard lock(mu);
    if (r.method == kube::Verb::get && r.target.rfind("/api/v1/pods?", 0) == 0) {
      std::string body = R"({"kind":"PodList","metadata":{"resourceVersion":"10"},"items":[)";
      for (size_t i = 0; i < pods.size(); ++i) {
        body += (i ? "," : "") + pods[i];
      }
      return jsonResponse(200, body + "]}");
    }
    if (r.method == kube::Verb::patch && r.target.find("/status") != std::string::npos &&
        refuseStatus) {
      ++refused;
      return jsonResponse(422, R"({"kind":"Status","apiVersion":"v1","status":"Failure",
          "reason":"Invalid","code":422,"message":"Pod \"a\" is invalid: status.podIPs: Invalid value: \"10.0.0.9\": may specify no more than one IP for each IP family"})");
    }
    if (r.method == kube::Verb::patch && r.target.find("/status") != std::string::npos) {
      statusPatches.push_back(r.body);
      json::value answered = podNamed(r.target);
      answered.at("metadata").as_object()["resourceVersion"] = std::to_string(++version);
      answered.as_object()["status"] = merge(r.target, json::parse(r.body).at("status"));
      return jsonResponse(200, json::serialize(answered));
    }
    if (r.method == kube::Verb::patch) {  // not /status: metadata
      metadataPatches.push_back(r.target + " " + r.body);
      return jsonResponse(200, pods.at(0));
    }
    if (r.method == kube::Verb::delete_) {
      finalDeletes.push_back(r.target + " " + r.body);
      return jsonResponse(200, "{}");
    }
    if (r.target.find("/events") != std::string::npos) {
      events.push_back(r.body);
    }
    return jsonResponse(201, "{}");
  }
  // The listed pod a request's path names (".../pods/<name>[/status]"), else the first.
  json::value podNamed(const std::string& target) {
    for (const auto& text : pods) {
      json::value p = json::parse(text);
      const std::string name(p.at("metadata").at("name").as_string());
      if (target.find("/pods/" + name + "/") != std::string::npos ||
          target.ends_with("/pods/" + name)) {
        return p;
      }
    }
    return json::parse(pods.at(0));
  }
  // The pod's status with a status patch applied as the API server's strategic merge does:
  // conditions merged by type, other fields replaced, nulls removed.
  json::value merge(const std::string& target, const json::value& patch) {
    auto [it, fresh] = statuses.try_emplace(target);
    if (fresh) {
      const json::value p = podNamed(target);
      const auto* st = p.as_object().if_contains("status");
      it->second = st != nullptr && st->is_object() ? st->as_object() : json::object{};
    }
    json::object& status = it->second;
    for (const auto& [key, value] : patch.as_object()) {
      if (value.is_null()) {
        status.erase(key);
      } else if (key == "conditions" && value.is_array() && status.contains("conditions")) {
        json::array& have = status["conditions"].as_array();
        for (const auto& c : value.as_array()) {
          auto same = std::find_if(have.begin(), have.end(), [&c](const json::value& h) {
            return h.at("type") == c.at("type");
          });
          if (same == have.end()) {
            have.push_back(c);
            continue;
          }
          for (const auto& [k, v] : c.as_object()) {
            if (v.is_null()) {
              same->as_object().erase(k);
            } else {
              same->as_object()[k] = v;
            }
          }
        }
      } else {
        status[key] = value;
      }
    }
    return status;
  }
  size_t patches() {
    std::lock_guard lock(mu);
    return statusPatches.size();
  }
  bool patched(std::string_view text) {
    std::lock_guard lock(mu);
    for (const auto& p : statusPatches) {
      if (p.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
  // How often an event with `reason` was recorded: its create and each repeat aggregated into it.
  int occurrences(std::string_view reason) {
    std::lock_guard lock(mu);
    int n = 0;
    for (const auto& e : events) {
      const json::value event = json::parse(e);
      if (!event.at("reason").is_string() || event.at("reason").as_string() != reason) {
        continue;
      }
      const std::string suffix =
          "/events/" + std::string(event.at("metadata").at("name").as_string()) + " ";
      ++n;
      for (const auto& p : metadataPatches) {
        n += p.find(suffix) != std::string::npos ? 1 : 0;
      }
    }
    return n;
  }
  // The status of the last status patch.
  json::value lastStatus() {
    std::lock_guard lock(mu);
    return statusPatches.empty() ? json::value() : json::parse(statusPatches.back()).at("status");
  }
  bool evented(std::string_view text) {
    std::lock_guard lock(mu);
    for (const auto& e : events) {
      if (e.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
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
  std::atomic<bool> eventsDone{false};

  std::shared_ptr<std::atomic<bool>> watchOpen = std::make_shared<std::atomic<bool>>(false);
  std::vector<std::string> watchEvents;  // delivered once watchOpen is set

  // `fakeTime`: the controller runs on `clock` (tests advance it; the queue's retry and delayed
  // syncs then fall due only when it moves); else on real time. `configure` adjusts the options.
  explicit Harness(std::vector<std::string> pods, bool fakeTime = false,
                   const std::function<void(PodControllerOptions&)>& configure = {}) {
    cluster.pods = std::move(pods);
    auto t = std::make_unique<FakeTransport>(
        [this](const kube::HttpRequest& r) { return cluster.answer(r); },
        [this](const kube::HttpRequest&) {
          return Result<std::unique_ptr<kube::ResponseStream>>(
              std::make_unique<GatedStream>(watchOpen, watchEvents));
        });
    client = std::make_unique<kube::RestClient>(io.get_executor(), std::move(t),
                                                kube::ClientConfig{}, kube::RestOptions{});
    events = std::make_unique<kube::EventRecorder>(*client, clock, kube::EventRecorderOptions{});
    PodControllerOptions o;
    o.nodeName = "vk";
    o.workers = 4;
    o.predecessorRecheck = std::chrono::milliseconds(50);
    o.backoff = WorkQueueOptions{std::chrono::milliseconds(1), std::chrono::milliseconds(5)};
    if (configure) {
      configure(o);
    }
    // Retry delays are real (a few ms) unless fakeTime: the queue's timers run on the io_context.
    controller =
        std::make_unique<PodController>(io.get_executor(), *client, provider, *events, o,
                                        fakeTime ? static_cast<const Clock&>(clock) : realClock());
  }
  void start() {
    boost::asio::co_spawn(io, controller->run(),
                          [this](const std::exception_ptr&) { done = true; });
    boost::asio::co_spawn(io, events->run(),
                          [this](const std::exception_ptr&) { eventsDone = true; });
  }
  void stop() {
    controller->stop();
    EXPECT_TRUE(runUntil(io, [this] { return done.load(); }));
    events->stop();
    EXPECT_TRUE(runUntil(io, [this] { return eventsDone.load(); }));
  }
  // The provider loses the pod (gone under burstlet's feet) and says so.
  void lose(const std::string& name) {
    {
      std::lock_guard lock(provider.mu);
      provider.pods.erase("ns/" + name);
    }
    provider.notify(name);
  }
  // Also after a failed assertion: no coroutine may outlive the controller.
  ~Harness() {
    if (controller && !done) {
      stop();
    }
  }
};

inline std::string podWithSpec(const std::string& name, const json::object& extraSpec,
                               const json::object& extraMeta = {}) {
  json::value p = json::parse(pod(name));
  for (const auto& [k, v] : extraSpec) {
    p.at("spec").as_object()[k] = v;
  }
  for (const auto& [k, v] : extraMeta) {
    p.at("metadata").as_object()[k] = v;
  }
  return json::serialize(p);
}

}  // namespace burstlet::pod::test
