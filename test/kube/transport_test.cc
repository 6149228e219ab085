#include "kube/transport.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <mutex>
#include <thread>

#include "common/gzip.h"
#include "kube/retry.h"
#include "kube/watch.h"
#include "mocks/run_sync.h"

namespace burstlet::kube {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
using burstlet::testing::runSync;

// What the test server does with one request.
struct Reply {
  enum Kind { kRespond, kChunked, kCloseWithoutAnswer, kHang } kind = kRespond;
  unsigned status = 200;
  std::string body;
  std::vector<std::string> chunks;  // kChunked: written one by one with a pause between
  bool closeAfter = false;          // close the connection after answering (no header)
  std::vector<std::pair<std::string, std::string>> headers;
};

// A small blocking HTTP/1.1 server on 127.0.0.1, one thread per connection, to force the
// faults a real API server only shows under load.
class TestServer {
 public:
  using Handler = std::function<Reply(const http::request<http::string_body>&)>;

  explicit TestServer(Handler handler) : handler_(std::move(handler)), acceptor_(io_) {
    tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { acceptLoop(); });
  }
  ~TestServer() {
    stopping_ = true;
    // A blocking accept() does not return when the acceptor is closed from another thread:
    // wake it with a connection of our own.
    boost::system::error_code ec;
    {
      boost::asio::io_context io;
      tcp::socket wake(io);
      wake.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), ec);
    }
    thread_.join();
    acceptor_.close(ec);
    for (auto& t : connections_) {
      t.join();
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_.load(); }
  std::vector<std::string> authHeaders() {
    std::lock_guard lock(mu_);
    return auth_;
  }

 private:
  void acceptLoop() {
    while (!stopping_) {
      boost::system::error_code ec;
      tcp::socket sock(io_);
      acceptor_.accept(sock, ec);
      if (ec || stopping_) {
        return;
      }
      ++accepted_;
      connections_.emplace_back([this, s = std::move(sock)]() mutable { serve(std::move(s)); });
    }
  }

  void serve(tcp::socket sock) {
    beast::flat_buffer buf;
    while (true) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(sock, buf, req, ec);
      if (ec) {
        return;
      }
      {
        std::lock_guard lock(mu_);
        auth_.emplace_back(req[http::field::authorization]);
      }
      Reply r = handler_(req);
      switch (r.kind) {
        case Reply::kCloseWithoutAnswer:
          sock.close(ec);
          return;
        case Reply::kHang:
          std::this_thread::sleep_for(std::chrono::milliseconds(1500));
          sock.close(ec);
          return;
        case Reply::kChunked: {
          http::response<http::empty_body> res{static_cast<http::status>(r.status), 11};
          res.chunked(true);
          res.set(http::field::content_type, "application/json");
          for (const auto& [k, v] : r.headers) {
            res.set(k, v);
          }
          http::response_serializer<http::empty_body> sr{res};
          http::write_header(sock, sr, ec);
          for (const auto& c : r.chunks) {
            boost::asio::write(sock, http::make_chunk(boost::asio::buffer(c)), ec);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
          boost::asio::write(sock, http::make_chunk_last(), ec);
          break;
        }
        case Reply::kRespond: {
          http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
          for (const auto& [k, v] : r.headers) {
            res.set(k, v);
          }
          res.body() = r.body;
          res.keep_alive(true);
          res.prepare_payload();
          http::write(sock, res, ec);
          break;
        }
      }
      if (r.closeAfter) {
        sock.shutdown(tcp::socket::shutdown_both, ec);
        sock.close(ec);
        return;
      }
    }
  }

  Handler handler_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::vector<std::thread> connections_;  // touched only by the accept thread and ~TestServer
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::mutex mu_;  // guards auth_
  std::vector<std::string> auth_;
};

std::unique_ptr<Transport> transportFor(boost::asio::io_context& io, const std::string& url,
                                        const std::string& token = "") {
  ClientConfig c;
  c.server = url;
  c.token = token;
  c.source = "test";
  auto t =
      makeBeastTransport(io.get_executor(), c, token.empty() ? nullptr : makeCredentialSource(c));
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().toString());
  return std::move(*t);
}

HttpRequest get(std::string target, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  HttpRequest r;
  r.target = std::move(target);
  r.timeout = timeout;
  return r;
}

TEST(TransportTest, KeepAliveReusesOneConnection) {
  TestServer server([](const auto& req) {
    return Reply{Reply::kRespond, 200, std::string(req.target())};
  });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url(), "token-abcdef-123456");
  for (int i = 0; i < 3; ++i) {
    auto r = runSync(io, t->send(get("/api/v1/pods?i=" + std::to_string(i))));
    ASSERT_TRUE(r.ok()) << r.error().toString();
    EXPECT_EQ(r->status, 200U);
    EXPECT_EQ(r->body, "/api/v1/pods?i=" + std::to_string(i));
  }
  EXPECT_EQ(server.accepted(), 1);
  for (const auto& h : server.authHeaders()) {
    EXPECT_EQ(h, "Bearer token-abcdef-123456");
  }
}

TEST(TransportTest, ServerClosingIdleConnectionIsSurvived) {
  TestServer server([](const auto&) {
    Reply r{Reply::kRespond, 200, "ok"};
    r.closeAfter = true;
    return r;
  });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url());
  for (int i = 0; i < 3; ++i) {
    auto r = runSync(io, t->send(get("/x")));
    ASSERT_TRUE(r.ok()) << i << ": " << r.error().toString();
    // Let the close reach us before the next request picks the pooled connection.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(server.accepted(), 3);
}

TEST(TransportTest, ErrorStatusIsAResponseWithRetryAfter) {
  TestServer server([](const auto&) {
    Reply r{Reply::kRespond, 429, R"({"kind":"Status","code":429})"};
    r.headers = {{"Retry-After", "2"}};
    return r;
  });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url());
  auto r = runSync(io, t->send(get("/x")));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 429U);
  ASSERT_TRUE(r->retryAfter.has_value());
  EXPECT_EQ(r->retryAfter->count(), 2);
}

TEST(TransportTest, DeadlineGivesTimeout) {
  TestServer server([](const auto&) { return Reply{Reply::kHang}; });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url());
  auto r = runSync(io, t->send(get("/slow", std::chrono::milliseconds(200))));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
}

TEST(TransportTest, ConnectionClosedWithoutAnswerIsUnavailable) {
  TestServer server([](const auto&) { return Reply{Reply::kCloseWithoutAnswer}; });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url());
  HttpRequest post = get("/create");
  post.method = Verb::post;
  auto r = runSync(io, t->send(post));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "ConnectionLost");
}

TEST(TransportTest, RefusedConnectionIsConnectFailed) {
  unsigned short port = 0;
  {
    TestServer server([](const auto&) { return Reply{}; });
    port = static_cast<unsigned short>(std::stoi(server.url().substr(server.url().rfind(':') + 1)));
  }
  boost::asio::io_context io;
  auto t = transportFor(io, "http://127.0.0.1:" + std::to_string(port));
  auto r = runSync(io, t->send(get("/x")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(r.error().reason, "ConnectFailed");
}

TEST(TransportTest, GzipResponsesAreAskedForAndDecoded) {
  const std::string body = R"({"kind":"PodList","items":[)" + std::string(100000, ' ') + "]}";
  std::atomic<int> asked{0};
  TestServer server([&](const auto& req) {
    if (req[http::field::accept_encoding] == "gzip") {
      ++asked;
    }
    Reply r{Reply::kRespond, 200, gzipCompress(body)};
    r.headers = {{"Content-Encoding", "gzip"}};
    return r;
  });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url());
  for (int i = 0; i < 2; ++i) {
    auto r = runSync(io, t->send(get("/api/v1/pods")));
    ASSERT_TRUE(r.ok()) << r.error().toString();
    EXPECT_EQ(r->body, body);
  }
  EXPECT_EQ(asked.load(), 2);
  EXPECT_EQ(server.accepted(), 1);  // the connection stays in the pool
}

TEST(TransportTest, BadlyEncodedResponsesAreClearErrors) {
  std::atomic<int> requests{0};
  TestServer server([&](const auto& req) {
    ++requests;
    Reply r{Reply::kRespond, 200, "not gzip at all"};
    r.headers = {{"Content-Encoding", req.target() == "/br" ? "br" : "gzip"}};
    if (req.target() == "/bomb") {
      r.body = gzipCompress(std::string(size_t{8} << 20, 'a'));
    }
    return r;
  });
  boost::asio::io_context io;
  ClientConfig c;
  c.server = server.url();
  c.source = "test";
  TransportOptions small;
  small.maxBodyBytes = size_t{1} << 20;
  auto t = makeBeastTransport(io.get_executor(), c, nullptr, small);
  ASSERT_TRUE(t.ok());
  auto corrupt = runSync(io, (*t)->send(get("/corrupt")));
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().reason, "MalformedGzip");
  auto br = runSync(io, (*t)->send(get("/br")));
  ASSERT_FALSE(br.ok());
  EXPECT_EQ(br.error().reason, "UnsupportedContentEncoding");
  EXPECT_NE(br.error().message.find("\"br\""), std::string::npos) << br.error().message;
  auto bomb = runSync(io, (*t)->send(get("/bomb")));
  ASSERT_FALSE(bomb.ok());
  EXPECT_EQ(bomb.error().reason, "ResponseTooLarge");
  EXPECT_FALSE(shouldRetry(bomb.error(), true));
  EXPECT_FALSE(shouldRetry(br.error(), true));
  EXPECT_EQ(requests.load(), 3);
}

TEST(TransportTest, CompressionCanBeTurnedOff) {
  TestServer server([](const auto& req) {
    return Reply{Reply::kRespond, 200, std::string(req[http::field::accept_encoding])};
  });
  boost::asio::io_context io;
  ClientConfig c;
  c.server = server.url();
  c.source = "test";
  TransportOptions plain;
  plain.compression = false;
  auto t = makeBeastTransport(io.get_executor(), c, nullptr, plain);
  ASSERT_TRUE(t.ok());
  auto r = runSync(io, (*t)->send(get("/x")));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "");
}

// A list read as a stream asks for gzip and hands out decoded bytes as chunks arrive; a body
// cut short is an error, not a silent end.
TEST(TransportTest, CompressedStreamIsDecodedAsItArrives) {
  std::string body = R"({"kind":"ConfigMapList","items":[)";
  for (int i = 0; i < 2000; ++i) {
    body +=
        (i ? "," : "") + std::string(R"({"metadata":{"name":"cm-)") + std::to_string(i) + R"("}})";
  }
  body += "]}";
  const std::string gz = gzipCompress(body);
  std::atomic<int> asked{0};
  TestServer server([&](const auto& req) {
    if (req[http::field::accept_encoding] == "gzip") {
      ++asked;
    }
    Reply r{Reply::kChunked};
    r.headers = {{"Content-Encoding", "gzip"}};
    const size_t step = gz.size() / 4 + 1;
    const size_t end = req.target() == "/truncated" ? gz.size() / 2 : gz.size();
    for (size_t i = 0; i < end; i += step) {
      r.chunks.push_back(gz.substr(i, std::min(step, end - i)));
    }
    return r;
  });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url());
  auto readAll = [&](const std::string& target) -> Result<std::string> {
    HttpRequest req = get(target);
    req.compressedStream = true;
    auto s = runSync(io, t->stream(req));
    if (!s.ok()) {
      return std::move(s).error();
    }
    std::string out;
    while (true) {
      auto piece = runSync(io, (*s)->read());
      if (!piece.ok()) {
        return std::move(piece).error();
      }
      if (!piece->has_value()) {
        return out;
      }
      out += **piece;
    }
  };
  auto whole = readAll("/list");
  ASSERT_TRUE(whole.ok()) << whole.error().toString();
  EXPECT_EQ(*whole, body);
  auto cut = readAll("/truncated");
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().reason, "MalformedGzip");
  EXPECT_EQ(asked.load(), 2);
}

// Watch events arrive in chunks that split events anywhere; the stream delivers them as the
// chunks come, not only at the end of the body.
TEST(TransportTest, ChunkedWatchStream) {
  const std::string e1 =
      R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"1"}}})";
  const std::string e2 =
      R"({"type":"DELETED","object":{"metadata":{"name":"a","resourceVersion":"2"}}})";
  const std::string all = e1 + "\n" + e2 + "\n";
  TestServer server([&](const auto&) {
    Reply r{Reply::kChunked};
    r.chunks = {all.substr(0, 10), all.substr(10, e1.size()), all.substr(10 + e1.size())};
    return r;
  });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url());
  auto opened = runSync(io, t->stream(get("/api/v1/pods?watch=true")));
  ASSERT_TRUE(opened.ok()) << opened.error().toString();
  ASSERT_EQ((*opened)->status(), 200U);
  WatchStream w(std::move(*opened));
  std::vector<std::string> types;
  while (true) {
    auto ev = runSync(io, w.next());
    ASSERT_TRUE(ev.ok()) << ev.error().toString();
    if (!ev->has_value()) {
      break;
    }
    types.emplace_back(watchEventTypeName((*ev)->type));
  }
  EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "DELETED"}));
}

// A stream's timeout is the silence it tolerates between pieces; kNoTimeout tolerates any (a
// followed log that is quiet for hours).
TEST(TransportTest, StreamSilenceLimitAndNone) {
  TestServer server([](const auto&) {
    Reply r{Reply::kChunked};
    r.chunks = {"a", "b", "c"};  // 20 ms apart
    return r;
  });
  boost::asio::io_context io;
  auto t = transportFor(io, server.url());
  auto readAll = [&](std::chrono::milliseconds timeout) -> Result<std::string> {
    auto s = runSync(io, t->stream(get("/api/v1/namespaces/n/pods/p/log?follow=true", timeout)));
    if (!s.ok()) {
      return std::move(s).error();
    }
    std::string out;
    while (true) {
      auto piece = runSync(io, (*s)->read());
      if (!piece.ok()) {
        return std::move(piece).error();
      }
      if (!piece->has_value()) {
        return out;
      }
      out += **piece;
    }
  };
  auto cut = readAll(std::chrono::milliseconds(5));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().code, ErrorCode::kTimeout);
  auto whole = readAll(kNoTimeout);
  ASSERT_TRUE(whole.ok()) << whole.error().toString();
  EXPECT_EQ(*whole, "abc");
}

// A credential with extra headers and a signer that records what it was shown.
class HeaderCredentials final : public CredentialSource {
 public:
  explicit HeaderCredentials(std::shared_ptr<const RequestSigner> signer)
      : signer_(std::move(signer)) {}
  Result<Credential> current() override {
    Credential c;
    c.headers = {{"X-Auth-Token", "cci-token-from-credential"}, {"X-Project-Id", "project-1"}};
    c.signer = signer_;
    return c;
  }
  void invalidate() override {}

 private:
  std::shared_ptr<const RequestSigner> signer_;
};

// Signs with a digest of what it sees, so the server can check that it saw the same request.
class DescribingSigner final : public RequestSigner {
 public:
  Status sign(SignableRequest& r) const override {
    if (r.target.find("fail") != std::string_view::npos) {
      return Error::make(ErrorCode::kUnauthorized, "SignFailed", "cannot sign");
    }
    r.setHeader("X-Test-Signed", describe(r.method, r.target, r.header("host").value_or("<none>"),
                                          r.header("x-auth-token").value_or("<none>"),
                                          r.header("Content-Type").value_or("<none>"), r.body));
    r.setHeader("x-project-id", "project-replaced-by-signer");
    return okStatus();
  }
  static std::string describe(std::string_view method, std::string_view target,
                              std::string_view host, std::string_view token,
                              std::string_view contentType, std::string_view body) {
    return fmt::format("{} {} host={} token={} type={} body={}", method, target, host, token,
                       contentType, body);
  }
};

TEST(TransportTest, CredentialHeadersAndSignerReachTheServer) {
  std::mutex mu;
  std::vector<std::string> signedSeen;
  std::vector<std::string> projectSeen;
  TestServer server([&](const http::request<http::string_body>& req) {
    // Recompute from what arrived: equal only if the signer saw the bytes that were sent.
    const auto field = [&](std::string_view name) -> std::string_view {
      const auto it = req.find(name);
      return it == req.end() ? "<none>" : it->value();
    };
    const std::string expected =
        DescribingSigner::describe(req.method_string(), req.target(), field("Host"),
                                   field("X-Auth-Token"), field("Content-Type"), req.body());
    std::lock_guard lock(mu);
    signedSeen.push_back(std::string(req["X-Test-Signed"]) +
                         (req["X-Test-Signed"] == expected ? "" : " MISMATCH " + expected));
    projectSeen.emplace_back(req["X-Project-Id"]);
    return Reply{Reply::kRespond, 200, "{}"};
  });
  boost::asio::io_context io;
  ClientConfig c;
  c.server = server.url() + "/base/";
  c.source = "test";
  auto t =
      makeBeastTransport(io.get_executor(), c,
                         std::make_shared<HeaderCredentials>(std::make_shared<DescribingSigner>()));
  ASSERT_TRUE(t.ok()) << t.error().toString();

  HttpRequest post = get("/apis/x/v1/pods?b=2&a=1");
  post.method = Verb::post;
  post.body = R"({"kind":"Pod"})";
  post.contentType = "application/json";
  post.headers = {{"X-Auth-Token", "request-header-loses"}};
  auto r = runSync(io, (*t)->send(post));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  r = runSync(io, (*t)->send(get("/api/v1/nodes")));
  ASSERT_TRUE(r.ok()) << r.error().toString();

  const std::string host = server.url().substr(std::string_view("http://").size());
  std::lock_guard lock(mu);
  EXPECT_EQ(
      signedSeen,
      (std::vector<std::string>{
          "POST /base/apis/x/v1/pods?b=2&a=1 host=" + host +
              " token=cci-token-from-credential type=application/json body={\"kind\":\"Pod\"}",
          "GET /base/api/v1/nodes host=" + host +
              " token=cci-token-from-credential type=<none> body=",
      }));
  EXPECT_EQ(projectSeen,
            (std::vector<std::string>{"project-replaced-by-signer", "project-replaced-by-signer"}));
}

TEST(TransportTest, SignerErrorFailsTheRequestUnsent) {
  TestServer server([](const auto&) { return Reply{Reply::kRespond, 200, "{}"}; });
  boost::asio::io_context io;
  ClientConfig c;
  c.server = server.url();
  auto t =
      makeBeastTransport(io.get_executor(), c,
                         std::make_shared<HeaderCredentials>(std::make_shared<DescribingSigner>()));
  ASSERT_TRUE(t.ok()) << t.error().toString();
  auto r = runSync(io, (*t)->send(get("/fail")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "SignFailed");
  auto s = runSync(io, (*t)->stream(get("/fail")));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().reason, "SignFailed");
  EXPECT_EQ(server.accepted(), 0);
}

TEST(TransportTest, ServerUrlCredentialsNeverReachErrors) {
  boost::asio::io_context io;
  ClientConfig c;
  c.server = "ftp://admin:hunter2secret@example.invalid/";
  auto t = makeBeastTransport(io.get_executor(), c, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message.find("hunter2secret"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("example.invalid"), std::string::npos) << t.error().message;
}

TEST(TransportTest, RejectsBadServerUrls) {
  boost::asio::io_context io;
  for (const char* url : {"ftp://x", "not a url", "https://"}) {
    ClientConfig c;
    c.server = url;
    auto t = makeBeastTransport(io.get_executor(), c, nullptr);
    ASSERT_FALSE(t.ok()) << url;
    EXPECT_EQ(t.error().code, ErrorCode::kInvalid) << url;
  }
}

}  // namespace
}  // namespace burstlet::kube
