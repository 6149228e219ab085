// burstlet: a virtual kubelet that runs the pods scheduled onto its node on a serverless
// container backend. This is the single entry point; each subcommand lives in its own area.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>

#include "common/log.h"
#include "common/memory.h"
#include "kube/get_command.h"

int main(int argc, char** argv) {
  burstlet::tuneAllocator();
  CLI::App app{"burstlet: a virtual kubelet that bursts pods to a serverless backend"};
  app.set_version_flag("--version", std::string("burstlet ") + BURSTLET_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off (default info)");
  app.require_subcommand(1);

  // Subcommands choose the action; it runs after parsing, once logging is set up.
  std::function<int()> action;

  auto* run = app.add_subcommand("run", "Register the virtual node and run its pods");
  run->callback([&] {
    action = [] {
      std::fprintf(stderr,
                   "burstlet run: the daemon is not built yet (see issue 4); nothing was "
                   "started\n");
      return 3;
    };
  });

  auto* kube = app.add_subcommand("kube", "Talk to an API server with burstlet's client");
  kube->require_subcommand(1);
  burstlet::kube::GetCommandOptions get;
  auto* getCmd = kube->add_subcommand("get", "Get or list objects (like kubectl get)");
  getCmd->add_option("resource", get.resource, "pods, configmaps, nodes, ... (short names work)")
      ->required();
  getCmd->add_option("name", get.name, "one object's name (default: list)");
  getCmd->add_option("--kubeconfig", get.kubeconfigs,
                     "kubeconfig file(s); default $KUBECONFIG, then ~/.kube/config");
  getCmd->add_option("--context", get.context, "kubeconfig context (default current-context)");
  getCmd->add_option("-n,--namespace", get.ns, "namespace (default: the context's, else default)");
  getCmd->add_flag("-A,--all-namespaces", get.allNamespaces, "list across all namespaces");
  getCmd->add_option("-l,--selector", get.labelSelector, "label selector");
  getCmd->add_option("--field-selector", get.fieldSelector, "field selector");
  getCmd->add_option("-o,--output", get.output, "name, json or wide");
  getCmd->add_flag("--in-cluster", get.inCluster, "use the in-cluster ServiceAccount config");
  getCmd->callback(
      [&] { action = [&] { return burstlet::kube::runGetCommand(get, std::cout, std::cerr); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (auto s = burstlet::log::init({log_level, nullptr}); !s.ok()) {
    std::fprintf(stderr, "burstlet: %s\n", s.error().message.c_str());
    return 2;
  }
  return action ? action() : 0;
}
