// An audit stopped by SIGINT, SIGTERM or SIGHUP (Ctrl-C, a CI job's timeout, a closed
// terminal) leaves nothing behind: its child `phoenix up` runs are stopped (they stop their
// instances), its test command and every process under it are ended, and its work folder is
// removed; then the audit dies of that signal, so that a calling shell script stops too. A
// thread waits for the signals (blocked everywhere else), so the audit's blocking code needs
// no checks; children start with an empty signal mask, in the audit's process group (a
// terminal's Ctrl-C and a CI runner's kill of the group reach them as before). A child phoenix
// also stops when the audit dies of SIGKILL (PR_SET_PDEATHSIG, set by `up --audit`).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "base/result.h"

namespace phoenix::audit::interrupt {

// Before any thread or child starts. Signals ignored when the audit started (nohup, `cmd &`
// in a script) stay ignored. `keep`: the work folder stays (and is named).
void Arm(bool keep);

// mkdtemp(template) as the folder a signal removes (no window where it exists unknown).
Result<std::string> MakeWorkDir(std::string path_template);

// Runs `spawn` and tracks the child it started, under the lock the signal thread takes: a
// child is either tracked or never started. After a signal it starts nothing (an error).
// `tree`: on a signal, every process under it is ended too (a test command's node children);
// else only it is signalled (a child phoenix stops its instances itself).
Result<pid_t> SpawnTracked(const std::function<Result<pid_t>()>& spawn, bool tree);

// waitpid() that forgets the child once reaped, under the same lock: a reaped pid can be
// reused, and must not be signalled then.
pid_t Reap(pid_t pid, int* status, int options);

// Once a signal came, the audit must not go on to print a verdict: this blocks until the
// signal thread ends the process. Returns at once otherwise.
void HoldIfInterrupted();

}  // namespace phoenix::audit::interrupt
