// What the admin address (cli/admin.h) serves, as pure functions of one snapshot of the daemon's
// state: Prometheus metrics (/metrics), status as JSON (/status) and a small status page (/).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "router/router.h"
#include "supervisor/supervisor.h"

namespace phoenix::metrics {

struct StatusSnapshot {
  pid_t pid = 0;
  std::string app_root;
  double start_time_s = 0;  // Unix time phoenix started
  double uptime_s = 0;
  std::vector<std::string> types;  // Procfile order
  std::vector<InstanceView> instances;
  std::optional<int> router_port;  // when the web type is routed
  router::Stats router;
  std::map<std::pair<std::string, std::string>, uint64_t> deaths;  // (type, reason) -> count
  std::map<std::string, std::pair<uint64_t, uint64_t>> lost;       // type -> (files, bytes)
  uint64_t drills = 0;
};

// Prometheus text exposition format 0.0.4.
std::string PrometheusText(const StatusSnapshot& s);
std::string StatusJson(const StatusSnapshot& s);
std::string StatusHtml(const StatusSnapshot& s);

}  // namespace phoenix::metrics
