#include "audit/interrupt.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

namespace phoenix::audit::interrupt {
namespace {

using Clock = std::chrono::steady_clock;

struct State {
  std::mutex mu;
  std::map<pid_t, bool> children;  // pid -> a process group of its own
  std::string work_dir;
  bool keep = false;
  std::atomic<bool> interrupted{false};
};

State& S() {
  static State* state = new State;  // never destroyed: the signal thread may outlive main
  return *state;
}

// Exited (a zombie nobody reaped yet) or gone.
bool Ended(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

bool WaitEnded(const std::map<pid_t, bool>& children, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  for (;;) {
    bool all = true;
    for (const auto& [pid, group] : children) all = all && Ended(pid);
    if (all) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Signal(const std::map<pid_t, bool>& children, int sig) {
  for (const auto& [pid, group] : children) ::kill(group ? -pid : pid, sig);
}

[[noreturn]] void Stop(int sig) {
  State& s = S();
  std::lock_guard lock(s.mu);  // held until _exit: nothing is reaped (or tracked) meanwhile
  s.interrupted = true;
  std::fprintf(stderr, "\naudit: %s: stopping its runs\n", sigabbrev_np(sig));
  // A child phoenix stops its instances on the first SIGTERM and kills them at once on the
  // second; a test command's group gets SIGTERM, then SIGKILL.
  Signal(s.children, SIGTERM);
  if (!WaitEnded(s.children, std::chrono::seconds(5))) {
    Signal(s.children, SIGTERM);
    if (!WaitEnded(s.children, std::chrono::seconds(5))) Signal(s.children, SIGKILL);
  }
  // Whatever a test command left in its group goes too.
  for (const auto& [pid, group] : s.children) {
    if (group) ::kill(-pid, SIGKILL);
  }
  WaitEnded(s.children, std::chrono::seconds(5));
  if (!s.work_dir.empty()) {
    if (s.keep) {
      std::fprintf(stderr, "audit: the runs' logs and layers are kept in %s\n", s.work_dir.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(s.work_dir, ec);
      if (ec) {
        std::fprintf(stderr, "audit: cannot remove %s: %s\n", s.work_dir.c_str(),
                     ec.message().c_str());
      }
    }
  }
  std::fflush(stderr);
  _exit(128 + sig);
}

}  // namespace

void Arm(const std::string& work_dir, bool keep) {
  State& s = S();
  {
    std::lock_guard lock(s.mu);
    s.work_dir = work_dir;
    s.keep = keep;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    Stop(sig);
  }).detach();
}

void Track(pid_t pid, bool group) {
  State& s = S();
  std::lock_guard lock(s.mu);
  s.children[pid] = group;
}

pid_t Reap(pid_t pid, int* status, int options) {
  State& s = S();
  std::lock_guard lock(s.mu);
  pid_t r = waitpid(pid, status, options);
  if (r == pid || (r < 0 && errno == ECHILD)) s.children.erase(pid);
  return r;
}

void HoldIfInterrupted() {
  if (!S().interrupted) return;
  std::lock_guard lock(S().mu);  // the signal thread holds it until it ends the process
}

}  // namespace phoenix::audit::interrupt
