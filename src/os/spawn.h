// The door to clone(2): starts a child in fresh namespaces with a pidfd, its output on a pipe
// and a status pipe on fd 3. The child only dup2()s and exec()s (it may be cloned from a
// threaded process), so all sandbox work happens in the exec'd sandbox init.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"
#include "os/fd.h"

namespace phoenix::os {

enum class Isolation {
  kNone,           // a plain child process: nothing isolated
  kNamespaces,     // new mount + PID namespaces (needs root)
  kUserNamespace,  // as kNamespaces, inside a new user namespace (ordinary users)
};

struct SpawnRequest {
  int exe_fd = -1;  // executable to run (an fd, so a rebuilt binary does not matter)
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "KEY=value"
  Isolation isolation = Isolation::kNone;
};

struct SpawnedChild {
  pid_t pid = -1;
  Fd pidfd;   // readable when the child exits
  Fd output;  // the child's stdout and stderr, one pipe so their order is kept
  Fd status;  // fd 3 of the child: lines the sandbox init writes about itself
};

Result<SpawnedChild> Spawn(const SpawnRequest& request);

// Reaps a child whose pidfd became readable; returns the raw wait status.
Result<int> Reap(const Fd& pidfd);

// Sends a signal through a pidfd (never hits a recycled PID).
bool SendSignal(int pidfd, int sig);

// What isolation this process can get: root → kNamespaces; else a user namespace if the
// kernel allows one; else kNone. `why` explains a kNone.
Isolation ProbeIsolation(std::string* why);

// An fd to this program's own executable, for re-exec as the sandbox init.
Result<Fd> OpenSelfExe();

// The processes under `pid` (not itself), from every process's parent in /proc/PID/stat.
std::vector<pid_t> Descendants(pid_t pid);

}  // namespace phoenix::os
