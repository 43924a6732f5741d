// The sandbox init: phoenix re-executes itself as `phoenix __sandbox-init ...` inside the new
// namespaces. As PID 1 it builds the incarnation's filesystem (an overlay of the app root,
// read-only but for filesystem.writable in strict mode, private /tmp, its own /proc), then starts
// `sh -c COMMAND`, forwards SIGTERM and friends to it, reaps orphans and exits with its status. It
// reports on fd 3, one line each:
//   "error <message>"           set-up failed; the command never ran
//   "started"                   the command is running
//   "exit <code>" | "signal <n>" how the command ended
#pragma once

#include <string>
#include <vector>

namespace phoenix::sandbox {

struct InitOptions {
  std::string mode;     // "ephemeral", "strict" or "none"
  std::string root;     // the app root as the instance sees it (and the overlay's lower layer)
  std::string upper;    // ephemeral: writable layer
  std::string work;     // ephemeral: overlay work dir, on the same filesystem as upper
  bool userns = false;  // inside a user namespace: overlay needs "userxattr"
  std::string command;
  // ephemeral and strict: the folders that become the private /tmp, /var/tmp and /dev/shm
  // (kPrivateScratch), on the host so that the death report can list what was left in them.
  std::string private_dirs = "-";
  std::vector<std::string> writable;  // strict: relative paths that stay writable
};

// The host's world-writable scratch places each incarnation gets its own of, and the names of
// their folders under InitOptions::private_dirs.
struct PrivateScratch {
  const char* path;
  const char* folder;
};
inline constexpr PrivateScratch kPrivateScratch[] = {
    {"/tmp", "tmp"}, {"/var/tmp", "var-tmp"}, {"/dev/shm", "dev-shm"}};

std::vector<std::string> InitArgv(const InitOptions& options);

// Entry point from main() when argv[1] == "__sandbox-init". Never returns.
[[noreturn]] void RunInit(int argc, char** argv);

}  // namespace phoenix::sandbox
