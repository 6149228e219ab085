// Exec and port-forward over SPDY as the API server speaks them: a client session on an
// in-memory pipe opens the streams (remotecommand v4: error, stdin, stdout, stderr; port-forward:
// data and error per request), against the kubelet side's serveCommand / servePortForward.
#include "kubelet/spdy_streams.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <optional>

#include "kubelet/remote_command.h"
#include "mocks/memory_byte_channel.h"
#include "mocks/run_sync.h"
#include "mocks/streaming_provider.h"

namespace burstlet::kubelet {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using testing::MemoryByteChannel;
using testing::runUntil;

class SpdyStreamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto [a, b] = MemoryByteChannel::pair(io_.get_executor());
    spdy::SessionOptions serverOptions;
    serverOptions.server = true;
    server_ = *spdy::Session::create(std::move(a), serverOptions);
    spdy::SessionOptions clientOptions;
    clientOptions.server = false;
    client_ = *spdy::Session::create(std::move(b), clientOptions);
    asio::co_spawn(io_, runClient(), asio::detached);
  }
  void TearDown() override {
    client_->close();
    EXPECT_TRUE(runUntil(io_, [&] { return clientDone_ && serverDone_; }))
        << "client " << clientDone_ << " server " << serverDone_;
  }
  asio::awaitable<void> runClient() {
    const Status s = co_await client_->run();
    (void)s;
    clientDone_ = true;
  }
  // Runs `op` to completion (at most 10 s) while the sessions keep running.
  template <typename T>
  T await(asio::awaitable<T> op) {
    auto out = std::make_shared<std::optional<T>>();
    auto wrapper = [](asio::awaitable<T> op,
                      std::shared_ptr<std::optional<T>> out) -> asio::awaitable<void> {
      out->emplace(co_await std::move(op));
    };
    asio::co_spawn(io_, wrapper(std::move(op), out), asio::detached);
    if (!runUntil(io_, [&] { return out->has_value(); })) {
      ADD_FAILURE() << "operation did not complete";
      return T(Error::make(ErrorCode::kTimeout, "TestTimeout", "operation did not complete"));
    }
    return std::move(**out);
  }
  std::shared_ptr<spdy::Stream> open(spdy::Headers headers) {
    auto opened = await(client_->open(std::move(headers)));
    EXPECT_TRUE(opened.ok()) << opened.error().toString();
    return opened.ok() ? *opened : nullptr;
  }
  // Everything the stream carries until its FIN.
  std::string readAll(const std::shared_ptr<spdy::Stream>& s) {
    std::string out;
    for (;;) {
      auto data = await(s->read());
      if (!data.ok() || !data->has_value()) {
        return out;
      }
      out += **data;
    }
  }
  std::string readSome(const std::shared_ptr<spdy::Stream>& s) {
    auto data = await(s->read());
    return data.ok() && data->has_value() ? **data : std::string("<end>");
  }
  void write(const std::shared_ptr<spdy::Stream>& s, const std::string& data) {
    const Status w = await(s->write(data));
    EXPECT_TRUE(w.ok());
  }

  asio::io_context io_;
  std::shared_ptr<spdy::Session> server_;
  std::shared_ptr<spdy::Session> client_;
  bool clientDone_ = false;
  bool serverDone_ = false;
  testing::StreamingProvider provider_;
};

TEST_F(SpdyStreamsTest, ExecV4WithStdinAndANonZeroExit) {
  provider::ExecOptions options;
  options.container = "app";
  options.command = {"cat"};
  options.stdinOpen = true;
  options.stderrOpen = true;
  std::atomic<int> cancels{0};
  testing::EchoSession exec(io_.get_executor(), options, 3, cancels);
  SpdyOptions spdyOptions;
  spdyOptions.closeGrace = 5s;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await serveCommand(server_, exec, options, kStreamProtocolV4, spdyOptions);
        serverDone_ = true;
      },
      asio::detached);
  auto error = open({{"streamtype", "error"}});
  auto in = open({{"streamtype", "stdin"}});
  auto out = open({{"streamtype", "stdout"}});
  auto err = open({{"streamtype", "stderr"}});
  ASSERT_TRUE(error && in && out && err);
  EXPECT_EQ(readSome(out), "cat\n");
  write(in, "hello");
  EXPECT_EQ(readSome(out), "hello");
  write(in, "err:oops");
  EXPECT_EQ(readSome(err), "oops");
  ASSERT_TRUE(await(in->closeWrite()).ok());
  EXPECT_EQ(readAll(out), "");  // FIN once the command ended
  auto status = json::parse(readAll(error));
  EXPECT_EQ(status.at("reason").as_string(), "NonZeroExitCode");
  EXPECT_EQ(status.at("details").at("causes").at(0).at("message").as_string(), "3");
  client_->close();  // the client closes the connection once it has the status
  EXPECT_TRUE(runUntil(io_, [&] { return serverDone_; }));
}

TEST_F(SpdyStreamsTest, MissingStreamsTimeOut) {
  provider::ExecOptions options;
  options.command = {"ls"};
  std::atomic<int> cancels{0};
  testing::EchoSession exec(io_.get_executor(), options, 0, cancels);
  SpdyOptions spdyOptions;
  spdyOptions.streamCreationTimeout = 100ms;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await serveCommand(server_, exec, options, kStreamProtocolV4, spdyOptions);
        serverDone_ = true;
      },
      asio::detached);
  // Only the error stream of the two announced (error, stdout) comes.
  open({{"streamtype", "error"}});
  EXPECT_TRUE(runUntil(io_, [&] { return serverDone_; }));
  EXPECT_EQ(cancels.load(), 1);
}

TEST_F(SpdyStreamsTest, ClientGoneCancelsTheCommand) {
  provider::ExecOptions options;
  options.command = {"cat"};
  options.stdinOpen = true;
  options.stderrOpen = false;
  std::atomic<int> cancels{0};
  testing::EchoSession exec(io_.get_executor(), options, 0, cancels);
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await serveCommand(server_, exec, options, kStreamProtocolV3, SpdyOptions{});
        serverDone_ = true;
      },
      asio::detached);
  open({{"streamtype", "error"}});
  open({{"streamtype", "stdin"}});
  auto out = open({{"streamtype", "stdout"}});
  EXPECT_EQ(readSome(out), "cat\n");
  client_->close();
  EXPECT_TRUE(runUntil(io_, [&] { return serverDone_; }));
  EXPECT_GE(cancels.load(), 1);
}

TEST_F(SpdyStreamsTest, PortForwardPairsStreamsByRequest) {
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        const provider::PodRef pod{"shop", "web-0", "u"};  // named: see src/kube/rest.h
        co_await servePortForward(server_, provider_, pod);
        serverDone_ = true;
      },
      asio::detached);
  auto error1 = open({{"streamtype", "error"}, {"port", "8080"}, {"requestid", "1"}});
  auto data1 = open({{"streamtype", "data"}, {"port", "8080"}, {"requestid", "1"}});
  auto error2 = open({{"streamtype", "error"}, {"port", "99"}, {"requestid", "2"}});
  auto data2 = open({{"streamtype", "data"}, {"port", "99"}, {"requestid", "2"}});
  write(data1, "ping");
  EXPECT_EQ(readSome(data1), "ping");
  // The refused port reports on its error stream.
  EXPECT_EQ(readAll(error2), "an error occurred forwarding 99 -> 99: connection refused");
  ASSERT_TRUE(await(data1->closeWrite()).ok());
  EXPECT_EQ(readAll(data1), "");
  EXPECT_EQ(readAll(error1), "");
  EXPECT_EQ(provider_.forwardedPorts, (std::vector<uint16_t>{8080, 99}));
  // An open connection is cancelled when the session ends.
  auto error3 = open({{"streamtype", "error"}, {"port", "8081"}, {"requestid", "3"}});
  auto data3 = open({{"streamtype", "data"}, {"port", "8081"}, {"requestid", "3"}});
  write(data3, "x");
  EXPECT_EQ(readSome(data3), "x");
  client_->close();
  EXPECT_TRUE(runUntil(io_, [&] { return serverDone_; }));
  EXPECT_EQ(provider_.portCancels.load(), 1);
}

TEST(NegotiateStreamProtocol, ClientOrderAndFallback) {
  server::Request r;
  r.headers = {{"X-Stream-Protocol-Version", "v5.channel.k8s.io"},
               {"x-stream-protocol-version", "v4.channel.k8s.io, v3.channel.k8s.io"}};
  EXPECT_EQ(negotiateStreamProtocol(r, spdyCommandProtocols()), "v4.channel.k8s.io");
  server::Request none;
  EXPECT_EQ(negotiateStreamProtocol(none, spdyCommandProtocols()), "channel.k8s.io");
  server::Request other;
  other.headers = {{"X-Stream-Protocol-Version", "v9.example"}};
  EXPECT_EQ(negotiateStreamProtocol(other, spdyCommandProtocols()), "");
}

}  // namespace
}  // namespace burstlet::kubelet
