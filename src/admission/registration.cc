#include "admission/registration.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "common/base64.h"
#include "kube/json_path.h"

namespace burstlet::admission {

namespace asio = boost::asio;
namespace json = boost::json;

const kube::ResourceRef kMutatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                       "mutatingwebhookconfigurations", false,
                                                       "MutatingWebhookConfiguration"};

json::value webhookConfiguration(const Registration& r) {
  json::array skip;
  for (const auto& ns : r.skipNamespaces) {
    skip.push_back(json::string(ns));
  }
  json::object webhook{
      {"name", "burst-policy.burstlet.io"},
      {"clientConfig", json::object{{"url", r.url}, {"caBundle", base64Encode(r.caBundlePem)}}},
      {"rules", json::array{json::object{{"apiGroups", json::array{""}},
                                         {"apiVersions", json::array{"v1"}},
                                         {"operations", json::array{"CREATE"}},
                                         {"resources", json::array{"pods"}},
                                         {"scope", "Namespaced"}},
                            // DaemonSets that tolerate every taint are kept off virtual nodes.
                            json::object{{"apiGroups", json::array{"apps"}},
                                         {"apiVersions", json::array{"v1"}},
                                         {"operations", json::array{"CREATE", "UPDATE"}},
                                         {"resources", json::array{"daemonsets"}},
                                         {"scope", "Namespaced"}}}},
      {"failurePolicy", "Ignore"},
      {"sideEffects", "None"},
      {"timeoutSeconds", r.timeoutSeconds},
      {"admissionReviewVersions", json::array{"v1"}},
      {"reinvocationPolicy", "Never"},
      {"matchPolicy", "Equivalent"},
  };
  if (!skip.empty()) {
    webhook["namespaceSelector"] = json::object{
        {"matchExpressions", json::array{json::object{{"key", "kubernetes.io/metadata.name"},
                                                      {"operator", "NotIn"},
                                                      {"values", std::move(skip)}}}}};
  }
  return json::object{
      {"apiVersion", "admissionregistration.k8s.io/v1"},
      {"kind", "MutatingWebhookConfiguration"},
      {"metadata", json::object{{"name", r.name},
                                {"labels", json::object{{"burstlet.io/managed-by", "burstlet"}}}}},
      {"webhooks", json::array{std::move(webhook)}},
  };
}

asio::awaitable<Status> ensureRegistration(kube::RestClient& cluster, Registration r) {
  json::value wanted = webhookConfiguration(r);
  std::string none;
  std::string name = r.name;
  auto current = co_await cluster.get(kMutatingWebhookConfigurations, none, name);
  if (!current.ok()) {
    if (current.error().code != ErrorCode::kNotFound) {
      co_return std::move(current).error();
    }
    auto created = co_await cluster.create(kMutatingWebhookConfigurations, none, std::move(wanted));
    if (!created.ok()) {
      co_return std::move(created).error();
    }
    spdlog::info("msg=\"admission webhook registered\" configuration={} url={}", r.name, r.url);
    co_return okStatus();
  }
  // The API server defaults some fields (namespaceSelector, objectSelector): compare ours only.
  const auto* have = kube::at(*current, {"webhooks"});
  const json::value& hook = wanted.at("webhooks").at(0);
  bool same = have != nullptr && have->is_array() && have->get_array().size() == 1;
  if (same) {
    const json::value& h = have->get_array()[0];
    for (const char* key : {"name", "clientConfig", "rules", "failurePolicy", "timeoutSeconds"}) {
      const auto* a = h.as_object().if_contains(key);
      same = same && a != nullptr && *a == hook.at(key);
    }
    same = same &&
           kube::valueAt(h, {"namespaceSelector"}) == kube::valueAt(hook, {"namespaceSelector"});
  }
  if (same) {
    co_return okStatus();
  }
  wanted.as_object()["metadata"].as_object()["resourceVersion"] =
      kube::stringAt(*current, {"metadata", "resourceVersion"});
  auto replaced =
      co_await cluster.update(kMutatingWebhookConfigurations, none, name, std::move(wanted));
  if (!replaced.ok()) {
    co_return std::move(replaced).error();
  }
  spdlog::info("msg=\"admission webhook registration updated\" configuration={} url={}", r.name,
               r.url);
  co_return okStatus();
}

}  // namespace burstlet::admission
