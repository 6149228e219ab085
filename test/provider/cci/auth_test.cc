#include "provider/cci/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/base64.h"
#include "common/log.h"
#include "kube/transport.h"
#include "mocks/fake_clock.h"
#include "mocks/run_sync.h"
#include "mocks/temp_dir.h"

namespace burstlet::provider::cci {
namespace {

using namespace std::chrono_literals;
using burstlet::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "MIIEXAMPLE-iam-token-value-0001";
constexpr const char* kAk = "HPUAEXAMPLEAK0000001";
constexpr const char* kSk = "authTestSecretKey0123456789abcdefEXAMPLE";
constexpr const char* kSk2 = "authTestSecretKeyRotated456789abcdefEXAM";

Result<std::unique_ptr<kube::CredentialSource>> source(CciAuthOptions options, const Clock& clock) {
  return makeCciCredentialSource(std::move(options), clock);
}

std::string headerOf(const kube::Credential& c, std::string_view name) {
  for (const auto& [k, v] : c.headers) {
    if (k == name) {
      return v;
    }
  }
  return "<none>";
}

// What Authorization the signer of `c` gives a fixed request.
std::string authorizationBy(const kube::Credential& c) {
  if (!c.signer) {
    return "<no signer>";
  }
  kube::SignableRequest r;
  r.method = "GET";
  r.target = "/api/v1/pods";
  r.headers = {{"Host", "cci.example.com"}};
  auto s = c.signer->sign(r);
  if (!s.ok()) {
    return s.error().toString();
  }
  return std::string(r.header("Authorization").value_or("<none>"));
}

std::string expectedAuthorization(const std::string& ak, const std::string& sk,
                                  const std::string& date) {
  kube::SignableRequest r;
  r.method = "GET";
  r.target = "/api/v1/pods";
  r.headers = {{"Host", "cci.example.com"}, {"X-Sdk-Date", date}};
  const auto names = signedHeaderNames(r);
  return "SDK-HMAC-SHA256 Access=" + ak + ", SignedHeaders=host;x-sdk-date, Signature=" +
         signature(sk, stringToSign(date, canonicalRequest(r, names)));
}

TEST(CciAuthOptionsTest, ExactlyOneModeIsRequired) {
  testing::FakeClock clock;
  TempDir dir;
  const std::string file = dir.write("f", "x");
  struct Case {
    CciAuthOptions options;
    std::string named;
  };
  const std::vector<Case> cases = {
      {CciAuthOptions{}, "(got none)"},
      {CciAuthOptions{"p", file, file, std::nullopt}, "(got tokenFile, akskFile)"},
      {CciAuthOptions{"", file, "", AkSk{kAk, kSk}}, "(got tokenFile, aksk)"},
      {CciAuthOptions{"", file, file, AkSk{kAk, kSk}}, "(got tokenFile, akskFile, aksk)"},
  };
  for (const auto& c : cases) {
    auto s = source(c.options, clock);
    ASSERT_FALSE(s.ok()) << c.named;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
    EXPECT_THAT(s.error().message, HasSubstr("exactly one of tokenFile, akskFile and aksk"));
    EXPECT_THAT(s.error().message, HasSubstr(c.named));
    EXPECT_THAT(s.error().message, Not(HasSubstr(kSk)));
  }
  auto s = source(CciAuthOptions{"bad\r\nX-Injected: 1", file, "", std::nullopt}, clock);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("projectID"));
  s = source(CciAuthOptions{"", "", "", AkSk{kAk, ""}}, clock);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("aksk.secretKey is empty"));
}

class CciTokenTest : public ::testing::Test {
 protected:
  std::unique_ptr<kube::CredentialSource> make(const std::string& path,
                                               const std::string& project = "proj-0001") {
    auto s = source(CciAuthOptions{project, path, "", std::nullopt}, clock_);
    EXPECT_TRUE(s.ok()) << s.error().toString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::string token(kube::CredentialSource& s) {
    auto c = s.current();
    EXPECT_TRUE(c.ok()) << c.error().toString();
    return c.ok() ? headerOf(*c, "X-Auth-Token") : "<error>";
  }
  TempDir dir_;
  testing::FakeClock clock_;
};

TEST_F(CciTokenTest, SendsTheTrimmedTokenAndProjectAsHeaders) {
  auto s = make(dir_.write("token", std::string("\n  ") + kToken + " \n"));
  auto c = s->current();
  ASSERT_TRUE(c.ok()) << c.error().toString();
  EXPECT_EQ(c->headers, (std::vector<std::pair<std::string, std::string>>{
                            {"X-Project-Id", "proj-0001"}, {"X-Auth-Token", kToken}}));
  EXPECT_TRUE(c->bearerToken.empty());
  EXPECT_EQ(c->signer, nullptr);
  EXPECT_EQ(log::redact(std::string("token ") + kToken), "token <redacted>");

  auto noProject = make(dir_.file("token"), "");
  c = noProject->current();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->headers.size(), 1U);
}

TEST_F(CciTokenTest, RereadsTheFileWhenItChanges) {
  const std::string path = dir_.write("token", "iam-token-version-one\n");
  auto s = make(path);
  EXPECT_EQ(token(*s), "iam-token-version-one");
  dir_.write("token", "iam-token-version-two-longer\n");
  EXPECT_EQ(token(*s), "iam-token-version-one") << "not stat()ed again within a second";
  clock_.advance(999ms);
  EXPECT_EQ(token(*s), "iam-token-version-one");
  clock_.advance(1ms);
  EXPECT_EQ(token(*s), "iam-token-version-two-longer");

  // An atomic replacement (a new inode), as a Secret volume update does.
  const std::string next = dir_.write("token.new", "iam-token-version-333-longer\n");
  ASSERT_EQ(::rename(next.c_str(), path.c_str()), 0);
  clock_.advance(1s);
  EXPECT_EQ(token(*s), "iam-token-version-333-longer");
}

TEST_F(CciTokenTest, InvalidateForcesARereadAtOnce) {
  const std::string path = dir_.write("token", "iam-token-aaaa\n");
  auto s = make(path);
  EXPECT_EQ(token(*s), "iam-token-aaaa");
  dir_.write("token", "iam-token-bbbb\n");  // same size, maybe the same mtime
  EXPECT_EQ(token(*s), "iam-token-aaaa");
  s->invalidate();
  EXPECT_EQ(token(*s), "iam-token-bbbb");
}

TEST_F(CciTokenTest, MissingEmptyAndMultiLineFilesAreErrors) {
  const std::string path = dir_.file("token");
  auto s = make(path);
  auto c = s->current();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kUnauthorized);
  EXPECT_EQ(c.error().reason, "TokenFileUnreadable");
  EXPECT_THAT(c.error().message, HasSubstr(path));

  dir_.write("token", " \n\t\n");
  c = s->current();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().reason, "TokenFileEmpty");
  EXPECT_THAT(c.error().message, HasSubstr(path));

  dir_.write("token", std::string(kToken) + "\nX-Injected: yes\n");
  c = s->current();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().reason, "TokenFileInvalid");
  EXPECT_THAT(c.error().message, Not(HasSubstr(kToken)));

  // A file that appears later is picked up on the next call: nothing good was cached.
  dir_.write("token", "iam-token-at-last\n");
  EXPECT_EQ(token(*s), "iam-token-at-last");
}

class CciAkSkFileTest : public ::testing::Test {
 protected:
  std::unique_ptr<kube::CredentialSource> make(const std::string& path) {
    auto s = source(CciAuthOptions{"proj-0001", "", path, std::nullopt}, clock_);
    EXPECT_TRUE(s.ok()) << s.error().toString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::string date() const { return sdkDate(clock_.now()); }
  TempDir dir_;
  testing::FakeClock clock_;
};

TEST_F(CciAkSkFileTest, SignsWithTheKeysOfTheFile) {
  for (const std::string& text : {
           std::string("accessKey: ") + kAk + "\nsecretKey: " + kSk + "\n",
           std::string("# from IAM\nak: ") + kAk + "\nsk: '" + kSk + "'\n",
           std::string(R"({"accessKey": ")") + kAk + R"(", "secretKey": ")" + kSk + "\"}",
       }) {
    auto s = make(dir_.write("aksk", text));
    auto c = s->current();
    ASSERT_TRUE(c.ok()) << c.error().toString();
    EXPECT_EQ(headerOf(*c, "X-Project-Id"), "proj-0001");
    EXPECT_EQ(headerOf(*c, "X-Auth-Token"), "<none>");
    EXPECT_TRUE(c->bearerToken.empty());
    EXPECT_EQ(authorizationBy(*c), expectedAuthorization(kAk, kSk, date())) << text;
  }
  EXPECT_EQ(log::redact(std::string("sk=") + kSk), "sk=<redacted>");
}

TEST_F(CciAkSkFileTest, RotatedKeysAreUsedBySignersAlreadyHandedOut) {
  const std::string path =
      dir_.write("aksk", std::string("accessKey: ") + kAk + "\nsecretKey: " + kSk + "\n");
  auto s = make(path);
  auto first = s->current();
  ASSERT_TRUE(first.ok());
  dir_.write("aksk", std::string("accessKey: AK-ROTATED-0002\nsecretKey: ") + kSk2 + "\n");
  EXPECT_EQ(authorizationBy(*first), expectedAuthorization(kAk, kSk, date()));
  clock_.advance(1s);
  EXPECT_EQ(authorizationBy(*first), expectedAuthorization("AK-ROTATED-0002", kSk2, date()));
  auto again = s->current();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(authorizationBy(*again), expectedAuthorization("AK-ROTATED-0002", kSk2, date()));

  // invalidate() re-reads at once, without waiting for the stat interval.
  dir_.write("aksk", std::string("accessKey: AK-ROTATED-0003\nsecretKey: ") + kSk + "\n");
  s->invalidate();
  EXPECT_EQ(authorizationBy(*first), expectedAuthorization("AK-ROTATED-0003", kSk, date()));
}

TEST_F(CciAkSkFileTest, ErrorsNameTheFileAndKeyButNeverTheSecret) {
  const std::string path = dir_.file("aksk");
  struct Case {
    std::string text;
    std::string reason;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "AkSkFileInvalid", "expected lines"},
      {std::string("secretKey: ") + kSk + "\n", "AkSkFileInvalid",
       "accessKey (or ak) is missing or empty"},
      {std::string("accessKey: ") + kAk + "\n", "AkSkFileInvalid",
       "secretKey (or sk) is missing or empty"},
      {std::string("accessKey: ") + kAk + "\nsecretKey: \"\"\n", "AkSkFileInvalid",
       "secretKey (or sk) is missing or empty"},
      {std::string("accessKey: ") + kAk + "\nsecretKey: [" + kSk + "\n", "AkSkFileInvalid",
       "not YAML"},
      {std::string("accessKey: ") + kAk + "\nsecretKey: {a: " + kSk + "}\n", "AkSkFileInvalid",
       "secretKey is not a string"},
      {kSk, "AkSkFileInvalid", "expected lines"},
      {std::string("accessKey: ") + kAk + "\nsecretKey: \"" + kSk + "\\nX-Injected: 1\"\n",
       "AkSkFileInvalid", "secretKey has control characters"},
  };
  auto s = make(path);
  auto c = s->current();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().reason, "AkSkFileUnreadable");
  EXPECT_THAT(c.error().message, HasSubstr(path));
  for (const auto& k : cases) {
    dir_.write("aksk", k.text);
    s->invalidate();
    c = s->current();
    ASSERT_FALSE(c.ok()) << k.text;
    EXPECT_EQ(c.error().code, ErrorCode::kUnauthorized);
    EXPECT_EQ(c.error().reason, k.reason);
    EXPECT_THAT(c.error().message, HasSubstr(path));
    EXPECT_THAT(c.error().message, HasSubstr(k.says));
    EXPECT_THAT(c.error().toString(), Not(HasSubstr(kSk)));
  }
}

TEST(CciAkSkDirectTest, KeysGivenDirectlySignEveryRequest) {
  testing::FakeClock clock;
  auto s = source(CciAuthOptions{"", "", "", AkSk{kAk, kSk}}, clock);
  ASSERT_TRUE(s.ok()) << s.error().toString();
  auto c = (*s)->current();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->headers.empty());
  EXPECT_EQ(authorizationBy(*c), expectedAuthorization(kAk, kSk, sdkDate(clock.now())));
  (*s)->invalidate();
  EXPECT_TRUE((*s)->current().ok());
}

TEST(AkSkSecretDataTest, DecodesBase64Values) {
  boost::json::object data;
  data["accessKey"] = base64Encode(kAk);
  data["secretKey"] = base64Encode(std::string(kSk) + "\n");  // `echo` adds one
  auto keys = akskFromSecretData(data);
  ASSERT_TRUE(keys.ok()) << keys.error().toString();
  EXPECT_EQ(keys->accessKey, kAk);
  EXPECT_EQ(keys->secretKey, kSk);

  boost::json::object shortNames;
  shortNames["ak"] = base64Encode(kAk);
  shortNames["sk"] = base64Encode(kSk2);
  keys = akskFromSecretData(shortNames);
  ASSERT_TRUE(keys.ok()) << keys.error().toString();
  EXPECT_EQ(keys->accessKey, kAk);
  EXPECT_EQ(keys->secretKey, kSk2);
  EXPECT_EQ(log::redact(kSk2), "<redacted>");
}

TEST(AkSkSecretDataTest, ErrorsNameTheKeyButNeverTheValue) {
  const auto fails = [](const boost::json::object& data, const std::string& says) {
    auto keys = akskFromSecretData(data);
    ASSERT_FALSE(keys.ok()) << says;
    EXPECT_EQ(keys.error().code, ErrorCode::kInvalid);
    EXPECT_THAT(keys.error().message, HasSubstr(says));
    EXPECT_THAT(keys.error().message, Not(HasSubstr(kSk)));
    EXPECT_THAT(keys.error().message, Not(HasSubstr(base64Encode(kSk))));
  };
  fails({{"accessKey", base64Encode(kAk)}}, "data has no secretKey (or sk)");
  fails({{"secretKey", base64Encode(kSk)}}, "data has no accessKey (or ak)");
  fails({{"accessKey", base64Encode(kAk)}, {"secretKey", std::string(kSk) + "*"}},
        "data.secretKey is not base64");
  fails({{"accessKey", base64Encode(kAk)}, {"sk", 42}}, "data.sk is not a string");
  fails({{"accessKey", base64Encode(" \n")}, {"secretKey", base64Encode(kSk)}},
        "data.accessKey is empty");
}

// A one-connection-at-a-time HTTP server on 127.0.0.1 that records requests as received.
class RecordingServer {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  RecordingServer() : acceptor_(io_) {
    using boost::asio::ip::tcp;
    tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~RecordingServer() {
    stopping_ = true;
    boost::system::error_code ec;
    {
      boost::asio::io_context io;  // wakes the blocking accept()
      boost::asio::ip::tcp::socket wake(io);
      wake.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    }
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Request> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    namespace http = boost::beast::http;
    while (!stopping_) {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket sock(io_);
      acceptor_.accept(sock, ec);
      if (ec || stopping_) {
        return;
      }
      boost::beast::flat_buffer buf;
      while (true) {
        Request req;
        http::read(sock, buf, req, ec);
        if (ec) {
          break;
        }
        {
          std::lock_guard lock(mu_);
          requests_.push_back(req);
        }
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = "{}";
        res.keep_alive(true);
        res.prepare_payload();
        http::write(sock, res, ec);
      }
    }
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards requests_
  std::vector<Request> requests_;
};

// The gateway's side: the canonical request rebuilt from the request as received.
std::string verify(const RecordingServer::Request& req, const std::string& sk) {
  kube::SignableRequest r;
  const std::string method(req.method_string());
  const std::string target(req.target());
  r.method = method;
  r.target = target;
  r.body = req.body();
  for (const auto& f : req) {
    r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  const auto date = r.header("X-Sdk-Date");
  const auto auth = r.header("Authorization");
  if (!date || !auth) {
    return "unsigned";
  }
  const auto names = signedHeaderNames(r);
  std::string joined;
  for (const auto& n : names) {
    joined += (joined.empty() ? "" : ";") + n;
  }
  const std::string expected =
      std::string("SDK-HMAC-SHA256 Access=") + kAk + ", SignedHeaders=" + joined +
      ", Signature=" + signature(sk, stringToSign(*date, canonicalRequest(r, names)));
  return *auth == expected ? "ok" : "mismatch: got " + std::string(*auth);
}

TEST(CciSignedTransportTest, TheTransportSignsTheExactBytesSent) {
  RecordingServer server;
  testing::FakeClock clock(Clock::WallTime(std::chrono::seconds(1767323045)));
  auto creds = source(CciAuthOptions{"proj-0001", "", "", AkSk{kAk, kSk}}, clock);
  ASSERT_TRUE(creds.ok()) << creds.error().toString();
  kube::ClientConfig config;
  config.server = server.url() + "/cci";
  config.source = "test";
  boost::asio::io_context io;
  auto transport = kube::makeBeastTransport(io.get_executor(), config, std::move(*creds));
  ASSERT_TRUE(transport.ok()) << transport.error().toString();

  kube::HttpRequest post;
  post.method = kube::Verb::post;
  post.target = "/api/v1/namespaces/cce-burst-abc/pods?fieldManager=burst%20let&dryRun=All";
  post.body = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-0"}})";
  post.contentType = "application/json";
  post.timeout = 5s;
  auto r = burstlet::testing::runSync(io, (*transport)->send(post));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  kube::HttpRequest get;
  get.target = "/api/v1/namespaces/cce-burst-abc/pods?limit=500&labelSelector=a%3Db";
  get.timeout = 5s;
  r = burstlet::testing::runSync(io, (*transport)->send(get));
  ASSERT_TRUE(r.ok()) << r.error().toString();

  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2U);
  for (const auto& req : seen) {
    EXPECT_EQ(verify(req, kSk), "ok") << req.target();
    EXPECT_EQ(req["X-Sdk-Date"], "20260102T030405Z");
    EXPECT_EQ(req["X-Project-Id"], "proj-0001");
  }
  EXPECT_EQ(seen[0].target(), "/cci" + post.target);
  EXPECT_THAT(std::string(seen[0]["Authorization"]),
              HasSubstr("SignedHeaders=content-type;host;x-project-id;x-sdk-date,"));
  EXPECT_THAT(std::string(seen[1]["Authorization"]),
              HasSubstr("SignedHeaders=host;x-project-id;x-sdk-date,"));
  EXPECT_NE(verify(seen[0], kSk2), "ok") << "the check above can fail";
}

}  // namespace
}  // namespace burstlet::provider::cci
