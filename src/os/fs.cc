#include "os/fs.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <filesystem>

#include <fmt/format.h>

namespace phoenix::os {

Status MakeDirs(const std::string& path, unsigned mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error{fmt::format("{}: {}", path, ec.message())};
  chmod(path.c_str(), mode);
  return OkStatus();
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Error{fmt::format("{}: {}", path, ec.message())};
  return OkStatus();
}

bool IsOnOverlayfs(const std::string& path) {
  struct statfs st;
  constexpr long kOverlayfsMagic = 0x794c7630;
  return statfs(path.c_str(), &st) == 0 && st.f_type == kOverlayfsMagic;
}

Result<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (!realpath(path.c_str(), buf)) return Error{fmt::format("{}: {}", path, strerror(errno))};
  return std::string(buf);
}

}  // namespace phoenix::os
