// Filesystem chores of the shell: folders, removal, and which filesystem a path is on.
#pragma once

#include <string>

#include "base/result.h"

namespace phoenix::os {

Status MakeDirs(const std::string& path, unsigned mode = 0700);
Status RemoveTree(const std::string& path);
// overlayfs upper and work dirs must not be on overlayfs themselves.
bool IsOnOverlayfs(const std::string& path);
Result<std::string> RealPath(const std::string& path);

}  // namespace phoenix::os
