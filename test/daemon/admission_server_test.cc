// ApiOwnerSource: one GET per owner, bounded in time, not retried (the webhook answers within
// its timeout whatever the API server does).
#include "daemon/admission_server.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "mocks/fake_transport.h"
#include "mocks/run_sync.h"

namespace burstlet::daemon {
namespace {

using testing::FakeTransport;
using testing::jsonResponse;

const kube::ResourceRef kReplicaSets{"apps", "v1", "replicasets", true, "ReplicaSet"};

struct Fixture {
  boost::asio::io_context io;
  std::vector<kube::HttpRequest> seen;
  std::function<Result<kube::HttpResponse>(const kube::HttpRequest&)> answer;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<ApiOwnerSource> owners;

  Fixture() {
    kube::RestOptions o;
    o.retry.maxRetries = 0;  // as makeAdmission makes it
    client = std::make_unique<kube::RestClient>(
        io.get_executor(), std::make_unique<FakeTransport>([this](const kube::HttpRequest& r) {
          seen.push_back(r);
          return answer(r);
        }),
        kube::ClientConfig{}, o);
    owners = std::make_unique<ApiOwnerSource>(*client, std::chrono::milliseconds(1000));
  }
  Result<boost::json::value> read() {
    return testing::runSync(io, owners->read(kReplicaSets, "app", "web-1"));
  }
};

TEST(ApiOwnerSourceTest, OneBoundedGet) {
  Fixture f;
  f.answer = [](const kube::HttpRequest&) {
    return jsonResponse(200, R"({"metadata":{"name":"web-1","labels":{"a":"b"}}})");
  };
  auto r = f.read();
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(r->at("metadata").at("name").as_string(), "web-1");
  ASSERT_EQ(f.seen.size(), 1U);
  EXPECT_EQ(f.seen[0].target, "/apis/apps/v1/namespaces/app/replicasets/web-1");
  EXPECT_EQ(f.seen[0].timeout, std::chrono::milliseconds(1000));
}

TEST(ApiOwnerSourceTest, FailuresAreNotRetried) {
  Fixture f;
  f.answer = [](const kube::HttpRequest&) {
    return jsonResponse(503, R"({"kind":"Status","code":503,"reason":"ServiceUnavailable"})");
  };
  auto r = f.read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(f.seen.size(), 1U);
  f.answer = [](const kube::HttpRequest&) {
    return jsonResponse(404, R"({"kind":"Status","code":404,"reason":"NotFound"})");
  };
  r = f.read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  f.answer = [](const kube::HttpRequest&) { return jsonResponse(200, "[]"); };
  r = f.read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "InvalidResponse");
}

}  // namespace
}  // namespace burstlet::daemon
