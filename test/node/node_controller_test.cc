#include "node/node_controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <mutex>

#include "mocks/fake_transport.h"
#include "provider/fake/fake_provider.h"

namespace burstlet::node {
namespace {

namespace json = boost::json;
using burstlet::testing::FakeTransport;
using burstlet::testing::jsonResponse;

std::string status(int code, const std::string& reason) {
  return json::serialize(json::object{{"kind", "Status"},
                                      {"status", "Failure"},
                                      {"code", code},
                                      {"reason", reason},
                                      {"message", reason}});
}

// The API server's side of one Node and its Lease, recorded.
struct Api {
  std::mutex mu;
  bool nodeExists = false;
  json::value existingNode;  // what a GET of the node returns when it exists already
  int nodeCreates = 0;
  std::vector<json::value> nodePatches;
  std::vector<json::value> statusPatches;
  std::vector<json::value> leaseWrites;
  bool leaseExists = false;
  int uid = 0;

  Result<kube::HttpResponse> answer(const kube::HttpRequest& r) {
    std::lock_guard lock(mu);
    const bool lease = r.target.find("/leases") != std::string::npos;
    const bool statusSub = r.target.find("/status") != std::string::npos;
    if (lease) {
      if (r.method == kube::Verb::get) {
        return leaseExists ? jsonResponse(200, json::serialize(leaseWrites.back()))
                           : jsonResponse(404, status(404, "NotFound"));
      }
      json::value l = json::parse(r.body);
      l.at("metadata").as_object()["resourceVersion"] = std::to_string(leaseWrites.size() + 1);
      leaseWrites.push_back(l);
      leaseExists = true;
      return jsonResponse(r.method == kube::Verb::post ? 201 : 200, json::serialize(l));
    }
    if (r.method == kube::Verb::post) {
      if (nodeExists) {
        return jsonResponse(409, status(409, "AlreadyExists"));
      }
      ++nodeCreates;
      nodeExists = true;
      json::value n = json::parse(r.body);
      n.at("metadata").as_object()["uid"] = "uid-" + std::to_string(++uid);
      n.at("metadata").as_object()["resourceVersion"] = "1";
      existingNode = n;
      return jsonResponse(201, json::serialize(n));
    }
    if (!nodeExists) {
      return jsonResponse(404, status(404, "NotFound"));
    }
    if (r.method == kube::Verb::get) {
      return jsonResponse(200, json::serialize(existingNode));
    }
    if (r.method == kube::Verb::patch) {
      (statusSub ? statusPatches : nodePatches).push_back(json::parse(r.body));
      return jsonResponse(200, json::serialize(existingNode));
    }
    return jsonResponse(400, status(400, "BadRequest"));
  }
};

bool runUntil(boost::asio::io_context& io, const std::function<bool()>& pred,
              std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred() && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return pred();
}

struct Harness {
  boost::asio::io_context io;
  Api api;
  std::unique_ptr<provider::FakeProvider> provider;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<NodeController> node;
  std::atomic<bool> done{false};

  Harness() {
    auto t = std::make_unique<FakeTransport>(
        [this](const kube::HttpRequest& r) { return api.answer(r); });
    client = std::make_unique<kube::RestClient>(io.get_executor(), std::move(t),
                                                kube::ClientConfig{}, kube::RestOptions{});
    auto fake = provider::FakeProvider::create(io.get_executor(), {}, realClock());
    provider = std::move(*fake);
    NodeOptions o;
    o.nodeName = "vk";
    o.internalIP = "10.1.2.3";
    o.hostname = "host-1";
    o.kubeletVersion = "v0.1.0-burstlet";
    o.renewInterval = std::chrono::seconds(1);
    o.pingInterval = std::chrono::seconds(1);
    node = std::make_unique<NodeController>(*client, *provider, o, realClock());
  }
  void start() {
    boost::asio::co_spawn(io, node->run(), [this](const std::exception_ptr&) { done = true; });
  }
  ~Harness() {
    node->stop();
    runUntil(io, [this] { return done.load(); });
  }
  size_t statusPatches() {
    std::lock_guard lock(api.mu);
    return api.statusPatches.size();
  }
};

std::string readyOf(const json::value& statusPatch) {
  for (const auto& c : statusPatch.at("status").at("conditions").as_array()) {
    if (c.at("type") == "Ready") {
      return std::string(c.at("status").as_string()) + "/" +
             std::string(c.at("reason").as_string());
    }
  }
  return "none";
}

TEST(NodeControllerTest, RegistersWithLeaseOwnedByTheNode) {
  Harness h;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  std::lock_guard lock(h.api.mu);
  ASSERT_EQ(h.api.nodeCreates, 1);
  const auto& n = h.api.existingNode;
  EXPECT_EQ(n.at("metadata").at("labels").at("type"), "virtual-kubelet");
  EXPECT_EQ(n.at("spec").at("taints").at(0).at("key"), "virtual-kubelet.io/provider");
  EXPECT_EQ(n.at("spec").at("taints").at(0).at("value"), "fake");
  EXPECT_EQ(n.at("status").at("capacity").at("pods"), "10000");
  EXPECT_EQ(n.at("status").at("addresses").at(0).at("address"), "10.1.2.3");
  EXPECT_EQ(n.at("status").at("nodeInfo").at("kubeletVersion"), "v0.1.0-burstlet");
  ASSERT_FALSE(h.api.leaseWrites.empty());
  const auto& l = h.api.leaseWrites.back();
  EXPECT_EQ(l.at("metadata").at("ownerReferences").at(0).at("uid"), "uid-1");
  EXPECT_EQ(l.at("spec").at("holderIdentity"), "vk");
  EXPECT_EQ(l.at("spec").at("leaseDurationSeconds"), 40);
}

TEST(NodeControllerTest, ReadyFollowsTheProvider) {
  Harness h;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  const size_t before = h.statusPatches();
  h.provider->setUnreachable(true);
  ASSERT_TRUE(runUntil(h.io, [&] { return !h.node->providerHealthy(); }));
  ASSERT_TRUE(runUntil(h.io, [&] { return h.statusPatches() > before; }));
  {
    std::lock_guard lock(h.api.mu);
    EXPECT_EQ(readyOf(h.api.statusPatches.back()), "False/ProviderUnreachable");
  }
  const size_t down = h.statusPatches();
  h.provider->setUnreachable(false);
  ASSERT_TRUE(runUntil(h.io, [&] { return h.statusPatches() > down; }));
  std::lock_guard lock(h.api.mu);
  EXPECT_EQ(readyOf(h.api.statusPatches.back()), "True/KubeletReady");
}

TEST(NodeControllerTest, AdoptsAnExistingNodeKeepingOthersTaints) {
  Harness h;
  h.api.nodeExists = true;
  h.api.existingNode = json::parse(R"({"metadata":{"name":"vk","uid":"uid-old",
      "resourceVersion":"77","labels":{"team":"a"}},
      "spec":{"taints":[{"key":"dedicated","value":"x","effect":"NoSchedule"}]}})");
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  std::lock_guard lock(h.api.mu);
  EXPECT_EQ(h.api.nodeCreates, 0);
  ASSERT_EQ(h.api.nodePatches.size(), 1U);
  const auto& p = h.api.nodePatches[0];
  EXPECT_EQ(p.at("metadata").at("resourceVersion"), "77");  // conditional on what was read
  EXPECT_EQ(p.at("metadata").at("labels").at("type"), "virtual-kubelet");
  const auto& taints = p.at("spec").at("taints").as_array();
  ASSERT_EQ(taints.size(), 2U);
  EXPECT_EQ(taints[0].at("key"), "dedicated");
  EXPECT_EQ(taints[1].at("key"), "virtual-kubelet.io/provider");
}

TEST(NodeControllerTest, ANodeDeletedByHandIsRegisteredAgain) {
  Harness h;
  h.start();
  ASSERT_TRUE(runUntil(h.io, [&] { return h.node->ready(); }));
  {
    std::lock_guard lock(h.api.mu);
    h.api.nodeExists = false;
  }
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.api.mu);
    return h.api.nodeCreates == 2;
  }));
  ASSERT_TRUE(runUntil(h.io, [&] {
    std::lock_guard lock(h.api.mu);
    return h.api.leaseWrites.back().at("metadata").at("ownerReferences").at(0).at("uid") == "uid-2";
  }));
}

}  // namespace
}  // namespace burstlet::node
