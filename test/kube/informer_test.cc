#include "kube/informer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <map>

#include "mocks/fake_transport.h"
#include "mocks/run_sync.h"

namespace burstlet::kube {
namespace {

namespace json = boost::json;
using burstlet::testing::FakeTransport;
using burstlet::testing::jsonResponse;
using burstlet::testing::runUntil;
using burstlet::testing::ScriptedStream;

std::string pod(std::string_view name, std::string_view rv, std::string_view node = "vk") {
  return json::serialize(json::object{
      {"metadata", json::object{{"name", name},
                                {"namespace", "ns"},
                                {"resourceVersion", rv},
                                {"managedFields", json::array{json::object{{"manager", "x"}}}}}},
      {"spec", json::object{{"nodeName", node}}}});
}

std::string event(std::string_view type, const std::string& object) {
  return fmt::format(R"({{"type":"{}","object":{}}})", type, object) + "\n";
}

std::string list(const std::vector<std::string>& items, std::string_view rv,
                 std::string_view cont = "") {
  std::string body = fmt::format(
      R"({{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"{}")", rv);
  if (!cont.empty()) {
    body += fmt::format(R"(,"continue":"{}")", cont);
  }
  body += "},\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    body += (i ? "," : "") + items[i];
  }
  return body + "]}";
}

// Records what handlers saw, in order.
struct Recorder {
  std::vector<std::string> log;
  InformerHandlers handlers() {
    return InformerHandlers{
        [this](const ObjectPtr& o) { log.push_back("add " + objectKey(*o)); },
        [this](const ObjectPtr& old, const ObjectPtr& cur) {
          log.push_back("update " + objectKey(*cur) + " " +
                        std::string(objectResourceVersion(*old)) + "->" +
                        std::string(objectResourceVersion(*cur)));
        },
        [this](const ObjectPtr& last, bool unknown) {
          log.push_back(std::string(unknown ? "tombstone " : "delete ") + objectKey(*last));
        }};
  }
};

struct Harness {
  boost::asio::io_context io;
  FakeTransport* transport = nullptr;
  std::unique_ptr<RestClient> client;
  std::unique_ptr<Informer> informer;
  Recorder rec;
  std::atomic<bool> done{false};

  Harness(FakeTransport::SendFn send, FakeTransport::StreamFn stream, bool streaming = false) {
    auto t = std::make_unique<FakeTransport>(std::move(send), std::move(stream));
    transport = t.get();
    client = std::make_unique<RestClient>(io.get_executor(), std::move(t), ClientConfig{},
                                          RestOptions{});
    InformerOptions o;
    o.resource = resources::kPods;
    o.fieldSelector = "spec.nodeName=vk";
    o.pageSize = 2;
    o.watchTimeoutSeconds = 60;
    o.backoff.baseDelay = std::chrono::milliseconds(1);
    o.streamingList = streaming;
    informer = std::make_unique<Informer>(*client, o);
    informer->store().addIndex("node", [](const json::value& v) {
      return std::vector<std::string>{std::string(v.at("spec").at("nodeName").as_string())};
    });
    informer->addHandlers(rec.handlers());
  }
  void start() {
    // Spawn the member coroutine itself: a lambda coroutine's captures would dangle.
    boost::asio::co_spawn(io, informer->run(), [this](const std::exception_ptr&) { done = true; });
  }
  void stop() {
    informer->stop();
    EXPECT_TRUE(runUntil(io, [this] { return done.load(); }));
  }
  std::vector<std::string> watchTargets() {
    std::vector<std::string> out;
    for (auto& r : transport->requests()) {
      if (r.target.find("watch=true") != std::string::npos) {
        out.push_back(r.target);
      }
    }
    return out;
  }
};

TEST(InformerTest, ListsPagesThenAppliesWatchEvents) {
  std::atomic<int> lists{0};
  Harness h(
      [&](const HttpRequest& r) {
        ++lists;
        if (r.target.find("continue=") == std::string::npos) {
          return jsonResponse(200, list({pod("a", "1"), pod("b", "2")}, "10", "next"));
        }
        return jsonResponse(200, list({pod("c", "3")}, "10"));
      },
      [&](const HttpRequest&) {
        return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
            200,
            std::vector<std::string>{
                event("ADDED", pod("d", "11", "other")),
                event("MODIFIED", pod("a", "12")).substr(0, 17),  // split mid-event
                event("MODIFIED", pod("a", "12")).substr(17),
                event("BOOKMARK", R"({"kind":"Pod","metadata":{"resourceVersion":"14"}})"),
                event("DELETED", pod("b", "15"))},
            false));
      });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.rec.log.size() >= 6; }));
  EXPECT_TRUE(h.informer->synced());
  EXPECT_EQ(h.rec.log, (std::vector<std::string>{"add ns/a", "add ns/b", "add ns/c", "add ns/d",
                                                 "update ns/a 1->12", "delete ns/b"}));
  EXPECT_EQ(h.informer->store().size(), 3U);
  EXPECT_EQ(h.informer->lastResourceVersion(), "15");
  EXPECT_EQ(h.informer->store().byIndex("node", "vk").size(), 2U);
  EXPECT_EQ(h.informer->store().byIndex("node", "other").size(), 1U);
  // managedFields are dropped by the default transform.
  EXPECT_FALSE(
      h.informer->store().get("ns/a")->at("metadata").as_object().contains("managedFields"));
  // Items of a list get kind/apiVersion so handlers can tell what they hold.
  EXPECT_EQ(h.informer->store().get("ns/c")->at("kind").as_string(), "Pod");
  auto watches = h.watchTargets();
  ASSERT_EQ(watches.size(), 1U);
  EXPECT_NE(watches[0].find("resourceVersion=10"), std::string::npos) << watches[0];
  EXPECT_NE(watches[0].find("allowWatchBookmarks=true"), std::string::npos);
  EXPECT_NE(watches[0].find("fieldSelector=spec.nodeName%3Dvk"), std::string::npos);
  EXPECT_EQ(lists.load(), 2);
  h.stop();
}

TEST(InformerTest, ReconnectsFromLastResourceVersionAfterServerTimeout) {
  std::atomic<int> watches{0};
  Harness h([&](const HttpRequest&) { return jsonResponse(200, list({pod("a", "1")}, "5")); },
            [&](const HttpRequest&) {
              if (watches++ == 0) {
                return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
                    200,
                    std::vector<std::string>{
                        event("BOOKMARK", R"({"kind":"Pod","metadata":{"resourceVersion":"9"}})")},
                    true));
              }
              return Result<std::unique_ptr<ResponseStream>>(
                  std::make_unique<ScriptedStream>(200, std::vector<std::string>{}, false));
            });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return watches.load() >= 2; }));
  auto targets = h.watchTargets();
  ASSERT_EQ(targets.size(), 2U);
  EXPECT_NE(targets[1].find("resourceVersion=9"), std::string::npos) << targets[1];
  h.stop();
}

// A 410 Gone while watching forces a relist; what vanished meanwhile becomes a tombstone
// delete and what changed an update, so no delete is missed across the gap.
TEST(InformerTest, GoneRelistsAndEmitsTombstones) {
  std::atomic<int> lists{0};
  std::atomic<int> watches{0};
  Harness h(
      [&](const HttpRequest&) {
        if (lists++ == 0) {
          return jsonResponse(200, list({pod("a", "1"), pod("b", "2")}, "10"));
        }
        return jsonResponse(200, list({pod("a", "20"), pod("c", "21")}, "30"));
      },
      [&](const HttpRequest&) {
        if (watches++ == 0) {
          return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
              200,
              std::vector<std::string>{
                  event("ERROR",
                        R"({"kind":"Status","code":410,"reason":"Expired","message":"too old"})")},
              false));
        }
        return Result<std::unique_ptr<ResponseStream>>(
            std::make_unique<ScriptedStream>(200, std::vector<std::string>{}, false));
      });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return watches.load() >= 2; }));
  EXPECT_EQ(h.rec.log, (std::vector<std::string>{"add ns/a", "add ns/b", "update ns/a 1->20",
                                                 "add ns/c", "tombstone ns/b"}));
  EXPECT_EQ(h.informer->stats().relistsAfterGone.load(), 1U);
  auto targets = h.watchTargets();
  EXPECT_NE(targets.back().find("resourceVersion=30"), std::string::npos) << targets.back();
  h.stop();
}

TEST(InformerTest, WatchOpenRefusedWithGoneRelists) {
  std::atomic<int> lists{0};
  std::atomic<int> watches{0};
  Harness h(
      [&](const HttpRequest&) {
        ++lists;
        return jsonResponse(200, list({pod("a", "1")}, "10"));
      },
      [&](const HttpRequest&) {
        if (watches++ == 0) {
          return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
              410,
              std::vector<std::string>{
                  R"({"kind":"Status","code":410,"reason":"Expired","message":"gone"})"},
              true));
        }
        return Result<std::unique_ptr<ResponseStream>>(
            std::make_unique<ScriptedStream>(200, std::vector<std::string>{}, false));
      });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return watches.load() >= 2; }));
  EXPECT_EQ(lists.load(), 2);
  // Unchanged objects are not reported again on relist.
  EXPECT_EQ(h.rec.log, (std::vector<std::string>{"add ns/a"}));
  h.stop();
}

TEST(InformerTest, ListFailureIsRetried) {
  std::atomic<int> lists{0};
  Harness h(
      [&](const HttpRequest&) {
        if (lists++ == 0) {
          return jsonResponse(403, R"({"kind":"Status","code":403,"reason":"Forbidden"})");
        }
        return jsonResponse(200, list({pod("a", "1")}, "10"));
      },
      [&](const HttpRequest&) {
        return Result<std::unique_ptr<ResponseStream>>(
            std::make_unique<ScriptedStream>(200, std::vector<std::string>{}, false));
      });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.informer->synced(); }));
  EXPECT_EQ(lists.load(), 2);
  h.stop();
}

std::string endBookmark(std::string_view rv) {
  return event("BOOKMARK",
               fmt::format(R"({{"kind":"Pod","metadata":{{"resourceVersion":"{}",)"
                           R"("annotations":{{"k8s.io/initial-events-end":"true"}}}}}})",
                           rv));
}

TEST(InformerTest, StreamingListSyncsFromInitialEventsWithoutListing) {
  std::atomic<int> lists{0};
  Harness h(
      [&](const HttpRequest&) {
        ++lists;
        return jsonResponse(500, "{}");
      },
      [&](const HttpRequest&) {
        return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
            200,
            std::vector<std::string>{event("ADDED", pod("a", "3")), event("ADDED", pod("b", "7")),
                                     endBookmark("20"), event("MODIFIED", pod("a", "21"))},
            false));
      },
      true);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.rec.log.size() >= 3; }));
  EXPECT_TRUE(h.informer->synced());
  EXPECT_EQ(h.rec.log, (std::vector<std::string>{"add ns/a", "add ns/b", "update ns/a 3->21"}));
  EXPECT_EQ(h.informer->lastResourceVersion(), "21");
  EXPECT_EQ(lists.load(), 0);
  auto targets = h.watchTargets();
  ASSERT_EQ(targets.size(), 1U);
  EXPECT_NE(targets[0].find("sendInitialEvents=true"), std::string::npos) << targets[0];
  EXPECT_NE(targets[0].find("resourceVersionMatch=NotOlderThan"), std::string::npos);
  EXPECT_EQ(targets[0].find("&resourceVersion="), std::string::npos)
      << "the initial streaming watch must not pin a resourceVersion: " << targets[0];
  h.stop();
}

// Not synced until the end-of-initial-events bookmark has arrived.
TEST(InformerTest, StreamingListNotSyncedBeforeEndBookmark) {
  Harness h([&](const HttpRequest&) { return jsonResponse(500, "{}"); },
            [&](const HttpRequest&) {
              return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
                  200, std::vector<std::string>{event("ADDED", pod("a", "3"))}, false));
            },
            true);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.rec.log.size() >= 1; }));
  for (int i = 0; i < 20; ++i) {
    h.io.run_one_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(h.informer->synced());
  h.stop();
}

TEST(InformerTest, StreamingListRefusedFallsBackToListAndWatch) {
  std::atomic<int> watches{0};
  std::atomic<int> lists{0};
  Harness h(
      [&](const HttpRequest&) {
        ++lists;
        return jsonResponse(200, list({pod("a", "1")}, "10"));
      },
      [&](const HttpRequest& r) {
        if (watches++ == 0) {
          EXPECT_NE(r.target.find("sendInitialEvents=true"), std::string::npos);
          return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
              422,
              std::vector<std::string>{
                  R"({"kind":"Status","code":422,"reason":"Invalid","message":"sendInitialEvents is forbidden"})"},
              true));
        }
        return Result<std::unique_ptr<ResponseStream>>(
            std::make_unique<ScriptedStream>(200, std::vector<std::string>{}, false));
      },
      true);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.informer->synced() && watches.load() >= 2; }));
  EXPECT_EQ(lists.load(), 1);
  EXPECT_EQ(h.rec.log, (std::vector<std::string>{"add ns/a"}));
  EXPECT_EQ(h.watchTargets()[1].find("sendInitialEvents"), std::string::npos);
  h.stop();
}

// A 410 after the initial sync restarts the streaming list; what vanished becomes a tombstone
// and unchanged objects are not reported again.
TEST(InformerTest, StreamingListResyncEmitsTombstones) {
  std::atomic<int> watches{0};
  Harness h(
      [&](const HttpRequest&) { return jsonResponse(500, "{}"); },
      [&](const HttpRequest&) {
        if (watches++ == 0) {
          return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
              200,
              std::vector<std::string>{
                  event("ADDED", pod("a", "3")), event("ADDED", pod("b", "4")), endBookmark("10"),
                  event("ERROR", R"({"kind":"Status","code":410,"reason":"Expired"})")},
              false));
        }
        return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
            200, std::vector<std::string>{event("ADDED", pod("a", "3")), endBookmark("30")},
            false));
      },
      true);
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.rec.log.size() >= 3; }));
  EXPECT_EQ(h.rec.log, (std::vector<std::string>{"add ns/a", "add ns/b", "tombstone ns/b"}));
  EXPECT_EQ(h.informer->store().size(), 1U);
  EXPECT_EQ(h.informer->stats().relistsAfterGone.load(), 1U);
  h.stop();
}

// A pod deleted and re-created under the same name while the watch was down is a delete of
// the old object and an add of the new one, not an update.
TEST(InformerTest, NameReusedByNewObjectIsDeleteThenAdd) {
  auto withUid = [](std::string_view name, std::string_view rv, std::string_view uid) {
    return json::serialize(json::object{
        {"metadata",
         json::object{{"name", name}, {"namespace", "ns"}, {"resourceVersion", rv}, {"uid", uid}}},
        {"spec", json::object{{"nodeName", "vk"}}}});
  };
  std::atomic<int> lists{0};
  std::atomic<int> watches{0};
  Harness h(
      [&](const HttpRequest&) {
        if (lists++ == 0) {
          return jsonResponse(200, list({withUid("web-0", "1", "uid-old")}, "10"));
        }
        return jsonResponse(200, list({withUid("web-0", "25", "uid-new")}, "30"));
      },
      [&](const HttpRequest&) {
        if (watches++ == 0) {
          return Result<std::unique_ptr<ResponseStream>>(std::make_unique<ScriptedStream>(
              200,
              std::vector<std::string>{
                  event("ERROR", R"({"kind":"Status","code":410,"reason":"Expired"})")},
              false));
        }
        return Result<std::unique_ptr<ResponseStream>>(
            std::make_unique<ScriptedStream>(200, std::vector<std::string>{}, false));
      });
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return watches.load() >= 2; }));
  EXPECT_EQ(h.rec.log,
            (std::vector<std::string>{"add ns/web-0", "tombstone ns/web-0", "add ns/web-0"}));
  EXPECT_EQ(h.informer->store().uid("ns/web-0"), "uid-new");
  h.stop();
}

TEST(StoreTest, IndexesFollowUpdatesAndDeletes) {
  Store s;
  s.addIndex("node", [](const json::value& v) {
    return std::vector<std::string>{std::string(v.at("node").as_string())};
  });
  auto obj = [](std::string_view node) {
    return json::value(
        json::object{{"node", node}, {"metadata", json::object{{"resourceVersion", node}}}});
  };
  EXPECT_FALSE(s.upsert("a", obj("n1")));
  s.upsert("b", obj("n1"));
  EXPECT_EQ(s.byIndex("node", "n1").size(), 2U);
  std::string previous;
  EXPECT_TRUE(s.upsert("a", obj("n2"), &previous));
  EXPECT_EQ(json::parse(previous).at("node").as_string(), "n1");
  EXPECT_EQ(s.resourceVersion("a"), "n2");
  EXPECT_EQ(s.get("a")->at("node").as_string(), "n2");
  EXPECT_EQ(s.byIndex("node", "n1").size(), 1U);
  EXPECT_EQ(s.byIndex("node", "n2").size(), 1U);
  EXPECT_TRUE(s.erase("b"));
  EXPECT_FALSE(s.erase("b"));
  EXPECT_EQ(s.get("b"), nullptr);
  EXPECT_EQ(s.resourceVersion("b"), "");
  EXPECT_TRUE(s.byIndex("node", "n1").empty());
  EXPECT_TRUE(s.byIndex("missing-index", "n1").empty());
  EXPECT_EQ(s.size(), 1U);
}

}  // namespace
}  // namespace burstlet::kube
