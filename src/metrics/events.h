// The supervisor's events in the two forms users read: JSON lines (--events FILE, `logs`) and
// one human line for the terminal, e.g.
//   web.2 #7 died after 3h12m (max-age); it wrote 3 files (1.2 MB) that are gone: uploads/a.jpg,
//   ...
#pragma once

#include <string>
#include <vector>

#include "supervisor/supervisor.h"

namespace phoenix::metrics {

std::string EventJson(const Event& event);  // one line, no newline
std::string EventText(const Event& event);  // one line, no newline; "" for events not shown

// `phoenix ps --json`: an array of objects with instance, incarnation, pid, port, state,
// age_s, next_rebirth_s, restarts, lost_files, lost_bytes, last_exit, requests (null when the
// router does not route to it), in_flight, leaving (earlier incarnations still draining or
// stopping: incarnation, pid, state, age_s, requests, in_flight).
std::string InstancesJson(const std::vector<InstanceView>& views);

// RFC 3339 UTC time with milliseconds, for event stamps.
std::string NowRfc3339();

}  // namespace phoenix::metrics
