// MemoryApi: a small in-memory Kubernetes API server behind a kube::Transport, for tests that
// need a backend which keeps state (the provider's informers list and watch it) and that must
// force faults a real server will not produce on demand.
//
// It stores objects per collection path ("/api/v1/namespaces/ns/pods") and answers GET (object
// and list, with labelSelector equality/existence terms and fieldSelector equality terms), POST
// (409 AlreadyExists for an existing name; assigns uid and resourceVersion; 404 when the
// namespace of a namespaced collection does not exist), PUT (409 Conflict on a stale
// resourceVersion; 422 when changing an immutable ConfigMap or Secret), PATCH (JSON merge;
// strategic merge also merges lists of objects by "name"; same 422), DELETE (honours
// preconditions.uid and .resourceVersion with 409 Conflict; the object goes at once, whatever
// the grace period) and watches from a resourceVersion, as streams that deliver every later
// change. Subresources (404, as an API server without them answers), set-based selectors, paging
// and streaming lists (sendInitialEvents) are not supported, except a PATCH of
// pods/<name>/ephemeralcontainers once serveEphemeralContainers() is called: it adds ephemeral
// containers by name and refuses (422) to change one that is there or anything else; and the
// scale subresource of apps/v1 deployments, replicasets and statefulsets: GET the autoscaling/v1
// Scale (spec.replicas, absent = 1; status.replicas; status.selector from
// spec.selector.matchLabels), PATCH (JSON merge) or PUT it (409 on a stale resourceVersion) to
// set the object's spec.replicas (422 unless a number >= 0).
//
// Faults: failNext() makes the next requests matching a method and path answer a status without
// acting; loseAnswerNext() acts and then reports a broken connection, as when the answer is lost
// on the way back. holdWatches() delays watch delivery (a slow watch). Requests are recorded for
// assertions.
//
// Single-threaded: the transport and the test must run on one thread (the io_context's).
#pragma once

#include <fmt/format.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "kube/http.h"
#include "mocks/fake_transport.h"

namespace burstlet::testing {

class MemoryApi {
 public:
  struct Request {
    kube::Verb method = kube::Verb::get;
    std::string path;   // without the query
    std::string query;  // without the '?'
    std::string body;
    bool watch = false;
  };

  MemoryApi() : state_(std::make_shared<State>()) {}

  // A transport answering from this API. The API must outlive it.
  std::unique_ptr<kube::Transport> transport() { return std::make_unique<MemoryTransport>(state_); }

  // Requests to collection path `from` act on collection `to` (a server with a second route to
  // one resource, like CCI's extended-persistentvolumeclaims for claims).
  void alias(std::string from, std::string to) { state_->aliases[std::move(from)] = std::move(to); }

  // The next `count` send() requests (not lists or watches) with `method` whose path is
  // `path` or below it answer `status` (with a Status body of `reason`) and change nothing.
  void failNext(kube::Verb method, std::string path, int count, unsigned status,
                std::string reason = "") {
    state_->faults.push_back(
        Fault{method, std::move(path), count, status, std::move(reason), false, ""});
  }
  // As failNext, answering `body` as it is (a server's own error format, e.g. CCI's errorCode).
  void failNextWithBody(kube::Verb method, std::string path, int count, unsigned status,
                        std::string body) {
    state_->faults.push_back(
        Fault{method, std::move(path), count, status, "", false, std::move(body)});
  }
  // The next `count` matching requests are carried out, then answered with a transport error
  // (kUnavailable "ConnectionReset"): the caller cannot know they happened.
  void loseAnswerNext(kube::Verb method, std::string path, int count = 1) {
    state_->faults.push_back(Fault{method, std::move(path), count, 0, "", true, ""});
  }
  // Answers PATCH pods/<name>/ephemeralcontainers (as a Kubernetes API server from 1.23 does)
  // instead of 404.
  void serveEphemeralContainers() { state_->ephemeralContainers = true; }
  // While held, watches deliver nothing; released, they catch up in order.
  void holdWatches(bool hold) {
    state_->held = hold;
    if (!hold) {
      state_->wakeAll();
    }
  }

  // Writes as another client would (no request recorded, no fault applied): creates or replaces
  // `object` in `collection`, assigning uid (when absent) and resourceVersion. Returns it.
  boost::json::value put(const std::string& collection, boost::json::value object) {
    return state_->put(collection, std::move(object));
  }
  // Deletes as another client would; false when absent.
  bool remove(const std::string& collection, const std::string& name) {
    return state_->erase(collection, name);
  }
  std::optional<boost::json::value> get(const std::string& collection,
                                        const std::string& name) const {
    auto c = state_->objects.find(collection);
    if (c == state_->objects.end()) {
      return std::nullopt;
    }
    auto it = c->second.find(name);
    return it == c->second.end() ? std::nullopt : std::optional<boost::json::value>(it->second);
  }
  std::vector<std::string> names(const std::string& collection) const {
    std::vector<std::string> out;
    if (auto c = state_->objects.find(collection); c != state_->objects.end()) {
      for (const auto& [name, o] : c->second) {
        out.push_back(name);
      }
    }
    return out;
  }

  std::vector<Request> requests() const { return state_->requests; }
  // Requests with `method` whose path is `path` or below it ("" = any path). Watches and lists
  // count as GET.
  int count(kube::Verb method, std::string_view path = "") const {
    int n = 0;
    for (const auto& r : state_->requests) {
      if (r.method == method && under(r.path, path)) {
        ++n;
      }
    }
    return n;
  }
  // POST, PUT, PATCH and DELETE requests.
  int writes() const {
    return count(kube::Verb::post) + count(kube::Verb::put) + count(kube::Verb::patch) +
           count(kube::Verb::delete_);
  }

  int openWatches() const { return static_cast<int>(state_->watches.size()); }
  // Every open watch waits for news and has nothing it could deliver: whoever reads them has
  // seen everything so far (informers apply an event before reading the next).
  bool watchesIdle() const {
    for (const auto* w : state_->watches) {
      if (!w->parked() || w->deliverable()) {
        return false;
      }
    }
    return true;
  }

  static bool under(std::string_view path, std::string_view prefix) {
    return prefix.empty() || path == prefix ||
           (path.size() > prefix.size() && path.starts_with(prefix) && path[prefix.size()] == '/');
  }

 private:
  class MemoryWatch;

  struct Fault {
    kube::Verb method;
    std::string path;
    int count;
    unsigned status;
    std::string reason;
    bool loseAnswer;
    std::string body;  // answered as it is when not empty
  };
  struct Event {
    int64_t rv;
    std::string collection;
    std::string type;
    boost::json::value object;
  };
  struct Selectors {
    // (key, value, op): op '=' equal, '!' not equal, 'e' exists, 'n' does not exist.
    std::vector<std::tuple<std::string, std::string, char>> labels;
    std::vector<std::tuple<std::string, std::string, bool>> fields;  // (path, value, equal)

    static const boost::json::value* at(const boost::json::value& v, std::string_view dotted) {
      const boost::json::value* cur = &v;
      size_t start = 0;
      while (cur != nullptr && start <= dotted.size()) {
        const size_t dot = std::min(dotted.find('.', start), dotted.size());
        const auto* o = cur->if_object();
        cur = o != nullptr ? o->if_contains(dotted.substr(start, dot - start)) : nullptr;
        start = dot + 1;
      }
      return cur;
    }
    static std::string text(const boost::json::value* v) {
      if (v == nullptr || v->is_null()) {
        return "";
      }
      return v->is_string() ? std::string(v->as_string()) : boost::json::serialize(*v);
    }
    bool matches(const boost::json::value& o) const {
      for (const auto& [k, v, op] : labels) {
        const auto* ls = at(o, "metadata.labels");
        const auto* l = ls != nullptr && ls->is_object() ? ls->as_object().if_contains(k) : nullptr;
        const bool has = l != nullptr && l->is_string();
        const std::string value = has ? std::string(l->as_string()) : "";
        if ((op == '=' && (!has || value != v)) || (op == '!' && has && value == v) ||
            (op == 'e' && !has) || (op == 'n' && has)) {
          return false;
        }
      }
      for (const auto& [path, v, equal] : fields) {
        if ((text(at(o, path)) == v) != equal) {
          return false;
        }
      }
      return true;
    }
  };

  struct State {
    std::map<std::string, std::map<std::string, boost::json::value>> objects;
    std::vector<Event> log;
    std::vector<Fault> faults;
    std::vector<Request> requests;
    std::map<std::string, std::string> aliases;
    std::set<MemoryWatch*> watches;
    int64_t rv = 100;
    int64_t uids = 0;
    bool held = false;
    bool ephemeralContainers = false;

    void wakeAll() {
      for (auto* w : watches) {
        w->wake();
      }
    }
    void record(std::string collection, std::string type, const boost::json::value& object) {
      log.push_back(Event{rv, std::move(collection), std::move(type), object});
      wakeAll();
    }
    static boost::json::object& metadata(boost::json::value& o) {
      auto& md = o.as_object()["metadata"];
      if (!md.is_object()) {
        md = boost::json::object();
      }
      return md.as_object();
    }
    boost::json::value put(const std::string& collection, boost::json::value object) {
      auto& md = metadata(object);
      const std::string name(md["name"].as_string());
      auto& items = objects[collection];
      const bool existed = items.count(name) != 0;
      if (!md.contains("uid")) {
        md["uid"] = fmt::format("uid-{}", ++uids);
      }
      md["resourceVersion"] = std::to_string(++rv);
      items[name] = object;
      record(collection, existed ? "MODIFIED" : "ADDED", object);
      return object;
    }
    bool erase(const std::string& collection, const std::string& name) {
      auto c = objects.find(collection);
      if (c == objects.end() || c->second.count(name) == 0) {
        return false;
      }
      boost::json::value last = std::move(c->second[name]);
      c->second.erase(name);
      metadata(last)["resourceVersion"] = std::to_string(++rv);
      record(collection, "DELETED", last);
      return true;
    }
  };

  // A watch stream: the log's events for one collection after a resourceVersion, filtered.
  class MemoryWatch final : public kube::ResponseStream {
   public:
    MemoryWatch(std::shared_ptr<State> state, std::string collection, Selectors selectors,
                int64_t from)
        : state_(std::move(state)),
          collection_(std::move(collection)),
          selectors_(std::move(selectors)),
          from_(from) {
      state_->watches.insert(this);
    }
    ~MemoryWatch() override { state_->watches.erase(this); }

    unsigned status() const override { return 200; }
    void startAfter(int64_t rv) { from_ = rv; }
    void addInitial(boost::json::value object) { initial_.push_back(std::move(object)); }

    boost::asio::awaitable<Result<std::optional<std::string>>> read() override {
      while (true) {
        if (cancelled_) {
          co_return Error::make(ErrorCode::kCancelled, "Cancelled", "stream cancelled");
        }
        if (!initial_.empty()) {
          std::string line = boost::json::serialize(boost::json::object{
                                 {"type", "ADDED"}, {"object", initial_.front()}}) +
                             "\n";
          initial_.pop_front();
          co_return std::optional<std::string>(std::move(line));
        }
        if (const Event* e = next()) {
          from_ = e->rv;
          std::string line = boost::json::serialize(
                                 boost::json::object{{"type", e->type}, {"object", e->object}}) +
                             "\n";
          co_return std::optional<std::string>(std::move(line));
        }
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor,
                                        std::chrono::hours(1));
        parked_ = &timer;
        boost::system::error_code ec;
        co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        parked_ = nullptr;
      }
    }

    void cancel() override {
      cancelled_ = true;
      wake();
    }
    void wake() {
      if (parked_ != nullptr) {
        parked_->cancel();
      }
    }
    bool parked() const { return parked_ != nullptr; }
    bool deliverable() const { return cancelled_ || !initial_.empty() || next() != nullptr; }

   private:
    const Event* next() const {
      if (state_->held) {
        return nullptr;
      }
      for (const auto& e : state_->log) {
        if (e.rv > from_ && e.collection == collection_ && selectors_.matches(e.object)) {
          return &e;
        }
      }
      return nullptr;
    }

    std::shared_ptr<State> state_;
    std::string collection_;
    Selectors selectors_;
    int64_t from_;
    std::deque<boost::json::value> initial_;
    bool cancelled_ = false;
    boost::asio::steady_timer* parked_ = nullptr;
  };

  class MemoryTransport final : public kube::Transport {
   public:
    explicit MemoryTransport(std::shared_ptr<State> state) : state_(std::move(state)) {}

    boost::asio::awaitable<Result<kube::HttpResponse>> send(kube::HttpRequest request) override {
      co_return handle(request);
    }

    boost::asio::awaitable<Result<std::unique_ptr<kube::ResponseStream>>> stream(
        kube::HttpRequest request) override {
      const Request r = parse(request);
      state_->requests.push_back(r);
      const auto params = queryParams(r.query);
      Selectors selectors;
      if (auto bad = parseSelectors(params, &selectors)) {
        co_return streamOf(*bad);
      }
      const Route route = routeOf(r.path);
      if (!route.name.empty()) {
        co_return streamOf(status(400, "BadRequest", "streams of one object are not supported"));
      }
      if (!r.watch) {
        co_return streamOf(list(route.collection, selectors));
      }
      auto watch = std::make_unique<MemoryWatch>(state_, route.collection, selectors, state_->rv);
      if (auto it = params.find("resourceVersion");
          it != params.end() && !it->second.empty() && it->second != "0") {
        watch->startAfter(std::stoll(it->second));
      } else {
        // No resourceVersion: the current objects first, as ADDED events.
        for (const auto& [name, o] : state_->objects[route.collection]) {
          if (selectors.matches(o)) {
            watch->addInitial(o);
          }
        }
      }
      co_return std::unique_ptr<kube::ResponseStream>(std::move(watch));
    }

   private:
    struct Route {
      std::string collection;
      std::string name;
      std::string ns;  // of a namespaced collection
      std::string subresource;
    };

    static Request parse(const kube::HttpRequest& request) {
      Request r;
      r.method = request.method;
      const auto q = request.target.find('?');
      r.path = request.target.substr(0, q);
      r.query = q == std::string::npos ? "" : request.target.substr(q + 1);
      r.body = request.body;
      r.watch = queryParams(r.query).count("watch") != 0;
      return r;
    }

    static std::string unescape(std::string_view s) {
      std::string out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
          out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
          i += 2;
        } else {
          out += s[i] == '+' ? ' ' : s[i];
        }
      }
      return out;
    }

    static std::map<std::string, std::string> queryParams(std::string_view query) {
      std::map<std::string, std::string> out;
      size_t start = 0;
      while (start < query.size()) {
        const size_t amp = std::min(query.find('&', start), query.size());
        const auto kv = query.substr(start, amp - start);
        const auto eq = kv.find('=');
        out[unescape(kv.substr(0, eq))] =
            eq == std::string_view::npos ? "" : unescape(kv.substr(eq + 1));
        start = amp + 1;
      }
      return out;
    }

    static std::vector<std::string> split(std::string_view s, char sep) {
      std::vector<std::string> out;
      size_t start = 0;
      while (start <= s.size() && !s.empty()) {
        const size_t end = std::min(s.find(sep, start), s.size());
        out.emplace_back(s.substr(start, end - start));
        start = end + 1;
      }
      return out;
    }

    // A 400 answer for a selector this server does not understand.
    static std::optional<kube::HttpResponse> parseSelectors(
        const std::map<std::string, std::string>& params, Selectors* out) {
      if (auto it = params.find("labelSelector"); it != params.end()) {
        for (const auto& term : split(it->second, ',')) {
          if (term.find(' ') != std::string::npos || term.find('(') != std::string::npos) {
            return status(400, "BadRequest", "set-based selectors are not supported: " + term);
          }
          if (auto ne = term.find("!="); ne != std::string::npos) {
            out->labels.emplace_back(term.substr(0, ne), term.substr(ne + 2), '!');
          } else if (auto eq = term.find('='); eq != std::string::npos) {
            const size_t skip = term.compare(eq, 2, "==") == 0 ? 2 : 1;
            out->labels.emplace_back(term.substr(0, eq), term.substr(eq + skip), '=');
          } else if (term.starts_with("!")) {
            out->labels.emplace_back(term.substr(1), "", 'n');
          } else {
            out->labels.emplace_back(term, "", 'e');
          }
        }
      }
      if (auto it = params.find("fieldSelector"); it != params.end()) {
        for (const auto& term : split(it->second, ',')) {
          if (auto ne = term.find("!="); ne != std::string::npos) {
            out->fields.emplace_back(term.substr(0, ne), term.substr(ne + 2), false);
          } else if (auto eq = term.find('='); eq != std::string::npos) {
            const size_t skip = term.compare(eq, 2, "==") == 0 ? 2 : 1;
            out->fields.emplace_back(term.substr(0, eq), term.substr(eq + skip), true);
          } else {
            return status(400, "BadRequest", "bad field selector: " + term);
          }
        }
      }
      return std::nullopt;
    }

    // "/api/v1/namespaces/ns/pods/x" -> collection "/api/v1/namespaces/ns/pods", name "x";
    // "/api/v1/namespaces/ns" -> collection "/api/v1/namespaces", name "ns".
    static Route routeOf(const std::string& path) {
      auto parts = split(path, '/');  // parts[0] is empty: the path starts with '/'
      const size_t gv = parts.size() > 1 && parts[1] == "apis" ? 4 : 3;
      std::string prefix;
      for (size_t i = 1; i < gv && i < parts.size(); ++i) {
        prefix += "/" + parts[i];
      }
      std::vector<std::string> rest;
      for (size_t i = gv; i < parts.size(); ++i) {
        rest.push_back(parts[i]);
      }
      Route r;
      size_t at = 0;
      if (rest.size() >= 3 && rest[0] == "namespaces") {
        r.ns = rest[1];
        r.collection = prefix + "/namespaces/" + rest[1] + "/" + rest[2];
        at = 3;
      } else if (!rest.empty()) {
        r.collection = prefix + "/" + rest[0];
        at = 1;
      }
      if (at < rest.size()) {
        r.name = rest[at];
      }
      if (at + 1 < rest.size()) {
        r.subresource = rest[at + 1];
      }
      return r;
    }

    static kube::HttpResponse status(unsigned code, std::string reason, std::string message) {
      return jsonResponse(
          code, boost::json::serialize(boost::json::object{{"kind", "Status"},
                                                           {"apiVersion", "v1"},
                                                           {"status", "Failure"},
                                                           {"reason", std::move(reason)},
                                                           {"message", std::move(message)},
                                                           {"code", code}}));
    }

    static Result<std::unique_ptr<kube::ResponseStream>> streamOf(const kube::HttpResponse& r) {
      return std::unique_ptr<kube::ResponseStream>(
          std::make_unique<ScriptedStream>(r.status, std::vector<std::string>{r.body}, true));
    }

    kube::HttpResponse list(const std::string& collection, const Selectors& selectors) {
      boost::json::array items;
      for (const auto& [name, o] : state_->objects[collection]) {
        if (selectors.matches(o)) {
          items.push_back(o);
        }
      }
      return jsonResponse(200, boost::json::serialize(boost::json::object{
                                   {"kind", "List"},
                                   {"apiVersion", "v1"},
                                   {"metadata", {{"resourceVersion", std::to_string(state_->rv)}}},
                                   {"items", std::move(items)}}));
    }

    // JSON merge patch (RFC 7386); with `byName`, lists of objects with a "name" are merged
    // element by element (strategic merge's merge key for containers, volumes, ports...).
    static void merge(boost::json::value& target, const boost::json::value& patch, bool byName) {
      if (!patch.is_object()) {
        target = patch;
        return;
      }
      if (!target.is_object()) {
        target = boost::json::object();
      }
      auto& t = target.as_object();
      for (const auto& [k, v] : patch.as_object()) {
        if (v.is_null()) {
          t.erase(k);
        } else if (byName && v.is_array() && t.contains(k) && t[k].is_array()) {
          auto& have = t[k].as_array();
          for (const auto& item : v.as_array()) {
            const auto* n = item.is_object() ? item.as_object().if_contains("name") : nullptr;
            boost::json::value* found = nullptr;
            for (auto& h : have) {
              if (n != nullptr && h.is_object() && h.as_object().if_contains("name") != nullptr &&
                  h.as_object().at("name") == *n) {
                found = &h;
              }
            }
            if (found != nullptr) {
              merge(*found, item, byName);
            } else {
              have.push_back(item);
            }
          }
        } else {
          merge(t[k], v, byName);
        }
      }
    }

    // A ConfigMap or Secret marked immutable keeps its data, binaryData and the mark (the API
    // answers 422); it can only be deleted and created again.
    static std::optional<kube::HttpResponse> immutableChange(const boost::json::value& have,
                                                             const boost::json::value& want) {
      const auto* mark = have.as_object().if_contains("immutable");
      if (mark == nullptr || !mark->is_bool() || !mark->as_bool()) {
        return std::nullopt;
      }
      for (const char* key : {"data", "binaryData", "immutable"}) {
        const auto* a = have.as_object().if_contains(key);
        const auto* b = want.as_object().if_contains(key);
        if ((a == nullptr) != (b == nullptr) || (a != nullptr && *a != *b)) {
          return status(422, "Invalid",
                        fmt::format("{}: field is immutable when `immutable` is set", key));
        }
      }
      return std::nullopt;
    }

    // A strategic merge patch of pods/<name>/ephemeralcontainers: only spec.ephemeralContainers,
    // and only new names (the API's rule: they are added, never changed or removed).
    kube::HttpResponse addEphemeralContainers(const Route& route, const std::string& body) {
      auto& items = state_->objects[route.collection];
      auto it = items.find(route.name);
      if (it == items.end()) {
        return status(404, "NotFound", fmt::format("pods \"{}\" not found", route.name));
      }
      boost::system::error_code ec;
      const boost::json::value patch = boost::json::parse(body, ec);
      const auto* spec = !ec && patch.is_object() ? patch.as_object().if_contains("spec") : nullptr;
      const auto* added = spec != nullptr && spec->is_object()
                              ? spec->as_object().if_contains("ephemeralContainers")
                              : nullptr;
      if (added == nullptr || !added->is_array() || patch.as_object().size() != 1 ||
          spec->as_object().size() != 1) {
        return status(422, "Invalid", "only spec.ephemeralContainers may be patched here");
      }
      boost::json::value pod = it->second;
      auto& podSpec = pod.as_object()["spec"];
      if (!podSpec.is_object()) {
        podSpec = boost::json::object();
      }
      auto& list = podSpec.as_object()["ephemeralContainers"];
      if (!list.is_array()) {
        list = boost::json::array();
      }
      for (const auto& c : added->as_array()) {
        const auto* name = c.is_object() ? c.as_object().if_contains("name") : nullptr;
        bool found = false;
        for (const auto& have : list.as_array()) {
          if (name != nullptr && have.as_object().at("name") == *name) {
            if (have != c) {
              return status(422, "Invalid", "existing ephemeral containers may not be changed");
            }
            found = true;
          }
        }
        if (!found) {
          list.as_array().push_back(c);
        }
      }
      return jsonResponse(200, boost::json::serialize(state_->put(route.collection, pod)));
    }

    static bool scalable(const std::string& collection) {
      if (!collection.starts_with("/apis/apps/v1/")) {
        return false;
      }
      for (const char* kind : {"/deployments", "/replicasets", "/statefulsets"}) {
        if (collection.ends_with(kind)) {
          return true;
        }
      }
      return false;
    }

    // The autoscaling/v1 Scale the API server derives from a Deployment, ReplicaSet or
    // StatefulSet.
    static boost::json::value scaleOf(const boost::json::value& o) {
      const auto& obj = o.as_object();
      const auto* md = obj.if_contains("metadata");
      const auto* spec = obj.if_contains("spec");
      const auto* replicas = spec != nullptr && spec->is_object()
                                 ? spec->as_object().if_contains("replicas")
                                 : nullptr;
      std::string selector;
      if (const auto* labels = Selectors::at(o, "spec.selector.matchLabels");
          labels != nullptr && labels->is_object()) {
        for (const auto& [k, v] : labels->as_object()) {
          selector += fmt::format("{}{}={}", selector.empty() ? "" : ",", std::string_view(k),
                                  Selectors::text(&v));
        }
      }
      const auto* have = Selectors::at(o, "status.replicas");
      boost::json::object meta;
      for (const char* key : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
        if (const auto* v = md != nullptr ? md->as_object().if_contains(key) : nullptr) {
          meta[key] = *v;
        }
      }
      return boost::json::object{
          {"kind", "Scale"},
          {"apiVersion", "autoscaling/v1"},
          {"metadata", std::move(meta)},
          {"spec", {{"replicas", replicas != nullptr ? *replicas : boost::json::value(1)}}},
          {"status",
           {{"replicas", have != nullptr ? *have : boost::json::value(0)},
            {"selector", selector}}}};
    }

    kube::HttpResponse scale(const Route& route, const Request& r) {
      auto& items = state_->objects[route.collection];
      auto it = items.find(route.name);
      const std::string what = route.collection.substr(route.collection.rfind('/') + 1);
      if (it == items.end()) {
        return status(404, "NotFound", fmt::format("{}.apps \"{}\" not found", what, route.name));
      }
      boost::json::value current = scaleOf(it->second);
      if (r.method == kube::Verb::get) {
        return jsonResponse(200, boost::json::serialize(current));
      }
      boost::system::error_code ec;
      const boost::json::value body = boost::json::parse(r.body, ec);
      if (ec || !body.is_object()) {
        return status(400, "BadRequest", "body is not a JSON object");
      }
      boost::json::value want = current;
      if (r.method == kube::Verb::patch) {
        merge(want, body, false);
      } else if (r.method == kube::Verb::put) {
        const auto* rv = Selectors::at(body, "metadata.resourceVersion");
        if (rv != nullptr && rv->is_string() && !rv->as_string().empty() &&
            *rv != *Selectors::at(current, "metadata.resourceVersion")) {
          return status(409, "Conflict", "the object has been modified");
        }
        want = body;
      } else {
        return status(405, "MethodNotAllowed", "method not allowed");
      }
      const auto* replicas = Selectors::at(want, "spec.replicas");
      if (replicas == nullptr || !replicas->is_number() || replicas->to_number<double>() < 0) {
        return status(422, "Invalid", "spec.replicas: must be a number >= 0");
      }
      boost::json::value object = it->second;
      auto& spec = object.as_object()["spec"];
      if (!spec.is_object()) {
        spec = boost::json::object();
      }
      spec.as_object()["replicas"] = *replicas;
      return jsonResponse(
          200, boost::json::serialize(scaleOf(state_->put(route.collection, std::move(object)))));
    }

    Result<kube::HttpResponse> handle(const kube::HttpRequest& request) {
      const Request r = parse(request);
      state_->requests.push_back(r);
      bool loseAnswer = false;
      for (auto it = state_->faults.begin(); it != state_->faults.end(); ++it) {
        if (it->method == r.method && under(r.path, it->path) && it->count > 0) {
          const Fault f = *it;
          if (--it->count == 0) {
            state_->faults.erase(it);
          }
          if (!f.loseAnswer && !f.body.empty()) {
            return kube::HttpResponse{f.status, f.body, "application/json", std::nullopt};
          }
          if (!f.loseAnswer) {
            return status(f.status, f.reason.empty() ? "InjectedFault" : f.reason,
                          fmt::format("injected HTTP {}", f.status));
          }
          loseAnswer = true;
          break;
        }
      }
      auto answer = act(r);
      if (loseAnswer) {
        return Error::make(ErrorCode::kUnavailable, "ConnectionReset",
                           "connection reset by peer (injected)");
      }
      return answer;
    }

    kube::HttpResponse act(const Request& r) {
      Route route = routeOf(r.path);
      if (auto a = state_->aliases.find(route.collection); a != state_->aliases.end()) {
        route.collection = a->second;
      }
      if (route.subresource == "ephemeralcontainers" && state_->ephemeralContainers &&
          r.method == kube::Verb::patch) {
        return addEphemeralContainers(route, r.body);
      }
      if (route.subresource == "scale" && scalable(route.collection)) {
        return scale(route, r);
      }
      if (!route.subresource.empty()) {
        return status(404, "NotFound", "subresources are not supported");
      }
      auto& items = state_->objects[route.collection];
      const std::string what = route.collection.substr(route.collection.rfind('/') + 1);
      auto notFound = [&] {
        return status(404, "NotFound", fmt::format("{} \"{}\" not found", what, route.name));
      };
      if (r.method == kube::Verb::get) {
        if (route.name.empty()) {
          Selectors selectors;
          if (auto bad = parseSelectors(queryParams(r.query), &selectors)) {
            return *bad;
          }
          return list(route.collection, selectors);
        }
        auto it = items.find(route.name);
        return it == items.end() ? notFound()
                                 : jsonResponse(200, boost::json::serialize(it->second));
      }
      boost::system::error_code ec;
      boost::json::value body = boost::json::parse(r.body, ec);
      if (r.method == kube::Verb::post) {
        if (ec || !body.is_object()) {
          return status(400, "BadRequest", "body is not a JSON object");
        }
        if (!route.ns.empty() && state_->objects["/api/v1/namespaces"].count(route.ns) == 0) {
          return status(404, "NotFound", fmt::format("namespaces \"{}\" not found", route.ns));
        }
        auto& md = State::metadata(body);
        const auto* name = md.if_contains("name");
        if (name == nullptr || !name->is_string() || name->as_string().empty()) {
          return status(422, "Invalid", "metadata.name is required");
        }
        if (items.count(std::string(name->as_string())) != 0) {
          return status(409, "AlreadyExists",
                        fmt::format("{} \"{}\" already exists", what, name->as_string()));
        }
        if (!route.ns.empty()) {
          md["namespace"] = route.ns;
        }
        md["uid"] = fmt::format("uid-{}", ++state_->uids);  // the server's, never the client's
        md["creationTimestamp"] = "2026-01-01T00:00:00Z";
        return jsonResponse(201, boost::json::serialize(state_->put(route.collection, body)));
      }
      auto it = items.find(route.name);
      if (route.name.empty() || it == items.end()) {
        return notFound();
      }
      const auto& have = State::metadata(it->second);
      if (r.method == kube::Verb::put) {
        if (ec || !body.is_object()) {
          return status(400, "BadRequest", "body is not a JSON object");
        }
        auto& md = State::metadata(body);
        if (const auto* rv = md.if_contains("resourceVersion"); rv != nullptr && rv->is_string() &&
                                                                !rv->as_string().empty() &&
                                                                *rv != have.at("resourceVersion")) {
          return status(409, "Conflict", "the object has been modified");
        }
        if (auto bad = immutableChange(it->second, body)) {
          return *bad;
        }
        md["uid"] = have.at("uid");
        if (const auto* ts = have.if_contains("creationTimestamp")) {
          md["creationTimestamp"] = *ts;
        }
        if (!route.ns.empty()) {
          md["namespace"] = route.ns;
        }
        return jsonResponse(200, boost::json::serialize(state_->put(route.collection, body)));
      }
      if (r.method == kube::Verb::patch) {
        if (ec) {
          return status(400, "BadRequest", "patch is not JSON");
        }
        boost::json::value patched = it->second;
        merge(patched, body, true);
        if (auto bad = immutableChange(it->second, patched)) {
          return *bad;
        }
        State::metadata(patched)["uid"] = have.at("uid");
        return jsonResponse(200, boost::json::serialize(state_->put(route.collection, patched)));
      }
      if (r.method == kube::Verb::delete_) {
        const auto* pre =
            !ec && body.is_object() ? body.as_object().if_contains("preconditions") : nullptr;
        for (const char* key : {"uid", "resourceVersion"}) {
          const auto* want =
              pre != nullptr && pre->is_object() ? pre->as_object().if_contains(key) : nullptr;
          if (want != nullptr && *want != have.at(key)) {
            return status(
                409, "Conflict",
                fmt::format("Precondition failed: {} in precondition: {}, {} in object "
                            "meta: {}",
                            key, Selectors::text(want), key, Selectors::text(&have.at(key))));
          }
        }
        boost::json::value last = it->second;
        state_->erase(route.collection, route.name);
        return jsonResponse(200, boost::json::serialize(last));
      }
      return status(405, "MethodNotAllowed", "method not allowed");
    }

    std::shared_ptr<State> state_;
  };

  std::shared_ptr<State> state_;
};

}  // namespace burstlet::testing
