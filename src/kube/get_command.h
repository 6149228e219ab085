// `burstlet kube get`: lists or gets objects from an API server with burstlet's own client,
// a small kubectl-like check that a kubeconfig works.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace burstlet::kube {

struct GetCommandOptions {
  std::vector<std::string> kubeconfigs;  // empty: $KUBECONFIG or ~/.kube/config
  std::string context;
  std::string resource;  // "pods", "po", "configmaps", ...
  std::string name;      // empty: list
  std::string ns;        // empty: the context's namespace, else "default"
  bool allNamespaces = false;
  std::string labelSelector;
  std::string fieldSelector;
  std::string output;  // "", "name", "json", "wide"
  bool inCluster = false;
};

// Runs the command; prints results to `out` and errors to `err`. Returns the exit code.
int runGetCommand(const GetCommandOptions& options, std::ostream& out, std::ostream& err);

}  // namespace burstlet::kube
