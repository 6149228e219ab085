// burstlet's Kubernetes client against the real testbed API servers (not a unit test: the Go
// e2e suite runs this binary with BURSTLET_TESTBED_STATE pointing at the running testbed).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "kube/config.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "mocks/run_sync.h"
#include "pod/lifecycle.h"
#include "pod/status.h"

namespace burstlet::kube {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using burstlet::testing::runSync;

json::value& state() {
  static json::value s = [] {
    const char* dir = std::getenv("BURSTLET_TESTBED_STATE");
    if (dir == nullptr) {
      ADD_FAILURE() << "BURSTLET_TESTBED_STATE is not set: run through the Go e2e suite";
      return json::value(json::object{});
    }
    std::ifstream in(fs::path(dir) / "state.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return json::parse(text);
  }();
  return s;
}

std::string plane(std::string_view name, std::string_view field) {
  return std::string(state().at(name).at(field).as_string());
}

std::string uniqueName(std::string_view prefix) {
  static std::atomic<int> n{0};
  return fmt::format("{}-{}-{}", prefix, getpid(), n++);
}

// Free coroutines take their inputs as parameters (copied into the frame); lambda coroutines
// would read their captures from a closure that is gone once co_spawn returns.
boost::asio::awaitable<void> createCounted(RestClient* client, std::string ns, json::value object,
                                           std::atomic<int>* ok) {
  auto r = co_await client->create(resources::kConfigMaps, ns, object);
  if (r.ok()) {
    ++*ok;
  }
}

boost::asio::awaitable<void> createThenDelete(RestClient* client, std::string ns,
                                              json::value object) {
  const std::string name(objectName(object));
  (void)co_await client->create(resources::kConfigMaps, ns, object);
  (void)co_await client->remove(resources::kConfigMaps, ns, name);
}

class KubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = clientFor(plane("cluster", "adminKubeconfig"));
    ASSERT_NE(client_, nullptr);
    ns_ = uniqueName("kubeclient");
    auto r = run(client_->create(resources::kNamespaces, "",
                                 json::object{{"metadata", json::object{{"name", ns_}}}}));
    ASSERT_TRUE(r.ok()) << r.error().toString();
  }
  void TearDown() override {
    if (client_ != nullptr) {
      (void)run(client_->remove(resources::kNamespaces, "", ns_));
    }
  }

  std::unique_ptr<RestClient> clientFor(const std::string& kubeconfig) {
    auto cfg = loadKubeconfig(KubeconfigOptions{{kubeconfig}});
    EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().toString());
    if (!cfg.ok()) {
      return nullptr;
    }
    return clientFor(*cfg);
  }
  std::unique_ptr<RestClient> clientFor(const ClientConfig& cfg) {
    auto c = RestClient::create(io_.get_executor(), cfg);
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().toString());
    return c.ok() ? std::move(*c) : nullptr;
  }
  template <typename T>
  T run(boost::asio::awaitable<T> work) {
    return runSync(io_, std::move(work));
  }

  json::value configMap(const std::string& name, std::string_view value) {
    return json::object{{"apiVersion", "v1"},
                        {"kind", "ConfigMap"},
                        {"metadata", json::object{{"name", name}, {"namespace", ns_}}},
                        {"data", json::object{{"key", value}}}};
  }

  boost::asio::io_context io_;
  std::unique_ptr<RestClient> client_;
  std::string ns_;
};

TEST_F(KubeClientTest, ConfigMapCrudAndErrorClasses) {
  auto created = run(client_->create(resources::kConfigMaps, ns_, configMap("cm", "v1")));
  ASSERT_TRUE(created.ok()) << created.error().toString();
  auto dup = run(client_->create(resources::kConfigMaps, ns_, configMap("cm", "v1")));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);

  auto got = run(client_->get(resources::kConfigMaps, ns_, "cm"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->at("data").at("key").as_string(), "v1");

  json::value updated = *got;
  updated.at("data").at("key") = "v2";
  auto u = run(client_->update(resources::kConfigMaps, ns_, "cm", updated));
  ASSERT_TRUE(u.ok()) << u.error().toString();
  // The same stale resourceVersion again: a conflict, not an overwrite.
  auto stale = run(client_->update(resources::kConfigMaps, ns_, "cm", updated));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict);

  DeleteOptions wrongUid;
  wrongUid.preconditionUid = "00000000-0000-0000-0000-000000000000";
  auto pre = run(client_->remove(resources::kConfigMaps, ns_, "cm", wrongUid));
  ASSERT_FALSE(pre.ok());
  EXPECT_EQ(pre.error().code, ErrorCode::kConflict);

  DeleteOptions rightUid;
  rightUid.preconditionUid = std::string(objectUid(*u));
  ASSERT_TRUE(run(client_->remove(resources::kConfigMaps, ns_, "cm", rightUid)).ok());
  auto gone = run(client_->get(resources::kConfigMaps, ns_, "cm"));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);

  json::value bad = configMap("Not_A_Valid_Name", "x");
  auto invalid = run(client_->create(resources::kConfigMaps, ns_, bad));
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code, ErrorCode::kInvalid);
}

TEST_F(KubeClientTest, PodCrudStatusAndEveryPatchType) {
  json::value pod = json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", "p"}, {"labels", json::object{{"a", "1"}}}}},
      {"spec", json::object{{"nodeName", "no-such-node"},
                            {"containers",
                             json::array{json::object{{"name", "c"}, {"image", "busybox"}}}}}}};
  ASSERT_TRUE(run(client_->create(resources::kPods, ns_, pod)).ok());

  auto merge = run(client_->patch(resources::kPods, ns_, "p", PatchType::kJsonMerge,
                                  R"({"metadata":{"labels":{"b":"2"}}})"));
  ASSERT_TRUE(merge.ok()) << merge.error().toString();
  auto strategic = run(client_->patch(resources::kPods, ns_, "p", PatchType::kStrategicMerge,
                                      R"({"metadata":{"labels":{"c":"3"}}})"));
  ASSERT_TRUE(strategic.ok()) << strategic.error().toString();
  auto jsonPatch = run(client_->patch(resources::kPods, ns_, "p", PatchType::kJson,
                                      R"([{"op":"add","path":"/metadata/labels/d","value":"4"}])"));
  ASSERT_TRUE(jsonPatch.ok()) << jsonPatch.error().toString();
  const auto& labels = jsonPatch->at("metadata").at("labels").as_object();
  EXPECT_EQ(labels.size(), 4U);

  // Status through the subresource, as a strategic merge patch that keeps other fields.
  auto status = run(client_->patch(
      resources::kPods, ns_, "p", PatchType::kStrategicMerge,
      R"({"status":{"phase":"Running","podIP":"10.9.8.7","conditions":[{"type":"Ready","status":"True"}]}})",
      "status"));
  ASSERT_TRUE(status.ok()) << status.error().toString();
  auto got = run(client_->get(resources::kPods, ns_, "p"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->at("status").at("phase").as_string(), "Running");
  EXPECT_EQ(got->at("status").at("podIP").as_string(), "10.9.8.7");
  EXPECT_EQ(got->at("metadata").at("labels").as_object().size(), 4U);

  auto badPatch = run(client_->patch(resources::kPods, ns_, "p", PatchType::kJson,
                                     R"([{"op":"test","path":"/metadata/name","value":"x"}])"));
  ASSERT_FALSE(badPatch.ok());

  // Server-side apply of a ConfigMap, twice (idempotent), then by another manager with force.
  const std::string applied = fmt::format(
      R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"ssa","namespace":"{}"}},"data":{{"k":"v"}}}})",
      ns_);
  for (int i = 0; i < 2; ++i) {
    auto a = run(client_->patch(resources::kConfigMaps, ns_, "ssa", PatchType::kApply, applied, {},
                                PatchOptions{"burstlet-test", false}));
    ASSERT_TRUE(a.ok()) << a.error().toString();
  }
  const std::string other = fmt::format(
      R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"ssa","namespace":"{}"}},"data":{{"k":"w"}}}})",
      ns_);
  auto conflict = run(client_->patch(resources::kConfigMaps, ns_, "ssa", PatchType::kApply, other,
                                     {}, PatchOptions{"someone-else", false}));
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
  auto forced = run(client_->patch(resources::kConfigMaps, ns_, "ssa", PatchType::kApply, other, {},
                                   PatchOptions{"someone-else", true}));
  ASSERT_TRUE(forced.ok()) << forced.error().toString();
  EXPECT_EQ(forced->at("data").at("k").as_string(), "w");

  DeleteOptions now;
  now.gracePeriodSeconds = 0;
  ASSERT_TRUE(run(client_->remove(resources::kPods, ns_, "p", now)).ok());
}

// What the pod controller relies on when it writes pods/status (src/pod): the pod's UID in the
// patch is a precondition the real API server enforces, and a changed pod IP replaces the list
// instead of merging into it.
TEST_F(KubeClientTest, PodStatusPatchesWithUidPreconditionAndChangedIPs) {
  json::value pod = json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", "ip"}}},
      {"spec", json::object{{"nodeName", "no-such-node"},
                            {"containers",
                             json::array{json::object{{"name", "c"}, {"image", "busybox"}}}}}}};
  auto created = run(client_->create(resources::kPods, ns_, pod));
  ASSERT_TRUE(created.ok()) << created.error().toString();
  const std::string uid(created->at("metadata").at("uid").as_string());
  json::value running = json::parse(R"({"status":{"phase":"Running","podIP":"10.9.0.1",
      "podIPs":[{"ip":"10.9.0.1"}]}})");
  auto first = pod::statusPatch(*created, running.at("status"));
  ASSERT_TRUE(first.has_value());
  first->as_object()["metadata"] = json::object{{"uid", uid}};
  auto written = run(client_->patch(resources::kPods, ns_, "ip", PatchType::kStrategicMerge,
                                    json::serialize(*first), "status"));
  ASSERT_TRUE(written.ok()) << written.error().toString();

  // The backend pod came back with another address.
  json::value moved = json::parse(R"({"status":{"phase":"Running","podIP":"10.9.0.2",
      "podIPs":[{"ip":"10.9.0.2"}]}})");
  auto second = pod::statusPatch(*written, moved.at("status"));
  ASSERT_TRUE(second.has_value());
  second->as_object()["metadata"] = json::object{{"uid", uid}};
  auto rewritten = run(client_->patch(resources::kPods, ns_, "ip", PatchType::kStrategicMerge,
                                      json::serialize(*second), "status"));
  ASSERT_TRUE(rewritten.ok()) << rewritten.error().toString();
  EXPECT_EQ(rewritten->at("status").at("podIPs"), json::parse(R"([{"ip":"10.9.0.2"}])"));

  // A write meant for an earlier pod of that name is refused, and recognized as such.
  auto stale = run(client_->patch(resources::kPods, ns_, "ip", PatchType::kStrategicMerge,
                                  R"({"metadata":{"uid":"00000000-0000-0000-0000-000000000000"},
                                      "status":{"phase":"Failed"}})",
                                  "status"));
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(pod::isUidMismatch(stale.error())) << stale.error().toString();
  auto got = run(client_->get(resources::kPods, ns_, "ip"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->at("status").at("phase").as_string(), "Running");
  DeleteOptions now;
  now.gracePeriodSeconds = 0;
  ASSERT_TRUE(run(client_->remove(resources::kPods, ns_, "ip", now)).ok());
}

TEST_F(KubeClientTest, PagingOver2500Objects) {
  constexpr int kCount = 2500;
  std::atomic<int> ok{0};
  for (int i = 0; i < kCount; ++i) {
    boost::asio::co_spawn(
        io_, createCounted(client_.get(), ns_, configMap(fmt::format("page-{:04}", i), "x"), &ok),
        boost::asio::detached);
  }
  io_.restart();
  io_.run();
  ASSERT_EQ(ok.load(), kCount);
  ListOptions lo;
  lo.limit = 500;
  auto first = run(client_->list(resources::kConfigMaps, ns_, lo));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->at("items").as_array().size(), 500U);
  EXPECT_FALSE(first->at("metadata").at("continue").as_string().empty());
  auto all = run(client_->listAll(resources::kConfigMaps, ns_, lo));
  ASSERT_TRUE(all.ok()) << all.error().toString();
  // kube-root-ca.crt is published into every namespace as well.
  std::set<std::string> names;
  for (const auto& item : all->at("items").as_array()) {
    names.insert(std::string(objectName(item)));
  }
  names.erase("kube-root-ca.crt");
  EXPECT_EQ(names.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(*names.begin(), "page-0000");
  EXPECT_EQ(*names.rbegin(), "page-2499");

  // The same objects read as streams (compressed on the wire, decoded as they arrive): in one
  // response, and in pages of 700.
  for (const int64_t limit : {int64_t{0}, int64_t{700}}) {
    ListOptions so;
    so.limit = limit;
    std::set<std::string> streamed;
    int pages = 0;
    while (true) {
      auto stream = run(client_->listStream(resources::kConfigMaps, ns_, so));
      ASSERT_TRUE(stream.ok()) << stream.error().toString();
      ++pages;
      while (true) {
        auto item = run((*stream)->next());
        ASSERT_TRUE(item.ok()) << item.error().toString();
        if (!item->has_value()) {
          break;
        }
        streamed.insert(std::string(objectName(**item)));
      }
      EXPECT_FALSE(objectResourceVersion((*stream)->envelope()).empty());
      std::string next = listContinueToken((*stream)->envelope());
      if (next.empty()) {
        break;
      }
      so.continueToken = std::move(next);
    }
    streamed.erase("kube-root-ca.crt");
    EXPECT_EQ(streamed, names) << "limit " << limit;
    EXPECT_EQ(pages, limit == 0 ? 1 : 4) << "limit " << limit;
  }
}

// The informer survives the server ending its watches (1 s server timeout) and keeps
// delivering changes.
TEST_F(KubeClientTest, InformerSurvivesServerWatchTimeouts) {
  InformerOptions o;
  o.resource = resources::kConfigMaps;
  o.ns = ns_;
  o.watchTimeoutSeconds = 1;
  Informer informer(*client_, o);
  std::atomic<int> adds{0};
  std::atomic<int> deletes{0};
  informer.addHandlers(
      {[&](const ObjectPtr&) { ++adds; }, nullptr, [&](const ObjectPtr&, bool) { ++deletes; }});
  std::atomic<bool> done{false};
  boost::asio::co_spawn(io_, informer.run(), [&](const std::exception_ptr&) { done = true; });
  auto runUntil = [&](const std::function<bool()>& pred, std::chrono::seconds limit) {
    return burstlet::testing::runUntil(io_, pred, limit);
  };
  io_.restart();
  ASSERT_TRUE(runUntil([&] { return informer.synced(); }, std::chrono::seconds(10)));
  // Let at least two server-side timeouts pass, then change things.
  runUntil([] { return false; }, std::chrono::seconds(3));
  const auto watchesBefore = informer.stats().watches.load();
  EXPECT_GE(watchesBefore, 2U);
  boost::asio::co_spawn(io_, createThenDelete(client_.get(), ns_, configMap("late", "x")),
                        boost::asio::detached);
  ASSERT_TRUE(runUntil([&] { return deletes.load() >= 1; }, std::chrono::seconds(10)));
  EXPECT_GE(adds.load(), 2);  // kube-root-ca.crt and "late"
  EXPECT_EQ(informer.store().get(ns_ + "/late"), nullptr);
  informer.stop();
  ASSERT_TRUE(runUntil([&] { return done.load(); }, std::chrono::seconds(5)));
}

// After etcd compacts past a resourceVersion, a watch from it is answered 410 Gone, which the
// informer treats as "relist". PodTemplates are served without the API server's watch cache
// in the testbed (--watch-cache-sizes=podtemplates#0), so etcd itself answers.
TEST_F(KubeClientTest, WatchFromCompactedResourceVersionIsGone) {
  const ResourceRef podTemplates{"", "v1", "podtemplates", true, "PodTemplate"};
  auto templ = [&](const std::string& name) {
    return json::value(json::object{
        {"apiVersion", "v1"},
        {"kind", "PodTemplate"},
        {"metadata", json::object{{"name", name}}},
        {"template",
         json::object{
             {"spec", json::object{{"containers", json::array{json::object{
                                                      {"name", "c"}, {"image", "busybox"}}}}}}}}});
  };
  auto first = run(client_->create(podTemplates, ns_, templ("old")));
  ASSERT_TRUE(first.ok()) << first.error().toString();
  const std::string oldRv(objectResourceVersion(*first));
  Result<json::value> latest = first;
  for (int i = 0; i < 3; ++i) {
    latest = run(client_->create(podTemplates, ns_, templ(fmt::format("newer-{}", i))));
    ASSERT_TRUE(latest.ok());
  }
  // Compact etcd through its JSON gateway up to the newest revision.
  ClientConfig etcd;
  etcd.server = plane("cluster", "etcdURL");
  auto etcdClient = clientFor(etcd);
  ASSERT_NE(etcdClient, nullptr);
  HttpRequest compact{
      Verb::post, "/v3/kv/compaction",
      fmt::format(R"({{"revision":"{}","physical":true}})", objectResourceVersion(*latest)),
      "application/json"};
  auto c = run(etcdClient->call(compact, false, "etcd compaction"));
  ASSERT_TRUE(c.ok()) << c.error().toString();

  ListOptions lo;
  lo.resourceVersion = oldRv;
  lo.timeoutSeconds = 5;
  auto w = run(client_->watch(podTemplates, ns_, lo));
  // Either the watch is refused or its first event is an ERROR carrying 410.
  if (!w.ok()) {
    EXPECT_EQ(w.error().code, ErrorCode::kGone) << w.error().toString();
    return;
  }
  auto ev = run((*w)->next());
  ASSERT_TRUE(ev.ok()) << ev.error().toString();
  ASSERT_TRUE(ev->has_value()) << "watch from compacted resourceVersion " << oldRv
                               << " ended without an answer";
  ASSERT_EQ((*ev)->type, WatchEventType::kError)
      << "got " << watchEventTypeName((*ev)->type) << " from compacted resourceVersion " << oldRv;
  EXPECT_EQ(watchError((*ev)->object).code, ErrorCode::kGone);
}

TEST_F(KubeClientTest, ClientCertificateFilesAuth) {
  // A kubeconfig that references certificate files instead of embedding them.
  const fs::path dir = fs::temp_directory_path() / uniqueName("kcfg");
  fs::create_directories(dir);
  std::ofstream(dir / "config") << fmt::format(
      "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n"
      "    certificate-authority: {}\nusers:\n- name: u\n  user:\n    client-certificate: {}\n"
      "    client-key: {}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
      "current-context: x\n",
      plane("cluster", "server"), plane("cluster", "caFile"), plane("cluster", "adminCert"),
      plane("cluster", "adminKey"));
  auto c = clientFor((dir / "config").string());
  ASSERT_NE(c, nullptr);
  auto r = run(c->list(resources::kNamespaces, "", ListOptions{}));
  EXPECT_TRUE(r.ok()) << r.error().toString();
  fs::remove_all(dir);
}

TEST_F(KubeClientTest, TokenAuthAndNonAdminForbidden) {
  auto c = clientFor(plane("cluster", "burstletKubeconfig"));
  ASSERT_NE(c, nullptr);
  auto pods = run(c->list(resources::kPods, "", ListOptions{"", "", 1}));
  EXPECT_TRUE(pods.ok()) << pods.error().toString();
  auto del = run(c->remove(resources::kNamespaces, "", ns_));
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().code, ErrorCode::kForbidden);
  EXPECT_EQ(del.error().message.find("Bearer"), std::string::npos);
}

TEST_F(KubeClientTest, ExecPluginAuth) {
  auto burstletCfg = loadKubeconfig(KubeconfigOptions{{plane("cluster", "burstletKubeconfig")}});
  ASSERT_TRUE(burstletCfg.ok());
  const fs::path dir = fs::temp_directory_path() / uniqueName("exec");
  fs::create_directories(dir);
  {
    std::ofstream tok(dir / "token");
    tok << burstletCfg->token;
  }
  std::ofstream(dir / "plugin.sh") << "#!/bin/sh\nprintf "
                                      "'{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                                      "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\"}}' "
                                      "\"$(cat \"$(dirname \"$0\")/token\")\"\n";
  fs::permissions(dir / "plugin.sh", fs::perms::owner_all);
  std::ofstream(dir / "config") << fmt::format(
      "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n"
      "    certificate-authority: {}\nusers:\n- name: u\n  user:\n    exec:\n"
      "      apiVersion: client.authentication.k8s.io/v1\n      command: ./plugin.sh\n"
      "      interactiveMode: Never\ncontexts:\n- name: x\n  context:\n    cluster: c\n"
      "    user: u\ncurrent-context: x\n",
      plane("cluster", "server"), plane("cluster", "caFile"));
  auto c = clientFor((dir / "config").string());
  ASSERT_NE(c, nullptr);
  auto pods = run(c->list(resources::kPods, "", ListOptions{"", "", 1}));
  EXPECT_TRUE(pods.ok()) << pods.error().toString();
  auto del = run(c->remove(resources::kNamespaces, "", ns_));
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().code, ErrorCode::kForbidden) << "exec identity must be burstlet's";
  fs::remove_all(dir);
}

TEST_F(KubeClientTest, WrongCertificateAuthorityFailsTls) {
  auto cfg = loadKubeconfig(KubeconfigOptions{{plane("cluster", "adminKubeconfig")}});
  ASSERT_TRUE(cfg.ok());
  auto backendCa = readFileNamed(plane("backend", "caFile"), "ca");
  ASSERT_TRUE(backendCa.ok());
  cfg->caPem = *backendCa;  // the other plane's CA does not vouch for this server
  auto c = clientFor(*cfg);
  ASSERT_NE(c, nullptr);
  auto r = run(c->get(resources::kNamespaces, "", "default"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, "TLSError") << r.error().toString();
}

TEST_F(KubeClientTest, EventsAreAggregatedOnTheServer) {
  auto cm = run(client_->create(resources::kConfigMaps, ns_, configMap("evented", "x")));
  ASSERT_TRUE(cm.ok());
  EventRecorderOptions o;
  o.host = "testbed";
  EventRecorder recorder(*client_, realClock(), o);
  std::atomic<bool> done{false};
  boost::asio::co_spawn(io_, recorder.run(), [&](const std::exception_ptr&) { done = true; });
  const auto ref = referenceTo(*cm);
  for (int i = 0; i < 3; ++i) {
    recorder.record(ref, EventType::kWarning, "TestWarning", "same message");
  }
  recorder.stop();
  io_.restart();
  while (!done) {
    io_.run_one_for(std::chrono::milliseconds(20));
  }
  ListOptions lo;
  lo.fieldSelector = "involvedObject.name=evented";
  auto events = run(client_->list(resources::kEvents, ns_, lo));
  ASSERT_TRUE(events.ok()) << events.error().toString();
  const auto& items = events->at("items").as_array();
  ASSERT_EQ(items.size(), 1U);
  EXPECT_EQ(items[0].at("count").as_int64(), 3);
  EXPECT_EQ(items[0].at("type").as_string(), "Warning");
  EXPECT_EQ(items[0].at("involvedObject").at("uid").as_string(), objectUid(*cm));
}

}  // namespace
}  // namespace burstlet::kube
