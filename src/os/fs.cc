#include "os/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fmt/format.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <filesystem>

namespace phoenix::os {

Status MakeDirs(const std::string& path, unsigned mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error{fmt::format("{}: {}", path, ec.message())};
  chmod(path.c_str(), mode);
  return OkStatus();
}

namespace {

// overlayfs leaves its work/work folder with mode 000; as an ordinary user (a user namespace)
// nothing inside can be removed until the folders are made ours to write again.
void MakeFoldersWritable(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) return;
  chmod(path.c_str(), 0700);
  DIR* d = opendir(path.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      MakeFoldersWritable(path + "/" + e->d_name);
    }
  }
  closedir(d);
}

}  // namespace

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec == std::errc::permission_denied) {
    MakeFoldersWritable(path);
    ec.clear();
    std::filesystem::remove_all(path, ec);
  }
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
