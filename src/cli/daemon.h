// The imperative shell of `phoenix up`: one Asio event loop on one thread that carries out the
// supervisor's actions (spawn sandboxes, signal, probe readiness), feeds it what happened
// (exits, readiness, timers, operator commands from the control socket) and reports events.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "os/fd.h"
#include "os/spawn.h"
#include "router/router.h"

namespace phoenix::cli {

struct DaemonOptions {
  Config config;
  std::string state_dir;
  std::optional<std::string> events_file;
  os::Isolation isolation = os::Isolation::kNamespaces;
  os::Fd lock;                             // held for the daemon's life: a second `up` refuses
  std::unique_ptr<router::Router> router;  // serving the public port already
  bool keep_layers = false;  // (audit --keep) an incarnation's layer stays after it died
};

// Runs until SIGINT/SIGTERM or `phoenix stop` have stopped every instance. Returns the exit code.
int RunDaemon(DaemonOptions options);

}  // namespace phoenix::cli
