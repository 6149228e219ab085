// NodeController: the virtual node. Registers the Node (labels, taint, capacity from the
// provider, conditions, addresses, kubelet endpoint, nodeInfo), keeps a Lease in
// kube-node-lease renewed, and writes node status on change and at least every statusInterval.
// Ready follows the provider's health. A Node deleted by someone is registered again.
//
// All writes are patches that keep what others wrote: labels are merged, our taint is added to
// the existing ones, and conditions are merged by type.
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "provider/provider.h"

namespace burstlet::node {

namespace asio = boost::asio;

struct NodeOptions {
  std::string nodeName = "burstlet";
  // Addresses reported in status; empty = detected (first non-loopback IPv4, host name).
  std::string internalIP;
  std::string hostname;
  int kubeletPort = 10250;
  std::string instanceType = "burstlet-virtual";
  std::string kubeletVersion;  // reported as nodeInfo.kubeletVersion
  std::chrono::seconds leaseDuration{40};
  std::chrono::seconds renewInterval{10};
  std::chrono::seconds statusInterval{60};
  std::chrono::seconds pingInterval{10};
};

// The first non-loopback IPv4 address of this host, or 127.0.0.1.
std::string detectInternalIP();

class NodeController {
 public:
  NodeController(kube::RestClient& client, provider::Provider& provider, NodeOptions options,
                 const Clock& clock);

  // Registers and heartbeats until stop(); then releases the lease.
  asio::awaitable<void> run();
  // Ends run() soon. Thread-safe.
  void stop();
  // Registered, and the lease renewed at least once since.
  bool ready() const { return ready_.load(); }
  // Whether the provider answered its last ping.
  bool providerHealthy() const { return healthy_.load(); }
  const NodeOptions& options() const { return options_; }

  // The Node as registered (for tests and the create call).
  boost::json::value nodeObject() const;
  // The status part, with conditions as of now.
  boost::json::value statusObject();

 private:
  struct ConditionState {
    bool ok = true;
    std::string reason;
    std::string message;
    Clock::WallTime since;
  };
  asio::awaitable<Status> registerNode();
  asio::awaitable<Status> patchStatus();
  asio::awaitable<Status> renewLease();
  asio::awaitable<void> releaseLease();
  asio::awaitable<void> checkHealth();
  asio::awaitable<void> sleepFor(std::chrono::steady_clock::duration d);
  boost::json::value leaseObject() const;

  kube::RestClient& client_;
  provider::Provider& provider_;
  NodeOptions options_;
  const Clock& clock_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> ready_{false};
  std::atomic<bool> healthy_{true};
  // Touched only by run(): no lock.
  std::string nodeUid_;
  std::optional<boost::json::value> lease_;  // last lease written (holds resourceVersion)
  bool statusDirty_ = true;
  ConditionState readyCondition_;
  std::optional<asio::any_io_executor> executor_;
  mutable std::mutex mu_;  // guards timer_ and executor_ for stop()
  asio::steady_timer* timer_ = nullptr;
};

}  // namespace burstlet::node
