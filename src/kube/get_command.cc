#include "kube/get_command.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "kube/informer.h"
#include "kube/json_path.h"
#include "kube/rest.h"

namespace burstlet::kube {

namespace json = boost::json;

namespace {

// The text of the value at `keys`: a string as it is, anything else as JSON, "" when absent.
std::string field(const json::value& v, std::initializer_list<std::string_view> keys) {
  const auto* f = at(v, keys);
  if (f == nullptr || f->is_null()) {
    return "";
  }
  return f->is_string() ? std::string(f->get_string()) : json::serialize(*f);
}

void printTable(const ResourceRef& ref, const std::vector<const json::value*>& items,
                bool withNamespace, bool wide, std::ostream& out) {
  const bool pods = ref.resource == "pods";
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  if (withNamespace) {
    header.emplace_back("NAMESPACE");
  }
  header.emplace_back("NAME");
  if (pods) {
    header.insert(header.end(), {"STATUS", "NODE"});
    if (wide) {
      header.emplace_back("IP");
    }
  } else {
    header.emplace_back("CREATED");
  }
  rows.push_back(header);
  for (const auto* item : items) {
    std::vector<std::string> row;
    if (withNamespace) {
      row.push_back(std::string(objectNamespace(*item)));
    }
    row.push_back(std::string(objectName(*item)));
    if (pods) {
      row.push_back(field(*item, {"status", "phase"}));
      row.push_back(field(*item, {"spec", "nodeName"}));
      if (wide) {
        row.push_back(field(*item, {"status", "podIP"}));
      }
    } else {
      row.push_back(field(*item, {"metadata", "creationTimestamp"}));
    }
    rows.push_back(std::move(row));
  }
  std::vector<size_t> widths(header.size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      widths[i] = std::max(widths[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += i + 1 == r.size() ? r[i] : fmt::format("{:<{}}   ", r[i], widths[i]);
    }
    out << line << "\n";
  }
}

}  // namespace

int runGetCommand(const GetCommandOptions& options, std::ostream& out, std::ostream& err) {
  auto ref = resources::byName(options.resource);
  if (!ref) {
    err << fmt::format("error: unknown resource \"{}\"\n", options.resource);
    return 2;
  }
  if (!options.output.empty() && options.output != "name" && options.output != "json" &&
      options.output != "wide") {
    err << fmt::format("error: unknown output format \"{}\" (want name, json or wide)\n",
                       options.output);
    return 2;
  }
  Result<ClientConfig> config =
      options.inCluster ? inClusterConfig()
                        : loadKubeconfig(KubeconfigOptions{options.kubeconfigs, options.context});
  if (!config.ok()) {
    err << "error: " << config.error().message << "\n";
    return 1;
  }
  std::string ns;
  if (ref->namespaced && !options.allNamespaces) {
    ns = !options.ns.empty()                 ? options.ns
         : !config->defaultNamespace.empty() ? config->defaultNamespace
                                             : std::string("default");
  }
  boost::asio::io_context io;
  auto client = RestClient::create(io.get_executor(), *config);
  if (!client.ok()) {
    err << "error: " << client.error().message << "\n";
    return 1;
  }
  std::optional<Result<json::value>> result;
  auto work = [&]() -> boost::asio::awaitable<void> {
    if (!options.name.empty()) {
      result.emplace(co_await (*client)->get(*ref, ns, options.name));
    } else {
      ListOptions lo;
      lo.labelSelector = options.labelSelector;
      lo.fieldSelector = options.fieldSelector;
      lo.limit = 500;
      result.emplace(co_await (*client)->listAll(*ref, ns, lo));
    }
  };
  boost::asio::co_spawn(io, work(), [](const std::exception_ptr&) {});
  io.run();
  if (!result.has_value()) {
    err << "error: request did not complete\n";
    return 1;
  }
  if (!result->ok()) {
    err << fmt::format("error: {} ({})\n", result->error().message,
                       errorCodeName(result->error().code));
    return 1;
  }
  const json::value& v = **result;
  if (options.output == "json") {
    out << json::serialize(v) << "\n";
    return 0;
  }
  std::vector<const json::value*> items;
  if (options.name.empty()) {
    for (const auto& item : v.at("items").as_array()) {
      items.push_back(&item);
    }
  } else {
    items.push_back(&v);
  }
  if (options.output == "name") {
    for (const auto* item : items) {
      out << ref->resource << "/" << objectName(*item) << "\n";
    }
    return 0;
  }
  if (items.empty()) {
    err << (ns.empty() ? std::string("No resources found\n")
                       : fmt::format("No resources found in {} namespace.\n", ns));
    return 0;
  }
  printTable(*ref, items, options.allNamespaces && ref->namespaced, options.output == "wide", out);
  return 0;
}

}  // namespace burstlet::kube
