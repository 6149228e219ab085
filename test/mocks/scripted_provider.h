// ScriptedProvider: a provider whose pods' status the test sets and whose notifications the
// test fires, with counters of what the pod controller asked for and injectable failures.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "provider/provider.h"

namespace burstlet::testing {

// A provider whose pods' status the test sets, and whose notifications the test fires.
class ScriptedProvider final : public provider::Provider {
 public:
  std::string_view name() const override { return "scripted"; }
  boost::asio::awaitable<Status> createPod(boost::json::value pod) override {
    std::lock_guard lock(mu);
    ++creates;
    if (failCreates > 0) {
      --failCreates;
      co_return Error::make(ErrorCode::kUnavailable, "Down", "backend down");
    }
    if (auto it = predecessors.find(provider::podRefOf(pod).name);
        it != predecessors.end() && it->second > 0) {
      --it->second;
      co_return Error::make(ErrorCode::kUnavailable, provider::kPredecessorTerminating,
                            "waiting for the previous pod of this name to stop on the backend");
    }
    if (rejectNames.count(provider::podRefOf(pod).name) != 0) {
      co_return Error::make(ErrorCode::kInvalid, "HostNetwork", "hostNetwork is not supported");
    }
    pods[provider::podRefOf(pod).key()] = pod;
    co_return okStatus();
  }
  boost::asio::awaitable<Status> updatePod(boost::json::value pod) override {
    std::lock_guard lock(mu);
    ++updates;
    if (noEphemeral && pod.at("spec").as_object().contains("ephemeralContainers")) {
      co_return Error::make(ErrorCode::kInvalid, "EphemeralContainersNotSupported",
                            "the backend has no ephemeralcontainers subresource");
    }
    pods[provider::podRefOf(pod).key()] = pod;
    if (statusAfterUpdate) {
      status = *statusAfterUpdate;  // changed while the update ran; not notified again
    }
    co_return okStatus();
  }
  boost::asio::awaitable<Status> deletePod(provider::PodRef ref, int64_t grace) override {
    std::lock_guard lock(mu);
    ++deletes;
    graces.push_back(grace);
    auto it = pods.find(ref.key());
    if (it != pods.end() && slowDeletes && grace > 0) {
      // Terminating: the pod stays until the test removes it.
      it->second.at("metadata").as_object()["deletionTimestamp"] = "2099-01-01T00:00:00Z";
      it->second.at("metadata").as_object()["deletionGracePeriodSeconds"] = grace;
      co_return okStatus();
    }
    if (it != pods.end()) {
      pods.erase(it);
    }
    co_return okStatus();
  }
  boost::asio::awaitable<Result<boost::json::value>> getPod(provider::PodRef ref) override {
    std::lock_guard lock(mu);
    if (throwOnGet.erase(ref.name) != 0) {
      throw std::runtime_error("provider bug");
    }
    auto it = pods.find(ref.key());
    if (it == pods.end()) {
      co_return Error::make(ErrorCode::kNotFound, "NotFound", "no pod");
    }
    boost::json::value out = it->second;
    out.as_object()["status"] = status;
    co_return out;
  }
  boost::asio::awaitable<Result<std::vector<boost::json::value>>> listPods() override {
    std::lock_guard lock(mu);
    std::vector<boost::json::value> out;
    for (const auto& [k, p] : pods) {
      out.push_back(p);
    }
    co_return out;
  }
  void onPodStatusChange(std::function<void(const provider::PodRef&)> cb) override {
    std::lock_guard lock(mu);
    callback = std::move(cb);
  }
  provider::NodeCapacity capacity() const override { return {}; }
  boost::asio::awaitable<Status> ping() override { co_return okStatus(); }

  void notify(const std::string& name) {
    std::function<void(const provider::PodRef&)> cb;
    {
      std::lock_guard lock(mu);
      cb = callback;
    }
    cb(provider::PodRef{"ns", name, "u-" + name});
  }
  void setStatus(boost::json::value s) {
    std::lock_guard lock(mu);
    status = std::move(s);
  }

  std::mutex mu;
  std::map<std::string, boost::json::value> pods;
  boost::json::value status = boost::json::parse(R"({"phase":"Running","podIP":"10.0.0.9"})");
  std::function<void(const provider::PodRef&)> callback;
  int creates = 0;
  int deletes = 0;
  int updates = 0;
  int failCreates = 0;
  bool slowDeletes = false;
  bool noEphemeral = false;
  std::vector<int64_t> graces;
  std::optional<boost::json::value> statusAfterUpdate;
  std::set<std::string> rejectNames;
  std::set<std::string> throwOnGet;
  std::map<std::string, int> predecessors;  // name -> creates answered "predecessor terminating"
};

}  // namespace burstlet::testing
