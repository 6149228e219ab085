// EventRecorder: Normal/Warning events on objects, written like client-go's recorder. A
// repeat of the same event (object, type, reason, message) patches the existing Event's count
// and lastTimestamp instead of creating another; each object has a token bucket (burst 25,
// one more every 5 minutes) so a crash loop cannot flood the API server; messages pass through
// secret redaction. record() never blocks: a bounded queue feeds the writer coroutine.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/wait.h"
#include "kube/rest.h"

namespace burstlet::kube {

struct ObjectReference {
  std::string apiVersion;
  std::string kind;
  std::string ns;
  std::string name;
  std::string uid;
  std::string resourceVersion;
  std::string fieldPath;
};

// The reference to an object as the API returned it.
ObjectReference referenceTo(const boost::json::value& object);

enum class EventType { kNormal, kWarning };

struct EventRecorderOptions {
  std::string component = "burstlet";  // source.component / reportingComponent
  std::string host;                    // source.host (the node name)
  size_t maxQueued = 1000;             // beyond this, new events are dropped and counted
  size_t maxCached = 4096;             // remembered events for aggregation (LRU)
  int burst = 25;                      // per-object events before throttling
  std::chrono::seconds refill{300};    // one more event per object per refill
  size_t maxMessageBytes = 1024;
};

struct EventRecorderStats {
  std::atomic<uint64_t> created{0};
  std::atomic<uint64_t> aggregated{0};
  std::atomic<uint64_t> throttled{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> failed{0};
};

class EventRecorder {
 public:
  EventRecorder(RestClient& client, const Clock& clock, EventRecorderOptions options);

  // Queues an event. Thread-safe, never blocks.
  void record(const ObjectReference& object, EventType type, std::string reason,
              const std::string& message);
  // Writes queued events until stop(); then drains what is queued.
  asio::awaitable<void> run();
  void stop();
  // started/ready: run() began; stopped: run() returned.
  const Signals& signals() const { return signals_; }
  // True when nothing is queued or being written.
  bool idle() const;
  const EventRecorderStats& stats() const { return stats_; }

 private:
  struct Pending {
    ObjectReference object;
    EventType type;
    std::string reason;
    std::string message;
    Clock::WallTime at;
  };
  struct Seen {
    std::string ns;
    std::string name;  // the Event object's name
    int64_t count = 0;
    std::string firstTimestamp;
    std::list<std::string>::iterator lru;
  };
  struct Bucket {
    double tokens;
    Clock::SteadyTime last;
  };

  asio::awaitable<void> writeUntilStopped();
  asio::awaitable<void> write(Pending p);
  bool allow(const std::string& objectKey);
  void wakeLocked();
  void remember(const std::string& key, Seen seen);

  RestClient& client_;
  const Clock& clock_;
  EventRecorderOptions options_;
  mutable std::mutex mu_;  // guards queue_, writing_, stopped_
  Wakeup wakeup_;          // the writer's idle wait, cut short by record() and stop()
  Signals signals_;
  std::deque<Pending> queue_;
  bool writing_ = false;
  bool stopped_ = false;
  // Used only by the writer coroutine.
  std::unordered_map<std::string, Seen> seen_;
  std::list<std::string> lru_;
  std::unordered_map<std::string, Bucket> buckets_;
  size_t sweepAt_;  // buckets_ size that triggers the next sweep of refilled buckets
  uint64_t sequence_ = 0;
  EventRecorderStats stats_;
};

}  // namespace burstlet::kube
