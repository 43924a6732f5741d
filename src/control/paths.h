// Where a running phoenix keeps its per-app files (control socket, lock, incarnation layers),
// and how a command run in the app's folder finds them without flags, as Overmind does.
#pragma once

#include <string>

#include "base/result.h"

namespace phoenix::control {

// The base of all apps' state: $PHOENIX_STATE_DIR, else /var/lib/phoenix for root, else
// $XDG_STATE_HOME/phoenix or ~/.local/state/phoenix.
std::string StateBase();

// The state folder of the app at `app_root` (absolute): <base>/<name>-<hash of path>.
std::string AppStateDir(const std::string& app_root);

inline std::string SocketPath(const std::string& state_dir) { return state_dir + "/control.sock"; }
inline std::string LockPath(const std::string& state_dir) { return state_dir + "/phoenix.lock"; }
inline std::string LayersDir(const std::string& state_dir) { return state_dir + "/layers"; }

// The app root for a command run in `cwd`: the nearest folder upwards with a Procfile.
Result<std::string> FindAppRoot(const std::string& cwd);

}  // namespace phoenix::control
