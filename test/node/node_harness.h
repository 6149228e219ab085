// The node controller's test harness: the API server's side of one Node and its Lease
// (recorded), a NodeController on it with a PingProvider, and readers of status writes. Shared
// by the test files of test/node.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mocks/fake_clock.h"
#include "mocks/fake_transport.h"
#include "mocks/ping_provider.h"
#include "mocks/run_sync.h"
#include "node/node_controller.h"

namespace burstlet::node::test {

namespace json = boost::json;
using burstlet::testing::FakeClock;
using burstlet::testing::FakeTransport;
using burstlet::testing::jsonResponse;
using burstlet::testing::PingProvider;
using burstlet::testing::runUntil;
using Mode = PingProvider::Mode;
using std::chrono::seconds;

inline std::string status(int code, const std::string& reason) {
  return json::serialize(json::object{{"kind", "Status"},
                                      {"status", "Failure"},
                                      {"code", code},
                                      {"reason", reason},
                                      {"message", reason}});
}

// The API server's side of one Node and its Lease, recorded. Node patches are applied (labels
// merged, the taint list replaced, as a strategic merge does with it) and honour a
// resourceVersion precondition.
struct Api {
  std::mutex mu;
  bool nodeExists = false;
  json::value existingNode;  // what a GET of the node returns when it exists already
  int nodeCreates = 0;
  int nodeConflicts = 0;
  std::vector<json::value> nodePatches;
  std::vector<json::value> statusPatches;
  std::vector<json::value> leaseWrites;
  bool leaseExists = false;
  int uid = 0;
  // Runs once, before the next node patch is looked at: another writer getting in between.
  std::function<void(json::value& node)> beforeNodePatch;
  // The body of GET /version; empty: 404.
  std::string versionBody = R"({"major":"1","minor":"36","gitVersion":"v1.36.3"})";
  int versionGets = 0;

  static void bumpVersion(json::value& node) {
    auto& md = node.at("metadata").as_object();
    md["resourceVersion"] =
        std::to_string(std::stoi(std::string(md["resourceVersion"].as_string())) + 1);
  }

  Result<kube::HttpResponse> patchNode(const json::value& patch) {
    nodePatches.push_back(patch);
    if (beforeNodePatch) {
      auto hook = std::move(beforeNodePatch);
      beforeNodePatch = nullptr;
      hook(existingNode);
    }
    const auto& md = patch.at("metadata").as_object();
    if (const auto* rv = md.if_contains("resourceVersion");
        rv != nullptr && *rv != existingNode.at("metadata").at("resourceVersion")) {
      ++nodeConflicts;
      return jsonResponse(409, status(409, "Conflict"));
    }
    auto& node = existingNode.as_object();
    if (const auto* labels = md.if_contains("labels")) {
      auto& into = node["metadata"].as_object()["labels"];
      if (!into.is_object()) {
        into = json::object{};
      }
      for (const auto& kv : labels->as_object()) {
        into.as_object()[kv.key()] = kv.value();
      }
    }
    if (const auto* spec = patch.as_object().if_contains("spec")) {
      if (!node["spec"].is_object()) {
        node["spec"] = json::object{};
      }
      node["spec"].as_object()["taints"] = spec->at("taints");
    }
    bumpVersion(existingNode);
    return jsonResponse(200, json::serialize(existingNode));
  }

  // A status patch is recorded; its "$patch": "delete" conditions are applied, on the
  // resourceVersion it names if any.
  Result<kube::HttpResponse> patchStatus(const json::value& patch) {
    statusPatches.push_back(patch);
    const auto* md = patch.as_object().if_contains("metadata");
    const auto* rv = md != nullptr ? md->as_object().if_contains("resourceVersion") : nullptr;
    if (rv != nullptr && *rv != existingNode.at("metadata").at("resourceVersion")) {
      ++nodeConflicts;
      return jsonResponse(409, status(409, "Conflict"));
    }
    auto* st = existingNode.as_object().if_contains("status");
    auto* have = st != nullptr ? st->as_object().if_contains("conditions") : nullptr;
    if (have != nullptr) {
      for (const auto& c : patch.at("status").at("conditions").as_array()) {
        if (c.as_object().if_contains("$patch") == nullptr) {
          continue;
        }
        auto& list = have->as_array();
        list.erase(
            std::remove_if(list.begin(), list.end(),
                           [&](const json::value& e) { return e.at("type") == c.at("type"); }),
            list.end());
        bumpVersion(existingNode);
      }
    }
    return jsonResponse(200, json::serialize(existingNode));
  }

  Result<kube::HttpResponse> answer(const kube::HttpRequest& r) {
    std::lock_guard lock(mu);
    if (r.target == "/version") {
      ++versionGets;
      return versionBody.empty() ? jsonResponse(404, status(404, "NotFound"))
                                 : jsonResponse(200, versionBody);
    }
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
      if (!statusSub) {
        return patchNode(json::parse(r.body));
      }
      return patchStatus(json::parse(r.body));
    }
    return jsonResponse(400, status(400, "BadRequest"));
  }
};

// Runs the node against the recorded API and a provider whose ping the test controls. With
// `fakeTime`, deadlines (pings, lease, status, outage length) follow a FakeClock the test
// advances; the loops still sleep for real, at most a renewal or ping interval (1 s here).
struct Harness {
  boost::asio::io_context io;
  Api api;
  FakeClock fakeClock;
  PingProvider provider;
  std::unique_ptr<kube::RestClient> client;
  std::unique_ptr<NodeController> node;
  std::atomic<bool> done{false};

  explicit Harness(bool fakeTime = false, const std::function<void(NodeOptions&)>& tune = {}) {
    auto t = std::make_unique<FakeTransport>(
        [this](const kube::HttpRequest& r) { return api.answer(r); });
    client = std::make_unique<kube::RestClient>(io.get_executor(), std::move(t),
                                                kube::ClientConfig{}, kube::RestOptions{});
    NodeOptions o;
    o.nodeName = "vk";
    o.internalIP = "10.1.2.3";
    o.kubeletVersion = "v0.1.0-burstlet";
    o.renewInterval = seconds(1);
    o.pingInterval = seconds(1);
    if (tune) {
      tune(o);
    }
    const Clock& clock = fakeTime ? static_cast<const Clock&>(fakeClock) : realClock();
    node = std::make_unique<NodeController>(*client, provider, o, clock);
  }
  void start() {
    boost::asio::co_spawn(io, node->run(), [this](const std::exception_ptr&) { done = true; });
  }
  ~Harness() {
    provider.setMode(Mode::kAnswer);  // a hanging ping holds up run()'s end
    node->stop();
    runUntil(io, [this] { return done.load(); });
  }
  size_t statusPatches() {
    std::lock_guard lock(api.mu);
    return api.statusPatches.size();
  }
  size_t leaseWrites() {
    std::lock_guard lock(api.mu);
    return api.leaseWrites.size();
  }
  json::value lastStatus() {
    std::lock_guard lock(api.mu);
    return api.statusPatches.empty() ? json::value() : api.statusPatches.back();
  }
  // Waits for a status write after the `after`th that satisfies `pred`.
  bool statusWhere(const std::function<bool(const json::value&)>& pred, size_t after = 0) {
    return runUntil(io, [&] {
      std::lock_guard lock(api.mu);
      for (size_t i = after; i < api.statusPatches.size(); ++i) {
        if (pred(api.statusPatches[i])) {
          return true;
        }
      }
      return false;
    });
  }
  std::set<std::string> taintKeys() {
    std::lock_guard lock(api.mu);
    std::set<std::string> keys;
    const auto* spec = api.existingNode.as_object().if_contains("spec");
    if (spec != nullptr && spec->as_object().if_contains("taints") != nullptr) {
      for (const auto& t : spec->at("taints").as_array()) {
        keys.insert(std::string(t.at("key").as_string()));
      }
    }
    return keys;
  }
};

inline const json::value* conditionIn(const json::value& statusPatch, std::string_view type) {
  if (!statusPatch.is_object()) {
    return nullptr;
  }
  for (const auto& c : statusPatch.at("status").at("conditions").as_array()) {
    if (c.at("type").as_string() == type) {
      return &c;
    }
  }
  return nullptr;
}

// "True/KubeletReady": a condition's status and reason in a status write.
inline std::string conditionOf(const json::value& statusPatch, std::string_view type) {
  const auto* c = conditionIn(statusPatch, type);
  if (c == nullptr) {
    return "none";
  }
  return std::string(c->at("status").as_string()) + "/" + std::string(c->at("reason").as_string());
}

inline std::string fieldOf(const json::value& statusPatch, std::string_view type,
                           std::string_view field) {
  const auto* c = conditionIn(statusPatch, type);
  return c == nullptr ? std::string() : std::string(c->at(field).as_string());
}

}  // namespace burstlet::node::test
