// burstlet: a virtual kubelet that runs the pods scheduled onto its node on a serverless
// container backend. This is the single entry point; each subcommand lives in its own area.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"burstlet: a virtual kubelet that bursts pods to a serverless backend"};
  app.set_version_flag("--version", std::string("burstlet ") + BURSTLET_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off (default info)");
  app.require_subcommand(1);

  auto* run = app.add_subcommand("run", "Register the virtual node and run its pods");
  run->callback([] {
    std::fprintf(stderr,
                 "burstlet run: the daemon is not built yet (see issue 4); nothing was started\n");
    throw CLI::RuntimeError(3);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (auto s = burstlet::log::init({log_level, nullptr}); !s.ok()) {
    std::fprintf(stderr, "burstlet: %s\n", s.error().toString().c_str());
    return 2;
  }
  return 0;
}
