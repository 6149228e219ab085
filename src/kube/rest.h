// RestClient: typed requests against one API server (get, list, create, update, patch,
// delete, status subresource, watch) with classified errors, bounded retries with jitter,
// honoured Retry-After, and an optional client-side token bucket (off by default).
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "kube/config.h"
#include "kube/credentials.h"
#include "kube/http.h"
#include "kube/list_decoder.h"
#include "kube/resource.h"
#include "kube/retry.h"
#include "kube/watch.h"

namespace burstlet::kube {

struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  int64_t limit = 0;  // page size; 0 = no paging
  std::string continueToken;
  std::string resourceVersion;  // "" = most recent (quorum read); never "0" by default
  std::string resourceVersionMatch;
  int timeoutSeconds = 0;  // watch: server-side timeout
  bool allowWatchBookmarks = false;
  // Watch: stream the current state first as ADDED events, ended by a bookmark annotated
  // k8s.io/initial-events-end (a "streaming list"); needs resourceVersionMatch=NotOlderThan.
  bool sendInitialEvents = false;

  std::string query(bool watch) const;
};

// metadata.continue of a List object ("" on the last page).
std::string listContinueToken(const boost::json::value& list);

enum class PatchType { kJsonMerge, kStrategicMerge, kJson, kApply };
std::string_view patchContentType(PatchType t);

struct PatchOptions {
  std::string fieldManager;  // required for kApply
  bool force = false;        // kApply: take ownership of conflicting fields
};

struct DeleteOptions {
  std::optional<int64_t> gracePeriodSeconds;
  std::string propagationPolicy;  // "", "Foreground", "Background", "Orphan"
  std::string preconditionUid;
  std::string preconditionResourceVersion;
  // Extra query parameters, already encoded ("deleteVolume=false&storageType=nfs": CCI's unbind
  // of an imported claim); "" for none.
  std::string query;

  std::string body() const;
};

// The server's own dialect of errors: given the error burstlet made of an answer (by its HTTP
// status and Status reason) and the answer itself, the error to act on (retry or not, report).
// A server with error codes of its own (CCI) reclassifies by them.
using ErrorDialect = std::function<Error(Error, const HttpResponse&)>;

struct RestOptions {
  RetryPolicy retry;
  const Clock* clock = nullptr;  // null: real clock
  ErrorDialect dialect;          // null: Kubernetes' classes (errors.h) as they are
};

// Counts of requests by verb and result, for metrics.
struct RequestCounters {
  std::atomic<uint64_t> total{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> retries{0};
};

class RestClient {
 public:
  // Builds the transport (TLS, credentials) for `config`.
  static Result<std::unique_ptr<RestClient>> create(asio::any_io_executor executor,
                                                    const ClientConfig& config,
                                                    RestOptions options = {});
  // For tests: any transport.
  RestClient(asio::any_io_executor executor, std::unique_ptr<Transport> transport,
             ClientConfig config, RestOptions options);

  using Json = boost::json::value;

  // The request methods are plain functions forwarding to coroutines, and optional arguments
  // are overloads, not default arguments: GCC 12 bitwise-copies class-type temporaries that a
  // co_await expression creates (default arguments included) into the coroutine frame, which
  // corrupts std::string members. Inside coroutines, pass named objects for class-type
  // arguments.
  asio::awaitable<Result<Json>> get(ResourceRef ref, std::string ns, std::string name) {
    return getCo(std::move(ref), std::move(ns), std::move(name), std::string());
  }
  asio::awaitable<Result<Json>> get(ResourceRef ref, std::string ns, std::string name,
                                    std::string subresource) {
    return getCo(std::move(ref), std::move(ns), std::move(name), std::move(subresource));
  }
  // One page (or everything when options.limit is 0): the List object as returned.
  asio::awaitable<Result<Json>> list(ResourceRef ref, std::string ns) {
    return listCo(std::move(ref), std::move(ns), ListOptions());
  }
  asio::awaitable<Result<Json>> list(ResourceRef ref, std::string ns, ListOptions options) {
    return listCo(std::move(ref), std::move(ns), std::move(options));
  }
  // All pages, items concatenated into one List object (metadata from the last page).
  asio::awaitable<Result<Json>> listAll(ResourceRef ref, std::string ns, ListOptions options) {
    return listAllCo(std::move(ref), std::move(ns), std::move(options));
  }
  asio::awaitable<Result<Json>> create(ResourceRef ref, std::string ns, Json object) {
    return createCo(std::move(ref), std::move(ns), std::move(object), std::string(), std::string());
  }
  // POST to a subresource of `name` (e.g. pods/eviction, serviceaccounts/token).
  asio::awaitable<Result<Json>> create(ResourceRef ref, std::string ns, Json object,
                                       std::string subresource, std::string name) {
    return createCo(std::move(ref), std::move(ns), std::move(object), std::move(subresource),
                    std::move(name));
  }
  asio::awaitable<Result<Json>> update(ResourceRef ref, std::string ns, std::string name,
                                       Json object) {
    return updateCo(std::move(ref), std::move(ns), std::move(name), std::move(object),
                    std::string());
  }
  asio::awaitable<Result<Json>> update(ResourceRef ref, std::string ns, std::string name,
                                       Json object, std::string subresource) {
    return updateCo(std::move(ref), std::move(ns), std::move(name), std::move(object),
                    std::move(subresource));
  }
  asio::awaitable<Result<Json>> patch(ResourceRef ref, std::string ns, std::string name,
                                      PatchType type, std::string body) {
    return patchCo(std::move(ref), std::move(ns), std::move(name), type, std::move(body),
                   std::string(), PatchOptions());
  }
  asio::awaitable<Result<Json>> patch(ResourceRef ref, std::string ns, std::string name,
                                      PatchType type, std::string body, std::string subresource) {
    return patchCo(std::move(ref), std::move(ns), std::move(name), type, std::move(body),
                   std::move(subresource), PatchOptions());
  }
  asio::awaitable<Result<Json>> patch(ResourceRef ref, std::string ns, std::string name,
                                      PatchType type, std::string body, std::string subresource,
                                      PatchOptions options) {
    return patchCo(std::move(ref), std::move(ns), std::move(name), type, std::move(body),
                   std::move(subresource), std::move(options));
  }
  // Returns the object as the server answered (the deleted object or a Status).
  asio::awaitable<Result<Json>> remove(ResourceRef ref, std::string ns, std::string name) {
    return removeCo(std::move(ref), std::move(ns), std::move(name), DeleteOptions());
  }
  asio::awaitable<Result<Json>> remove(ResourceRef ref, std::string ns, std::string name,
                                       DeleteOptions options) {
    return removeCo(std::move(ref), std::move(ns), std::move(name), std::move(options));
  }
  // Opens a watch. Reconnecting is the caller's (the informer's) job.
  asio::awaitable<Result<std::unique_ptr<WatchStream>>> watch(ResourceRef ref, std::string ns,
                                                              ListOptions options);
  // Opens one list request (one page when options.limit > 0) as a stream of items, compressed
  // on the wire and decoded as it arrives: the list is never held whole. Not retried: a list
  // that fails half-way is the caller's to repeat.
  asio::awaitable<Result<std::unique_ptr<ListStream>>> listStream(ResourceRef ref, std::string ns,
                                                                  ListOptions options);
  // Any request, with retries and error classification; the body of a 2xx response.
  asio::awaitable<Result<HttpResponse>> call(HttpRequest request, bool idempotent,
                                             std::string what);
  // Any streaming request (a pod's log): the body as it arrives, once the answer is 2xx; any
  // other answer is its classified error. Not retried. `request.timeout` bounds the silence
  // between reads (kNoTimeout: none, for a stream that may be quiet for hours).
  asio::awaitable<Result<std::unique_ptr<ResponseStream>>> stream(HttpRequest request,
                                                                  std::string what);
  // Opens a WebSocket (pods/exec, pods/attach, pods/portforward) with the client's TLS settings
  // and credentials; a refused upgrade is the classified error of the server's answer (through
  // the dialect). Not retried: a session is the caller's to open again.
  asio::awaitable<Result<std::unique_ptr<WebSocketConnection>>> websocket(WebSocketRequest request,
                                                                          std::string what);

  // Called after every request with its verb (GET, POST, ..., LIST and WATCH for streams,
  // CONNECT for WebSockets) and the HTTP status code (101 for a WebSocket opened), or the error
  // class when there was no answer. Set before use.
  using RequestObserver = std::function<void(std::string_view verb, std::string_view code)>;
  void setRequestObserver(RequestObserver observer) { observer_ = std::move(observer); }

  const ClientConfig& config() const { return config_; }
  const RequestCounters& counters() const { return counters_; }

 private:
  // errorFromResponse, through the dialect when there is one.
  Error errorOf(const HttpResponse& response, std::string_view what) const;
  asio::awaitable<Result<Json>> getCo(ResourceRef ref, std::string ns, std::string name,
                                      std::string subresource);
  asio::awaitable<Result<Json>> listCo(ResourceRef ref, std::string ns, ListOptions options);
  asio::awaitable<Result<Json>> listAllCo(ResourceRef ref, std::string ns, ListOptions options);
  asio::awaitable<Result<Json>> createCo(ResourceRef ref, std::string ns, Json object,
                                         std::string subresource, std::string name);
  asio::awaitable<Result<Json>> updateCo(ResourceRef ref, std::string ns, std::string name,
                                         Json object, std::string subresource);
  asio::awaitable<Result<Json>> patchCo(ResourceRef ref, std::string ns, std::string name,
                                        PatchType type, std::string body, std::string subresource,
                                        PatchOptions options);
  asio::awaitable<Result<Json>> removeCo(ResourceRef ref, std::string ns, std::string name,
                                         DeleteOptions options);
  asio::awaitable<Result<Json>> callJson(HttpRequest request, bool idempotent, std::string what);
  asio::awaitable<void> sleep(std::chrono::nanoseconds d);

  asio::any_io_executor executor_;
  std::unique_ptr<Transport> transport_;
  ClientConfig config_;
  RestOptions options_;
  const Clock& clock_;
  TokenBucket bucket_;
  std::mutex rngMu_;  // guards rng_
  std::mt19937_64 rng_;
  RequestCounters counters_;
  RequestObserver observer_;
};

}  // namespace burstlet::kube
