#include "kube/informer.h"

#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

namespace burstlet::kube {

namespace json = boost::json;

namespace {
const json::object* metadataOf(const json::value& object) {
  if (!object.is_object()) {
    return nullptr;
  }
  auto* md = object.get_object().if_contains("metadata");
  return md != nullptr && md->is_object() ? &md->get_object() : nullptr;
}

std::string_view metadataString(const json::value& object, std::string_view field) {
  const auto* md = metadataOf(object);
  if (md == nullptr) {
    return {};
  }
  auto* v = md->if_contains(field);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
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
  if (!object.is_object()) {
    return;
  }
  if (auto* md = object.get_object().if_contains("metadata"); md != nullptr && md->is_object()) {
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

ObjectPtr Store::upsert(const std::string& key, ObjectPtr object) {
  std::unique_lock lock(mu_);
  Entry fresh;
  for (size_t slot = 0; slot < indexes_.size(); ++slot) {
    for (auto& v : indexes_[slot].fn(*object)) {
      fresh.indexValues.emplace_back(slot, std::move(v));
    }
  }
  fresh.object = std::move(object);
  ObjectPtr old;
  auto it = items_.find(key);
  if (it != items_.end()) {
    unindexLocked(key, it->second);
    old = std::move(it->second.object);
    it->second = std::move(fresh);
  } else {
    it = items_.emplace(key, std::move(fresh)).first;
  }
  for (const auto& [slot, value] : it->second.indexValues) {
    indexes_[slot].keysByValue[value].insert(key);
  }
  return old;
}

ObjectPtr Store::erase(const std::string& key) {
  std::unique_lock lock(mu_);
  auto it = items_.find(key);
  if (it == items_.end()) {
    return nullptr;
  }
  unindexLocked(key, it->second);
  ObjectPtr old = std::move(it->second.object);
  items_.erase(it);
  return old;
}

ObjectPtr Store::get(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = items_.find(key);
  return it == items_.end() ? nullptr : it->second.object;
}

std::vector<ObjectPtr> Store::list() const {
  std::shared_lock lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(items_.size());
  for (const auto& [k, e] : items_) {
    out.push_back(e.object);
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
  std::shared_lock lock(mu_);
  std::vector<ObjectPtr> out;
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
        out.push_back(item->second.object);
      }
    }
    break;
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
  std::lock_guard lock(mu_);
  if (watch_ != nullptr) {
    watch_->cancel();
  }
  if (timer_ != nullptr) {
    timer_->cancel();
  }
}

ObjectPtr Informer::prepare(json::value object) {
  options_.transform(object);
  return std::make_shared<const json::value>(std::move(object));
}

void Informer::applyUpsert(const ObjectPtr& object) {
  const std::string key = objectKey(*object);
  ObjectPtr old = store_.upsert(key, object);
  for (const auto& h : handlers_) {
    if (old == nullptr) {
      if (h.onAdd) {
        h.onAdd(object);
      }
    } else if (h.onUpdate) {
      h.onUpdate(old, object);
    }
  }
}

void Informer::applyDelete(const json::value& object) {
  const std::string key = objectKey(object);
  ObjectPtr old = store_.erase(key);
  ObjectPtr last = old != nullptr ? old : prepare(object);
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
  auto listed = co_await client_.listAll(options_.resource, options_.ns, lo);
  if (!listed.ok()) {
    co_return std::move(listed).error();
  }
  auto& obj = listed->as_object();
  std::string rv;
  if (auto* md = obj.if_contains("metadata"); md && md->is_object()) {
    if (auto* r = md->get_object().if_contains("resourceVersion"); r && r->is_string()) {
      rv = std::string(r->get_string());
    }
  }
  std::unordered_set<std::string> seen;
  if (auto* items = obj.if_contains("items"); items && items->is_array()) {
    seen.reserve(items->get_array().size());
    for (auto& item : items->get_array()) {
      // Items of a list carry no kind; keep objects self-describing for handlers.
      if (item.is_object() && !item.get_object().contains("kind")) {
        item.get_object()["kind"] = options_.resource.kind;
        item.get_object()["apiVersion"] = options_.resource.apiVersion();
      }
      ObjectPtr p = prepare(std::move(item));
      std::string key = objectKey(*p);
      ObjectPtr current = store_.get(key);
      seen.insert(key);
      if (current != nullptr && objectResourceVersion(*current) == objectResourceVersion(*p)) {
        continue;  // unchanged since we last saw it
      }
      applyUpsert(p);
    }
  }
  // Whatever we hold that the list no longer has was deleted while we were not watching.
  for (const auto& key : store_.keys()) {
    if (seen.count(key) != 0) {
      continue;
    }
    ObjectPtr last = store_.erase(key);
    if (last == nullptr) {
      continue;
    }
    for (const auto& h : handlers_) {
      if (h.onDelete) {
        h.onDelete(last, true);
      }
    }
  }
  co_return rv;
}

asio::awaitable<Status> Informer::watchFrom(std::string& resourceVersion) {
  ListOptions lo;
  lo.labelSelector = options_.labelSelector;
  lo.fieldSelector = options_.fieldSelector;
  lo.resourceVersion = resourceVersion;
  lo.allowWatchBookmarks = true;
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
    const auto rv = objectResourceVersion(e.object);
    if (!rv.empty()) {
      resourceVersion = std::string(rv);
      std::lock_guard lock(mu_);
      rv_ = resourceVersion;
    }
    switch (e.type) {
      case WatchEventType::kAdded:
      case WatchEventType::kModified:
        applyUpsert(prepare(std::move(e.object)));
        break;
      case WatchEventType::kDeleted:
        applyDelete(e.object);
        break;
      default:
        break;  // bookmark: only the resourceVersion matters
    }
  }
  co_return okStatus();
}

asio::awaitable<void> Informer::backoff(int attempt, const Error& error) {
  const auto delay = retryDelay(options_.backoff, attempt, error, rng_);
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  {
    std::lock_guard lock(mu_);
    timer_ = &timer;
  }
  if (!stopped_) {
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  std::lock_guard lock(mu_);
  timer_ = nullptr;
}

asio::awaitable<void> Informer::run() {
  int failures = 0;
  const auto& what = options_.resource.resource;
  while (!stopped_) {
    auto listed = co_await listAndReplace();
    if (!listed.ok()) {
      if (stopped_) {
        break;
      }
      spdlog::warn("msg=\"list failed\" resource={} error=\"{}\"", what, listed.error().toString());
      co_await backoff(failures++, listed.error());
      continue;
    }
    failures = 0;
    std::string rv = std::move(*listed);
    {
      std::lock_guard lock(mu_);
      rv_ = rv;
    }
    synced_ = true;
    while (!stopped_) {
      auto s = co_await watchFrom(rv);
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
}

}  // namespace burstlet::kube
