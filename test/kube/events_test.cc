#include "kube/events.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "common/log.h"
#include "mocks/fake_clock.h"
#include "mocks/fake_transport.h"

namespace burstlet::kube {
namespace {

namespace json = boost::json;
using burstlet::testing::FakeClock;
using burstlet::testing::FakeTransport;
using burstlet::testing::jsonResponse;

struct Harness {
  boost::asio::io_context io;
  FakeClock clock;
  FakeTransport* transport = nullptr;
  std::unique_ptr<RestClient> client;
  std::unique_ptr<EventRecorder> recorder;
  bool done = false;

  explicit Harness(FakeTransport::SendFn send, EventRecorderOptions options = {}) {
    auto t = std::make_unique<FakeTransport>(std::move(send));
    transport = t.get();
    client = std::make_unique<RestClient>(io.get_executor(), std::move(t), ClientConfig{},
                                          RestOptions{});
    options.host = "vk-node";
    recorder = std::make_unique<EventRecorder>(*client, clock, options);
    boost::asio::co_spawn(io, recorder->run(), [this](const std::exception_ptr&) { done = true; });
  }
  // Runs until the recorder has written everything queued.
  void drain() {
    for (int i = 0; i < 1000 && !recorder->idle(); ++i) {
      io.run_one_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(recorder->idle());
  }
  void finish() {
    recorder->stop();
    for (int i = 0; i < 1000 && !done; ++i) {
      io.run_one_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(done);
  }
};

ObjectReference podRef(std::string name = "web-0") {
  return ObjectReference{"v1", "Pod", "ns", std::move(name), "uid-1", "7", ""};
}

TEST(EventRecorderTest, CreatesThenAggregatesRepeats) {
  std::vector<HttpRequest> seen;
  Harness h([&](const HttpRequest& r) {
    seen.push_back(r);
    return jsonResponse(r.method == Verb::post ? 201 : 200, "{}");
  });
  for (int i = 0; i < 3; ++i) {
    h.recorder->record(podRef(), EventType::kWarning, "ProviderFailed", "backend said no");
    h.clock.advance(std::chrono::seconds(10));
    h.drain();
  }
  ASSERT_EQ(seen.size(), 3U);
  EXPECT_EQ(seen[0].method, Verb::post);
  EXPECT_EQ(seen[0].target, "/api/v1/namespaces/ns/events");
  auto ev = json::parse(seen[0].body).as_object();
  EXPECT_EQ(ev.at("type").as_string(), "Warning");
  EXPECT_EQ(ev.at("reason").as_string(), "ProviderFailed");
  EXPECT_EQ(ev.at("involvedObject").at("uid").as_string(), "uid-1");
  EXPECT_EQ(ev.at("source").at("host").as_string(), "vk-node");
  EXPECT_EQ(ev.at("count").as_int64(), 1);
  const std::string name(ev.at("metadata").at("name").as_string());
  EXPECT_EQ(name.rfind("web-0.", 0), 0U) << name;
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(seen[i].method, Verb::patch);
    EXPECT_EQ(seen[i].target, "/api/v1/namespaces/ns/events/" + name);
    EXPECT_EQ(json::parse(seen[i].body).at("count").as_int64(), i + 1);
  }
  EXPECT_EQ(h.recorder->stats().created.load(), 1U);
  EXPECT_EQ(h.recorder->stats().aggregated.load(), 2U);
  h.finish();
}

TEST(EventRecorderTest, DifferentMessagesAreSeparateEvents) {
  int posts = 0;
  Harness h([&](const HttpRequest& r) {
    posts += r.method == Verb::post ? 1 : 0;
    return jsonResponse(201, "{}");
  });
  h.recorder->record(podRef(), EventType::kNormal, "Created", "a");
  h.recorder->record(podRef(), EventType::kNormal, "Created", "b");
  h.recorder->record(podRef("other"), EventType::kNormal, "Created", "a");
  h.drain();
  EXPECT_EQ(posts, 3);
  h.finish();
}

// A crash loop on one object: 25 events, then one more per 5 minutes.
TEST(EventRecorderTest, ThrottlesPerObject) {
  int posts = 0;
  Harness h([&](const HttpRequest&) {
    ++posts;
    return jsonResponse(201, "{}");
  });
  for (int i = 0; i < 40; ++i) {
    h.recorder->record(podRef(), EventType::kWarning, "BackOff", "attempt " + std::to_string(i));
  }
  h.drain();
  EXPECT_EQ(posts, 25);
  EXPECT_EQ(h.recorder->stats().throttled.load(), 15U);
  // Another object is not affected.
  h.recorder->record(podRef("calm"), EventType::kNormal, "Started", "ok");
  h.drain();
  EXPECT_EQ(posts, 26);
  h.clock.advance(std::chrono::minutes(5));
  h.recorder->record(podRef(), EventType::kWarning, "BackOff", "after a while");
  h.drain();
  EXPECT_EQ(posts, 27);
  h.finish();
}

TEST(EventRecorderTest, ExpiredEventIsRecreated) {
  std::vector<Verb> methods;
  Harness h([&](const HttpRequest& r) {
    methods.push_back(r.method);
    if (r.method == Verb::patch) {
      return jsonResponse(404, R"({"kind":"Status","code":404,"reason":"NotFound"})");
    }
    return jsonResponse(201, "{}");
  });
  h.recorder->record(podRef(), EventType::kNormal, "Pulled", "x");
  h.drain();
  h.recorder->record(podRef(), EventType::kNormal, "Pulled", "x");
  h.drain();
  EXPECT_EQ(methods, (std::vector<Verb>{Verb::post, Verb::patch, Verb::post}));
  h.finish();
}

TEST(EventRecorderTest, SecretsAreRedactedAndQueueIsBounded) {
  std::vector<std::string> bodies;
  EventRecorderOptions o;
  o.maxQueued = 2;
  Harness h(
      [&](const HttpRequest& r) {
        bodies.push_back(r.body);
        return jsonResponse(201, "{}");
      },
      o);
  h.recorder->record(podRef(), EventType::kWarning, "Failed", "auth: Bearer abcdefghijkl123");
  h.recorder->record(podRef(), EventType::kWarning, "Failed", "second");
  h.recorder->record(podRef(), EventType::kWarning, "Failed", "third is dropped");
  EXPECT_EQ(h.recorder->stats().dropped.load(), 1U);
  h.drain();
  ASSERT_EQ(bodies.size(), 2U);
  EXPECT_EQ(bodies[0].find("abcdefghijkl123"), std::string::npos) << bodies[0];
  EXPECT_NE(bodies[0].find("<redacted>"), std::string::npos);
  h.finish();
}

TEST(EventRecorderTest, NodeEventsGoToDefaultNamespace) {
  std::string target;
  Harness h([&](const HttpRequest& r) {
    target = r.target;
    return jsonResponse(201, "{}");
  });
  h.recorder->record(ObjectReference{"v1", "Node", "", "vk-node", "n-uid", "", ""},
                     EventType::kNormal, "NodeReady", "ready");
  h.drain();
  EXPECT_EQ(target, "/api/v1/namespaces/default/events");
  h.finish();
}

TEST(EventRecorderTest, ReferenceFromObject) {
  auto r = referenceTo(json::parse(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"n","uid":"u","resourceVersion":"9"}})"));
  EXPECT_EQ(r.kind, "Pod");
  EXPECT_EQ(r.ns, "n");
  EXPECT_EQ(r.name, "p");
  EXPECT_EQ(r.uid, "u");
  EXPECT_EQ(r.resourceVersion, "9");
}

}  // namespace
}  // namespace burstlet::kube
