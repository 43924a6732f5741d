// The subcommands of phoenix, one function each; main() only parses the command line.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "config/config.h"

namespace phoenix::cli {

enum ExitCode { kExitOk = 0, kExitFailed = 1, kExitUsage = 2 };

struct UpOptions {
  LoadOptions load;
  std::optional<std::string> events_file;
  bool audit = false;        // hidden: run by `phoenix audit` (router.audit)
  bool keep_layers = false;  // hidden: audit --keep
};
int Up(const UpOptions& options);

int Ps(bool as_json);
int Scale(const std::map<std::string, int>& counts);
int Kill(const std::string& instance, bool now);
int Logs(const std::string& instance, bool follow);
int Stop();
int Rotate(const std::string& type);
int Drill(const std::string& type, double fraction);

}  // namespace phoenix::cli
