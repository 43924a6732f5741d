#include "control/paths.h"

#include <fmt/format.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string_view>

namespace phoenix::control {

std::string StateBase() {
  if (const char* dir = getenv("PHOENIX_STATE_DIR"); dir && *dir) return dir;
  if (geteuid() == 0) return "/var/lib/phoenix";
  if (const char* xdg = getenv("XDG_STATE_HOME"); xdg && *xdg) return std::string(xdg) + "/phoenix";
  const char* home = getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/phoenix";
}

std::string AppStateDir(const std::string& app_root) {
  // FNV-1a: stable across runs and builds, unlike std::hash.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : app_root) h = (h ^ c) * 1099511628211ull;
  std::string_view name = app_root;
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name = name.substr(slash + 1);
  if (name.empty()) name = "root";
  if (name.size() > 32) name = name.substr(0, 32);
  return fmt::format("{}/{}-{:08x}", StateBase(), name, static_cast<uint32_t>(h ^ (h >> 32)));
}

Result<std::string> FindAppRoot(const std::string& cwd) {
  char buf[PATH_MAX];
  if (!realpath(cwd.c_str(), buf)) return Error{fmt::format("{}: no such directory", cwd)};
  std::string dir = buf;
  for (;;) {
    struct stat st;
    if (stat((dir + "/Procfile").c_str(), &st) == 0) return dir;
    if (dir == "/" || dir.empty()) break;
    auto slash = dir.rfind('/');
    dir = slash == 0 ? "/" : dir.substr(0, slash);
  }
  return Error{
      fmt::format("no Procfile in {} or any folder above it: run this in the app's folder", buf)};
}

}  // namespace phoenix::control
