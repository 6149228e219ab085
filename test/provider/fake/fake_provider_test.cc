#include "provider/fake/fake_provider.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <fstream>

#include "mocks/fake_clock.h"
#include "mocks/run_sync.h"
#include "mocks/temp_dir.h"

namespace burstlet::provider {
namespace {

namespace json = boost::json;
using burstlet::testing::FakeClock;
using burstlet::testing::runSync;

json::value pod(std::string_view name, std::string_view uid,
                json::object annotations = json::object{}, std::string_view restart = "Always") {
  return json::object{
      {"metadata", json::object{{"namespace", "ns"},
                                {"name", name},
                                {"uid", uid},
                                {"resourceVersion", "7"},
                                {"annotations", std::move(annotations)}}},
      {"spec",
       json::object{
           {"restartPolicy", restart},
           {"initContainers", json::array{json::object{{"name", "init"}, {"image", "busybox"}}}},
           {"containers", json::array{json::object{{"name", "app"}, {"image", "nginx:1"}}}}}},
      {"status", json::object{{"phase", "Pending"}}}};
}

std::unique_ptr<FakeProvider> make(boost::asio::io_context& io, const Clock& clock,
                                   FakeProviderOptions o = {}) {
  auto p = FakeProvider::create(io.get_executor(), std::move(o), clock);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().toString());
  return std::move(*p);
}

TEST(FakeProviderTest, CreateIsIdempotentByUidAndRunsAtOnce) {
  boost::asio::io_context io;
  FakeClock clock;
  auto p = make(io, clock);
  std::vector<std::string> notified;
  p->onPodStatusChange([&](const PodRef& r) { notified.push_back(r.key()); });
  ASSERT_TRUE(runSync(io, p->createPod(pod("a", "u1"))).ok());
  ASSERT_TRUE(runSync(io, p->createPod(pod("a", "u1"))).ok());  // a repeat: no duplicate
  EXPECT_EQ(p->size(), 1U);
  EXPECT_EQ(p->createsByUid().at("u1"), 1);
  EXPECT_EQ(notified, std::vector<std::string>{"ns/a"});

  auto got = runSync(io, p->getPod(PodRef{"ns", "a", "u1"}));
  ASSERT_TRUE(got.ok());
  const auto& st = got->at("status");
  EXPECT_EQ(st.at("phase"), "Running");
  EXPECT_EQ(st.at("podIP"), "10.246.1.1");
  EXPECT_EQ(st.at("hostIP"), "127.0.0.1");
  EXPECT_EQ(st.at("containerStatuses").at(0).at("ready"), true);
  EXPECT_TRUE(st.at("containerStatuses").at(0).at("state").as_object().contains("running"));
  EXPECT_EQ(st.at("initContainerStatuses").at(0).at("state").at("terminated").at("reason"),
            "Completed");
  EXPECT_FALSE(got->at("metadata").as_object().contains("resourceVersion"));
  EXPECT_FALSE(got->as_object().contains("status") && got->at("status").as_object().empty());
  // Another UID is not found, and deleting it leaves ours.
  EXPECT_EQ(runSync(io, p->getPod(PodRef{"ns", "a", "u2"})).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(runSync(io, p->deletePod(PodRef{"ns", "a", "u2"}, 0)).ok());
  EXPECT_EQ(p->size(), 1U);
  // A pod of that name with another UID: the earlier one goes, the new one comes next time.
  auto other = runSync(io, p->createPod(pod("a", "u2")));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(other.error().reason, kPredecessorTerminating);
  EXPECT_EQ(p->size(), 0U);
  ASSERT_TRUE(runSync(io, p->createPod(pod("a", "u2"))).ok());
  ASSERT_TRUE(runSync(io, p->deletePod(PodRef{"ns", "a", "u2"}, 30)).ok());
  EXPECT_EQ(p->size(), 0U);
}

TEST(FakeProviderTest, StartDelayThenNotification) {
  boost::asio::io_context io;
  FakeClock clock;  // drives the status; the notification timer runs in real time
  FakeProviderOptions o;
  o.startDelay = std::chrono::milliseconds(30);
  auto p = make(io, clock, o);
  std::atomic<int> notified{0};
  p->onPodStatusChange([&](const PodRef&) { ++notified; });
  ASSERT_TRUE(runSync(io, p->createPod(pod("a", "u1"))).ok());  // also runs the timer
  EXPECT_EQ(notified.load(), 1);
  auto pending = runSync(io, p->getPod(PodRef{"ns", "a", "u1"}));
  EXPECT_EQ(pending->at("status").at("phase"), "Pending");
  EXPECT_FALSE(pending->at("status").as_object().contains("podIP"));
  EXPECT_EQ(
      pending->at("status").at("containerStatuses").at(0).at("state").at("waiting").at("reason"),
      "ContainerCreating");
  clock.advance(std::chrono::milliseconds(30));
  EXPECT_EQ(runSync(io, p->getPod(PodRef{"ns", "a", "u1"}))->at("status").at("phase"), "Running");
}

TEST(FakeProviderTest, InjectedFailuresAndRejection) {
  boost::asio::io_context io;
  FakeClock clock;
  auto p = make(io, clock);
  auto flaky = pod("f", "u1", json::object{{"fake.burstlet.io/fail-creates", "2"}});
  for (int i = 0; i < 2; ++i) {
    auto s = runSync(io, p->createPod(flaky));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
    EXPECT_TRUE(isRetryable(s.error().code));
  }
  EXPECT_TRUE(runSync(io, p->createPod(flaky)).ok());
  auto rejected = runSync(
      io, p->createPod(pod("r", "u2", json::object{{"fake.burstlet.io/reject", "no GPUs here"}})));
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(rejected.error().message, "no GPUs here");
  p->setUnreachable(true);
  EXPECT_EQ(runSync(io, p->ping()).error().code, ErrorCode::kUnavailable);
  EXPECT_FALSE(runSync(io, p->createPod(pod("x", "u3"))).ok());
  p->setUnreachable(false);
  EXPECT_TRUE(runSync(io, p->ping()).ok());
}

TEST(FakeProviderTest, PodsThatExitSucceedOrFail) {
  boost::asio::io_context io;
  FakeClock clock;
  auto p = make(io, clock);
  ASSERT_TRUE(
      runSync(io, p->createPod(pod(
                      "ok", "u1", json::object{{"fake.burstlet.io/exit-after-ms", "20"}}, "Never")))
          .ok());
  ASSERT_TRUE(runSync(io, p->createPod(pod("bad", "u2",
                                           json::object{{"fake.burstlet.io/exit-after-ms", "20"},
                                                        {"fake.burstlet.io/exit-code", "3"}},
                                           "OnFailure")))
                  .ok());
  ASSERT_TRUE(runSync(io, p->createPod(pod("svc", "u3",
                                           json::object{{"fake.burstlet.io/exit-after-ms", "20"}},
                                           "Always")))
                  .ok());
  clock.advance(std::chrono::seconds(2));
  auto ok = runSync(io, p->getPod(PodRef{"ns", "ok", "u1"}));
  EXPECT_EQ(ok->at("status").at("phase"), "Succeeded");
  EXPECT_EQ(
      ok->at("status").at("containerStatuses").at(0).at("state").at("terminated").at("exitCode"),
      0);
  auto bad = runSync(io, p->getPod(PodRef{"ns", "bad", "u2"}));
  EXPECT_EQ(bad->at("status").at("phase"), "Failed");
  EXPECT_EQ(
      bad->at("status").at("containerStatuses").at(0).at("state").at("terminated").at("exitCode"),
      3);
  EXPECT_EQ(runSync(io, p->getPod(PodRef{"ns", "svc", "u3"}))->at("status").at("phase"), "Running");
}

TEST(FakeProviderTest, JournalKeepsPodsAcrossRestarts) {
  burstlet::testing::TempDir dir;
  const std::string file = dir.path() + "/fake.jsonl";
  FakeClock clock;
  FakeProviderOptions o;
  o.stateFile = file;
  {
    boost::asio::io_context io;
    auto p = make(io, clock, o);
    ASSERT_TRUE(runSync(io, p->createPod(pod("a", "u1"))).ok());
    ASSERT_TRUE(runSync(io, p->createPod(pod("b", "u2"))).ok());
    ASSERT_TRUE(runSync(io, p->deletePod(PodRef{"ns", "a", "u1"}, 0)).ok());
  }
  {
    // A kill in the middle of a write leaves a partial last line: it is ignored.
    std::ofstream out(file, std::ios::app);
    out << R"({"op":"create","pod":{"metad)";
  }
  boost::asio::io_context io;
  auto p = make(io, clock, o);
  auto pods = runSync(io, p->listPods());
  ASSERT_TRUE(pods.ok());
  ASSERT_EQ(pods->size(), 1U);
  EXPECT_EQ(podRefOf(pods->at(0)).uid, "u2");
  EXPECT_EQ(pods->at(0).at("status").at("podIP"), "10.246.1.2");
  // The same UID again is still a repeat, not a duplicate; a new pod gets a new IP.
  ASSERT_TRUE(runSync(io, p->createPod(pod("b", "u2"))).ok());
  EXPECT_TRUE(p->createsByUid().empty());
  ASSERT_TRUE(runSync(io, p->createPod(pod("c", "u3"))).ok());
  EXPECT_EQ(runSync(io, p->getPod(PodRef{"ns", "c", "u3"}))->at("status").at("podIP"),
            "10.246.1.3");
}

// kubectl debug: updatePod adds the ephemeral containers the pod lacks and reports them running
// from then on; one already there is never changed or removed; they survive a restart.
TEST(FakeProviderTest, UpdateAddsEphemeralContainers) {
  burstlet::testing::TempDir dir;
  FakeClock clock;
  FakeProviderOptions o;
  o.stateFile = dir.path() + "/fake.jsonl";
  auto debug = [](std::string_view name, std::string_view image) {
    return json::object{{"name", name}, {"image", image}, {"targetContainerName", "app"}};
  };
  const auto createdAt = formatRfc3339(clock.now());
  std::string addedAt;
  {
    boost::asio::io_context io;
    auto p = make(io, clock, o);
    int notified = 0;
    p->onPodStatusChange([&](const PodRef&) { ++notified; });
    auto a = pod("a", "u1");
    ASSERT_TRUE(runSync(io, p->createPod(a)).ok());
    clock.advance(std::chrono::seconds(5));
    addedAt = formatRfc3339(clock.now());
    a.at("spec").as_object()["ephemeralContainers"] = json::array{debug("debugger", "busybox:1")};
    ASSERT_TRUE(runSync(io, p->updatePod(a)).ok());
    EXPECT_EQ(notified, 2);
    auto got = runSync(io, p->getPod(PodRef{"ns", "a", "u1"}));
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->at("spec").at("ephemeralContainers").as_array().size(), 1U);
    EXPECT_EQ(got->at("spec").at("ephemeralContainers").at(0).at("image"), "busybox:1");
    const auto& statuses = got->at("status").at("ephemeralContainerStatuses").as_array();
    ASSERT_EQ(statuses.size(), 1U);
    EXPECT_EQ(statuses.at(0).at("name"), "debugger");
    EXPECT_EQ(statuses.at(0).at("image"), "busybox:1");
    EXPECT_EQ(statuses.at(0).at("ready"), false);
    EXPECT_EQ(statuses.at(0).at("state").at("running").at("startedAt"), json::value(addedAt));
    // The app container's status is untouched by it.
    EXPECT_EQ(
        got->at("status").at("containerStatuses").at(0).at("state").at("running").at("startedAt"),
        json::value(createdAt));

    // Another one is added; the first, changed or left out in the update, stays as it was.
    clock.advance(std::chrono::seconds(5));
    a.at("spec").as_object()["ephemeralContainers"] =
        json::array{debug("debugger", "busybox:2"), debug("second", "alpine:3")};
    ASSERT_TRUE(runSync(io, p->updatePod(a)).ok());
    a.at("spec").as_object().erase("ephemeralContainers");
    ASSERT_TRUE(runSync(io, p->updatePod(a)).ok());
  }
  boost::asio::io_context io;
  auto p = make(io, clock, o);  // replays the journal
  auto got = runSync(io, p->getPod(PodRef{"ns", "a", "u1"}));
  ASSERT_TRUE(got.ok());
  const auto& spec = got->at("spec").at("ephemeralContainers").as_array();
  ASSERT_EQ(spec.size(), 2U) << json::serialize(spec);
  EXPECT_EQ(spec.at(0).at("image"), "busybox:1");
  EXPECT_EQ(spec.at(1).at("name"), "second");
  const auto& statuses = got->at("status").at("ephemeralContainerStatuses").as_array();
  ASSERT_EQ(statuses.size(), 2U);
  EXPECT_EQ(statuses.at(0).at("state").at("running").at("startedAt"), json::value(addedAt));
  EXPECT_TRUE(statuses.at(1).at("state").as_object().contains("running"));
  // A pod without ephemeral containers reports none.
  ASSERT_TRUE(runSync(io, p->createPod(pod("b", "u2"))).ok());
  EXPECT_FALSE(runSync(io, p->getPod(PodRef{"ns", "b", "u2"}))
                   ->at("status")
                   .as_object()
                   .contains("ephemeralContainerStatuses"));
}

TEST(FakeProviderTest, CorruptJournalIsAClearError) {
  burstlet::testing::TempDir dir;
  const std::string file = dir.path() + "/fake.jsonl";
  {
    std::ofstream out(file);
    out << "not json\n"
        << R"({"op":"delete","key":"ns/a","uid":"u"})"
        << "\n";
  }
  boost::asio::io_context io;
  FakeProviderOptions o;
  o.stateFile = file;
  auto p = FakeProvider::create(io.get_executor(), o, realClock());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kInvalid);
  EXPECT_NE(p.error().message.find("line 1"), std::string::npos) << p.error().message;
}

}  // namespace
}  // namespace burstlet::provider

namespace burstlet::provider {
namespace {

TEST(FakeProviderTest, KubeletHooks) {
  boost::asio::io_context io;
  testing::FakeClock clock;
  auto p = make(io, clock);
  ASSERT_TRUE(testing::runSync(io, p->createPod(pod("a", "u1"))).ok());
  LogOptions lo;
  lo.container = "app";
  auto logs = testing::runSync(io, p->logs(PodRef{"ns", "a", "u1"}, lo));
  ASSERT_TRUE(logs.ok());
  auto text = testing::runSync(io, (*logs)->read());
  ASSERT_TRUE(text.ok() && text->has_value());
  EXPECT_NE((*text)->find("container app"), std::string::npos);
  EXPECT_FALSE(testing::runSync(io, p->logs(PodRef{"ns", "b", "u2"}, lo)).ok());
  EXPECT_EQ(testing::runSync(io, p->exec(PodRef{"ns", "b", "u2"}, ExecOptions{})).error().code,
            ErrorCode::kNotFound);
  // What the fake does not do is a clear "not supported", not a crash or a hang.
  EXPECT_EQ(testing::runSync(io, p->portForward(PodRef{"ns", "a", "u1"}, 80)).error().reason,
            "NotSupported");
  EXPECT_EQ(testing::runSync(io, p->statsSummary()).error().reason, "NotSupported");
}

}  // namespace
}  // namespace burstlet::provider

namespace burstlet::provider {
namespace {

// Logs from an annotation; exec writes its command line, echoes stdin and resizes, and ends with
// the annotation's exit code once stdin closes.
TEST(FakeProviderTest, LogsAndExecForKubeletApiTests) {
  boost::asio::io_context io;
  testing::FakeClock clock;
  auto p = make(io, clock);
  auto a = pod("a", "u1");
  a.as_object()["metadata"].as_object()["annotations"] = boost::json::object{
      {"fake.burstlet.io/logs", "one\ntwo\n"}, {"fake.burstlet.io/exec-exit-code", "3"}};
  ASSERT_TRUE(testing::runSync(io, p->createPod(a)).ok());
  auto logs = testing::runSync(io, p->logs(PodRef{"ns", "a", "u1"}, LogOptions{}));
  ASSERT_TRUE(logs.ok());
  auto text = testing::runSync(io, (*logs)->read());
  ASSERT_TRUE(text.ok() && text->has_value());
  EXPECT_EQ(**text, "one\ntwo\n");

  ExecOptions o;
  o.command = {"echo", "hi"};
  o.stdinOpen = true;
  auto exec = testing::runSync(io, p->exec(PodRef{"ns", "a", "u1"}, o));
  ASSERT_TRUE(exec.ok());
  auto& s = **exec;
  ASSERT_TRUE(testing::runSync(io, s.writeStdin("typed")).ok());
  ASSERT_TRUE(testing::runSync(io, s.resize(TerminalSize{80, 24})).ok());
  ASSERT_TRUE(testing::runSync(io, s.writeStdin("")).ok());
  std::vector<std::pair<int, std::string>> got;
  while (true) {
    auto r = testing::runSync(io, s.read());
    ASSERT_TRUE(r.ok());
    if (!r->has_value()) {
      break;
    }
    got.emplace_back((*r)->stream, (*r)->data);
  }
  EXPECT_EQ(got, (std::vector<std::pair<int, std::string>>{
                     {1, "echo hi\n"}, {1, "typed"}, {2, "resize 80x24\n"}}));
  auto code = testing::runSync(io, s.exitCode());
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 3);

  // Without stdin, attach ends at once (no command line to write).
  auto attach = testing::runSync(io, p->attach(PodRef{"ns", "a", "u1"}, ExecOptions{}));
  ASSERT_TRUE(attach.ok());
  auto end = testing::runSync(io, (*attach)->read());
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

}  // namespace
}  // namespace burstlet::provider
