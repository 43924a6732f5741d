// An audit stopped by SIGINT, SIGTERM or SIGHUP (Ctrl-C, a CI job's timeout, a closed
// terminal) leaves nothing behind: its child `phoenix up` runs are stopped (they stop their
// instances), its test command's whole process group is ended, and its work folder removed.
// A thread waits for the signals (blocked everywhere else), so the audit's blocking code needs
// no checks; children start with an empty signal mask.
#pragma once

#include <sys/types.h>

#include <string>

namespace phoenix::audit::interrupt {

// Before any thread or child starts. `keep`: the work folder stays (and is named).
void Arm(const std::string& work_dir, bool keep);

// A child to stop on a signal: `group` sends to its whole process group (it leads one).
void Track(pid_t pid, bool group);
// waitpid() that forgets the child once reaped, under the same lock the signal thread holds
// while it stops children: a reaped pid can be reused, and must not be signalled then.
pid_t Reap(pid_t pid, int* status, int options);

// Once a signal came, the audit must not go on to print a verdict: this blocks until the
// signal thread ends the process. Returns at once otherwise.
void HoldIfInterrupted();

}  // namespace phoenix::audit::interrupt
