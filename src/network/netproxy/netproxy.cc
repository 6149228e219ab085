#include "network/netproxy/netproxy.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/strings.h"
#include "network/api_server.h"
#include "network/netproxy/proxy_table.h"
#include "provider/provider.h"

namespace burstlet::network {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

kube::InformerOptions informerOn(const kube::ResourceRef& resource, const Clock& clock) {
  kube::InformerOptions o;
  o.resource = resource;
  o.clock = &clock;
  return o;
}

std::vector<boost::json::value> values(const kube::Store& store) {
  std::vector<boost::json::value> out;
  for (const auto& p : store.list()) {
    out.push_back(*p);
  }
  return out;
}

}  // namespace

bool stopRequested(const std::string& path) {
  std::ifstream in(path);
  const std::string wanted = fmt::format("{}=\"true\"", provider::kInjectedStopAnnotation);
  for (std::string line; std::getline(in, line);) {
    if (trimWhitespace(line) == wanted) {
      return true;
    }
  }
  return false;
}

Result<kube::ClientConfig> proxyClientConfig(const std::string& dir) {
  const std::string where = "netproxy credentials " + dir;
  kube::ClientConfig out;
  auto server = kube::readFileNamed((fs::path(dir) / "server").string(), where + " server");
  if (!server.ok()) {
    return std::move(server).error();
  }
  out.server = trimWhitespace(*server);
  if (!out.server.starts_with("https://")) {
    return Error::make(ErrorCode::kInvalid, "InvalidCredentials",
                       fmt::format("{} server: want an https:// URL", where));
  }
  auto ca = kube::readFileNamed((fs::path(dir) / "ca.crt").string(), where + " ca.crt");
  if (!ca.ok()) {
    return std::move(ca).error();
  }
  if (ca->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return Error::make(ErrorCode::kInvalid, "InvalidCredentials",
                       fmt::format("{} ca.crt: not a PEM certificate", where));
  }
  out.caPem = std::move(*ca);
  out.tokenFile = (fs::path(dir) / "token").string();
  if (::access(out.tokenFile.c_str(), R_OK) != 0) {
    return Error::make(ErrorCode::kInvalid, "InvalidCredentials",
                       fmt::format("{} token: cannot be read", where));
  }
  const std::string namePath = (fs::path(dir) / "tls-server-name").string();
  if (::access(namePath.c_str(), F_OK) == 0) {
    auto name = kube::readFileNamed(namePath, where + " tls-server-name");
    if (!name.ok()) {
      return std::move(name).error();
    }
    out.tlsServerName = trimWhitespace(*name);
  }
  out.source = where;
  out.userAgent = "burstlet-netproxy";
  return out;
}

NetProxy::NetProxy(kube::RestClient& cluster, RuleApplier& rules, NetProxyOptions options,
                   const Clock& clock)
    : rules_(rules),
      options_(std::move(options)),
      clock_(clock),
      services_(cluster, informerOn(kube::resources::kServices, clock)),
      slices_(cluster, informerOn(kube::resources::kEndpointSlices, clock)) {
  kube::InformerHandlers wake;
  wake.onAdd = [this](const kube::ObjectPtr&) { markChanged(); };
  wake.onUpdate = [this](const kube::ObjectPtr&, const kube::ObjectPtr&) { markChanged(); };
  wake.onDelete = [this](const kube::ObjectPtr&, bool) { markChanged(); };
  services_.addHandlers(wake);
  slices_.addHandlers(std::move(wake));
}

void NetProxy::markChanged() {
  dirty_.store(true);
  changed_.notify();
}

void NetProxy::stop() {
  stop_.set();
  services_.stop();
  slices_.stop();
}

asio::awaitable<Status> NetProxy::run() {
  signals_.started.set();
  auto executor = co_await asio::this_coro::executor;
  Latch servicesDone;
  Latch slicesDone;
  asio::co_spawn(executor, services_.run(),
                 [&servicesDone](const std::exception_ptr&) { servicesDone.set(); });
  asio::co_spawn(executor, slices_.run(),
                 [&slicesDone](const std::exception_ptr&) { slicesDone.set(); });
  Status result = co_await applyLoop();
  stop();
  co_await servicesDone.wait();
  co_await slicesDone.wait();
  signals_.stopped.set();
  co_return result;
}

bool NetProxy::stopAsked() const {
  if (options_.stopFile.empty() || !stopRequested(options_.stopFile)) {
    return false;
  }
  spdlog::info("msg=\"the pod's own containers are done: stopping\"");
  return true;
}

asio::awaitable<Status> NetProxy::applyLoop() {
  // With a stop file, it is read every few seconds (the kubelet rewrites it in place), also while
  // the API server cannot be reached: a Job's pod must end even then.
  const auto idle = options_.stopFile.empty() ? std::chrono::nanoseconds(std::chrono::minutes(1))
                                              : std::chrono::nanoseconds(std::chrono::seconds(2));
  // The first ruleset waits for both lists: half a picture would refuse Services that work.
  for (const Latch* ready : {&services_.signals().ready, &slices_.signals().ready}) {
    if (options_.stopFile.empty()) {
      co_await waitAny(*ready, stop_);
      continue;
    }
    while (!ready->isSet() && !stop_.isSet()) {
      if (stopAsked()) {
        co_return okStatus();
      }
      const bool listed = co_await waitFor(*ready, clock_, idle);
      (void)listed;  // the loop looks again
    }
  }
  std::string last;
  bool retry = false;  // the last apply failed: try again even without a change
  while (!stop_.isSet()) {
    if (stopAsked()) {
      break;
    }
    if (dirty_.exchange(false) || retry) {
      const ProxyTable table =
          buildProxyTable(values(services_.store()), values(slices_.store()), options_.apiServer);
      std::string script = renderNftables(table);
      retry = false;
      if (script != last) {
        if (auto s = rules_.apply(script); !s.ok()) {
          if (s.error().code == ErrorCode::kForbidden) {
            co_return s;  // without CAP_NET_ADMIN no later round does better
          }
          spdlog::error("msg=\"rules not applied\" error=\"{}\"", s.error().toString());
          retry = true;
        } else {
          last = std::move(script);
          applied_.fetch_add(1);
          size_t refused = 0;
          for (const auto& sp : table) {
            refused += sp.endpoints.empty() ? 1 : 0;
          }
          spdlog::info("msg=\"rules applied\" servicePorts={} withoutEndpoints={}", table.size(),
                       refused);
          signals_.ready.set();
        }
      }
    }
    // Sleep until something changes (or the idle period: the stop file, a failed apply), then
    // let the burst of changes that usually follows settle.
    co_await changed_.sleep(clock_, idle, &stop_);
    co_await sleepFor(clock_, options_.settle, &stop_);
  }
  co_return okStatus();
}

namespace {

int waitForRules(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    auto exists = nftablesTableExists(kProxyTableName);
    if (!exists.ok()) {
      std::fprintf(stderr, "burstlet netproxy: %s\n", exists.error().toString().c_str());
      return 1;
    }
    if (*exists) {
      return 0;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(
          stderr, "burstlet netproxy: no rules after %llds\n",
          static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(limit).count()));
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

int runNetProxy(const NetProxyOptions& options) {
  if (options.waitForRules.count() > 0) {
    return waitForRules(options.waitForRules);
  }
  if (options.credentialsDir.empty()) {
    std::fprintf(stderr, "burstlet netproxy: --credentials is required\n");
    return 1;
  }
  auto config = proxyClientConfig(options.credentialsDir);
  if (!config.ok()) {
    std::fprintf(stderr, "burstlet netproxy: %s\n", config.error().toString().c_str());
    return 1;
  }
  auto rules = makeNftablesApplier();
  if (!rules.ok()) {
    std::fprintf(stderr, "burstlet netproxy: %s\n", rules.error().toString().c_str());
    return 1;
  }
  NetProxyOptions o = options;
  if (auto e = network::parseApiServerEndpoint(config->server, "server");
      e.ok() && isIPv4(e->host)) {
    o.apiServer = ProxyEndpoint{e->host, e->port};
  }
  asio::io_context io(1);
  auto client = kube::RestClient::create(io.get_executor(), *config);
  if (!client.ok()) {
    std::fprintf(stderr, "burstlet netproxy: %s\n", client.error().toString().c_str());
    return 1;
  }
  NetProxy proxy(**client, **rules, o, realClock());
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&proxy](const boost::system::error_code& ec, int) {
    if (!ec) {
      proxy.stop();
    }
  });
  Status result = okStatus();
  asio::co_spawn(io, proxy.run(), [&](const std::exception_ptr& e, Status s) {
    result = e ? Status(Error::make(ErrorCode::kInternal, "Exception",
                                    "netproxy ended by an "
                                    "exception"))
               : std::move(s);
    signals.cancel();
  });
  spdlog::info("msg=\"netproxy starting\" server={}", config->server);
  io.run();
  if (!result.ok()) {
    std::fprintf(stderr, "burstlet netproxy: %s\n", result.error().toString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace burstlet::network
