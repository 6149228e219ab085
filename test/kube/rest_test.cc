#include "kube/rest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "kube/errors.h"
#include "kube/informer.h"
#include "mocks/fake_clock.h"
#include "mocks/fake_transport.h"
#include "mocks/run_sync.h"

namespace burstlet::kube {
namespace {

namespace json = boost::json;
using burstlet::testing::FakeTransport;
using burstlet::testing::jsonResponse;
using burstlet::testing::runSync;

std::string status(int code, std::string_view reason, std::string_view message) {
  return json::serialize(json::object{{"kind", "Status"},
                                      {"apiVersion", "v1"},
                                      {"status", "Failure"},
                                      {"code", code},
                                      {"reason", reason},
                                      {"message", message}});
}

struct Fixture {
  boost::asio::io_context io;
  FakeTransport* transport = nullptr;
  std::unique_ptr<RestClient> client;

  explicit Fixture(FakeTransport::SendFn fn, int maxRetries = 3, ErrorDialect dialect = nullptr) {
    auto t = std::make_unique<FakeTransport>(std::move(fn));
    transport = t.get();
    RestOptions options;
    options.dialect = std::move(dialect);
    options.retry.maxRetries = maxRetries;
    options.retry.baseDelay = std::chrono::milliseconds(1);
    options.retry.maxDelay = std::chrono::milliseconds(5);
    client = std::make_unique<RestClient>(io.get_executor(), std::move(t), ClientConfig{}, options);
  }
};

TEST(ErrorsTest, ClassifiesApiStatuses) {
  struct Case {
    int code;
    const char* reason;
    ErrorCode want;
  } cases[] = {
      {404, "NotFound", ErrorCode::kNotFound},
      {409, "AlreadyExists", ErrorCode::kAlreadyExists},
      {409, "Conflict", ErrorCode::kConflict},
      {410, "Expired", ErrorCode::kGone},
      {422, "Invalid", ErrorCode::kInvalid},
      {400, "BadRequest", ErrorCode::kBadRequest},
      {405, "MethodNotAllowed", ErrorCode::kBadRequest},
      {401, "Unauthorized", ErrorCode::kUnauthorized},
      {403, "Forbidden", ErrorCode::kForbidden},
      {429, "TooManyRequests", ErrorCode::kTooManyRequests},
      {504, "Timeout", ErrorCode::kTimeout},
      {503, "ServiceUnavailable", ErrorCode::kUnavailable},
      {500, "InternalError", ErrorCode::kInternal},
  };
  for (const auto& c : cases) {
    Error e = errorFromResponse(jsonResponse(c.code, status(c.code, c.reason, "boom")), "get x");
    EXPECT_EQ(e.code, c.want) << c.code << " " << c.reason;
    EXPECT_EQ(e.reason, c.reason);
    EXPECT_EQ(e.message, "get x: boom");
  }
}

TEST(ErrorsTest, NonStatusBodyAndRetryAfterDetails) {
  Error e = errorFromResponse(jsonResponse(502, "<html>bad gateway</html>"), "list pods");
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_NE(e.message.find("HTTP 502"), std::string::npos);
  auto body = json::object{{"kind", "Status"},
                           {"code", 429},
                           {"reason", "TooManyRequests"},
                           {"details", json::object{{"retryAfterSeconds", 3}}}};
  Error r = errorFromResponse(jsonResponse(429, json::serialize(body)), "create pod");
  ASSERT_TRUE(r.retryAfter.has_value());
  EXPECT_EQ(r.retryAfter->count(), 3);
}

TEST(RestClientTest, GetBuildsPathAndParses) {
  Fixture f([](const HttpRequest& r) {
    EXPECT_EQ(r.method, Verb::get);
    EXPECT_EQ(r.target, "/api/v1/namespaces/ns1/pods/web");
    return jsonResponse(200, R"({"kind":"Pod","metadata":{"name":"web"}})");
  });
  auto r = runSync(f.io, f.client->get(resources::kPods, "ns1", "web"));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(r->at("metadata").at("name").as_string(), "web");
}

TEST(RestClientTest, RetriesTooManyRequestsHonouringRetryAfter) {
  std::atomic<int> calls{0};
  Fixture f([&](const HttpRequest&) {
    if (calls++ < 2) {
      auto r = jsonResponse(429, status(429, "TooManyRequests", "slow down"));
      r.retryAfter = std::chrono::seconds(0);
      return Result<HttpResponse>(r);
    }
    return Result<HttpResponse>(jsonResponse(201, R"({"kind":"Pod"})"));
  });
  auto r = runSync(f.io, f.client->create(resources::kPods, "ns", json::object{{"kind", "Pod"}}));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(f.client->counters().retries.load(), 2U);
}

TEST(RestClientTest, RetriesAreBounded) {
  std::atomic<int> calls{0};
  Fixture f(
      [&](const HttpRequest&) {
        ++calls;
        return Result<HttpResponse>(jsonResponse(503, status(503, "ServiceUnavailable", "x")));
      },
      2);
  auto r = runSync(f.io, f.client->get(resources::kPods, "ns", "a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(calls.load(), 3);  // first try + 2 retries
}

TEST(RestClientTest, LostConnectionRetriesGetButNotCreate) {
  std::atomic<int> calls{0};
  auto lost = [&](const HttpRequest&) {
    ++calls;
    return Result<HttpResponse>(
        Error::make(ErrorCode::kUnavailable, "ConnectionLost", "reading response: reset"));
  };
  {
    Fixture f(lost);
    auto r = runSync(f.io, f.client->create(resources::kPods, "ns", json::object{}));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(calls.load(), 1) << "a POST whose connection broke must not be repeated";
    EXPECT_NE(r.error().message.find("create pods ns/"), std::string::npos) << r.error().message;
  }
  calls = 0;
  {
    Fixture f(lost);
    auto r = runSync(f.io, f.client->get(resources::kPods, "ns", "a"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(calls.load(), 4);
  }
  calls = 0;
  {
    // Nothing was sent: safe to repeat any request.
    Fixture f([&](const HttpRequest&) {
      if (calls++ == 0) {
        return Result<HttpResponse>(
            Error::make(ErrorCode::kUnavailable, "ConnectFailed", "connection refused"));
      }
      return Result<HttpResponse>(jsonResponse(201, "{}"));
    });
    EXPECT_TRUE(runSync(f.io, f.client->create(resources::kPods, "ns", json::object{})).ok());
    EXPECT_EQ(calls.load(), 2);
  }
}

TEST(RestClientTest, ConflictAndInvalidAreNotRetried) {
  for (auto [code, reason] :
       {std::pair{409, "Conflict"}, std::pair{422, "Invalid"}, std::pair{404, "NotFound"},
        std::pair{403, "Forbidden"}, std::pair{405, "MethodNotAllowed"}}) {
    std::atomic<int> calls{0};
    Fixture f([&, code = code, reason = reason](const HttpRequest&) {
      ++calls;
      return Result<HttpResponse>(jsonResponse(code, status(code, reason, "no")));
    });
    auto r = runSync(f.io, f.client->update(resources::kPods, "ns", "a", json::object{}));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(calls.load(), 1) << reason;
  }
}

TEST(RestClientTest, DialectDecidesRetriesAndWhatCallersSee) {
  // A server whose 400 "busy" means "try later", and whose 400 "bad" is final.
  ErrorDialect dialect = [](const Error& e, const HttpResponse& r) {
    if (r.body.find("busy") != std::string::npos) {
      return Error::make(ErrorCode::kUnavailable, "Busy", e.message);
    }
    return Error::make(ErrorCode::kInvalid, "Refused", e.message);
  };
  std::atomic<int> calls{0};
  Fixture busy(
      [&](const HttpRequest&) {
        return Result<HttpResponse>(calls++ == 0
                                        ? jsonResponse(400, status(400, "BadRequest", "busy"))
                                        : jsonResponse(201, R"({"kind":"Pod"})"));
      },
      3, dialect);
  EXPECT_TRUE(runSync(busy.io, busy.client->get(resources::kPods, "ns", "a")).ok());
  EXPECT_EQ(calls.load(), 2);

  calls = 0;
  Fixture bad(
      [&](const HttpRequest&) {
        ++calls;
        return Result<HttpResponse>(jsonResponse(400, status(400, "BadRequest", "bad")));
      },
      3, dialect);
  auto r = runSync(bad.io, bad.client->get(resources::kPods, "ns", "a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(r.error().reason, "Refused");
  EXPECT_NE(r.error().message.find("bad"), std::string::npos) << r.error().message;
  EXPECT_EQ(calls.load(), 1);
}

TEST(RestClientTest, ListAllFollowsContinueTokens) {
  std::atomic<int> page{0};
  Fixture f([&](const HttpRequest& r) {
    const int p = page++;
    if (p == 0) {
      EXPECT_EQ(r.target, "/api/v1/pods?labelSelector=app%3Dweb&limit=2");
      return jsonResponse(
          200, R"({"kind":"PodList","metadata":{"continue":"tok 1","resourceVersion":"5"},
        "items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]})");
    }
    EXPECT_EQ(r.target, "/api/v1/pods?labelSelector=app%3Dweb&limit=2&continue=tok%201");
    return jsonResponse(200, R"({"kind":"PodList","metadata":{"resourceVersion":"5"},
        "items":[{"metadata":{"name":"c"}}]})");
  });
  ListOptions lo;
  lo.labelSelector = "app=web";
  lo.limit = 2;
  auto r = runSync(f.io, f.client->listAll(resources::kPods, "", lo));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(r->at("items").as_array().size(), 3U);
  EXPECT_EQ(page.load(), 2);
}

TEST(RestClientTest, ListStreamHandsOutItemsThenTheEnvelope) {
  Fixture f([](const HttpRequest& r) -> Result<HttpResponse> {
    if (r.target.find("fieldSelector") != std::string::npos) {
      return jsonResponse(410, status(410, "Expired", "too old resource version"));
    }
    return jsonResponse(200, R"({"kind":"PodList","metadata":{"resourceVersion":"9",)"
                             R"("continue":"c1"},"items":[{"metadata":{"name":"a"}},)"
                             R"({"metadata":{"name":"b"}}]})");
  });
  ListOptions lo;
  lo.limit = 2;
  auto s = runSync(f.io, f.client->listStream(resources::kPods, "ns", lo));
  ASSERT_TRUE(s.ok()) << s.error().toString();
  std::vector<std::string> names;
  while (true) {
    auto item = runSync(f.io, (*s)->next());
    ASSERT_TRUE(item.ok()) << item.error().toString();
    if (!item->has_value()) {
      break;
    }
    names.emplace_back(objectName(**item));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(objectResourceVersion((*s)->envelope()), "9");
  EXPECT_EQ(listContinueToken((*s)->envelope()), "c1");
  auto requests = f.transport->requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_TRUE(requests[0].compressedStream);
  EXPECT_EQ(requests[0].target, "/api/v1/namespaces/ns/pods?limit=2");

  lo.fieldSelector = "spec.nodeName=x";
  auto gone = runSync(f.io, f.client->listStream(resources::kPods, "ns", lo));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::kGone);
  EXPECT_EQ(gone.error().message, "list pods ns/: too old resource version");
}

TEST(RestClientTest, PatchTypesAndOptions) {
  std::vector<std::string> types;
  std::vector<std::string> targets;
  Fixture f([&](const HttpRequest& r) {
    types.push_back(r.contentType);
    targets.push_back(r.target);
    return jsonResponse(200, "{}");
  });
  for (auto t : {PatchType::kJsonMerge, PatchType::kStrategicMerge, PatchType::kJson}) {
    ASSERT_TRUE(
        runSync(f.io, f.client->patch(resources::kPods, "ns", "a", t, "{}", "status")).ok());
  }
  PatchOptions apply{"burstlet", true};
  ASSERT_TRUE(runSync(f.io, f.client->patch(resources::kConfigMaps, "ns", "c", PatchType::kApply,
                                            "{}", {}, apply))
                  .ok());
  EXPECT_EQ(types, (std::vector<std::string>{
                       "application/merge-patch+json", "application/strategic-merge-patch+json",
                       "application/json-patch+json", "application/apply-patch+yaml"}));
  EXPECT_EQ(targets[0], "/api/v1/namespaces/ns/pods/a/status");
  EXPECT_EQ(targets[3], "/api/v1/namespaces/ns/configmaps/c?fieldManager=burstlet&force=true");
}

TEST(RestClientTest, DeleteSendsOptions) {
  std::string body;
  Fixture f([&](const HttpRequest& r) {
    EXPECT_EQ(r.method, Verb::delete_);
    body = r.body;
    return jsonResponse(200, "{}");
  });
  DeleteOptions d;
  d.gracePeriodSeconds = 0;
  d.propagationPolicy = "Background";
  d.preconditionUid = "uid-1";
  ASSERT_TRUE(runSync(f.io, f.client->remove(resources::kPods, "ns", "a", d)).ok());
  auto v = json::parse(body).as_object();
  EXPECT_EQ(v.at("gracePeriodSeconds").as_int64(), 0);
  EXPECT_EQ(v.at("propagationPolicy").as_string(), "Background");
  EXPECT_EQ(v.at("preconditions").at("uid").as_string(), "uid-1");
}

TEST(RestClientTest, DeleteWithQueryAcceptsAnEmptyAnswer) {
  std::string target;
  Fixture f([&](const HttpRequest& r) {
    target = r.target;
    return jsonResponse(200, "");
  });
  DeleteOptions d;
  d.query = "deleteVolume=false&storageType=nfs";
  auto r = runSync(f.io, f.client->remove(resources::kPersistentVolumeClaims, "ns", "c", d));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->is_null());
  EXPECT_EQ(target,
            "/api/v1/namespaces/ns/persistentvolumeclaims/c?deleteVolume=false&storageType=nfs");
}

TEST(RestClientTest, DeleteAnswerThatIsNoJsonIsAnError) {
  Fixture f([&](const HttpRequest&) { return jsonResponse(200, "<html>"); });
  auto r = runSync(f.io, f.client->remove(resources::kPods, "ns", "a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "InvalidResponse");
}

TEST(ResourceTest, Paths) {
  EXPECT_EQ(resources::kPods.path("", ""), "/api/v1/pods");
  EXPECT_EQ(resources::kNodes.path("ignored", "n1", "status"), "/api/v1/nodes/n1/status");
  EXPECT_EQ(resources::kLeases.path("kube-node-lease", "n1"),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1");
  EXPECT_EQ(resources::byName("po")->resource, "pods");
  EXPECT_EQ(resources::byName("cm")->resource, "configmaps");
  EXPECT_FALSE(resources::byName("widgets").has_value());
  EXPECT_EQ(queryEscape("a=b,c!=d"), "a%3Db%2Cc%21%3Dd");
}

TEST(RetryTest, DelaysGrowAreCappedAndHonourRetryAfter) {
  RetryPolicy p;
  p.baseDelay = std::chrono::milliseconds(100);
  p.maxDelay = std::chrono::milliseconds(1000);
  std::mt19937_64 rng(1);
  Error e = Error::make(ErrorCode::kUnavailable, "x", "y");
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto d = retryDelay(p, attempt, e, rng);
    const auto base = std::min<int64_t>(100LL << attempt, 1000);
    EXPECT_GE(d.count(), base) << attempt;
    EXPECT_LE(d.count(), 1000) << attempt;
    EXPECT_LE(d.count(), base * 3 / 2) << attempt;
  }
  e.retryAfter = std::chrono::seconds(7);
  EXPECT_EQ(retryDelay(p, 0, e, rng).count(), 7000);
  e.retryAfter = std::chrono::seconds(3600);
  EXPECT_EQ(retryDelay(p, 0, e, rng), p.maxRetryAfter);
  // "Retry-After: 0" never skips our own backoff.
  e.retryAfter = std::chrono::seconds(0);
  EXPECT_EQ(retryDelay(p, 3, e, rng).count(), 800);
}

TEST(RetryTest, TokenBucketWithFakeClock) {
  burstlet::testing::FakeClock clock;
  TokenBucket off(0, 0, clock);
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(off.reserve().count(), 0);
  TokenBucket b(10, 2, clock);  // 10/s, burst 2
  EXPECT_EQ(b.reserve().count(), 0);
  EXPECT_EQ(b.reserve().count(), 0);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(b.reserve()).count(), 100);
  clock.advance(std::chrono::seconds(1));
  EXPECT_EQ(b.reserve().count(), 0);  // refilled (capped at burst)
}

}  // namespace
}  // namespace burstlet::kube
