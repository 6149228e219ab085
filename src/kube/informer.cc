#include "kube/informer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "common/wait.h"
#include "kube/json_path.h"

namespace burstlet::kube {

namespace json = boost::json;

namespace {
std::string_view metadataString(const json::value& object, std::string_view field) {
  return stringOf(at(object, {"metadata", field}));
}
}  // namespace

std::string_view objectNamespace(const json::value& o) { return metadataString(o, "namespace"); }
std::string_view objectName(const json::value& o) { return metadataString(o, "name"); }
std::string_view objectResourceVersion(const json::value& o) {
  return metadataString(o, "resourceVersion");
}
std::string_view objectUid(const json::value& o) { return metadataString(o, "uid"); }

std::string objectKey(const json::value& object) {
  const auto ns = objectNamespace(object);
  const auto name = objectName(object);
  if (ns.empty()) {
    return std::string(name);
  }
  std::string key;
  key.reserve(ns.size() + 1 + name.size());
  key.append(ns).append("/").append(name);
  return key;
}

void dropManagedFields(json::value& object) {
  if (auto* md = child(&object, "metadata"); md != nullptr && md->is_object()) {
    md->get_object().erase("managedFields");
  }
}

// --- Store ---------------------------------------------------------------------------------

void Store::addIndex(const std::string& name, IndexFunc fn) {
  std::unique_lock lock(mu_);
  indexes_.push_back(Index{name, std::move(fn), {}});
}

void Store::unindexLocked(const std::string& key, const Entry& entry) {
  for (const auto& [slot, value] : entry.indexValues) {
    auto& byValue = indexes_[slot].keysByValue;
    auto it = byValue.find(value);
    if (it != byValue.end()) {
      it->second.erase(key);
      if (it->second.empty()) {
        byValue.erase(it);
      }
    }
  }
}

ObjectPtr Store::parse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    return nullptr;  // cannot happen: the text was serialized by us
  }
  return std::make_shared<const json::value>(std::move(v));
}

bool Store::upsert(const std::string& key, const json::value& object, std::string* previous) {
  Entry fresh;
  fresh.json = json::serialize(object);
  fresh.resourceVersion = std::string(objectResourceVersion(object));
  fresh.uid = std::string(objectUid(object));
  std::unique_lock lock(mu_);
  for (size_t slot = 0; slot < indexes_.size(); ++slot) {
    for (auto& v : indexes_[slot].fn(object)) {
      fresh.indexValues.emplace_back(slot, std::move(v));
    }
  }
  bool existed = false;
  auto it = items_.find(key);
  if (it != items_.end()) {
    existed = true;
    unindexLocked(key, it->second);
    if (previous != nullptr) {
      *previous = std::move(it->second.json);
    }
    it->second = std::move(fresh);
  } else {
    it = items_.emplace(key, std::move(fresh)).first;
  }
  for (const auto& [slot, value] : it->second.indexValues) {
    indexes_[slot].keysByValue[value].insert(key);
  }
  return existed;
}

bool Store::erase(const std::string& key, std::string* removed) {
  std::unique_lock lock(mu_);
  auto it = items_.find(key);
  if (it == items_.end()) {
    return false;
  }
  unindexLocked(key, it->second);
  if (removed != nullptr) {
    *removed = std::move(it->second.json);
  }
  items_.erase(it);
  return true;
}

ObjectPtr Store::get(const std::string& key) const {
  std::string text;
  {
    std::shared_lock lock(mu_);
    auto it = items_.find(key);
    if (it == items_.end()) {
      return nullptr;
    }
    text = it->second.json;
  }
  return parse(text);
}

std::string Store::resourceVersion(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = items_.find(key);
  return it == items_.end() ? std::string() : it->second.resourceVersion;
}

std::string Store::uid(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = items_.find(key);
  return it == items_.end() ? std::string() : it->second.uid;
}

std::vector<ObjectPtr> Store::list() const {
  std::vector<std::string> texts;
  {
    std::shared_lock lock(mu_);
    texts.reserve(items_.size());
    for (const auto& [k, e] : items_) {
      texts.push_back(e.json);
    }
  }
  std::vector<ObjectPtr> out;
  out.reserve(texts.size());
  for (const auto& t : texts) {
    out.push_back(parse(t));
  }
  return out;
}

std::vector<std::string> Store::keys() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& [k, e] : items_) {
    out.push_back(k);
  }
  return out;
}

std::vector<ObjectPtr> Store::byIndex(const std::string& index, const std::string& value) const {
  std::vector<std::string> texts;
  {
    std::shared_lock lock(mu_);
    for (const auto& idx : indexes_) {
      if (idx.name != index) {
        continue;
      }
      auto it = idx.keysByValue.find(value);
      if (it == idx.keysByValue.end()) {
        break;
      }
      for (const auto& key : it->second) {
        auto item = items_.find(key);
        if (item != items_.end()) {
          texts.push_back(item->second.json);
        }
      }
      break;
    }
  }
  std::vector<ObjectPtr> out;
  out.reserve(texts.size());
  for (const auto& t : texts) {
    out.push_back(parse(t));
  }
  return out;
}

size_t Store::size() const {
  std::shared_lock lock(mu_);
  return items_.size();
}

// --- Informer ------------------------------------------------------------------------------

Informer::Informer(RestClient& client, InformerOptions options)
    : client_(client), options_(std::move(options)), rng_(std::random_device{}()) {
  if (!options_.transform) {
    options_.transform = dropManagedFields;
  }
}

void Informer::addHandlers(InformerHandlers handlers) { handlers_.push_back(std::move(handlers)); }

std::string Informer::lastResourceVersion() const {
  std::lock_guard lock(mu_);
  return rv_;
}

void Informer::stop() {
  stopped_ = true;
  stop_.set();
  std::optional<asio::any_io_executor> executor;
  {
    std::lock_guard lock(mu_);
    executor = executor_;
  }
  if (!executor) {
    return;  // run() has not started; it checks stopped_ first
  }
  asio::post(*executor, [this] {
    std::lock_guard lock(mu_);
    if (watch_ != nullptr) {
      watch_->cancel();
    }
    if (list_ != nullptr) {
      list_->cancel();
    }
  });
}

bool Informer::wantsOldObject() const {
  return std::any_of(handlers_.begin(), handlers_.end(),
                     [](const InformerHandlers& h) { return static_cast<bool>(h.onUpdate); });
}

void Informer::applyUpsert(const std::string& key, json::value object) {
  options_.transform(object);
  std::string previous;
  const bool existed = store_.upsert(key, object, &previous);
  if (handlers_.empty()) {
    return;
  }
  auto current = std::make_shared<const json::value>(std::move(object));
  ObjectPtr old = existed && wantsOldObject() ? Store::parse(previous) : nullptr;
  for (const auto& h : handlers_) {
    if (!existed) {
      if (h.onAdd) {
        h.onAdd(current);
      }
    } else if (h.onUpdate) {
      h.onUpdate(old, current);
    }
  }
}

void Informer::applyDelete(json::value object) {
  options_.transform(object);
  std::string removed;
  const bool existed = store_.erase(objectKey(object), &removed);
  if (handlers_.empty()) {
    return;
  }
  // The last state we saw is what handlers get, as client-go does.
  ObjectPtr last =
      existed ? Store::parse(removed) : std::make_shared<const json::value>(std::move(object));
  for (const auto& h : handlers_) {
    if (h.onDelete) {
      h.onDelete(last, false);
    }
  }
}

asio::awaitable<Result<std::string>> Informer::listAndReplace() {
  ListOptions lo;
  lo.labelSelector = options_.labelSelector;
  lo.fieldSelector = options_.fieldSelector;
  lo.limit = options_.pageSize;
  stats_.lists.fetch_add(1);
  std::unordered_set<std::string> seen;
  std::string rv;
  // Page by page, each page read as a stream: items are stored as they arrive, and no page is
  // ever held whole.
  while (true) {
    auto opened = co_await client_.listStream(options_.resource, options_.ns, lo);
    if (!opened.ok()) {
      co_return std::move(opened).error();
    }
    std::unique_ptr<ListStream> page = std::move(*opened);
    {
      std::lock_guard lock(mu_);
      list_ = page.get();
    }
    struct Clear {
      Informer* self;
      ~Clear() {
        std::lock_guard lock(self->mu_);
        self->list_ = nullptr;
      }
    } clear{this};
    while (true) {
      auto item = co_await page->next();
      if (!item.ok()) {
        co_return std::move(item).error();
      }
      if (!item->has_value()) {
        break;
      }
      json::value& object = **item;
      if (!object.is_object()) {
        continue;
      }
      // Items of a list carry no kind; keep objects self-describing for handlers.
      if (!object.get_object().contains("kind")) {
        object.get_object()["kind"] = options_.resource.kind;
        object.get_object()["apiVersion"] = options_.resource.apiVersion();
      }
      applyListed(std::move(object), seen);
    }
    rv = std::string(objectResourceVersion(page->envelope()));
    std::string next = listContinueToken(page->envelope());
    if (next.empty()) {
      break;
    }
    lo.continueToken = std::move(next);
  }
  deleteUnseen(seen);
  co_return rv;
}

void Informer::emitTombstone(const std::string& key) {
  std::string removed;
  if (!store_.erase(key, &removed)) {
    return;
  }
  ObjectPtr last = handlers_.empty() ? nullptr : Store::parse(removed);
  for (const auto& h : handlers_) {
    if (h.onDelete) {
      h.onDelete(last, true);
    }
  }
}

// Whatever we hold that a full listing no longer has was deleted while we were not watching.
void Informer::deleteUnseen(const std::unordered_set<std::string>& seen) {
  for (const auto& key : store_.keys()) {
    if (seen.count(key) == 0) {
      emitTombstone(key);
    }
  }
}

void Informer::applyListed(json::value object, std::unordered_set<std::string>& seen) {
  std::string key = objectKey(object);
  const std::string storedRv = store_.resourceVersion(key);
  const bool stored = !storedRv.empty();
  if (stored && store_.uid(key) != objectUid(object)) {
    // Deleted and re-created under the same name while we were not watching.
    emitTombstone(key);
  } else if (stored && storedRv == objectResourceVersion(object)) {
    seen.insert(std::move(key));
    return;  // unchanged since we last saw it: not reported again
  }
  applyUpsert(key, std::move(object));
  seen.insert(std::move(key));
}

namespace {
bool isInitialEventsEnd(const json::value& object) {
  return stringAt(object, {"metadata", "annotations", "k8s.io/initial-events-end"}) == "true";
}
}  // namespace

asio::awaitable<Status> Informer::watchFrom(std::string& resourceVersion, bool* initialDone) {
  ListOptions lo;
  lo.labelSelector = options_.labelSelector;
  lo.fieldSelector = options_.fieldSelector;
  lo.resourceVersion = resourceVersion;
  lo.allowWatchBookmarks = true;
  std::unordered_set<std::string> seen;
  bool initial = initialDone != nullptr;
  if (initial) {
    lo.sendInitialEvents = true;
    lo.resourceVersionMatch = "NotOlderThan";
    lo.resourceVersion.clear();  // start from a consistent, current snapshot
    stats_.streamingLists.fetch_add(1);
  }
  lo.timeoutSeconds = options_.watchTimeoutSeconds > 0 ? options_.watchTimeoutSeconds
                                                       : static_cast<int>(300 + rng_() % 300);
  stats_.watches.fetch_add(1);
  auto opened = co_await client_.watch(options_.resource, options_.ns, lo);
  if (!opened.ok()) {
    co_return std::move(opened).error();
  }
  std::unique_ptr<WatchStream> stream = std::move(*opened);
  {
    std::lock_guard lock(mu_);
    watch_ = stream.get();
  }
  struct Clear {
    Informer* self;
    ~Clear() {
      std::lock_guard lock(self->mu_);
      self->watch_ = nullptr;
    }
  } clear{this};
  if (stopped_) {
    co_return okStatus();
  }
  while (!stopped_) {
    auto ev = co_await stream->next();
    if (!ev.ok()) {
      co_return std::move(ev).error();
    }
    if (!ev->has_value()) {
      co_return okStatus();  // server-side timeout: reconnect from resourceVersion
    }
    WatchEvent& e = **ev;
    stats_.events.fetch_add(1, std::memory_order_relaxed);
    if (e.type == WatchEventType::kError) {
      co_return watchError(e.object);
    }
    if (initial) {
      if (e.type == WatchEventType::kBookmark && isInitialEventsEnd(e.object)) {
        resourceVersion = std::string(objectResourceVersion(e.object));
        {
          std::lock_guard lock(mu_);
          rv_ = resourceVersion;
        }
        deleteUnseen(seen);
        seen.clear();
        initial = false;
        *initialDone = true;
        markSynced();
        continue;
      }
      if (e.type == WatchEventType::kAdded) {
        // Initial events carry each object's own resourceVersion, not the stream position.
        applyListed(std::move(e.object), seen);
        continue;
      }
    }
    const auto rv = objectResourceVersion(e.object);
    if (!rv.empty()) {
      resourceVersion = std::string(rv);
      std::lock_guard lock(mu_);
      rv_ = resourceVersion;
    }
    switch (e.type) {
      case WatchEventType::kAdded:
      case WatchEventType::kModified: {
        // Key first: argument evaluation order is unspecified and the object is moved.
        const std::string key = objectKey(e.object);
        applyUpsert(key, std::move(e.object));
      } break;
      case WatchEventType::kDeleted:
        applyDelete(std::move(e.object));
        break;
      default:
        break;  // bookmark: only the resourceVersion matters
    }
  }
  co_return okStatus();
}

asio::awaitable<void> Informer::backoff(int attempt, const Error& error) {
  const auto delay = retryDelay(options_.backoff, attempt, error, rng_);
  co_await sleepFor(options_.clock != nullptr ? *options_.clock : realClock(), delay, &stop_);
}

void Informer::markSynced() {
  synced_ = true;
  signals_.ready.set();
}

asio::awaitable<void> Informer::run() {
  signals_.started.set();
  {
    std::lock_guard lock(mu_);
    executor_ = co_await asio::this_coro::executor;
  }
  int failures = 0;
  const auto& what = options_.resource.resource;
  while (!stopped_) {
    std::string rv;
    if (options_.streamingList && streamingSupported_) {
      // Initial state as a streaming list; the same stream then goes on as a normal watch.
      bool initialDone = false;
      auto s = co_await watchFrom(rv, &initialDone);
      if (stopped_) {
        break;
      }
      if (!initialDone) {
        // A clean end before the initial-events-end bookmark happens on a server that ignored
        // sendInitialEvents, but also when a capable server closes watches (restart, cache
        // reset): only a repeated one counts as "not supported".
        const bool endedEarly = s.ok() && ++streamingEarlyEnds_ < 3;
        const bool refused = s.ok() ? !endedEarly
                                    : (s.error().code == ErrorCode::kInvalid ||
                                       s.error().code == ErrorCode::kBadRequest);
        if (endedEarly) {
          co_await backoff(failures++, Error::make(ErrorCode::kUnavailable, "WatchEnded",
                                                   "stream ended before the initial state"));
          continue;
        }
        if (refused) {
          // Feature off, or an old server that ignored sendInitialEvents.
          spdlog::info("msg=\"streaming list not available, using list+watch\" resource={} {}",
                       what, s.ok() ? "" : "error=\"" + s.error().toString() + "\"");
          streamingSupported_ = false;
          continue;
        }
        if (s.error().code != ErrorCode::kGone) {
          spdlog::warn("msg=\"streaming list failed\" resource={} error=\"{}\"", what,
                       s.error().toString());
          co_await backoff(failures++, s.error());
        }
        continue;
      }
      streamingEarlyEnds_ = 0;
      if (!s.ok()) {
        if (s.error().code == ErrorCode::kGone) {
          stats_.relistsAfterGone.fetch_add(1);
          continue;
        }
        if (s.error().code == ErrorCode::kCancelled) {
          break;
        }
        spdlog::warn("msg=\"watch failed\" resource={} error=\"{}\"", what, s.error().toString());
        co_await backoff(failures++, s.error());
      }
    } else {
      auto listed = co_await listAndReplace();
      if (!listed.ok()) {
        if (stopped_) {
          break;
        }
        spdlog::warn("msg=\"list failed\" resource={} error=\"{}\"", what,
                     listed.error().toString());
        co_await backoff(failures++, listed.error());
        continue;
      }
      rv = std::move(*listed);
      {
        std::lock_guard lock(mu_);
        rv_ = rv;
      }
      markSynced();
    }
    failures = 0;
    while (!stopped_) {
      auto s = co_await watchFrom(rv, nullptr);
      if (s.ok()) {
        failures = 0;
        continue;
      }
      if (stopped_ || s.error().code == ErrorCode::kCancelled) {
        break;
      }
      if (s.error().code == ErrorCode::kGone) {
        stats_.relistsAfterGone.fetch_add(1);
        spdlog::info("msg=\"watch expired, relisting\" resource={} resourceVersion={}", what, rv);
        break;
      }
      spdlog::warn("msg=\"watch failed\" resource={} error=\"{}\"", what, s.error().toString());
      co_await backoff(failures++, s.error());
    }
  }
  signals_.stopped.set();
}

}  // namespace burstlet::kube
