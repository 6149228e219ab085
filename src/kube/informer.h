// Informer: list then watch one resource into a local Store, calling handlers for every
// change. Reconnects from the last resourceVersion, relists on 410 Gone, and turns objects
// that vanished while it was not watching into deletes ("tombstones"), so no delete is missed
// across reconnects. Built for 10,000 pods: objects are shared immutable JSON with
// managedFields dropped by default.
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/wait.h"
#include "kube/rest.h"

namespace burstlet::kube {

using ObjectPtr = std::shared_ptr<const boost::json::value>;

// "namespace/name", or "name" for cluster-scoped objects.
std::string objectKey(const boost::json::value& object);
std::string_view objectNamespace(const boost::json::value& object);
std::string_view objectName(const boost::json::value& object);
std::string_view objectResourceVersion(const boost::json::value& object);
std::string_view objectUid(const boost::json::value& object);

// Thread-safe map of objects by key, with secondary indexes. Objects are kept as compact
// JSON text (a parsed DOM costs about five times as much memory, and 10,000 pods must fit in
// a small process); readers get a freshly parsed, immutable copy.
class Store {
 public:
  using IndexFunc = std::function<std::vector<std::string>(const boost::json::value&)>;

  // Adds an index; call before objects are stored.
  void addIndex(const std::string& name, IndexFunc fn);
  // Inserts or replaces. Returns whether the key existed; its previous text goes to *previous.
  bool upsert(const std::string& key, const boost::json::value& object,
              std::string* previous = nullptr);
  // Removes. Returns whether the key existed; the removed text goes to *removed.
  bool erase(const std::string& key, std::string* removed = nullptr);
  // A parsed copy of the object, or null.
  ObjectPtr get(const std::string& key) const;
  // metadata.resourceVersion of the stored object ("" when absent), without parsing.
  std::string resourceVersion(const std::string& key) const;
  // metadata.uid of the stored object ("" when absent), without parsing.
  std::string uid(const std::string& key) const;
  std::vector<ObjectPtr> list() const;
  std::vector<std::string> keys() const;
  // Objects whose index function returned `value`.
  std::vector<ObjectPtr> byIndex(const std::string& index, const std::string& value) const;
  size_t size() const;

  static ObjectPtr parse(const std::string& text);

 private:
  struct Entry {
    std::string json;
    std::string resourceVersion;
    std::string uid;
    std::vector<std::pair<size_t, std::string>> indexValues;  // (index slot, value)
  };
  struct Index {
    std::string name;
    IndexFunc fn;
    std::unordered_map<std::string, std::unordered_set<std::string>> keysByValue;
  };
  void unindexLocked(const std::string& key, const Entry& entry);

  mutable std::shared_mutex mu_;  // guards items_ and indexes_
  std::unordered_map<std::string, Entry> items_;
  std::vector<Index> indexes_;
};

struct InformerHandlers {
  std::function<void(const ObjectPtr&)> onAdd;
  std::function<void(const ObjectPtr& old, const ObjectPtr& current)> onUpdate;
  // finalStateUnknown: the object disappeared while the informer was not watching (found on a
  // relist); `last` is the last state it had seen.
  std::function<void(const ObjectPtr& last, bool finalStateUnknown)> onDelete;
};

struct InformerOptions {
  ResourceRef resource;
  std::string ns;  // "" = all namespaces
  std::string labelSelector;
  std::string fieldSelector;
  // Page size of the initial list; 0 = one response. The API server encodes a list response
  // item by item and the informer decodes it as it arrives, so neither side holds the whole
  // list, and one response measured fastest (docs/perf.md). Set a size for servers that answer
  // unpaged lists from etcd rather than from their watch cache.
  int64_t pageSize = 0;
  // Get the initial state as a streaming list (a watch with sendInitialEvents) instead of a
  // list. Off by default: a list is read compressed and decoded as it arrives, which measured
  // faster and cheaper for the API server (docs/perf.md). Falls back to list+watch when the
  // server refuses it.
  bool streamingList = false;
  // Server-side watch timeout; 0 = random between 5 and 10 minutes (spreads reconnects).
  int watchTimeoutSeconds = 0;
  // Applied to every object before it is stored; default drops metadata.managedFields.
  std::function<void(boost::json::value&)> transform;
  RetryPolicy backoff{0, std::chrono::milliseconds(200), std::chrono::seconds(30)};
  // Backoff sleeps run on it; null: the process clock.
  const Clock* clock = nullptr;
};

// Removes metadata.managedFields (the default transform).
void dropManagedFields(boost::json::value& object);

struct InformerStats {
  std::atomic<uint64_t> lists{0};
  std::atomic<uint64_t> watches{0};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> relistsAfterGone{0};
  std::atomic<uint64_t> streamingLists{0};
};

class Informer {
 public:
  Informer(RestClient& client, InformerOptions options);

  Store& store() { return store_; }
  const Store& store() const { return store_; }
  // Register before run().
  void addHandlers(InformerHandlers handlers);
  // Lists and watches until stop(). Handlers run on this coroutine, in event order.
  asio::awaitable<void> run();
  // Ends run() soon. Thread-safe.
  void stop();
  // True once the first list has been stored and its handlers called.
  bool synced() const { return synced_.load(); }
  // started: run() began; ready: synced; stopped: run() returned.
  const Signals& signals() const { return signals_; }
  std::string lastResourceVersion() const;
  const InformerStats& stats() const { return stats_; }

 private:
  asio::awaitable<Result<std::string>> listAndReplace();
  // Watches from resourceVersion. With initialDone non-null, asks for the initial state first
  // (streaming list) and sets *initialDone once it is complete and stored.
  asio::awaitable<Status> watchFrom(std::string& resourceVersion, bool* initialDone);
  void deleteUnseen(const std::unordered_set<std::string>& seen);
  // Applies one object of a full listing (list page or initial events). A name reused by a new
  // object (another UID) is reported as a delete of the old one and an add of the new one.
  void applyListed(boost::json::value object, std::unordered_set<std::string>& seen);
  void emitTombstone(const std::string& key);
  asio::awaitable<void> backoff(int attempt, const Error& error);
  void markSynced();
  void applyUpsert(const std::string& key, boost::json::value object);
  void applyDelete(boost::json::value object);
  bool wantsOldObject() const;

  RestClient& client_;
  InformerOptions options_;
  Store store_;
  std::vector<InformerHandlers> handlers_;
  std::atomic<bool> synced_{false};
  std::atomic<bool> stopped_{false};
  Latch stop_;  // set by stop(): ends backoff sleeps
  Signals signals_;
  bool streamingSupported_ = true;  // only touched by run()
  int streamingEarlyEnds_ = 0;      // only touched by run()
  // The executor run() runs on; stop() posts its cancellations there so they never race the
  // coroutine's own use of the timer and stream (run informers on a strand when the
  // io_context has several threads).
  std::optional<asio::any_io_executor> executor_;
  mutable std::mutex mu_;  // guards rv_, watch_, list_
  std::string rv_;
  WatchStream* watch_ = nullptr;
  ListStream* list_ = nullptr;
  std::mt19937_64 rng_;
  InformerStats stats_;
};

}  // namespace burstlet::kube
