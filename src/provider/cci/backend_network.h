// BackendNetwork: the CCI Network of the backend namespace (CCI mode only). run() creates it with
// burstlet's ownership labels, or adopts the one there when it carries them (and refuses it when
// it does not), then follows its status.state: firstActive() is set the first time it is Active,
// and until then (or whenever it stops being Active) notActive() says why in a line. A Network
// that is Failed, or not Active `activeTimeout` after burstlet began waiting, is reported once
// with a Warning event on the virtual node; turning Active is reported with a Normal event. A
// Network deleted by someone else is created again.
//
// State under mu_; run() is one coroutine on a strand, its sleeps on the clock (wait.h).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "common/wait.h"
#include "kube/events.h"
#include "kube/rest.h"
#include "provider/cci/cci_options.h"
#include "provider/cci/network_settings.h"

namespace burstlet::provider::cci {

// How often a Network is read again: soon while it is being set up (doubling from `first`
// up to `slow`), then every `active` once it is Active.
struct NetworkPolling {
  std::chrono::milliseconds first{1'000};
  std::chrono::milliseconds slow{30'000};
  std::chrono::milliseconds active{30'000};
};

class BackendNetwork {
 public:
  // `backend` and `events` must outlive this; options.network must be set.
  BackendNetwork(kube::RestClient& backend, kube::EventRecorder& events, const CciOptions& options,
                 const Clock& clock, NetworkPolling polling = {});

  // Until `stop`: creates or adopts the Network and follows its state. Returns okStatus() when
  // stopped, kForbidden NetworkNotOwned when a Network of that name is not ours (nothing else
  // ends it: a refused create or an unreachable backend is reported and tried again).
  boost::asio::awaitable<Status> run(const Latch& stop);

  // Set the first time the Network is Active.
  const Latch& firstActive() const { return firstActive_; }
  // "" while Active; else why not, naming the Network and its state.
  std::string notActive() const;
  // Since when the Network is Active; nullopt while it is not.
  std::optional<Clock::SteadyTime> activeSince() const;
  const std::string& name() const { return settings_.name; }

 private:
  // One look: read (create when absent) and record the state. An error ends run().
  boost::asio::awaitable<Status> look();
  // Records what was seen: `state` ("" = not read), CCI's message or our reason.
  void record(std::string state, std::string message);
  Status checkOwned(const boost::json::value& network) const;
  void event(kube::EventType type, const std::string& reason, const std::string& message);

  kube::RestClient& backend_;
  kube::EventRecorder& events_;
  const NetworkSettings settings_;
  const std::string namespace_;
  const std::string clusterID_;
  const std::string nodeName_;
  const Clock& clock_;
  const NetworkPolling polling_;
  Latch firstActive_;

  mutable std::mutex mu_;  // guards the members below
  bool active_ = false;
  Clock::SteadyTime activeSince_{};  // while active_
  std::string state_;                // status.state last seen; "" before the first answer
  std::string message_;              // why it is not Active (CCI's message or ours)
  std::optional<Clock::SteadyTime> waitingSince_;  // since when it is not Active
  bool warned_ = false;  // the Warning of this stretch of not being Active was recorded
};

}  // namespace burstlet::provider::cci
