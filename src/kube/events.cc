#include "kube/events.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "common/log.h"
#include "kube/informer.h"

namespace burstlet::kube {

namespace json = boost::json;

ObjectReference referenceTo(const json::value& object) {
  ObjectReference r;
  if (!object.is_object()) {
    return r;
  }
  const auto& o = object.get_object();
  if (auto* v = o.if_contains("apiVersion"); v && v->is_string()) {
    r.apiVersion = std::string(v->get_string());
  }
  if (auto* v = o.if_contains("kind"); v && v->is_string()) {
    r.kind = std::string(v->get_string());
  }
  r.ns = std::string(objectNamespace(object));
  r.name = std::string(objectName(object));
  r.uid = std::string(objectUid(object));
  r.resourceVersion = std::string(objectResourceVersion(object));
  return r;
}

EventRecorder::EventRecorder(RestClient& client, const Clock& clock, EventRecorderOptions options)
    : client_(client), clock_(clock), options_(std::move(options)), sweepAt_(options_.maxCached) {}

void EventRecorder::record(const ObjectReference& object, EventType type, std::string reason,
                           const std::string& message) {
  std::string clean = log::redact(message);
  if (clean.size() > options_.maxMessageBytes) {
    clean.resize(options_.maxMessageBytes);
  }
  std::lock_guard lock(mu_);
  if (stopped_ || queue_.size() >= options_.maxQueued) {
    stats_.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.push_back(Pending{object, type, std::move(reason), std::move(clean), clock_.now()});
  wakeLocked();
}

// Ends the writer's idle wait, or its next one.
void EventRecorder::wakeLocked() { wakeup_.notify(); }

bool EventRecorder::idle() const {
  std::lock_guard lock(mu_);
  return queue_.empty() && !writing_;
}

void EventRecorder::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  wakeLocked();
}

bool EventRecorder::allow(const std::string& objectKey) {
  const auto now = clock_.steadyNow();
  // Forget objects whose bucket has refilled: remembering them changes nothing, and pods come
  // and go (each has its own UID) for as long as the process runs.
  if (buckets_.size() > sweepAt_) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double elapsed = std::chrono::duration<double>(now - it->second.last).count();
      const double tokens =
          it->second.tokens + elapsed / static_cast<double>(options_.refill.count());
      it = tokens >= options_.burst ? buckets_.erase(it) : std::next(it);
    }
    // Sweep again only after the map doubled: a sweep is linear in its size.
    sweepAt_ = std::max(options_.maxCached, 2 * buckets_.size());
  }
  auto [it, inserted] =
      buckets_.try_emplace(objectKey, Bucket{static_cast<double>(options_.burst), now});
  Bucket& b = it->second;
  if (!inserted) {
    const double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min<double>(options_.burst,
                                b.tokens + elapsed / static_cast<double>(options_.refill.count()));
    b.last = now;
  }
  if (b.tokens < 1) {
    return false;
  }
  b.tokens -= 1;
  return true;
}

void EventRecorder::remember(const std::string& key, Seen seen) {
  auto it = seen_.find(key);
  if (it != seen_.end()) {
    lru_.erase(it->second.lru);
    seen_.erase(it);
  }
  lru_.push_front(key);
  seen.lru = lru_.begin();
  seen_.emplace(key, std::move(seen));
  while (seen_.size() > options_.maxCached) {
    seen_.erase(lru_.back());
    lru_.pop_back();
  }
}

asio::awaitable<void> EventRecorder::write(Pending p) {
  const std::string objectKey =
      fmt::format("{}/{}/{}/{}", p.object.kind, p.object.ns, p.object.name, p.object.uid);
  const std::string type = p.type == EventType::kWarning ? "Warning" : "Normal";
  const std::string key = fmt::format("{}\x1f{}\x1f{}\x1f{}", objectKey, type, p.reason, p.message);
  const std::string now = formatRfc3339(p.at);
  // Events of cluster-scoped objects (the Node) live in "default", as the kubelet does.
  const std::string ns = p.object.ns.empty() ? "default" : p.object.ns;

  if (auto it = seen_.find(key); it != seen_.end()) {
    Seen s = it->second;
    s.count += 1;
    const std::string patch =
        json::serialize(json::object{{"count", s.count}, {"lastTimestamp", now}});
    auto r =
        co_await client_.patch(resources::kEvents, s.ns, s.name, PatchType::kStrategicMerge, patch);
    if (r.ok()) {
      stats_.aggregated.fetch_add(1, std::memory_order_relaxed);
      remember(key, std::move(s));
      co_return;
    }
    if (r.error().code != ErrorCode::kNotFound) {
      stats_.failed.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("msg=\"event update failed\" reason={} error=\"{}\"", p.reason,
                   r.error().toString());
      co_return;
    }
    // The Event expired (events have a TTL): start a new one below.
  }
  if (!allow(objectKey)) {
    stats_.throttled.fetch_add(1, std::memory_order_relaxed);
    co_return;
  }
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(p.at.time_since_epoch());
  const std::string name =
      fmt::format("{}.{:x}", p.object.name, static_cast<uint64_t>(nanos.count()) + sequence_++);
  json::object involved{{"kind", p.object.kind},
                        {"namespace", p.object.ns},
                        {"name", p.object.name},
                        {"uid", p.object.uid},
                        {"apiVersion", p.object.apiVersion}};
  if (!p.object.resourceVersion.empty()) {
    involved["resourceVersion"] = p.object.resourceVersion;
  }
  if (!p.object.fieldPath.empty()) {
    involved["fieldPath"] = p.object.fieldPath;
  }
  json::object source{{"component", options_.component}};
  if (!options_.host.empty()) {
    source["host"] = options_.host;
  }
  json::value event = json::object{
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", json::object{{"name", name}, {"namespace", ns}}},
      {"involvedObject", std::move(involved)},
      {"reason", p.reason},
      {"message", p.message},
      {"type", type},
      {"count", 1},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"source", std::move(source)},
      {"reportingComponent", options_.component},
      {"reportingInstance", options_.host},
  };
  auto r = co_await client_.create(resources::kEvents, ns, event);
  if (!r.ok()) {
    stats_.failed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("msg=\"event create failed\" reason={} error=\"{}\"", p.reason,
                 r.error().toString());
    co_return;
  }
  stats_.created.fetch_add(1, std::memory_order_relaxed);
  remember(key, Seen{ns, name, 1, now, {}});
}

asio::awaitable<void> EventRecorder::run() {
  signals_.started.set();
  signals_.ready.set();
  co_await writeUntilStopped();
  signals_.stopped.set();
}

asio::awaitable<void> EventRecorder::writeUntilStopped() {
  while (true) {
    std::optional<Pending> next;
    {
      std::lock_guard lock(mu_);
      if (!queue_.empty()) {
        next = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
      } else if (stopped_) {
        co_return;
      }
    }
    if (next) {
      co_await write(std::move(*next));
      std::lock_guard lock(mu_);
      writing_ = false;
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (!queue_.empty() || stopped_) {
        continue;
      }
    }
    // A record() or stop() from here on makes the sleep return at once.
    co_await wakeup_.sleep(clock_, std::chrono::seconds(1));
  }
}

}  // namespace burstlet::kube
