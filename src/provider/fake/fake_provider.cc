#include "provider/fake/fake_provider.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "provider/fake/fake_streams.h"

namespace burstlet::provider {

namespace json = boost::json;

namespace {

constexpr std::string_view kFailCreates = "fake.burstlet.io/fail-creates";
constexpr std::string_view kReject = "fake.burstlet.io/reject";
constexpr std::string_view kExitAfter = "fake.burstlet.io/exit-after-ms";
constexpr std::string_view kExitCode = "fake.burstlet.io/exit-code";
constexpr std::string_view kLogs = "fake.burstlet.io/logs";
constexpr std::string_view kExecExitCode = "fake.burstlet.io/exec-exit-code";

const json::object* objectAt(const json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  const auto* f = o != nullptr ? o->if_contains(key) : nullptr;
  return f != nullptr ? f->if_object() : nullptr;
}

std::string annotation(const json::value& pod, std::string_view key) {
  const auto* md = objectAt(pod, "metadata");
  const auto* ann = md != nullptr ? md->if_contains("annotations") : nullptr;
  const auto* annObj = ann != nullptr ? ann->if_object() : nullptr;
  const auto* v = annObj != nullptr ? annObj->if_contains(key) : nullptr;
  const auto* s = v != nullptr ? v->if_string() : nullptr;
  return s != nullptr ? std::string(*s) : std::string();
}

int64_t annotationInt(const json::value& pod, std::string_view key, int64_t fallback) {
  const std::string text = annotation(pod, key);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size() ? out : fallback;
}

const json::array* containersOf(const json::value& pod, std::string_view field) {
  const auto* spec = objectAt(pod, "spec");
  const auto* c = spec != nullptr ? spec->if_contains(field) : nullptr;
  return c != nullptr ? c->if_array() : nullptr;
}

std::string stringField(const json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  const auto* f = o != nullptr ? o->if_contains(key) : nullptr;
  const auto* s = f != nullptr ? f->if_string() : nullptr;
  return s != nullptr ? std::string(*s) : std::string();
}

// Removes the entries named `names` from the array at spec[list].
void dropNamed(json::object& spec, const char* list, const std::set<std::string>& names) {
  auto* items = spec.if_contains(list);
  if (names.empty() || items == nullptr || !items->is_array()) {
    return;
  }
  auto& a = items->as_array();
  for (auto it = a.begin(); it != a.end();) {
    it = names.contains(stringField(*it, "name")) ? a.erase(it) : std::next(it);
  }
}

// The part of a cluster pod the backend keeps: identity, labels, annotations and spec, without
// what burstlet injected (nothing runs here, and getPod shows the pod's own containers).
json::value keptPart(const json::value& pod) {
  json::object md;
  if (const auto* m = objectAt(pod, "metadata")) {
    for (const char* key : {"namespace", "name", "uid", "labels", "annotations"}) {
      if (const auto* v = m->if_contains(key)) {
        md[key] = *v;
      }
    }
  }
  json::object out{{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(md)}};
  if (const auto* spec = objectAt(pod, "spec")) {
    json::object kept = *spec;
    dropNamed(kept, "containers", injectedNames(pod, "containers"));
    dropNamed(kept, "volumes", injectedNames(pod, "volumes"));
    out["spec"] = std::move(kept);
  }
  return out;
}

// The ephemeral containers of `pod` after `update` adds its new ones: they can only be added,
// so those already there stay as they were, whatever `update` says of them.
json::array withAddedEphemeral(const json::value& pod, const json::value& update) {
  json::array out;
  std::set<std::string> have;
  if (const auto* list = containersOf(pod, "ephemeralContainers")) {
    out = *list;
    for (const auto& c : *list) {
      have.insert(stringField(c, "name"));
    }
  }
  if (const auto* list = containersOf(update, "ephemeralContainers")) {
    for (const auto& c : *list) {
      if (have.insert(stringField(c, "name")).second) {
        out.push_back(c);
      }
    }
  }
  return out;
}

}  // namespace

struct FakeProvider::State {
  struct Pod {
    json::value object;  // keptPart of the pod
    std::string ip;
    Clock::WallTime created;
    // When each ephemeral container was added (kubectl debug): its status starts then.
    std::map<std::string, Clock::WallTime> ephemeralAdded;
  };
  std::mutex mu;                             // guards everything below
  std::map<std::string, Pod> pods;           // by namespace/name
  std::map<std::string, int> failedCreates;  // by UID: injected failures so far
  std::map<std::string, int> creates;        // by UID: successful creates
  std::function<void(const PodRef&)> callback;
  bool unreachable = false;
  uint32_t nextIp = 0;
  std::FILE* journal = nullptr;
  std::mt19937_64 rng{std::random_device{}()};

  ~State() {
    if (journal != nullptr) {
      std::fclose(journal);  // NOLINT(cppcoreguidelines-owning-memory): C stdio handle
    }
  }

  std::string allocateIpLocked(const std::string& network) {
    const uint32_t n = nextIp++;
    return fmt::format("{}.{}.{}", network, (n / 254) % 254 + 1, n % 254 + 1);
  }

  // The journal's entry for a pod as it is now (created or updated).
  static json::object createEntry(const Pod& pod) {
    json::object added;
    for (const auto& [name, at] : pod.ephemeralAdded) {
      added[name] = formatRfc3339Micro(at);
    }
    json::object entry{{"op", "create"},
                       {"pod", pod.object},
                       {"ip", pod.ip},
                       {"created", formatRfc3339Micro(pod.created)}};
    if (!added.empty()) {
      entry["ephemeralAdded"] = std::move(added);
    }
    return entry;
  }

  // One JSON line per change; flushed so that a killed process leaves a complete journal up
  // to its last change (the page cache outlives the process).
  void appendLocked(const json::value& entry) {
    if (journal == nullptr) {
      return;
    }
    const std::string line = json::serialize(entry) + "\n";
    std::fwrite(line.data(), 1, line.size(), journal);
    std::fflush(journal);
  }
};

namespace {

json::object condition(std::string_view type, bool status, const std::string& at,
                       std::string_view reason = "") {
  json::object c{{"type", type},
                 {"status", status ? "True" : "False"},
                 {"lastProbeTime", nullptr},
                 {"lastTransitionTime", at}};
  if (!reason.empty()) {
    c["reason"] = reason;
  }
  return c;
}

// The status a node would report for `pod` at `now`: derived from the creation time, so that
// it is the same after a restart that replays the journal.
json::object statusAt(const FakeProvider::State::Pod& stored, Clock::WallTime now,
                      const FakeProviderOptions& options) {
  const json::value& pod = stored.object;
  const std::string& ip = stored.ip;
  const Clock::WallTime created = stored.created;
  const std::string uid = stringField(*objectAt(pod, "metadata"), "uid");
  const auto startAt = created + options.startDelay;
  const int64_t exitAfterMs = annotationInt(pod, kExitAfter, -1);
  const auto* spec = objectAt(pod, "spec");
  const std::string restartPolicy = spec != nullptr ? stringField(*spec, "restartPolicy") : "";
  const bool exits = exitAfterMs >= 0 && restartPolicy != "Always" && !restartPolicy.empty();
  const auto exitAt = startAt + std::chrono::milliseconds(exitAfterMs);
  const int64_t exitCode = annotationInt(pod, kExitCode, 0);
  const bool started = now >= startAt;
  const bool exited = started && exits && now >= exitAt;

  const std::string createdText = formatRfc3339(created);
  const std::string startText = formatRfc3339(startAt);
  const std::string exitText = formatRfc3339(exitAt);
  json::object status;
  status["hostIP"] = options.nodeIP;
  status["hostIPs"] = json::array{json::object{{"ip", options.nodeIP}}};
  status["startTime"] = createdText;
  const auto* init = containersOf(pod, "initContainers");
  const bool hasInit = init != nullptr && !init->empty();
  json::array conditions;
  conditions.push_back(condition("PodReadyToStartContainers", started, startText));
  conditions.push_back(condition("Initialized", started || !hasInit,
                                 started ? startText : createdText,
                                 started || !hasInit ? "" : "ContainersNotInitialized"));
  const bool ready = started && !exited;
  const std::string readyReason = exited ? "PodCompleted" : (started ? "" : "ContainersNotReady");
  const std::string readyAt = exited ? exitText : (started ? startText : createdText);
  conditions.push_back(condition("Ready", ready, readyAt, readyReason));
  conditions.push_back(condition("ContainersReady", ready, readyAt, readyReason));
  conditions.push_back(condition("PodScheduled", true, createdText));
  status["conditions"] = std::move(conditions);
  if (started) {
    status["podIP"] = ip;
    status["podIPs"] = json::array{json::object{{"ip", ip}}};
  }
  auto containerStatus = [&](const json::value& c, bool isInit) {
    const std::string name = stringField(c, "name");
    const std::string image = stringField(c, "image");
    json::object s{{"name", name},
                   {"image", image},
                   {"imageID", "fake://" + image},
                   {"restartCount", 0},
                   {"lastState", json::object{}}};
    if (!started) {
      s["state"] = json::object{
          {"waiting", json::object{{"reason", isInit ? "PodInitializing" : "ContainerCreating"}}}};
      s["ready"] = false;
      s["started"] = false;
      return s;
    }
    s["containerID"] = "fake://" + uid + "/" + name;
    if (isInit || exited) {
      const int64_t code = isInit ? 0 : exitCode;
      s["state"] =
          json::object{{"terminated", json::object{{"exitCode", code},
                                                   {"reason", code == 0 ? "Completed" : "Error"},
                                                   {"startedAt", startText},
                                                   {"finishedAt", isInit ? startText : exitText},
                                                   {"containerID", s["containerID"]}}}};
      s["ready"] = isInit;
      s["started"] = false;
    } else {
      s["state"] = json::object{{"running", json::object{{"startedAt", startText}}}};
      s["ready"] = true;
      s["started"] = true;
    }
    return s;
  };
  if (hasInit) {
    json::array list;
    for (const auto& c : *init) {
      list.push_back(containerStatus(c, true));
    }
    status["initContainerStatuses"] = std::move(list);
  }
  json::array list;
  if (const auto* containers = containersOf(pod, "containers")) {
    for (const auto& c : *containers) {
      list.push_back(containerStatus(c, false));
    }
  }
  status["containerStatuses"] = std::move(list);
  if (const auto* ephemeral = containersOf(pod, "ephemeralContainers");
      ephemeral != nullptr && !ephemeral->empty()) {
    // As a kubelet reports them: never ready, running from when they were added (or the pod
    // started), ended with the pod.
    json::array statuses;
    for (const auto& c : *ephemeral) {
      const std::string name = stringField(c, "name");
      json::object s = containerStatus(c, false);
      s.erase("started");
      s["ready"] = false;
      const auto added = stored.ephemeralAdded.find(name);
      const auto since =
          std::max(startAt, added != stored.ephemeralAdded.end() ? added->second : created);
      if (s["state"].as_object().contains("running")) {
        s["state"] = json::object{{"running", json::object{{"startedAt", formatRfc3339(since)}}}};
      }
      statuses.push_back(std::move(s));
    }
    status["ephemeralContainerStatuses"] = std::move(statuses);
  }
  status["phase"] =
      !started ? "Pending" : (!exited ? "Running" : (exitCode == 0 ? "Succeeded" : "Failed"));
  status["qosClass"] = "Burstable";
  return status;
}

// Tells the controller about a status change when `at` comes, if the pod is still the same.
asio::awaitable<void> notifyAt(std::shared_ptr<FakeProvider::State> state, PodRef ref,
                               std::chrono::steady_clock::duration delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  std::function<void(const PodRef&)> callback;
  {
    std::lock_guard lock(state->mu);
    auto it = state->pods.find(ref.key());
    if (it == state->pods.end() ||
        stringField(*objectAt(it->second.object, "metadata"), "uid") != ref.uid) {
      co_return;
    }
    callback = state->callback;
  }
  if (callback) {
    callback(ref);
  }
}

}  // namespace

Result<std::unique_ptr<FakeProvider>> FakeProvider::create(asio::any_io_executor executor,
                                                           FakeProviderOptions options,
                                                           const Clock& clock) {
  auto state = std::make_shared<State>();
  if (!options.stateFile.empty()) {
    // Replay the journal, then rewrite it compactly (temp file + rename, so a crash during the
    // rewrite leaves the old journal).
    std::ifstream in(options.stateFile);
    std::string line;
    int lineNo = 0;
    while (in && std::getline(in, line)) {
      ++lineNo;
      boost::system::error_code ec;
      json::value entry = json::parse(line, ec);
      const bool last = in.peek() == std::char_traits<char>::eof();
      if (ec || !entry.is_object()) {
        if (last) {
          break;  // cut short by a kill in the middle of a write
        }
        return Error::make(ErrorCode::kInvalid, "InvalidStateFile",
                           fmt::format("fake provider state file {} line {}: not a JSON object",
                                       options.stateFile, lineNo));
      }
      const std::string op = stringField(entry, "op");
      if (op == "create") {
        const auto* pod = entry.as_object().if_contains("pod");
        const auto created = parseRfc3339(stringField(entry, "created"));
        if (pod == nullptr || !created) {
          return Error::make(ErrorCode::kInvalid, "InvalidStateFile",
                             fmt::format("fake provider state file {} line {}: bad create entry",
                                         options.stateFile, lineNo));
        }
        const PodRef ref = podRefOf(*pod);
        State::Pod replayed{*pod, stringField(entry, "ip"), *created, {}};
        if (const auto* added = objectAt(entry, "ephemeralAdded")) {
          for (const auto& [name, at] : *added) {
            const auto* text = at.if_string();
            if (auto t = text != nullptr ? parseRfc3339(*text) : std::nullopt) {
              replayed.ephemeralAdded[name] = *t;
            }
          }
        }
        state->pods[ref.key()] = std::move(replayed);
        state->nextIp = std::max<uint32_t>(
            state->nextIp, static_cast<uint32_t>(entry.as_object().contains("seq")
                                                     ? entry.at("seq").to_number<int64_t>() + 1
                                                     : 0));
      } else if (op == "delete") {
        auto it = state->pods.find(stringField(entry, "key"));
        if (it != state->pods.end() && stringField(*objectAt(it->second.object, "metadata"),
                                                   "uid") == stringField(entry, "uid")) {
          state->pods.erase(it);
        }
      }
    }
    const std::string temp = options.stateFile + ".tmp";
    {
      std::ofstream out(temp, std::ios::trunc);
      for (const auto& [key, pod] : state->pods) {
        out << json::serialize(State::createEntry(pod)) << "\n";
      }
      if (!out) {
        return Error::make(ErrorCode::kInvalid, "InvalidStateFile",
                           fmt::format("cannot write fake provider state file {}", temp));
      }
    }
    std::error_code fsError;
    std::filesystem::rename(temp, options.stateFile, fsError);
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): C stdio handle owned by State.
    state->journal = fsError ? nullptr : std::fopen(options.stateFile.c_str(), "a");
    if (state->journal == nullptr) {
      return Error::make(
          ErrorCode::kInvalid, "InvalidStateFile",
          fmt::format("cannot open fake provider state file {}: {}", options.stateFile,
                      fsError ? fsError.message() : std::strerror(errno)));
    }
  }
  return std::unique_ptr<FakeProvider>(
      new FakeProvider(std::move(executor), std::move(options), clock, std::move(state)));
}

FakeProvider::FakeProvider(asio::any_io_executor executor, FakeProviderOptions options,
                           const Clock& clock, std::shared_ptr<State> state)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      clock_(clock),
      state_(std::move(state)) {
  // Pods replayed from the journal may still have transitions ahead of them.
  const auto now = clock_.now();
  for (const auto& [key, pod] : state_->pods) {
    const auto startAt = pod.created + options_.startDelay;
    if (startAt > now) {
      asio::co_spawn(executor_, notifyAt(state_, podRefOf(pod.object), startAt - now),
                     asio::detached);
    }
    const int64_t exitAfter = annotationInt(pod.object, kExitAfter, -1);
    if (exitAfter >= 0 && startAt + std::chrono::milliseconds(exitAfter) > now) {
      asio::co_spawn(executor_,
                     notifyAt(state_, podRefOf(pod.object),
                              startAt + std::chrono::milliseconds(exitAfter) - now),
                     asio::detached);
    }
  }
}

FakeProvider::~FakeProvider() {
  std::lock_guard lock(state_->mu);
  state_->callback = nullptr;  // timers still pending must not call into a gone controller
}

asio::awaitable<Status> FakeProvider::createPod(Json pod) {
  const PodRef ref = podRefOf(pod);
  if (ref.name.empty() || ref.uid.empty()) {
    co_return Error::make(ErrorCode::kInvalid, "InvalidPod", "pod has no name or uid");
  }
  if (const std::string reject = annotation(pod, kReject); !reject.empty()) {
    co_return Error::make(ErrorCode::kInvalid, "Rejected", reject);
  }
  std::function<void(const PodRef&)> callback;
  {
    std::lock_guard lock(state_->mu);
    if (state_->unreachable) {
      co_return Error::make(ErrorCode::kUnavailable, kBackendUnreachable,
                            "fake backend is unreachable");
    }
    auto it = state_->pods.find(ref.key());
    if (it != state_->pods.end()) {
      if (stringField(*objectAt(it->second.object, "metadata"), "uid") == ref.uid) {
        co_return okStatus();  // the same pod: a repeated create
      }
      // An earlier pod of this name: it goes at once here, and this one comes next time.
      state_->appendLocked(
          json::object{{"op", "delete"},
                       {"key", ref.key()},
                       {"uid", stringField(*objectAt(it->second.object, "metadata"), "uid")}});
      state_->pods.erase(it);
      co_return Error::make(ErrorCode::kUnavailable, kPredecessorTerminating,
                            "waiting for the previous pod of this name to stop on the backend");
    }
    const int64_t failFirst = annotationInt(pod, kFailCreates, 0);
    if (state_->failedCreates[ref.uid] < failFirst) {
      ++state_->failedCreates[ref.uid];
      co_return Error::make(ErrorCode::kUnavailable, "InjectedFailure",
                            fmt::format("injected create failure {} of {}",
                                        state_->failedCreates[ref.uid], failFirst));
    }
    if (options_.transientFailureRate > 0 &&
        std::uniform_real_distribution<double>(0, 1)(state_->rng) < options_.transientFailureRate) {
      co_return Error::make(ErrorCode::kUnavailable, "InjectedFailure",
                            "injected transient create failure");
    }
    State::Pod stored{
        keptPart(pod), state_->allocateIpLocked(options_.podNetwork), clock_.now(), {}};
    auto entry = State::createEntry(stored);
    entry["seq"] = state_->nextIp - 1;
    state_->appendLocked(entry);
    state_->pods.emplace(ref.key(), std::move(stored));
    ++state_->creates[ref.uid];
    callback = state_->callback;
  }
  const int64_t exitAfter = annotationInt(pod, kExitAfter, -1);
  if (options_.startDelay.count() > 0) {
    asio::co_spawn(executor_, notifyAt(state_, ref, options_.startDelay), asio::detached);
  } else if (callback) {
    callback(ref);
  }
  if (exitAfter >= 0) {
    asio::co_spawn(
        executor_,
        notifyAt(state_, ref, options_.startDelay + std::chrono::milliseconds(exitAfter)),
        asio::detached);
  }
  co_return okStatus();
}

asio::awaitable<Status> FakeProvider::updatePod(Json pod) {
  const PodRef ref = podRefOf(pod);
  std::function<void(const PodRef&)> callback;
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->pods.find(ref.key());
    if (it == state_->pods.end() ||
        stringField(*objectAt(it->second.object, "metadata"), "uid") != ref.uid) {
      co_return Error::make(ErrorCode::kNotFound, "NotFound",
                            fmt::format("pod {} not found", ref.key()));
    }
    State::Pod updated{keptPart(pod), it->second.ip, it->second.created, it->second.ephemeralAdded};
    auto ephemeral = withAddedEphemeral(it->second.object, pod);
    const auto now = clock_.now();
    for (const auto& c : ephemeral) {
      updated.ephemeralAdded.emplace(stringField(c, "name"), now);  // new ones only
    }
    auto& spec = updated.object.as_object()["spec"];
    if (!spec.is_object()) {
      spec = json::object{};
    }
    if (ephemeral.empty()) {
      spec.as_object().erase("ephemeralContainers");
    } else {
      spec.as_object()["ephemeralContainers"] = std::move(ephemeral);
    }
    state_->appendLocked(State::createEntry(updated));
    it->second = std::move(updated);
    callback = state_->callback;
  }
  if (callback) {
    callback(ref);  // images and ephemeral containers may have changed: the status shows them
  }
  co_return okStatus();
}

asio::awaitable<Status> FakeProvider::deletePod(PodRef pod, int64_t /*gracePeriodSeconds*/) {
  std::lock_guard lock(state_->mu);
  if (state_->unreachable) {
    co_return Error::make(ErrorCode::kUnavailable, kBackendUnreachable,
                          "fake backend is unreachable");
  }
  auto it = state_->pods.find(pod.key());
  if (it == state_->pods.end() ||
      (!pod.uid.empty() &&
       stringField(*objectAt(it->second.object, "metadata"), "uid") != pod.uid)) {
    co_return okStatus();  // not there (or another pod of that name): nothing of ours to delete
  }
  state_->appendLocked(
      json::object{{"op", "delete"},
                   {"key", pod.key()},
                   {"uid", stringField(*objectAt(it->second.object, "metadata"), "uid")}});
  state_->pods.erase(it);
  co_return okStatus();
}

asio::awaitable<Result<Json>> FakeProvider::getPod(PodRef pod) {
  std::lock_guard lock(state_->mu);
  auto it = state_->pods.find(pod.key());
  if (it == state_->pods.end() ||
      (!pod.uid.empty() &&
       stringField(*objectAt(it->second.object, "metadata"), "uid") != pod.uid)) {
    co_return Error::make(ErrorCode::kNotFound, "NotFound",
                          fmt::format("pod {} not found", pod.key()));
  }
  json::value out = it->second.object;
  out.as_object()["status"] = statusAt(it->second, clock_.now(), options_);
  co_return out;
}

asio::awaitable<Result<std::vector<Json>>> FakeProvider::listPods() {
  std::lock_guard lock(state_->mu);
  if (state_->unreachable) {
    co_return Error::make(ErrorCode::kUnavailable, kBackendUnreachable,
                          "fake backend is unreachable");
  }
  std::vector<Json> out;
  out.reserve(state_->pods.size());
  const auto now = clock_.now();
  for (const auto& [key, pod] : state_->pods) {
    json::value v = pod.object;
    v.as_object()["status"] = statusAt(pod, now, options_);
    out.push_back(std::move(v));
  }
  co_return out;
}

void FakeProvider::onPodStatusChange(std::function<void(const PodRef&)> callback) {
  std::lock_guard lock(state_->mu);
  state_->callback = std::move(callback);
}

asio::awaitable<Status> FakeProvider::ping() {
  std::lock_guard lock(state_->mu);
  if (state_->unreachable) {
    co_return Error::make(ErrorCode::kUnavailable, kBackendUnreachable,
                          "fake backend is unreachable");
  }
  co_return okStatus();
}

asio::awaitable<Result<std::unique_ptr<ByteStream>>> FakeProvider::logs(PodRef pod,
                                                                        LogOptions options) {
  std::lock_guard lock(state_->mu);
  auto it = state_->pods.find(pod.key());
  if (it == state_->pods.end()) {
    co_return Error::make(ErrorCode::kNotFound, "NotFound",
                          fmt::format("pod {} not found", pod.key()));
  }
  std::string text = annotation(it->second.object, kLogs);
  if (text.empty()) {
    text = fmt::format("fake log of {} container {}\n", pod.key(), options.container);
  }
  co_return makeTextStream(std::move(text));
}

asio::awaitable<Result<std::unique_ptr<ExecSession>>> FakeProvider::exec(PodRef pod,
                                                                         ExecOptions options) {
  std::lock_guard lock(state_->mu);
  auto it = state_->pods.find(pod.key());
  if (it == state_->pods.end()) {
    co_return Error::make(ErrorCode::kNotFound, "NotFound",
                          fmt::format("pod {} not found", pod.key()));
  }
  std::string banner;
  for (const auto& arg : options.command) {
    banner += (banner.empty() ? "" : " ") + arg;
  }
  if (!banner.empty()) {
    banner += "\n";
  }
  const auto code = static_cast<int>(annotationInt(it->second.object, kExecExitCode, 0));
  co_return makeEchoSession(clock_, std::move(banner), options.stdinOpen, code);
}

asio::awaitable<Result<std::unique_ptr<ExecSession>>> FakeProvider::attach(PodRef pod,
                                                                           ExecOptions options) {
  // As exec of no command: the echo alone.
  options.command.clear();
  return exec(std::move(pod), std::move(options));
}

void FakeProvider::setUnreachable(bool unreachable) {
  std::lock_guard lock(state_->mu);
  state_->unreachable = unreachable;
}

std::map<std::string, int> FakeProvider::createsByUid() const {
  std::lock_guard lock(state_->mu);
  return state_->creates;
}

size_t FakeProvider::size() const {
  std::lock_guard lock(state_->mu);
  return state_->pods.size();
}

std::string FakeProvider::nodeSecretName(std::string_view purpose) const {
  return "burstlet-" + std::string(purpose);
}

asio::awaitable<Status> FakeProvider::putNodeSecret(std::string purpose,
                                                    std::map<std::string, std::string> data) {
  std::lock_guard lock(secretsMu_);
  secrets_[purpose] = std::move(data);
  co_return okStatus();
}

std::optional<std::map<std::string, std::string>> FakeProvider::nodeSecret(
    const std::string& purpose) const {
  std::lock_guard lock(secretsMu_);
  auto it = secrets_.find(purpose);
  if (it == secrets_.end()) {
    return std::nullopt;
  }
  return it->second;
}

}  // namespace burstlet::provider
