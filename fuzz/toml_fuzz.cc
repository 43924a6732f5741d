// libFuzzer target: phoenix.toml on top of a two-type Procfile never crashes, and a failed
// apply leaves the config as it was.
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  phoenix::Config config;
  config.app_root = "/app";
  for (const char* type : {"web", "worker"}) {
    phoenix::ProcessConfig p;
    p.type = type;
    p.command = "run";
    config.processes.push_back(p);
  }
  phoenix::Config before = config;
  phoenix::Status s = phoenix::ApplyToml(text, "phoenix.toml", config);
  if (!s.ok() && (config.router.port != before.router.port ||
                  config.processes[0].instances != before.processes[0].instances)) {
    __builtin_trap();
  }
  return 0;
}
