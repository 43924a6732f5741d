// The control protocol: one JSON object a line. A request is {"cmd": ...} with its arguments;
// answers are JSON lines, {"ok":false,"error":...} on failure. This file validates requests,
// which come from a socket and are untrusted bytes (fuzzed by fuzz/control_fuzz.cc).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace phoenix::control {

enum class Command { kPs, kScale, kKill, kLogs, kStop, kRotate, kDrill, kScan };

struct Request {
  Command command = Command::kPs;
  std::string instance;               // kill, logs, scan ("" = all for logs and scan)
  bool now = false;                   // kill --now
  bool follow = false;                // logs -f
  std::map<std::string, int> counts;  // scale
  std::string type;                   // rotate, drill: "" = every type
  double fraction = 1.0;              // drill
};

Result<Request> ParseRequest(std::string_view line);
std::string EncodeRequest(const Request& request);

std::string OkAnswer();
// Success with a line for the operator (what `scale` and `kill` did).
std::string OkAnswer(const std::string& message);
// `usage`: the request named something that does not exist (the command exits 2, not 1).
std::string ErrorAnswer(const std::string& why, bool usage = false);

}  // namespace phoenix::control
