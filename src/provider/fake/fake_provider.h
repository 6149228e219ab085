// FakeProvider: an in-memory backend for tests, benchmarks and the demo. Pods go Running after a
// configurable delay, with IPs and container statuses like a real node reports. Optionally it
// keeps a journal file so that its pods outlive the burstlet process, as a real backend's do:
// restart tests check that nothing is duplicated or lost.
//
// Failure injection, per pod by annotation:
//   fake.burstlet.io/fail-creates: "N"    the first N creates fail (kUnavailable, retryable)
//   fake.burstlet.io/reject: "<message>"  every create fails (kInvalid, reason "Rejected")
//   fake.burstlet.io/exit-after-ms: "T"   containers exit T ms after starting, with
//   fake.burstlet.io/exit-code: "C"       exit code C (default 0): Succeeded or Failed unless
//                                         restartPolicy is Always
// The kubelet API hooks, for its unit tests (fake_streams.h):
//   fake.burstlet.io/logs: "<text>"       the log (default: a line naming the pod and container)
//   fake.burstlet.io/exec-exit-code: "C"  exec and attach end with C (default 0); they write the
//                                         command line, then echo stdin (and resizes on stderr)
//                                         until stdin closes
// and globally by options (transient failure rate, unreachable backend).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "common/clock.h"
#include "provider/provider.h"

namespace burstlet::provider {

struct FakeProviderOptions {
  // Time from create to Running; 0 = Running at once.
  std::chrono::milliseconds startDelay{0};
  NodeCapacity capacity;
  std::string nodeIP = "127.0.0.1";  // reported as the pods' hostIP
  // Pod IPs are <podNetwork>.x.y.
  std::string podNetwork = "10.246";
  // Share of create calls that fail with kUnavailable (0..1).
  double transientFailureRate = 0;
  // Journal of creates and deletes; "" keeps pods in memory only. It holds what a backend
  // holds, resolved environment values included: for tests and demos only.
  std::string stateFile;
};

class FakeProvider final : public Provider {
 public:
  // Fails (kInvalid) when the state file cannot be read, is corrupt, or cannot be written.
  static Result<std::unique_ptr<FakeProvider>> create(asio::any_io_executor executor,
                                                      FakeProviderOptions options,
                                                      const Clock& clock);
  ~FakeProvider() override;

  std::string_view name() const override { return "fake"; }
  asio::awaitable<Status> createPod(Json pod) override;
  asio::awaitable<Status> updatePod(Json pod) override;
  asio::awaitable<Status> deletePod(PodRef pod, int64_t gracePeriodSeconds) override;
  asio::awaitable<Result<Json>> getPod(PodRef pod) override;
  asio::awaitable<Result<std::vector<Json>>> listPods() override;
  void onPodStatusChange(std::function<void(const PodRef&)> callback) override;
  NodeCapacity capacity() const override { return options_.capacity; }
  asio::awaitable<Status> ping() override;
  asio::awaitable<Result<std::unique_ptr<ByteStream>>> logs(PodRef pod,
                                                            LogOptions options) override;
  asio::awaitable<Result<std::unique_ptr<ExecSession>>> exec(PodRef pod,
                                                             ExecOptions options) override;
  asio::awaitable<Result<std::unique_ptr<ExecSession>>> attach(PodRef pod,
                                                               ExecOptions options) override;

  // Node secrets are kept in memory ("burstlet-<purpose>"), for tests.
  std::string nodeSecretName(std::string_view purpose) const override;
  asio::awaitable<Status> putNodeSecret(std::string purpose,
                                        std::map<std::string, std::string> data) override;
  // The data last put for `purpose`; nullopt when none.
  std::optional<std::map<std::string, std::string>> nodeSecret(const std::string& purpose) const;

  // Makes ping() fail (the backend "goes away") or recover.
  void setUnreachable(bool unreachable);
  // Number of successful creates per UID since the process started (duplicates show as > 1).
  std::map<std::string, int> createsByUid() const;
  size_t size() const;

  struct State;  // shared with timers that outlive a call

 private:
  FakeProvider(asio::any_io_executor executor, FakeProviderOptions options, const Clock& clock,
               std::shared_ptr<State> state);

  asio::any_io_executor executor_;
  FakeProviderOptions options_;
  const Clock& clock_;
  std::shared_ptr<State> state_;
  mutable std::mutex secretsMu_;  // guards secrets_
  std::map<std::string, std::map<std::string, std::string>> secrets_;
};

}  // namespace burstlet::provider
