// Paths and query options of kubelet API requests, checked as the kubelet checks them.
#include "kubelet/requests.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace burstlet::kubelet {
namespace {

TEST(ParsePodTarget, ThreeAndFourSegmentForms) {
  auto t = parsePodTarget("/exec/ns1/web-0/app", "/exec/", true);
  ASSERT_TRUE(t.ok()) << t.error().toString();
  EXPECT_EQ(t->ns, "ns1");
  EXPECT_EQ(t->pod, "web-0");
  EXPECT_EQ(t->container, "app");
  EXPECT_EQ(t->uid, "");
  auto withUid = parsePodTarget("/exec/ns1/web-0/1234-abcd/app", "/exec/", true);
  ASSERT_TRUE(withUid.ok());
  EXPECT_EQ(withUid->uid, "1234-abcd");
  EXPECT_EQ(withUid->container, "app");
  auto pf = parsePodTarget("/portForward/ns1/web-0", "/portForward/", false);
  ASSERT_TRUE(pf.ok());
  EXPECT_EQ(pf->container, "");
}

TEST(ParsePodTarget, DecodesAndRefusesMalformedPaths) {
  auto decoded = parsePodTarget("/containerLogs/ns/p%2Dq/c", "/containerLogs/", true);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->pod, "p-q");
  for (const char* bad : {"/exec/ns/p", "/exec/ns/p/u/c/extra", "/exec//p/c", "/exec/ns/../c",
                          "/exec/ns/p%2Fx/c", "/exec/ns/p%zz/c"}) {
    auto r = parsePodTarget(bad, "/exec/", true);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest) << bad;
  }
}

TEST(ParseLogOptions, AllParameters) {
  auto o = parseLogOptions(
      "follow=true&previous=1&timestamps=true&tailLines=10&limitBytes=2048&sinceSeconds=60", "c");
  ASSERT_TRUE(o.ok()) << o.error().toString();
  EXPECT_EQ(o->container, "c");
  EXPECT_TRUE(o->follow);
  EXPECT_TRUE(o->previous);
  EXPECT_TRUE(o->timestamps);
  EXPECT_EQ(o->tailLines, 10);
  EXPECT_EQ(o->limitBytes, 2048);
  EXPECT_EQ(o->sinceSeconds, 60);
  auto since = parseLogOptions("sinceTime=2026-12-06T10%3A00%3A00Z", "c");
  ASSERT_TRUE(since.ok()) << since.error().toString();
  EXPECT_EQ(since->sinceTime, "2026-12-06T10:00:00Z");
  auto none = parseLogOptions("", "c");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->follow);
  EXPECT_FALSE(none->tailLines.has_value());
}

TEST(ParseLogOptions, RefusesBadValuesNamingTheParameter) {
  const std::pair<const char*, const char*> cases[] = {
      {"tailLines=-1", "tailLines"},
      {"tailLines=ten", "tailLines"},
      {"limitBytes=0", "limitBytes"},
      {"sinceSeconds=0", "sinceSeconds"},
      {"sinceTime=yesterday", "sinceTime"},
      {"follow=maybe", "follow"},
      {"sinceSeconds=5&sinceTime=2026-12-06T10:00:00Z", "sinceTime"},
  };
  for (const auto& [query, name] : cases) {
    auto r = parseLogOptions(query, "c");
    ASSERT_FALSE(r.ok()) << query;
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  }
}

TEST(ParseExecOptions, CommandsAndStreams) {
  auto o = parseExecOptions(
      "command=sh&command=-c&command=echo+hi%21&input=1&output=1&tty=1&error=1", "c", true);
  ASSERT_TRUE(o.ok()) << o.error().toString();
  EXPECT_EQ(o->command, (std::vector<std::string>{"sh", "-c", "echo hi!"}));
  EXPECT_TRUE(o->stdinOpen);
  EXPECT_TRUE(o->stdoutOpen);
  EXPECT_FALSE(o->stderrOpen);  // a TTY has no separate stderr
  EXPECT_TRUE(o->tty);
  EXPECT_FALSE(parseExecOptions("output=1", "c", true).ok());              // no command
  EXPECT_FALSE(parseExecOptions("command=ls", "c", true).ok());            // no stream
  EXPECT_FALSE(parseExecOptions("command=ls&output=1", "c", false).ok());  // attach + command
  EXPECT_TRUE(parseExecOptions("output=1&error=1", "c", false).ok());
}

TEST(ParsePorts, RepeatedAndCommaSeparated) {
  auto p = parsePorts("port=80&port=8080,9090");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (std::vector<uint16_t>{80, 8080, 9090}));
  EXPECT_FALSE(parsePorts("port=0").ok());
  EXPECT_FALSE(parsePorts("port=70000").ok());
  EXPECT_FALSE(parsePorts("port=http").ok());
}

TEST(HasContainer, AllContainerLists) {
  auto pod = boost::json::parse(R"({"spec":{"containers":[{"name":"a"}],
      "initContainers":[{"name":"init"}],"ephemeralContainers":[{"name":"debug"}]}})");
  EXPECT_TRUE(hasContainer(pod, "a"));
  EXPECT_TRUE(hasContainer(pod, "init"));
  EXPECT_TRUE(hasContainer(pod, "debug"));
  EXPECT_FALSE(hasContainer(pod, "b"));
}

}  // namespace
}  // namespace burstlet::kubelet
